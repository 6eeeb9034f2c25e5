/*
 * test_db_mysql.c - the MySQL backend's failure paths on real MariaDB servers.
 *
 * Two servers: the shared one `make test` starts (VWS_MYSQL_*; a missing
 * server FAILS every test) for what does not disturb other tests (TLS modes,
 * wrong credentials, pool waits, timeouts, big values, an existing company
 * table), and a private instance this test starts itself in a temp dir with
 * scripts/mariadb.sh, because it is stopped and started mid-suite (other tests
 * run in parallel under ctest -j and must not see that).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "db/db.h"
#include "vt_db.h"
#include "vwstest.h"

#include <jansson.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

struct server { /* where a MariaDB listens, from its env.sh */
    char dir[256];
    char port[16];
    char user[64];
    char password[128];
    char ca[320];
};

static struct server g_shared; /* make test's server */
static struct server g_own;    /* this test's private server */

static void copy_env(char *dst, size_t n, const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: start the test server with scripts/mariadb.sh start DIR and "
                 "source DIR/env.sh (make test does this)",
                 name);
    snprintf(dst, n, "%s", v);
}

/* Read "export K=V" lines of DIR/env.sh (values written without shell quoting). */
static void read_env_sh(struct server *s)
{
    char path[300], line[512];
    snprintf(path, sizeof path, "%s/env.sh", s->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '='), *v;
        if (strncmp(line, "export ", 7) || !eq)
            continue;
        *eq = '\0';
        v = eq + 1;
        v[strcspn(v, "\n")] = '\0';
        if (!strcmp(line + 7, "VWS_MYSQL_PORT"))
            snprintf(s->port, sizeof s->port, "%s", v);
        else if (!strcmp(line + 7, "VWS_MYSQL_USER"))
            snprintf(s->user, sizeof s->user, "%s", v);
        else if (!strcmp(line + 7, "VWS_MYSQL_PASSWORD"))
            snprintf(s->password, sizeof s->password, "%s", v);
        else if (!strcmp(line + 7, "VWS_MYSQL_CA"))
            snprintf(s->ca, sizeof s->ca, "%s", v);
    }
    fclose(f);
    if (!s->port[0] || !s->password[0] || !s->ca[0])
        fail_msg("%s is missing VWS_MYSQL_PORT/PASSWORD/CA", path);
}

/* scripts/mariadb.sh CMD DIR; 0 or the exit status (message on stderr). */
static int mariadb_sh_try(const char *cmd, const char *dir)
{
    char script[512], watch[64];
    struct vt_run r;
    int rc;
    snprintf(script, sizeof script, "%s/scripts/mariadb.sh", vt_src());
    snprintf(watch, sizeof watch, "MARIADB_WATCH_PID=%d", (int)getpid());
    const char *argv[] = {"/bin/bash", script, cmd, dir, NULL};
    const char *env[] = {watch, NULL};
    if (vt_run(&r, NULL, env, argv, 120))
        return -1;
    rc = r.status;
    if (rc)
        fprintf(stderr, "mariadb.sh %s %s: exit %d: %s\n", cmd, dir, rc, r.err);
    vt_run_free(&r);
    return rc;
}

/* The same, failing the test on error. The server is shut down if this process dies. */
static void mariadb_sh(const char *cmd, const char *dir)
{
    if (mariadb_sh_try(cmd, dir))
        fail_msg("scripts/mariadb.sh %s %s failed (see above)", cmd, dir);
}

/* cfg for server s and database name, plus extra "K=V" (NULL-terminated, may be NULL). */
static void server_cfg(struct cfg *c, const struct server *s, const char *dbname,
                       const char *const *extra)
{
    char kv[6][400];
    const char *list[32];
    int n = 0;
    snprintf(kv[0], sizeof kv[0], "DB_HOST=127.0.0.1");
    snprintf(kv[1], sizeof kv[1], "DB_PORT=%s", s->port);
    snprintf(kv[2], sizeof kv[2], "DB_USER=%s", s->user[0] ? s->user : "vws");
    snprintf(kv[3], sizeof kv[3], "DB_PASSWORD=%s", s->password);
    snprintf(kv[4], sizeof kv[4], "DB_NAME=%s", dbname ? dbname : "");
    for (int i = 0; i < 5; i++)
        list[n++] = kv[i];
    for (const char *const *p = extra; p && *p && n < 31; p++)
        list[n++] = *p; /* extras must not repeat the keys above (the first one wins) */
    list[n] = NULL;
    vt_cfg(c, list);
}

static void run_ok(struct db *db, const char *sql)
{
    struct err e = {0};
    if (db_run(db, sql, NULL, 0, &e))
        fail_msg("%s: %s", sql, e.detail);
}

static void assert_unavailable_sentence(const struct err *e)
{
    assert_int_equal(e->code, ERR_DB_UNAVAILABLE);
    assert_string_equal(e->say, err_say(ERR_DB_UNAVAILABLE));
}

/* Session status value (SHOW SESSION STATUS LIKE name) into out. */
static void session_status(struct db *db, const char *name, char *out, size_t n)
{
    struct db_rows r;
    struct err e = {0};
    struct db_val a[] = {DB_S(name)};
    if (db_exec(db,
                "SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS WHERE "
                "VARIABLE_NAME = ?",
                a, 1, &r, &e))
        fail_msg("session status %s: %s", name, e.detail);
    snprintf(out, n, "%s", db_cell(&r, 0, "v") ? db_cell(&r, 0, "v") : "");
    db_rows_free(&r);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    copy_env(g_shared.port, sizeof g_shared.port, "VWS_MYSQL_PORT");
    copy_env(g_shared.user, sizeof g_shared.user, "VWS_MYSQL_USER");
    copy_env(g_shared.password, sizeof g_shared.password, "VWS_MYSQL_PASSWORD");
    copy_env(g_shared.ca, sizeof g_shared.ca, "VWS_MYSQL_CA");
    if (!vt_mysql_available())
        fail_msg("VWS_MYSQL_HOST is not set");
    return 0;
}

struct fx { /* a fresh database on the shared server */
    struct cfg c;
    struct vt_db h;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    vt_db_fresh("mysql", &f->c, &f->h, NULL);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (f)
        vt_db_cleanup(&f->h, &f->c);
    free(f);
    return 0;
}

/* cfg for the fresh database of f with extra settings. */
static void fx_cfg(struct fx *f, struct cfg *c, const char *const *extra)
{
    server_cfg(c, &g_shared, f->h.dbname, extra);
}

/* ---- TLS ---- */

static void test_db_mysql_tls_required_encrypts(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    char cipher[128];
    const char *kv[] = {"DB_SSL_MODE=required", NULL};
    fx_cfg(f, &c, kv);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    session_status(db, "Ssl_cipher", cipher, sizeof cipher);
    assert_true(strlen(cipher) > 0);
    db_close(db);
    cfg_free(&c);

    /* disabled really is plain (so the check above means something) */
    fx_cfg(f, &c, (const char *const[]){"DB_SSL_MODE=disabled", NULL});
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    session_status(db, "Ssl_cipher", cipher, sizeof cipher);
    assert_string_equal(cipher, "");
    db_close(db);
    cfg_free(&c);
}

static void test_db_mysql_tls_verify_with_the_ca_connects(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    char cipher[128], ca[400];
    snprintf(ca, sizeof ca, "DB_SSL_CA=%s", g_shared.ca);
    const char *kv[] = {"DB_SSL_MODE=verify", ca, NULL};
    fx_cfg(f, &c, kv);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    session_status(db, "Ssl_cipher", cipher, sizeof cipher);
    assert_true(strlen(cipher) > 0);
    /* the connection is kept across statements (no false "server closed it" on TLS) */
    long long id1 = vt_db_int(db, "SELECT CONNECTION_ID()");
    assert_int_equal(db_migrate(db, &e), 0);
    assert_int_equal(vt_db_int(db, "SELECT CONNECTION_ID()"), id1);
    db_close(db);
    cfg_free(&c);
}

static void test_db_mysql_tls_verify_with_a_wrong_ca_fails_clearly(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    char *dir = vt_tmpdir(), key[300], crt[300], ca[400], subj[] = "/CN=not the test CA";
    struct vt_run r;
    snprintf(key, sizeof key, "%s/k.pem", dir);
    snprintf(crt, sizeof crt, "%s/wrong-ca.pem", dir);
    const char *argv[] = {"/usr/bin/openssl", "req",   "-x509", "-newkey", "rsa:2048",
                          "-nodes",           "-days", "1",     "-subj",   subj,
                          "-keyout",          key,     "-out",  crt,       NULL};
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 60), 0);
    assert_int_equal(r.status, 0);
    vt_run_free(&r);

    snprintf(ca, sizeof ca, "DB_SSL_CA=%s", crt);
    fx_cfg(f, &c, (const char *const[]){"DB_SSL_MODE=verify", ca, NULL});
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), ERR_DB_UNAVAILABLE);
    assert_null(db);
    assert_unavailable_sentence(&e);
    assert_non_null(strstr(e.detail, "DB_SSL_MODE=verify"));
    assert_non_null(strstr(e.detail, "wrong-ca.pem"));
    cfg_free(&c);
    vt_rmdir(dir);
    free(dir);
}

/* ---- configuration refusals and credentials ---- */

static const char *const prod_kv[] = {"APP_ENV=production", "TWILIO_AUTH_TOKEN=test-token",
                                      "LINK_SECRET=0123456789abcdef0123456789abcdef", NULL};

static void test_db_mysql_production_refuses_plain_remote(void **state)
{
    (void)state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    const char *kv[] = {"DB_HOST=192.0.2.10",
                        "DB_SSL_MODE=disabled",
                        "DB_CONNECT_TIMEOUT=5",
                        prod_kv[0],
                        prod_kv[1],
                        prod_kv[2],
                        NULL};
    vt_cfg(&c, kv);
    double t0 = now_ms();
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), ERR_CONFIG);
    assert_true(now_ms() - t0 < 500.0); /* refused before any network attempt */
    assert_null(db);
    assert_non_null(strstr(e.detail, "DB_SSL_MODE"));
    assert_non_null(strstr(e.detail, "production"));
    cfg_free(&c);
}

static void test_db_mysql_production_allows_plain_loopback_and_tls_remote(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    fx_cfg(f, &c, prod_kv); /* 127.0.0.1, DB_SSL_MODE unset = disabled */
    assert_int_equal(c.app_env, CFG_ENV_PRODUCTION);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    assert_int_equal(db_ping(db, &e), 0);
    db_close(db);
    cfg_free(&c);
}

static void test_db_mysql_wrong_password_names_the_variables(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    struct server bad = g_shared;
    snprintf(bad.password, sizeof bad.password, "not-the-Secret-42");
    server_cfg(&c, &bad, f->h.dbname, NULL);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), ERR_DB_UNAVAILABLE);
    assert_null(db);
    assert_unavailable_sentence(&e);
    assert_non_null(strstr(e.detail, "DB_USER"));
    assert_non_null(strstr(e.detail, "DB_PASSWORD"));
    assert_null(strstr(e.detail, "not-the-Secret-42"));
    assert_null(strstr(e.say, "DB_"));
    cfg_free(&c);

    /* a missing database names DB_NAME */
    err_clear(&e);
    server_cfg(&c, &g_shared, "vws_no_such_db", NULL);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), ERR_DB_UNAVAILABLE);
    assert_non_null(strstr(e.detail, "DB_NAME=vws_no_such_db"));
    cfg_free(&c);
}

/* ---- pool ---- */

struct sleeper {
    struct db_pool *p;
    int wait_ms, rc;
    double waited;
};

static void *sleeper_run(void *arg)
{
    struct sleeper *s = arg;
    struct db *db = NULL;
    struct err e = {0};
    double t0 = now_ms();
    s->rc = db_pool_get(s->p, s->wait_ms, &db, &e);
    s->waited = now_ms() - t0;
    if (!s->rc) {
        s->rc = db_run(db, "SELECT SLEEP(0.25)", NULL, 0, &e);
        db_pool_put(s->p, db, s->rc == ERR_DB_UNAVAILABLE);
    }
    return NULL;
}

static void test_db_mysql_pool_exhausted_waits_bounded(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db_pool *p = NULL;
    pthread_t t[6];
    struct sleeper s[6];
    const char *kv[] = {"DB_POOL_SIZE=2", "DB_POOL_WAIT_MS=150", NULL};
    fx_cfg(f, &c, kv);
    assert_int_equal(db_pool_new(&p, &db_mysql_ops, &c, c.db_pool_size, &e), 0);
    assert_int_equal(db_pool_size(p), 2);

    /* 4 patient threads share 2 connections: they queue and all get through */
    double t0 = now_ms();
    for (int i = 0; i < 4; i++) {
        s[i] = (struct sleeper){.p = p, .wait_ms = 10000, .rc = 99};
        assert_int_equal(pthread_create(&t[i], NULL, sleeper_run, &s[i]), 0);
    }
    usleep(50 * 1000);
    /* 2 impatient ones (DB_POOL_WAIT_MS) give up with ERR_BUSY within their bound */
    for (int i = 4; i < 6; i++) {
        s[i] = (struct sleeper){.p = p, .wait_ms = c.db_pool_wait_ms, .rc = 99};
        assert_int_equal(pthread_create(&t[i], NULL, sleeper_run, &s[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    double total = now_ms() - t0;
    for (int i = 0; i < 4; i++)
        assert_int_equal(s[i].rc, 0);
    for (int i = 4; i < 6; i++) {
        assert_int_equal(s[i].rc, ERR_BUSY);
        assert_true(s[i].waited >= 145.0 && s[i].waited < 150.0 + 1000.0);
    }
    assert_true(total >= 2 * 250.0 - 10.0); /* two rounds: never more than 2 at once */
    db_pool_free(p);
    cfg_free(&c);
}

/* ---- statements ---- */

struct killer { /* kills one connection id on the shared server after a delay */
    long long id;
    int delay_ms;
    char err[256];
};

static void *killer_run(void *arg)
{
    struct killer *k = arg;
    char sql[64];
    unsigned timeout = 5;
    MYSQL *m = mysql_init(NULL); /* straight libmariadb: not the code under test */
    usleep((useconds_t)k->delay_ms * 1000);
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    snprintf(sql, sizeof sql, "KILL CONNECTION %lld", k->id);
    if (!mysql_real_connect(m, "127.0.0.1", g_shared.user, g_shared.password, NULL,
                            (unsigned)atoi(g_shared.port), NULL, 0) ||
        mysql_query(m, sql))
        snprintf(k->err, sizeof k->err, "%s", mysql_error(m));
    mysql_close(m);
    return NULL;
}

/* Run sql on db while another session kills db's connection 300 ms in. */
static int exec_while_killed(struct db *db, const char *sql, const struct db_val *a, int n,
                             struct db_rows *r, struct err *e, double *took)
{
    struct killer k = {.id = vt_db_int(db, "SELECT CONNECTION_ID()"), .delay_ms = 300};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, killer_run, &k), 0);
    double t0 = now_ms();
    int rc = db_exec(db, sql, a, n, r, e);
    *took = now_ms() - t0;
    pthread_join(t, NULL);
    if (k.err[0])
        fail_msg("KILL failed: %s", k.err);
    return rc;
}

static void test_db_mysql_killed_read_is_retried_write_is_not(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    double took;
    struct db *db = vt_db_open(&f->c, false);

    /* a read cut off mid-statement is sent again on a new connection: the caller sees rows */
    int rc = exec_while_killed(db, "SELECT SLEEP(1) AS s, 7 AS n", NULL, 0, &r, &e, &took);
    if (rc)
        fail_msg("read after KILL: %s %s", err_name(rc), e.detail);
    assert_int_equal(db_cell_int(&r, 0, "n", 0), 7);
    assert_true(took >= 1000.0 + 250.0); /* the first try was cut, the second ran fully */
    db_rows_free(&r);

    /* a write cut off mid-statement may have happened: never sent twice, the caller is told */
    struct db_val a[] = {DB_S("+447700900044"), DB_S("2027-01-01 10:00:00")};
    err_clear(&e);
    rc = exec_while_killed(db,
                           "INSERT INTO missed_calls (phone, callback_time) SELECT ?, ? FROM "
                           "DUAL WHERE SLEEP(1) = 0",
                           a, 2, &r, &e, &took);
    assert_int_equal(rc, ERR_DB_UNAVAILABLE);
    assert_unavailable_sentence(&e);
    assert_true(took < 1000.0);
    assert_true(vt_db_int(db, "SELECT COUNT(*) FROM missed_calls") <= 1);
    db_close(db);
}

static void test_db_mysql_query_timeout_is_not_retried(void **state)
{
    struct fx *f = *state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    fx_cfg(f, &c, (const char *const[]){"DB_QUERY_TIMEOUT=1", NULL});
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    double t0 = now_ms();
    int rc = db_run(db, "SELECT SLEEP(3)", NULL, 0, &e);
    double took = now_ms() - t0;
    assert_int_equal(rc, ERR_TIMEOUT);
    assert_true(took >= 900.0 && took < 1900.0); /* one timeout, not a retried second one */
    assert_non_null(strstr(e.detail, "DB_QUERY_TIMEOUT"));
    assert_int_equal(vt_db_int(db, "SELECT 41 + 1"), 42); /* reconnects for the next one */
    db_close(db);
    cfg_free(&c);
}

static void test_db_mysql_big_values_round_trip(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    struct db *db = vt_db_open(&f->c, false);
    size_t n = 60000; /* TEXT holds 65535 bytes; far beyond the first fetch buffer */
    char *body = malloc(n + 1);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    body[n] = '\0';
    memcpy(body + 1000, "\xc3\xa9\xe2\x82\xac", 5); /* UTF-8 in the middle */
    const char *b = body;
    struct db_val a[] = {DB_S("claims"), DB_S("Big"), DB_S(b)};
    assert_int_equal(db_exec(db,
                             "INSERT INTO knowledge_base (category, title, body) VALUES (?, ?, ?)",
                             a, 3, &r, &e),
                     0);
    struct db_val q[] = {DB_I(r.insert_id)};
    db_rows_free(&r);
    for (int i = 0; i < 2; i++) { /* second time through the statement cache */
        assert_int_equal(
            db_exec(db, "SELECT title, body, LENGTH(body) AS n FROM knowledge_base WHERE id = ?", q,
                    1, &r, &e),
            0);
        assert_int_equal(r.nrows, 1);
        assert_string_equal(db_cell(&r, 0, "title"), "Big");
        assert_int_equal(db_cell_int(&r, 0, "n", 0), (long long)n);
        assert_int_equal(strlen(db_cell(&r, 0, "body")), n);
        assert_memory_equal(db_cell(&r, 0, "body"), body, n);
        db_rows_free(&r);
    }
    /* too long for the column: a clear error, nothing written */
    char *huge = malloc(70001);
    memset(huge, 'x', 70000);
    huge[70000] = '\0';
    const char *h = huge;
    struct db_val a2[] = {DB_S("claims"), DB_S("Huge"), DB_S(h)};
    assert_int_equal(db_run(db,
                            "INSERT INTO knowledge_base (category, title, body) VALUES (?, ?, ?)",
                            a2, 3, &e),
                     ERR_INVALID_ARGUMENTS);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM knowledge_base WHERE title = 'Huge'"), 0);
    free(huge);
    free(body);
    db_close(db);
}

static void test_db_mysql_times_are_utc(void **state)
{
    struct fx *f = *state;
    struct db *db = vt_db_open(&f->c, false);
    /* the session clock is UTC whatever the server's zone: NOW() matches our clock */
    long long diff = vt_db_int(db, "SELECT ABS(TIMESTAMPDIFF(SECOND, NOW(), UTC_TIMESTAMP()))");
    assert_true(diff <= 1);
    run_ok(db,
           "INSERT INTO users (first_name, last_name, phone) VALUES ('T', 'Z', '+447700900031')");
    char now[24];
    db_utc_text((long long)time(NULL), now, sizeof now);
    struct db_rows r;
    struct err e = {0};
    assert_int_equal(db_exec(db, "SELECT created_at FROM users", NULL, 0, &r, &e), 0);
    assert_int_equal(strlen(db_cell(&r, 0, "created_at")), 19);
    assert_memory_equal(db_cell(&r, 0, "created_at"), now, 13); /* same date and hour */
    db_rows_free(&r);
    db_close(db);
}

static void test_db_mysql_kb_short_words_fall_back_to_like(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    struct db *db = vt_db_open(&f->c, true);
    /* "ID" is shorter than InnoDB's minimum token size: FULLTEXT cannot see it */
    assert_int_equal(db_kb_search(db, "ID?", NULL, 3, &r, &e), 0);
    assert_true(r.nrows >= 1);
    assert_int_equal(r.ncols, 4);
    db_rows_free(&r);
    assert_int_equal(db_kb_search(db, "ID", "documents", 10, &r, &e), 0);
    assert_true(r.nrows >= 1);
    for (int i = 0; i < r.nrows; i++)
        assert_string_equal(db_cell(&r, i, "category"), "documents");
    db_rows_free(&r);
    /* plural/verb forms reach the stem through a prefix term */
    assert_int_equal(db_kb_search(db, "uploading my documents", NULL, 3, &r, &e), 0);
    assert_true(r.nrows >= 1);
    assert_string_equal(db_cell(&r, 0, "category"), "documents");
    db_rows_free(&r);
    /* typographic punctuation splits words; odd or invalid text is never an error */
    assert_int_equal(db_kb_search(db, "what\xe2\x80\x99s your fee\xe2\x80\xa6?", NULL, 3, &r, &e),
                     0);
    assert_true(r.nrows >= 1);
    assert_string_equal(db_cell(&r, 0, "category"), "fees");
    db_rows_free(&r);
    char longword[400];
    for (int i = 0; i < 133; i++)
        memcpy(longword + 3 * i, "\xe2\x82\xac", 3); /* 133 euro signs: one 399-byte word */
    longword[399] = '\0';
    static const char *const odd[] = {"\xff\xfe fee\xc3", "\xe2\x80\x9c\xe2\x80\x94\xe2\x80\x9d",
                                      "\xe8\xab\x8b\xe6\xb1\x82",
                                      "\xed\xa0\x80"
                                      "claim",
                                      NULL};
    for (int i = 0; odd[i]; i++) {
        err_clear(&e);
        if (db_kb_search(db, odd[i], NULL, 3, &r, &e))
            fail_msg("kb_search odd input %d: %s", i, e.detail);
        assert_int_equal(r.ncols, 4);
        db_rows_free(&r);
    }
    assert_int_equal(db_kb_search(db, longword, NULL, 3, &r, &e), 0);
    assert_int_equal(r.nrows, 0);
    db_rows_free(&r);
    assert_int_equal(db_kb_search(db, "uploading my documents", NULL, 3, &r, &e), 0);
    /* snippets are short and end cleanly */
    for (int i = 0; i < r.nrows; i++)
        assert_true(strlen(db_cell(&r, i, "snippet")) <= 160);
    db_rows_free(&r);
    db_close(db);
}

static void test_db_mysql_existing_company_table_is_kept(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db *db = NULL;
    assert_int_equal(db_open(&db_mysql_ops, &db, &f->c, &e), 0);
    /* a company database that already has users, with its own extra column and rows */
    run_ok(db, "CREATE TABLE users (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
               " first_name VARCHAR(100) NOT NULL, last_name VARCHAR(100) NOT NULL,"
               " phone VARCHAR(32) NOT NULL, email VARCHAR(255) NULL,"
               " created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
               " crm_id VARCHAR(20) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    run_ok(db, "INSERT INTO users (id, first_name, last_name, phone, crm_id)"
               " VALUES (500, 'Existing', 'Customer', '+447700900500', 'CRM-9')");
    assert_int_equal(db_migrate(db, &e), 0);
    assert_int_equal(db_migrate(db, &e), 0);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM users WHERE crm_id = 'CRM-9'"), 1);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM schema_migrations"), 1);
    assert_int_equal(db_load_demo(db, &e), 0);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM users"), 3);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM user_claims"), 3);
    /* the foreign keys and FULLTEXT index of version 1 are in place */
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS"
                                   " WHERE CONSTRAINT_SCHEMA = DATABASE()"),
                     4);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE"
                                   " TABLE_SCHEMA = DATABASE() AND INDEX_TYPE = 'FULLTEXT'"
                                   " AND INDEX_NAME = 'ft_knowledge_base'"),
                     2);
    struct db_val a[] = {DB_I(999)};
    assert_int_equal(db_run(db,
                            "INSERT INTO user_claims (user_id, claim_reference, lender, claim_type,"
                            " status) VALUES (?, 'RMC-9999', 'L', 'car_finance', 'submitted')",
                            a, 1, &e),
                     ERR_INVALID_ARGUMENTS); /* no such user: the FK refuses */
    db_close(db);
}

static void test_db_mysql_kb_without_fulltext_index_still_answers(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    struct db *db = NULL;
    assert_int_equal(db_open(&db_mysql_ops, &db, &f->c, &e), 0);
    /* a knowledge_base that predates voice-ws: same columns, no FULLTEXT keys */
    run_ok(db, "CREATE TABLE knowledge_base (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
               " category VARCHAR(32) NOT NULL, title VARCHAR(255) NOT NULL, body TEXT NOT NULL)"
               " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    assert_int_equal(db_migrate(db, &e), 0);
    assert_int_equal(db_load_demo(db, &e), 0);
    assert_int_equal(db_kb_search(db, "what are your fees", NULL, 3, &r, &e), 0);
    assert_true(r.nrows >= 1);
    assert_int_equal(r.ncols, 4);
    assert_string_equal(db_cell(&r, 0, "title"), "Our fees"); /* LIKE keeps id order */
    db_rows_free(&r);
    assert_int_equal(db_kb_search(db, "zzqxv", NULL, 3, &r, &e), 0);
    assert_int_equal(r.nrows, 0);
    db_rows_free(&r);
    db_close(db);
}

static void test_db_mysql_kb_title_match_ranks_first(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    struct db *db = vt_db_open(&f->c, true);
    assert_int_equal(db_kb_search(db, "how much are your fees", NULL, 3, &r, &e), 0);
    assert_true(r.nrows >= 1);
    assert_string_equal(db_cell(&r, 0, "title"), "Our fees");
    db_rows_free(&r);
    assert_int_equal(db_kb_search(db, "can I complain", NULL, 3, &r, &e), 0);
    assert_true(r.nrows >= 1);
    assert_string_equal(db_cell(&r, 0, "title"), "How to complain");
    db_rows_free(&r);
    db_close(db);
}

/* ---- the private server: stop and start mid-suite ---- */

static int own_setup(void **state)
{
    (void)state;
    char *dir = vt_tmpdir();
    snprintf(g_own.dir, sizeof g_own.dir, "%s/mdb", dir);
    free(dir);
    mariadb_sh("start", g_own.dir);
    read_env_sh(&g_own);
    /* its own database, created through our backend from the system schema */
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    server_cfg(&c, &g_own, "mysql", NULL);
    if (db_open(&db_mysql_ops, &db, &c, &e))
        fail_msg("own server: %s", e.detail);
    run_ok(db, "CREATE DATABASE IF NOT EXISTS vws_own CHARACTER SET utf8mb4");
    db_close(db);
    cfg_free(&c);
    return 0;
}

static int own_teardown(void **state)
{
    (void)state;
    char top[256];
    if (!g_own.dir[0])
        return 0;
    mariadb_sh_try("stop", g_own.dir); /* remove the directory whatever happened */
    snprintf(top, sizeof top, "%s", g_own.dir);
    *strrchr(top, '/') = '\0';
    vt_rmdir(top);
    return 0;
}

static void test_db_mysql_server_down_then_pool_recovers(void **state)
{
    (void)state;
    struct cfg c;
    struct err e = {0};
    struct db_pool *p = NULL;
    struct db *a = NULL, *b = NULL;
    const char *kv[] = {"DB_CONNECT_TIMEOUT=2", "DB_POOL_SIZE=2", NULL};
    server_cfg(&c, &g_own, "vws_own", kv);
    assert_int_equal(db_pool_new(&p, &db_mysql_ops, &c, c.db_pool_size, &e), 0);
    assert_int_equal(db_pool_get(p, 1000, &a, &e), 0);
    assert_int_equal(db_migrate(a, &e), 0);
    assert_int_equal(db_load_demo(a, &e), 0);
    db_pool_put(p, a, false);

    /* the server goes away while the pool holds an idle connection */
    mariadb_sh("stop", g_own.dir);
    assert_int_equal(db_pool_get(p, 1000, &a, &e), 0); /* idle one: no connect needed */
    double t0 = now_ms();
    int rc = db_run(a, "SELECT COUNT(*) FROM users", NULL, 0, &e);
    double took = now_ms() - t0;
    assert_int_equal(rc, ERR_DB_UNAVAILABLE);
    assert_unavailable_sentence(&e);
    assert_true(took < 2000.0 + 1000.0); /* bounded by DB_CONNECT_TIMEOUT */
    err_clear(&e);
    t0 = now_ms();
    assert_int_equal(db_ping(a, &e), ERR_DB_UNAVAILABLE); /* /health: fails fast */
    assert_true(now_ms() - t0 < 2000.0 + 1000.0);
    db_pool_put(p, a, true);
    for (int i = 0; i < 3; i++) { /* new connections fail fast too, never ERR_BUSY */
        err_clear(&e);
        t0 = now_ms();
        assert_int_equal(db_pool_get(p, 1000, &b, &e), ERR_DB_UNAVAILABLE);
        assert_true(now_ms() - t0 < 2000.0 + 1000.0);
        assert_null(b);
    }

    /* back again on the same port: the same pool works without any help */
    mariadb_sh("start", g_own.dir);
    err_clear(&e);
    assert_int_equal(db_pool_get(p, 1000, &a, &e), 0);
    assert_int_equal(vt_db_int(a, "SELECT COUNT(*) FROM users"), 2);
    db_pool_put(p, a, false);
    db_pool_free(p);
    cfg_free(&c);
}

static void test_db_mysql_restart_is_transparent_outside_transactions(void **state)
{
    (void)state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    struct db_rows r;
    server_cfg(&c, &g_own, "vws_own", NULL);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    assert_int_equal(db_migrate(db, &e), 0);
    assert_int_equal(db_load_demo(db, &e), 0);
    long long id1 = vt_db_int(db, "SELECT CONNECTION_ID()");

    mariadb_sh("restart", g_own.dir);
    /* a read and a write on the same handle just work (reconnected before sending) */
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM user_claims"), 3);
    assert_int_not_equal(vt_db_int(db, "SELECT CONNECTION_ID()"), id1);
    struct db_val a[] = {DB_S("+447700900088"), DB_S("2027-03-01 10:00:00")};
    assert_int_equal(
        db_exec(db, "INSERT INTO missed_calls (phone, callback_time) VALUES (?, ?)", a, 2, &r, &e),
        0);
    assert_int_equal(r.changes, 1);
    db_rows_free(&r);
    mariadb_sh("restart", g_own.dir);
    assert_int_equal(
        db_exec(db, "INSERT INTO missed_calls (phone, callback_time) VALUES (?, ?)", a, 2, &r, &e),
        0);
    db_rows_free(&r);
    assert_int_equal(
        vt_db_int(db, "SELECT COUNT(*) FROM missed_calls WHERE phone = '+447700900088'"), 2);

    /* inside a transaction nothing is silently replayed: the caller hears about it */
    assert_int_equal(db_begin(db, &e), 0);
    assert_int_equal(
        db_exec(db, "INSERT INTO missed_calls (phone, callback_time) VALUES (?, ?)", a, 2, &r, &e),
        0);
    db_rows_free(&r);
    mariadb_sh("restart", g_own.dir);
    err_clear(&e);
    assert_int_equal(
        db_exec(db, "INSERT INTO missed_calls (phone, callback_time) VALUES (?, ?)", a, 2, &r, &e),
        ERR_DB_UNAVAILABLE);
    assert_unavailable_sentence(&e);
    err_clear(&e);
    assert_int_equal(db_commit(db, &e), ERR_DB_UNAVAILABLE);
    db_rollback(db);
    /* the half-done transaction left nothing; the handle works again */
    assert_int_equal(
        vt_db_int(db, "SELECT COUNT(*) FROM missed_calls WHERE phone = '+447700900088'"), 2);
    db_close(db);
    cfg_free(&c);
}

static void test_db_mysql_restart_over_tls_is_transparent(void **state)
{
    (void)state;
    struct cfg c;
    struct err e = {0};
    struct db *db = NULL;
    char ca[400], cipher[128];
    snprintf(ca, sizeof ca, "DB_SSL_CA=%s", g_own.ca);
    const char *kv[] = {"DB_SSL_MODE=verify", ca, NULL};
    server_cfg(&c, &g_own, "vws_own", kv);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    assert_int_equal(db_migrate(db, &e), 0);
    mariadb_sh("restart", g_own.dir);
    assert_int_equal(vt_db_int(db, "SELECT 6 * 7"), 42);
    session_status(db, "Ssl_cipher", cipher, sizeof cipher);
    assert_true(strlen(cipher) > 0); /* the new connection is verified TLS again */
    /* a write on a dead TLS connection inside a transaction: an error, not a crash */
    assert_int_equal(db_begin(db, &e), 0);
    mariadb_sh("restart", g_own.dir);
    err_clear(&e);
    int urc = db_run(db, "UPDATE users SET email = email WHERE id = 1", NULL, 0, &e);
    if (urc != ERR_DB_UNAVAILABLE)
        fail_msg("got %s: %s", err_name(urc), e.detail);
    db_rollback(db);
    assert_int_equal(db_ping(db, &e), 0);
    db_close(db);
    cfg_free(&c);
}

struct churn { /* one thread using the pool while the server restarts */
    struct db_pool *p;
    int id;
    atomic_int *phase; /* 0 = before, 1 = restarting, 2 = back (set by the test) */
    int ok, unavailable, other, inserts_ok, inserts_failed, after_ok, after_bad;
    char other_msg[300];
};

static void *churn_run(void *arg)
{
    struct churn *c = arg;
    char reason[64];
    for (int i = 0; atomic_load(c->phase) < 3; i++) {
        struct db *db = NULL;
        struct err e = {0};
        int phase = atomic_load(c->phase);
        int rc = db_pool_get(c->p, 3000, &db, &e);
        bool insert = i % 2 == 0;
        if (!rc && insert) {
            snprintf(reason, sizeof reason, "churn-%d-%d", c->id, i);
            const char *rs = reason;
            struct db_val a[] = {DB_S("+447700900066"), DB_S("2027-01-01 10:00:00"), DB_S(rs)};
            rc = db_run(db,
                        "INSERT INTO missed_calls (phone, callback_time, reason) VALUES (?, ?, ?)",
                        a, 3, &e);
            c->inserts_ok += rc == 0;
            c->inserts_failed += rc != 0;
        } else if (!rc) {
            struct db_rows r;
            rc = db_exec(db, "SELECT COUNT(*) AS n FROM user_claims", NULL, 0, &r, &e);
            if (!rc && db_cell_int(&r, 0, "n", -1) != 3)
                rc = ERR_INTERNAL;
            db_rows_free(&r);
        }
        if (db)
            db_pool_put(c->p, db, rc == ERR_DB_UNAVAILABLE);
        c->ok += rc == 0;
        c->unavailable += rc == ERR_DB_UNAVAILABLE;
        if (rc && rc != ERR_DB_UNAVAILABLE && !c->other++)
            snprintf(c->other_msg, sizeof c->other_msg, "%s %s", err_name(rc), e.detail);
        if (phase == 2) {
            c->after_ok += rc == 0;
            c->after_bad += rc != 0;
        }
        usleep(2000);
    }
    return NULL;
}

static void test_db_mysql_pool_under_load_survives_a_restart(void **state)
{
    (void)state;
    struct cfg c;
    struct err e = {0};
    struct db_pool *p = NULL;
    struct db *db = NULL;
    pthread_t t[4];
    struct churn ch[4];
    atomic_int phase = 0;
    const char *kv[] = {"DB_CONNECT_TIMEOUT=2", "DB_POOL_SIZE=3", NULL};
    server_cfg(&c, &g_own, "vws_own", kv);
    assert_int_equal(db_pool_new(&p, &db_mysql_ops, &c, c.db_pool_size, &e), 0);
    assert_int_equal(db_pool_get(p, 1000, &db, &e), 0);
    assert_int_equal(db_migrate(db, &e), 0);
    assert_int_equal(db_load_demo(db, &e), 0);
    run_ok(db, "DELETE FROM missed_calls WHERE reason LIKE 'churn-%'");
    db_pool_put(p, db, false);

    for (int i = 0; i < 4; i++) {
        ch[i] = (struct churn){.p = p, .id = i, .phase = &phase};
        assert_int_equal(pthread_create(&t[i], NULL, churn_run, &ch[i]), 0);
    }
    usleep(300 * 1000);
    atomic_store(&phase, 1);
    mariadb_sh("restart", g_own.dir);
    atomic_store(&phase, 2);
    usleep(500 * 1000);
    atomic_store(&phase, 3);
    int ok = 0, unavailable = 0, inserts_ok = 0, inserts_failed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (ch[i].other)
            fail_msg("thread %d: %d unexpected errors, first: %s", i, ch[i].other, ch[i].other_msg);
        assert_int_equal(ch[i].after_bad, 0); /* once it is back, everything works */
        assert_true(ch[i].after_ok > 0);
        ok += ch[i].ok;
        unavailable += ch[i].unavailable;
        inserts_ok += ch[i].inserts_ok;
        inserts_failed += ch[i].inserts_failed;
    }
    assert_true(ok > 0);
    assert_int_equal(db_pool_get(p, 1000, &db, &e), 0);
    long long rows = vt_db_int(db, "SELECT COUNT(*) FROM missed_calls WHERE reason LIKE 'churn-%'");
    /* every acknowledged insert is there; none was written twice by a retry */
    assert_true(rows >= inserts_ok && rows <= inserts_ok + inserts_failed);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM (SELECT reason FROM missed_calls WHERE "
                                   "reason LIKE 'churn-%' GROUP BY reason HAVING COUNT(*) > 1) d"),
                     0);
    db_pool_put(p, db, false);
    db_pool_free(p);
    cfg_free(&c);
    print_message("churn: %d ok, %d unavailable during the restart\n", ok, unavailable);
}

/* Run the built voice-ws against the private server's vws_own; stdout parsed as JSON. */
static json_t *own_cli(const char *const *args, int *status, double *ms)
{
    char port[32], pw[160], dir[300];
    const char *argv[8] = {vt_bin()};
    const char *env[] = {
        "DB_HOST=127.0.0.1", port, "DB_USER=vws", pw, "DB_NAME=vws_own", "DB_CONNECT_TIMEOUT=2",
        "LOG_LEVEL=warn",    NULL};
    struct vt_run r;
    json_error_t je;
    int n = 1;
    snprintf(port, sizeof port, "DB_PORT=%s", g_own.port);
    snprintf(pw, sizeof pw, "DB_PASSWORD=%s", g_own.password);
    snprintf(dir, sizeof dir, "%s", g_own.dir); /* a cwd without a .env file */
    for (; args[n - 1] && n < 7; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    double t0 = now_ms();
    assert_int_equal(vt_run(&r, dir, env, argv, 60), 0);
    *ms = now_ms() - t0;
    *status = r.status;
    json_t *j = json_loads(r.out, 0, &je);
    if (!j)
        fail_msg("voice-ws %s: stdout is not JSON (%s): %s / %s", args[0], je.text, r.out, r.err);
    vt_run_free(&r);
    return j;
}

static const char *health_db(json_t *h, const char *field)
{
    json_t *v = json_object_get(json_object_get(json_object_get(h, "services"), "database"), field);
    return json_is_string(v) ? json_string_value(v) : json_is_true(v) ? "true" : "false";
}

static void test_db_mysql_cli_init_twice_and_health_when_down(void **state)
{
    (void)state;
    int st;
    double ms;
    json_t *j;
    for (int i = 0; i < 2; i++) { /* idempotent: the second run changes nothing */
        j = own_cli((const char *const[]){"db", "init", "--demo", NULL}, &st, &ms);
        assert_int_equal(st, 0);
        assert_string_equal(json_string_value(json_object_get(j, "backend")), "mysql");
        json_decref(j);
    }
    struct cfg c;
    struct db *db = NULL;
    struct err e = {0};
    server_cfg(&c, &g_own, "vws_own", NULL);
    assert_int_equal(db_open(&db_mysql_ops, &db, &c, &e), 0);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM users"), 2);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM user_claims"), 3);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM schema_migrations"), 1);
    db_close(db);
    cfg_free(&c);

    j = own_cli((const char *const[]){"health", NULL}, &st, &ms);
    assert_string_equal(health_db(j, "backend"), "mysql");
    assert_string_equal(health_db(j, "reachable"), "true");
    json_decref(j);

    mariadb_sh("stop", g_own.dir);
    j = own_cli((const char *const[]){"health", NULL}, &st, &ms);
    assert_string_equal(health_db(j, "backend"), "mysql");
    assert_string_equal(health_db(j, "reachable"), "false");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
    assert_true(ms < 2000.0 + 2000.0);
    json_decref(j);
    j = own_cli((const char *const[]){"action", "check_claim_details",
                                      "{\"claim_reference\":\"RMC-1001\"}", "--caller",
                                      "+447700900001", NULL},
                &st, &ms);
    assert_int_equal(st, 3);
    assert_true(json_is_false(json_object_get(j, "success")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "database_unavailable");
    assert_true(ms < 15000.0);
    json_decref(j);

    mariadb_sh("start", g_own.dir);
    j = own_cli((const char *const[]){"health", NULL}, &st, &ms);
    assert_string_equal(health_db(j, "reachable"), "true");
    json_decref(j);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest shared[] = {
        T(test_db_mysql_tls_required_encrypts),
        T(test_db_mysql_tls_verify_with_the_ca_connects),
        T(test_db_mysql_tls_verify_with_a_wrong_ca_fails_clearly),
        cmocka_unit_test(test_db_mysql_production_refuses_plain_remote),
        T(test_db_mysql_production_allows_plain_loopback_and_tls_remote),
        T(test_db_mysql_wrong_password_names_the_variables),
        T(test_db_mysql_pool_exhausted_waits_bounded),
        T(test_db_mysql_query_timeout_is_not_retried),
        T(test_db_mysql_killed_read_is_retried_write_is_not),
        T(test_db_mysql_big_values_round_trip),
        T(test_db_mysql_times_are_utc),
        T(test_db_mysql_kb_short_words_fall_back_to_like),
        T(test_db_mysql_existing_company_table_is_kept),
        T(test_db_mysql_kb_without_fulltext_index_still_answers),
        T(test_db_mysql_kb_title_match_ranks_first),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_db_mysql_server_down_then_pool_recovers),
        cmocka_unit_test(test_db_mysql_restart_is_transparent_outside_transactions),
        cmocka_unit_test(test_db_mysql_restart_over_tls_is_transparent),
        cmocka_unit_test(test_db_mysql_cli_init_twice_and_health_when_down),
        cmocka_unit_test(test_db_mysql_pool_under_load_survives_a_restart),
    };
    int rc = cmocka_run_group_tests_name("mysql_shared_server", shared, group_setup, NULL);
    rc += cmocka_run_group_tests_name("mysql_own_server", own, own_setup, own_teardown);
    return rc;
}
