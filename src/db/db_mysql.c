/*
 * db_mysql.c - the MySQL / MariaDB backend (MariaDB Connector/C).
 *
 * Owns: one MYSQL connection per struct db, its small cache of prepared
 * statements, reconnecting, TLS settings, the InnoDB schema (migrations) and
 * the FULLTEXT knowledge-base search. Every statement with data is a prepared
 * statement; every result cell is fetched as text.
 *
 * Resilience: before a statement the socket is polled (no round trip); a
 * connection the server has closed is replaced. When a statement fails because
 * the connection was lost, it is retried once on a new connection if that is
 * safe: outside a transaction, and either the statement never reached the
 * server or it only reads. While the server stays down every call fails with
 * ERR_DB_UNAVAILABLE within the connect timeout.
 *
 * Must not touch: the pool (db.c), callers' SQL. Threads: a struct db is used
 * by one thread at a time; the library is initialised once (pthread_once).
 */
#define LOG_MODULE "db_mysql"

#include "db/db.h"

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "db/internal.h"

#include <ctype.h>
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DB_MYSQL_STMT_CACHE 32 /* prepared statements kept per connection */
#define DB_MYSQL_CELL_BUF 256  /* first fetch buffer per column, bytes */
#define DB_MYSQL_KB_WORDS 16   /* words of a search query used */
#define DB_MYSQL_SNIPPET 160   /* snippet length, bytes (cut at a space) */

struct stmt_slot {
    char *sql; /* NULL = free slot */
    MYSQL_STMT *st;
    unsigned long long used; /* LRU tick */
};

struct mdb {
    struct db base;        /* first: db.h contract */
    const struct cfg *cfg; /* borrowed */
    MYSQL *my;             /* NULL = not connected (reconnect on next use) */
    bool in_tx;            /* inside begin..commit/rollback */
    unsigned last_errno;   /* mysql errno of the last failed statement, 0 = none */
    int min_token;         /* innodb_ft_min_token_size, 0 = not read yet */
    unsigned long long tick;
    struct stmt_slot cache[DB_MYSQL_STMT_CACHE];
};

/* ---- library ---- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static bool lib_ok;

static void lib_init(void)
{
    /* No mysql_library_end at exit: worker threads may still hold connections then, and
     * LeakSanitizer stays quiet without it (the library's globals remain reachable). */
    lib_ok = mysql_library_init(0, NULL, NULL) == 0;
}

/* ---- errors ---- */

static bool is_conn_errno(unsigned no)
{
    switch (no) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_UNKNOWN_HOST:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    case CR_SSL_CONNECTION_ERROR: /* after connect: the TLS stream broke (peer gone) */
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
        return true;
    default:
        return false;
    }
}

/* A statement error that is not about the connection. */
static int stmt_error(unsigned no, const char *state, const char *msg, struct err *e)
{
    int code;
    switch (no) { /* the same codes the SQLite backend gives for the same mistakes */
    case ER_DUP_ENTRY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
        code = ERR_DUPLICATE;
        break;
    case ER_BAD_NULL_ERROR:
    case ER_NO_DEFAULT_FOR_FIELD:
    case ER_NO_REFERENCED_ROW:
    case ER_NO_REFERENCED_ROW_2:
    case ER_ROW_IS_REFERENCED:
    case ER_ROW_IS_REFERENCED_2:
    case ER_CONSTRAINT_FAILED:
    case ER_DATA_TOO_LONG:
    case ER_TRUNCATED_WRONG_VALUE:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_WARN_DATA_OUT_OF_RANGE:
        code = ERR_INVALID_ARGUMENTS;
        break;
    case ER_LOCK_WAIT_TIMEOUT:
    case ER_LOCK_DEADLOCK:
        code = ERR_BUSY;
        break;
    case ER_STATEMENT_TIMEOUT:
    case ER_QUERY_INTERRUPTED:
        code = ERR_TIMEOUT;
        break;
    default:
        code = ERR_INTERNAL;
    }
    return err_set(e, code, NULL, "mysql %u (%s): %s", no, state ? state : "", msg ? msg : "");
}

static int unavailable(struct err *e, const char *what, unsigned no, const char *msg)
{
    return err_set(e, ERR_DB_UNAVAILABLE, NULL, "%s: mysql %u: %s", what, no, msg ? msg : "");
}

/* ---- connecting ---- */

static bool is_loopback(const char *host)
{
    return !*host || host[0] == '/' || !strcmp(host, "127.0.0.1") ||
           !strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]");
}

static const char *ssl_mode_name(enum cfg_ssl m)
{
    return m == CFG_SSL_VERIFY ? "verify" : m == CFG_SSL_REQUIRED ? "required" : "disabled";
}

static atomic_bool warned_unverified; /* the "required is not verify" warning, once */

/* Configurations we refuse before touching the network. */
static int check_cfg(const struct cfg *c, struct err *e)
{
    if (!*c->db_host)
        return err_set(e, ERR_CONFIG, NULL, "DB_HOST is not set (the MySQL backend needs it)");
    if (c->app_env == CFG_ENV_PRODUCTION && c->db_ssl_mode == CFG_SSL_DISABLED &&
        !is_loopback(c->db_host))
        return err_set(e, ERR_CONFIG, NULL,
                       "refusing an unencrypted MySQL connection to %s in production: set "
                       "DB_SSL_MODE=verify (with DB_SSL_CA) or DB_SSL_MODE=required",
                       c->db_host);
    if (c->app_env == CFG_ENV_PRODUCTION && c->db_ssl_mode == CFG_SSL_REQUIRED &&
        !is_loopback(c->db_host) && !atomic_exchange(&warned_unverified, true))
        log_warn("DB_SSL_MODE=required encrypts the MySQL connection to %s but does not check "
                 "its certificate; DB_SSL_MODE=verify (with DB_SSL_CA) also checks who answers",
                 c->db_host);
    return 0;
}

static void set_options(MYSQL *my, const struct cfg *c)
{
    unsigned int cto = (unsigned)c->db_connect_timeout_s, qto = (unsigned)c->db_query_timeout_s;
    my_bool off = 0, on = 1;
    unsigned int tcp = MYSQL_PROTOCOL_TCP;

    mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &cto);
    mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &qto);
    mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &qto);
    mysql_optionsv(my, MYSQL_OPT_RECONNECT, &off); /* we reconnect ourselves (session state) */
    mysql_optionsv(my, MYSQL_OPT_LOCAL_INFILE, &off);
    mysql_optionsv(my, MYSQL_REPORT_DATA_TRUNCATION, &on);
    mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* UTC session clock; strict mode so a too-long value is an error, never truncated */
    mysql_optionsv(my, MYSQL_INIT_COMMAND,
                   "SET time_zone = '+00:00', sql_mode = CONCAT_WS(',', "
                   "NULLIF(@@SESSION.sql_mode, ''), 'STRICT_TRANS_TABLES')");
    if (c->db_host[0] != '/') /* "localhost" too: DB_PORT applies; a path means a socket */
        mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &tcp);
    if (c->db_ssl_mode != CFG_SSL_DISABLED) {
        my_bool verify = c->db_ssl_mode == CFG_SSL_VERIFY;
        mysql_optionsv(my, MYSQL_OPT_SSL_ENFORCE, &on);
        mysql_optionsv(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        if (verify && *c->db_ssl_ca)
            mysql_optionsv(my, MYSQL_OPT_SSL_CA, c->db_ssl_ca);
    }
}

/* Why a connect failed, naming the variables to look at (never the password). */
static int connect_error(const struct cfg *c, MYSQL *my, struct err *e)
{
    unsigned no = mysql_errno(my);
    const char *msg = mysql_error(my);
    switch (no) {
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
        return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                       "MySQL refused the login: check DB_USER (%s) and DB_PASSWORD: %s",
                       c->db_user, msg);
    case ER_BAD_DB_ERROR:
        return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                       "MySQL database DB_NAME=%s does not exist (CREATE DATABASE %s CHARACTER "
                       "SET utf8mb4): %s",
                       c->db_name, c->db_name, msg);
    case ER_HOST_NOT_PRIVILEGED:
        return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                       "MySQL does not accept DB_USER (%s) from this host: %s", c->db_user, msg);
    case CR_SSL_CONNECTION_ERROR:
        return err_set(
            e, ERR_DB_UNAVAILABLE, NULL, "TLS to MySQL failed (DB_SSL_MODE=%s, DB_SSL_CA=%s): %s",
            ssl_mode_name(c->db_ssl_mode), *c->db_ssl_ca ? c->db_ssl_ca : "(unset)", msg);
    default:
        return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                       "cannot reach MySQL at DB_HOST=%s DB_PORT=%d (mysql %u): %s", c->db_host,
                       c->db_port, no, msg);
    }
}

static void cache_clear(struct mdb *m)
{
    for (int i = 0; i < DB_MYSQL_STMT_CACHE; i++) {
        if (m->cache[i].st)
            mysql_stmt_close(m->cache[i].st);
        free(m->cache[i].sql);
        m->cache[i] = (struct stmt_slot){0};
    }
}

static void conn_close(struct mdb *m)
{
    cache_clear(m);
    if (m->my)
        mysql_close(m->my);
    m->my = NULL;
}

static int conn_open(struct mdb *m, struct err *e)
{
    const struct cfg *c = m->cfg;
    const bool sock = c->db_host[0] == '/';
    MYSQL *my = mysql_init(NULL);
    if (!my)
        return err_set(e, ERR_NOMEM, NULL, "mysql_init failed");
    set_options(my, c);
    if (!mysql_real_connect(my, sock ? "localhost" : c->db_host, *c->db_user ? c->db_user : NULL,
                            *c->db_password ? c->db_password : NULL,
                            *c->db_name ? c->db_name : NULL, sock ? 0 : (unsigned)c->db_port,
                            sock ? c->db_host : NULL, CLIENT_FOUND_ROWS)) {
        int rc = connect_error(c, my, e);
        log_debug("connect failed: %s", e ? e->detail : mysql_error(my));
        mysql_close(my);
        return rc;
    }
    m->my = my;
    log_debug("connected host=%s db=%s tls=%s", c->db_host, c->db_name,
              mysql_get_ssl_cipher(my) ? mysql_get_ssl_cipher(my) : "none");
    return 0;
}

/* True when the server has closed the connection (or sent something unasked). */
static bool conn_dead(struct mdb *m)
{
    struct pollfd p = {.fd = (int)mysql_get_socket(m->my), .events = POLLIN};
    return p.fd < 0 || poll(&p, 1, 0) != 0;
}

/* Make sure there is a live connection (never called inside a transaction). */
static int ensure_conn(struct mdb *m, struct err *e)
{
    if (m->my && conn_dead(m)) {
        log_info("server closed the connection; reconnecting");
        conn_close(m);
    }
    return m->my ? 0 : conn_open(m, e);
}

/* ---- ops: open / close ---- */

static int my_open(struct db **out, const struct cfg *cfg, struct err *e)
{
    struct mdb *m;
    int rc;

    pthread_once(&lib_once, lib_init);
    if (!lib_ok)
        return err_set(e, ERR_INTERNAL, NULL, "mysql_library_init failed");
    rc = check_cfg(cfg, e);
    if (rc) {
        log_error("%s", e ? e->detail : "unsafe MySQL configuration");
        return rc;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, NULL, "out of memory");
    m->base.ops = &db_mysql_ops;
    m->cfg = cfg;
    rc = conn_open(m, e);
    if (rc) {
        free(m);
        return rc;
    }
    *out = &m->base;
    return 0;
}

static void my_close(struct db *db)
{
    struct mdb *m = (struct mdb *)db;
    if (!m)
        return;
    conn_close(m);
    free(m);
}

/* ---- statements ---- */

static bool cacheable(const char *sql)
{
    while (isspace((unsigned char)*sql))
        sql++;
    return !strncasecmp(sql, "SELECT", 6) || !strncasecmp(sql, "INSERT", 6) ||
           !strncasecmp(sql, "UPDATE", 6) || !strncasecmp(sql, "DELETE", 6) ||
           !strncasecmp(sql, "REPLACE", 7);
}

/* Only reads: safe to send again after a lost connection. */
static bool read_only(const char *sql)
{
    while (isspace((unsigned char)*sql) || *sql == '(')
        sql++;
    return !strncasecmp(sql, "SELECT", 6) || !strncasecmp(sql, "SHOW", 4);
}

static struct stmt_slot *cache_find(struct mdb *m, const char *sql)
{
    for (int i = 0; i < DB_MYSQL_STMT_CACHE; i++)
        if (m->cache[i].sql && !strcmp(m->cache[i].sql, sql)) {
            m->cache[i].used = ++m->tick;
            return &m->cache[i];
        }
    return NULL;
}

static void cache_put(struct mdb *m, const char *sql, MYSQL_STMT *st)
{
    struct stmt_slot *victim = &m->cache[0];
    char *copy = strdup(sql);
    if (!copy) {
        mysql_stmt_close(st);
        return;
    }
    for (int i = 0; i < DB_MYSQL_STMT_CACHE; i++) {
        if (!m->cache[i].sql) {
            victim = &m->cache[i];
            break;
        }
        if (m->cache[i].used < victim->used)
            victim = &m->cache[i];
    }
    if (victim->st)
        mysql_stmt_close(victim->st);
    free(victim->sql);
    *victim = (struct stmt_slot){.sql = copy, .st = st, .used = ++m->tick};
}

struct stmt_fail {
    unsigned no; /* mysql errno, 0 = not a server/client error */
    bool sent;   /* the statement may have reached the server */
};

static void stmt_release(struct mdb *m, MYSQL_STMT *st, bool cached)
{
    if (!cached)
        mysql_stmt_close(st);
    (void)m;
}

static int prepare(struct mdb *m, const char *sql, MYSQL_STMT **out, bool *cached,
                   struct stmt_fail *f, struct err *e)
{
    struct stmt_slot *s = cache_find(m, sql);
    MYSQL_STMT *st;
    if (s) {
        *out = s->st;
        *cached = true;
        return 0;
    }
    st = mysql_stmt_init(m->my);
    if (!st)
        return err_set(e, ERR_NOMEM, NULL, "mysql_stmt_init failed");
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql))) {
        f->no = mysql_stmt_errno(st);
        int rc = is_conn_errno(f->no)
                     ? unavailable(e, "prepare", f->no, mysql_stmt_error(st))
                     : stmt_error(f->no, mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
        mysql_stmt_close(st);
        return rc;
    }
    *cached = cacheable(sql);
    if (*cached)
        cache_put(m, sql, st);
    *out = st;
    return 0;
}

static int bind_params(MYSQL_STMT *st, const struct db_val *args, int nargs, struct err *e)
{
    MYSQL_BIND b[nargs > 0 ? nargs : 1];
    unsigned want = mysql_stmt_param_count(st);

    if (want != (unsigned)nargs)
        return err_set(e, ERR_INTERNAL, NULL, "statement has %u placeholders, %d arguments given",
                       want, nargs);
    if (nargs == 0)
        return 0;
    memset(b, 0, sizeof b);
    for (int i = 0; i < nargs; i++) {
        switch (args[i].type) {
        case DB_INT:
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = (void *)&args[i].i;
            break;
        case DB_TEXT:
            /* no length pointer: the library then uses buffer_length (a copy it keeps) */
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = (void *)args[i].s;
            b[i].buffer_length = (unsigned long)strlen(args[i].s);
            break;
        default:
            b[i].buffer_type = MYSQL_TYPE_NULL;
            break;
        }
    }
    /* The library copies the bind array; the buffers (args) live until execute. */
    if (mysql_stmt_bind_param(st, b))
        return stmt_error(mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
    return 0;
}

struct fetchbuf {
    MYSQL_BIND *b;
    char *buf; /* ncols * DB_MYSQL_CELL_BUF */
    unsigned long *len;
    my_bool *isnull, *trunc;
};

static void fetchbuf_free(struct fetchbuf *fb)
{
    free(fb->b);
    free(fb->buf);
    free(fb->len);
    free(fb->isnull);
    free(fb->trunc);
}

static int fetchbuf_init(struct fetchbuf *fb, MYSQL_STMT *st, unsigned n, struct err *e)
{
    fb->b = calloc(n, sizeof *fb->b);
    fb->buf = malloc((size_t)n * DB_MYSQL_CELL_BUF);
    fb->len = calloc(n, sizeof *fb->len);
    fb->isnull = calloc(n, sizeof *fb->isnull);
    fb->trunc = calloc(n, sizeof *fb->trunc);
    if (!fb->b || !fb->buf || !fb->len || !fb->isnull || !fb->trunc)
        return err_set(e, ERR_NOMEM, NULL, "out of memory binding %u columns", n);
    for (unsigned i = 0; i < n; i++) {
        fb->b[i].buffer_type = MYSQL_TYPE_STRING;
        fb->b[i].buffer = fb->buf + (size_t)i * DB_MYSQL_CELL_BUF;
        fb->b[i].buffer_length = DB_MYSQL_CELL_BUF;
        fb->b[i].length = &fb->len[i];
        fb->b[i].is_null = &fb->isnull[i];
        fb->b[i].error = &fb->trunc[i];
    }
    if (mysql_stmt_bind_result(st, fb->b))
        return stmt_error(mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
    return 0;
}

/* One cell of the current row; refetches a value longer than the first buffer. */
static int take_cell(MYSQL_STMT *st, struct fetchbuf *fb, unsigned c, char **out, struct err *e)
{
    unsigned long n = fb->len[c];
    MYSQL_BIND big;

    *out = NULL;
    if (fb->isnull[c])
        return 0;
    if (n <= DB_MYSQL_CELL_BUF) {
        *out = db__strndup(fb->buf + (size_t)c * DB_MYSQL_CELL_BUF, n);
        return *out ? 0 : err_set(e, ERR_NOMEM, NULL, "out of memory");
    }
    if (n > DB_CELL_MAX)
        return err_set(e, ERR_INTERNAL, NULL, "a cell of %lu bytes exceeds the %d byte limit", n,
                       DB_CELL_MAX);
    *out = malloc(n + 1);
    if (!*out)
        return err_set(e, ERR_NOMEM, NULL, "out of memory for a %lu byte cell", n);
    memset(&big, 0, sizeof big);
    big.buffer_type = MYSQL_TYPE_STRING;
    big.buffer = *out;
    big.buffer_length = n + 1;
    big.length = &fb->len[c];
    if (mysql_stmt_fetch_column(st, &big, c, 0)) {
        free(*out);
        *out = NULL;
        return stmt_error(mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
    }
    (*out)[n] = '\0';
    return 0;
}

static int fetch_rows(MYSQL_STMT *st, MYSQL_RES *meta, struct db_rows *out, struct stmt_fail *f,
                      struct err *e)
{
    unsigned n = mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    struct fetchbuf fb = {0};
    unsigned long long nrows;
    int rc = 0;

    if (mysql_stmt_store_result(st)) {
        f->no = mysql_stmt_errno(st);
        return is_conn_errno(f->no)
                   ? unavailable(e, "reading rows", f->no, mysql_stmt_error(st))
                   : stmt_error(f->no, mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
    }
    nrows = mysql_stmt_num_rows(st);
    if (nrows > DB_ROWS_MAX) {
        rc =
            err_set(e, ERR_INTERNAL, NULL, "%llu rows exceed the %d row limit", nrows, DB_ROWS_MAX);
        goto out_free;
    }
    out->ncols = (int)n;
    out->col = calloc(n ? n : 1, sizeof *out->col);
    out->cell = calloc(nrows > 0 && n > 0 ? nrows * n : 1, sizeof *out->cell);
    if (!out->col || !out->cell) {
        rc = err_set(e, ERR_NOMEM, NULL, "out of memory for %llu rows", nrows);
        goto out_free;
    }
    for (unsigned i = 0; i < n; i++)
        if (!(out->col[i] = strdup(fields[i].name))) {
            rc = err_set(e, ERR_NOMEM, NULL, "out of memory");
            goto out_free;
        }
    rc = fetchbuf_init(&fb, st, n, e);
    for (unsigned long long r = 0; !rc && r < nrows; r++) {
        int fr = mysql_stmt_fetch(st);
        if (fr == MYSQL_NO_DATA)
            break;
        if (fr == 1) {
            rc = stmt_error(mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
            break;
        }
        for (unsigned c = 0; !rc && c < n; c++)
            rc = take_cell(st, &fb, c, &out->cell[r * n + c], e);
        out->nrows = (int)r + 1;
    }
out_free:
    fetchbuf_free(&fb);
    mysql_stmt_free_result(st);
    return rc;
}

/* Prepare (or reuse), bind, execute, read. Fills f on failure. */
static int run_stmt(struct mdb *m, const char *sql, const struct db_val *args, int nargs,
                    struct db_rows *out, struct stmt_fail *f, struct err *e)
{
    MYSQL_STMT *st = NULL;
    MYSQL_RES *meta;
    bool cached = false;
    int rc = prepare(m, sql, &st, &cached, f, e);

    if (rc)
        return rc;
    rc = bind_params(st, args, nargs, e);
    if (rc)
        goto out;
    if (mysql_stmt_execute(st)) {
        f->no = mysql_stmt_errno(st);
        f->sent = f->no != CR_SERVER_GONE_ERROR; /* gone = the command was never written */
        rc = is_conn_errno(f->no)
                 ? unavailable(e, "execute", f->no, mysql_stmt_error(st))
                 : stmt_error(f->no, mysql_stmt_sqlstate(st), mysql_stmt_error(st), e);
        goto out;
    }
    f->sent = true;
    meta = mysql_stmt_result_metadata(st);
    if (!meta) {
        out->changes = (long long)mysql_stmt_affected_rows(st);
        out->insert_id = (long long)mysql_stmt_insert_id(st);
        goto out;
    }
    rc = fetch_rows(st, meta, out, f, e);
    mysql_free_result(meta);
out:
    stmt_release(m, st, cached);
    if (rc)
        db_rows_free(out);
    return rc;
}

static int my_exec(struct db *db, const char *sql, const struct db_val *args, int nargs,
                   struct db_rows *out, struct err *e)
{
    struct mdb *m = (struct mdb *)db;
    memset(out, 0, sizeof *out);
    m->last_errno = 0;
    for (int attempt = 0;; attempt++) {
        struct stmt_fail f = {0};
        struct err e1 = {0};
        double t0;
        int rc;

        if (m->in_tx && !m->my)
            return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                           "the MySQL connection was lost inside a transaction");
        if (!m->in_tx) {
            rc = ensure_conn(m, e);
            if (rc)
                return rc;
        }
        t0 = util_mono_ms();
        rc = run_stmt(m, sql, args, nargs, out, &f, &e1);
        m->last_errno = f.no;
        if (!rc)
            return 0;
        if (!is_conn_errno(f.no)) {
            if (e && !e->code)
                *e = e1;
            return rc;
        }
        conn_close(m);
        /* The read timeout also reads as "lost": a slow statement is not sent twice. */
        if (f.sent && util_mono_ms() - t0 >= 900.0 * m->cfg->db_query_timeout_s) {
            log_warn("statement exceeded DB_QUERY_TIMEOUT=%d s", m->cfg->db_query_timeout_s);
            return err_set(e, ERR_TIMEOUT, NULL, "statement exceeded DB_QUERY_TIMEOUT=%d s: %s",
                           m->cfg->db_query_timeout_s, e1.detail);
        }
        if (m->in_tx || attempt > 0 || (f.sent && !read_only(sql))) {
            log_warn("connection lost, not retrying: %s", e1.detail);
            if (e && !e->code)
                *e = e1;
            return ERR_DB_UNAVAILABLE;
        }
        log_info("connection lost (%s); reconnecting and retrying once", e1.detail);
    }
}

/* ---- transactions ---- */

static int simple_query(struct mdb *m, const char *q, struct err *e)
{
    if (mysql_real_query(m->my, q, (unsigned long)strlen(q))) {
        unsigned no = mysql_errno(m->my);
        if (is_conn_errno(no)) {
            int rc = unavailable(e, q, no, mysql_error(m->my));
            conn_close(m);
            return rc;
        }
        return stmt_error(no, mysql_sqlstate(m->my), mysql_error(m->my), e);
    }
    return 0;
}

static int my_begin(struct db *db, struct err *e)
{
    struct mdb *m = (struct mdb *)db;
    struct err e1 = {0};
    int rc;
    if (m->in_tx)
        return err_set(e, ERR_INTERNAL, NULL, "begin inside a transaction");
    rc = ensure_conn(m, e);
    if (rc)
        return rc;
    rc = simple_query(m, "START TRANSACTION", &e1);
    if (rc == ERR_DB_UNAVAILABLE) { /* nothing was done yet: one fresh try is safe */
        err_clear(&e1);
        rc = conn_open(m, &e1);
        if (!rc)
            rc = simple_query(m, "START TRANSACTION", &e1);
    }
    if (rc && e && !e->code)
        *e = e1;
    m->in_tx = rc == 0;
    return rc;
}

static int my_commit(struct db *db, struct err *e)
{
    struct mdb *m = (struct mdb *)db;
    int rc;
    if (!m->in_tx)
        return err_set(e, ERR_INTERNAL, NULL, "commit without begin");
    m->in_tx = false;
    if (!m->my)
        return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                       "the MySQL connection was lost inside a transaction");
    rc = simple_query(m, "COMMIT", e);
    return rc;
}

static int my_rollback(struct db *db)
{
    struct mdb *m = (struct mdb *)db;
    int rc = 0;
    m->in_tx = false;
    if (m->my)
        rc = simple_query(m, "ROLLBACK", NULL);
    return rc;
}

/* ---- ping ---- */

static int my_ping(struct db *db, struct err *e)
{
    struct mdb *m = (struct mdb *)db;
    if (m->my && !conn_dead(m) && mysql_ping(m->my) == 0)
        return 0;
    if (m->in_tx)
        return err_set(e, ERR_DB_UNAVAILABLE, NULL, "the MySQL connection was lost");
    conn_close(m);
    int rc = conn_open(m, e);
    if (rc)
        return rc;
    if (mysql_ping(m->my)) {
        rc = unavailable(e, "ping", mysql_errno(m->my), mysql_error(m->my));
        conn_close(m);
    }
    return rc;
}

/* ---- knowledge base ---- */

/* InnoDB's default full-text stopwords: searching them finds nothing. */
static const char *const kb_stopwords[] = {
    "a",    "about", "an",  "are",  "as",   "at",    "be",  "by",   "com",  "de",  "en",   "for",
    "from", "how",   "i",   "in",   "is",   "it",    "la",  "of",   "on",   "or",  "that", "the",
    "this", "to",    "was", "what", "when", "where", "who", "will", "with", "und", "www",  NULL};

/* Words so common in questions that, as prefix terms, they only add noise to the ranking. */
static const char *const kb_noise[] = {
    "you",   "your", "yours",  "our",    "ours",   "we",    "us",   "they",  "them",
    "their", "can",  "could",  "would",  "should", "do",    "does", "did",   "have",
    "has",   "had",  "am",     "been",   "much",   "many",  "some", "any",   "and",
    "but",   "not",  "please", "tell",   "know",   "there", "here", "which", "want",
    "get",   "got",  "hello",  "thanks", NULL};

static bool in_list(const char *const *list, const char *w)
{
    for (const char *const *p = list; *p; p++)
        if (!strcmp(*p, w))
            return true;
    return false;
}

static bool kb_stopword(const char *w)
{
    return in_list(kb_stopwords, w) || in_list(kb_noise, w);
}

/* Number of characters (not bytes) of a UTF-8 word. */
static int utf8_chars(const char *w)
{
    int n = 0;
    for (; *w; w++)
        n += ((unsigned char)*w & 0xC0) != 0x80;
    return n;
}

/* Light English suffix stripping so "claims"/"uploading" find "claim"/"upload" (prefix search). */
static void kb_stem(char *w, int min_chars)
{
    size_t n = strlen(w);
    static const char *const suffix[] = {"ies", "ing", "ed", "es", "s", NULL};
    for (const char *const *s = suffix; *s; s++) {
        size_t k = strlen(*s);
        if (n > k && !strcmp(w + n - k, *s) && (int)(n - k) >= min_chars && (int)(n - k) >= 3 &&
            !(k == 1 && w[n - 2] == 's')) {
            w[n - k] = '\0';
            return;
        }
    }
}

/* Length of the valid UTF-8 sequence at p (2-4), or 0 when the bytes are not valid UTF-8. */
static int utf8_seq(const unsigned char *p, unsigned *cp)
{
    int n = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (p[0] >= 0xF5)
        return 0;
    *cp = p[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && *cp < 0x800) || (n == 4 && (*cp < 0x10000 || *cp > 0x10FFFF)) ||
        (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0; /* overlong or surrogate */
    return n;
}

/* Bytes of the word character at p (letters and digits, any script), 0 = a separator. */
static int word_char(const char *p)
{
    unsigned cp = 0;
    int n;
    if ((unsigned char)*p < 0x80)
        return isalnum((unsigned char)*p) ? 1 : 0;
    n = utf8_seq((const unsigned char *)p, &cp);
    /* Latin-1 symbols, general and CJK punctuation, typographic quotes and dashes split words */
    if (!n || (cp >= 0xA0 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 ||
        (cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x3000 && cp <= 0x303F) || cp == 0xFEFF)
        return 0;
    return n;
}

/* Split the user's text into lowercase words of letters and digits; invalid UTF-8 is dropped. */
static int kb_words(const char *q, char words[][64], int max)
{
    int n = 0;
    while (*q && n < max) {
        size_t len = 0;
        int k;
        while (*q && !word_char(q))
            q++;
        while (*q && (k = word_char(q)) > 0) {
            if (len + (size_t)k < 64) { /* whole characters only */
                for (int i = 0; i < k; i++)
                    words[n][len++] = (char)tolower((unsigned char)q[i]);
            }
            q += k;
        }
        if (len) {
            words[n][len] = '\0';
            n++;
        }
    }
    return n;
}

static int kb_min_token(struct mdb *m)
{
    struct db_rows r;
    struct err e = {0};
    if (m->min_token)
        return m->min_token;
    m->min_token = 3;
    if (!my_exec(&m->base, "SELECT @@innodb_ft_min_token_size AS n", NULL, 0, &r, &e)) {
        if (r.nrows == 1 && r.cell[0])
            m->min_token = atoi(r.cell[0]) > 0 ? atoi(r.cell[0]) : 3;
        db_rows_free(&r);
    }
    return m->min_token;
}

/* Cut a snippet at a space near DB_MYSQL_SNIPPET bytes and mark the cut. */
static void kb_snippets(struct db_rows *r)
{
    int col = -1;
    for (int c = 0; c < r->ncols; c++)
        if (!strcmp(r->col[c], "snippet"))
            col = c;
    for (int i = 0; col >= 0 && i < r->nrows; i++) {
        char *s = r->cell[i * r->ncols + col];
        size_t n = s ? strlen(s) : 0;
        if (n <= DB_MYSQL_SNIPPET)
            continue;
        size_t cut = DB_MYSQL_SNIPPET - 3;
        while (cut > 0 && s[cut] != ' ')
            cut--;
        if (cut == 0) /* one long word: cut before a UTF-8 continuation byte */
            for (cut = DB_MYSQL_SNIPPET - 3; cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80;)
                cut--;
        memcpy(s + cut, "...", 4);
    }
}

#define KB_COLS "SELECT id, category, title, LEFT(body, 200) AS snippet FROM knowledge_base "

/* Relevance: title and body, with a match in the title counting twice more. */
#define KB_MATCH "MATCH(title, body) AGAINST(? IN BOOLEAN MODE)"
#define KB_RANK                                                                                    \
    " ORDER BY " KB_MATCH " + 2 * MATCH(title) AGAINST(? IN BOOLEAN MODE) DESC, id LIMIT ?"

static int kb_fulltext(struct mdb *m, const char *terms, const char *category, int limit,
                       struct db_rows *out, struct err *e)
{
    struct db_val a[5] = {DB_S(terms), DB_S(terms), DB_S(terms), DB_I(limit)};
    if (category) {
        struct db_val c[5] = {DB_S(terms), DB_S(category), DB_S(terms), DB_S(terms), DB_I(limit)};
        return my_exec(&m->base, KB_COLS "WHERE " KB_MATCH " AND category = ?" KB_RANK, c, 5, out,
                       e);
    }
    return my_exec(&m->base, KB_COLS "WHERE " KB_MATCH KB_RANK, a, 4, out, e);
}

/* Words all shorter than the full-text minimum: plain substring search instead. */
static int kb_like(struct mdb *m, char words[][64], int n, const char *category, int limit,
                   struct db_rows *out, struct err *e)
{
    char sql[1024], pats[DB_MYSQL_KB_WORDS][70];
    struct db_val a[2 * DB_MYSQL_KB_WORDS + 2];
    int na = 0;
    size_t len = (size_t)snprintf(sql, sizeof sql, KB_COLS "WHERE (");
    for (int i = 0; i < n; i++) {
        /* words hold only letters and digits, so no LIKE wildcard needs escaping */
        snprintf(pats[i], sizeof pats[i], "%%%s%%", words[i]);
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%stitle LIKE ? OR body LIKE ?",
                                i ? " OR " : "");
        a[na++] = DB_S(pats[i]);
        a[na++] = DB_S(pats[i]);
    }
    len += (size_t)snprintf(sql + len, sizeof sql - len, ")%s ORDER BY id LIMIT ?",
                            category ? " AND category = ?" : "");
    if (len >= sizeof sql)
        return err_set(e, ERR_INTERNAL, NULL, "kb LIKE query too long");
    if (category)
        a[na++] = DB_S(category);
    a[na++] = DB_I(limit);
    return my_exec(&m->base, sql, a, na, out, e);
}

static int my_kb_search(struct db *db, const char *query, const char *category, int limit,
                        struct db_rows *out, struct err *e)
{
    struct mdb *m = (struct mdb *)db;
    char words[DB_MYSQL_KB_WORDS][64], shorts[DB_MYSQL_KB_WORDS][64];
    char longs[DB_MYSQL_KB_WORDS][64], terms[DB_MYSQL_KB_WORDS * 66 + 1];
    int n, nshort = 0, nlong = 0, min, rc;
    size_t tl = 0;

    memset(out, 0, sizeof *out);
    if (!query)
        return err_set(e, ERR_INVALID_ARGUMENTS, NULL, "kb_search without a query");
    if (category && !*category)
        category = NULL;
    limit = limit < 1 ? 1 : limit > 50 ? 50 : limit;
    if (!m->in_tx && (rc = ensure_conn(m, e)) != 0)
        return rc;
    min = kb_min_token(m);
    n = kb_words(query, words, DB_MYSQL_KB_WORDS);
    terms[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (kb_stopword(words[i]))
            continue;
        if (utf8_chars(words[i]) < min) {
            memcpy(shorts[nshort++], words[i], sizeof words[i]);
            continue;
        }
        kb_stem(words[i], min);
        memcpy(longs[nlong++], words[i], sizeof words[i]);
        tl += (size_t)snprintf(terms + tl, sizeof terms - tl, "%s%s*", tl ? " " : "", words[i]);
    }
    if (tl) {
        struct err fe = {0};
        rc = kb_fulltext(m, terms, category, limit, out, &fe);
        if (rc && m->last_errno == ER_FT_MATCHING_KEY_NOT_FOUND) {
            /* a knowledge_base that predates us, without our FULLTEXT keys: still answer */
            log_warn("knowledge_base has no FULLTEXT index on (title, body) and (title); "
                     "searching with LIKE (see docs/mysql.md)");
            rc = kb_like(m, longs, nlong, category, limit, out, e);
        } else if (rc && e && !e->code) {
            *e = fe;
        }
    } else if (nshort)
        rc = kb_like(m, shorts, nshort, category, limit, out, e);
    else /* nothing searchable ("?" or only stopwords): no match, with the right columns */
        rc = my_exec(db, KB_COLS "WHERE 1 = 0", NULL, 0, out, e);
    if (!rc)
        kb_snippets(out);
    return rc;
}

/* ---- schema (migration 1 = SCHEMA.md on InnoDB) ---- */

#define TBL " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"

static const char *const m1_sql[] = {
    "CREATE TABLE IF NOT EXISTS users ("
    " id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " first_name VARCHAR(100) NOT NULL,"
    " last_name VARCHAR(100) NOT NULL,"
    " phone VARCHAR(32) NOT NULL,"
    " email VARCHAR(255) NULL,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY idx_users_phone (phone))" TBL,

    "CREATE TABLE IF NOT EXISTS user_claims ("
    " id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " user_id INT NOT NULL,"
    " claim_reference VARCHAR(32) NOT NULL,"
    " lender VARCHAR(255) NOT NULL,"
    " claim_type VARCHAR(64) NOT NULL,"
    " status VARCHAR(32) NOT NULL,"
    " updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " UNIQUE KEY uq_user_claims_reference (claim_reference),"
    " KEY idx_user_claims_user (user_id),"
    " CONSTRAINT fk_user_claims_user FOREIGN KEY (user_id) REFERENCES users (id))" TBL,

    "CREATE TABLE IF NOT EXISTS claim_requirements ("
    " id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " claim_id INT NOT NULL,"
    " requirement_type VARCHAR(64) NOT NULL,"
    " description VARCHAR(1000) NOT NULL DEFAULT '',"
    " status VARCHAR(16) NOT NULL DEFAULT 'outstanding',"
    " due_date DATE NULL,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY idx_claim_requirements_claim (claim_id, status),"
    " CONSTRAINT ck_claim_requirements_status CHECK (status IN ('outstanding','received')),"
    " CONSTRAINT fk_claim_requirements_claim FOREIGN KEY (claim_id)"
    "  REFERENCES user_claims (id))" TBL,

    "CREATE TABLE IF NOT EXISTS missed_calls ("
    " id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " user_id INT NULL,"
    " phone VARCHAR(32) NOT NULL,"
    " callback_time DATETIME NOT NULL,"
    " reason TEXT NULL,"
    " status VARCHAR(16) NOT NULL DEFAULT 'pending',"
    " source VARCHAR(16) NOT NULL DEFAULT 'voice',"
    " call_sid VARCHAR(64) NULL,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY idx_missed_calls_user (user_id),"
    " KEY idx_missed_calls_call (call_sid),"
    " KEY idx_missed_calls_created (created_at),"
    " CONSTRAINT fk_missed_calls_user FOREIGN KEY (user_id) REFERENCES users (id))" TBL,

    "CREATE TABLE IF NOT EXISTS voice_action_logs ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " call_sid VARCHAR(64) NULL,"
    " provider VARCHAR(32) NULL,"
    " action VARCHAR(64) NOT NULL,"
    " user_id INT NULL,"
    " phone_masked VARCHAR(32) NULL,"
    " arguments TEXT NULL,"
    " success TINYINT NOT NULL,"
    " error_code VARCHAR(64) NULL,"
    " execution_time_ms DOUBLE NULL,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY idx_voice_action_logs_call (call_sid),"
    " KEY idx_voice_action_logs_created (created_at),"
    " CONSTRAINT ck_voice_action_logs_success CHECK (success IN (0,1)))" TBL,

    "CREATE TABLE IF NOT EXISTS sms_messages ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " to_number VARCHAR(32) NOT NULL,"
    " intended_to VARCHAR(32) NOT NULL,"
    " body TEXT NOT NULL,"
    " mode VARCHAR(16) NOT NULL,"
    " status VARCHAR(16) NOT NULL,"
    " provider_sid VARCHAR(64) NULL,"
    " error_code VARCHAR(64) NULL,"
    " segments INT NOT NULL DEFAULT 1,"
    " purpose VARCHAR(32) NULL,"
    " call_sid VARCHAR(64) NULL,"
    " user_id INT NULL,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY idx_sms_messages_intended (intended_to, created_at),"
    " KEY idx_sms_messages_created (created_at),"
    " CONSTRAINT ck_sms_messages_mode CHECK (mode IN ('mock','live','redirected')),"
    " CONSTRAINT ck_sms_messages_status"
    "  CHECK (status IN ('mock','queued','failed','unknown','refused')))" TBL,

    "CREATE TABLE IF NOT EXISTS portal_links ("
    " id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " user_id INT NOT NULL,"
    " link_type VARCHAR(16) NOT NULL,"
    " token_hash CHAR(64) NOT NULL,"
    " method VARCHAR(8) NOT NULL,"
    " call_sid VARCHAR(64) NULL,"
    " expires_at DATETIME NOT NULL,"
    " used_at DATETIME NULL,"
    " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " UNIQUE KEY uq_portal_links_token (token_hash),"
    " KEY idx_portal_links_user (user_id, link_type, created_at),"
    " CONSTRAINT ck_portal_links_type CHECK (link_type IN ('portal','documents','review')),"
    " CONSTRAINT ck_portal_links_method CHECK (method IN ('sms','email')),"
    " CONSTRAINT fk_portal_links_user FOREIGN KEY (user_id) REFERENCES users (id))" TBL,

    "CREATE TABLE IF NOT EXISTS knowledge_base ("
    " id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " category VARCHAR(32) NOT NULL,"
    " title VARCHAR(255) NOT NULL,"
    " body TEXT NOT NULL,"
    " KEY idx_knowledge_base_category (category),"
    " FULLTEXT KEY ft_knowledge_base (title, body),"
    " FULLTEXT KEY ft_knowledge_base_title (title))" TBL,

    "CREATE TABLE IF NOT EXISTS voice_calls ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " call_sid VARCHAR(64) NOT NULL,"
    " phone_masked VARCHAR(32) NULL,"
    " user_id INT NULL,"
    " provider VARCHAR(32) NULL,"
    " started_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " ended_at DATETIME NULL,"
    " end_reason VARCHAR(64) NULL,"
    " actions_count INT NOT NULL DEFAULT 0,"
    " UNIQUE KEY uq_voice_calls_sid (call_sid))" TBL,
    NULL,
};

static const struct db_migration my_migrations[] = {
    {1, m1_sql},
};

/* ---- the ops table ---- */

const struct db_ops db_mysql_ops = {
    .name = "mysql",
    .open = my_open,
    .close = my_close,
    .exec = my_exec,
    .begin = my_begin,
    .commit = my_commit,
    .rollback = my_rollback,
    .kb_search = my_kb_search,
    .ping = my_ping,
    .migrations = my_migrations,
    .n_migrations = (int)(sizeof my_migrations / sizeof my_migrations[0]),
};
