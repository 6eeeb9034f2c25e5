/*
 * db_sqlite.c - the embedded SQLite backend (db_sqlite_ops).
 *
 * Owns: one sqlite3 handle per struct db, opened on DB_PATH (parent
 * directories created; ":memory:" allowed, private to the connection) in WAL
 * mode with synchronous=NORMAL, foreign_keys=ON and a 5 s busy timeout; a
 * small per-connection cache of prepared statements keyed by SQL text; the
 * SQLite DDL of each schema version; FTS5 search of knowledge_base.
 * Every statement is prepared and bound (sqlite3_prepare_v2 + sqlite3_bind_*),
 * one statement per call; cells are returned as text.
 * Must not touch: anything outside the handle. Threads: one thread at a time
 * per struct db (the pool hands connections between threads).
 */
#define LOG_MODULE "db_sqlite"

#include "db/db.h"

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "db/internal.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_CACHE 48           /* prepared statements kept per connection */
#define SQ_CACHE_SQL_MAX 8192 /* longer SQL is prepared each time, not cached */
#define SQ_KB_TOKENS 24       /* search words used from one query */
#define SQ_KB_TOKEN_MAX 48    /* bytes of one search word */
#define SQ_KB_LIMIT_MAX 50

struct sq_cached {
    char *sql; /* key, owned */
    sqlite3_stmt *st;
};

struct sq_db {
    struct db base; /* first */
    sqlite3 *h;
    struct sq_cached cache[SQ_CACHE];
    int next_evict; /* round-robin victim when the cache is full */
};

/* ---- errors ---- */

/* Map a SQLite result code to ERR_*; sets e with the handle's message. */
static int sq_fail(struct sq_db *d, int src, const char *sql, struct err *e)
{
    int prim = src & 0xff, code;
    switch (prim) {
    case SQLITE_CONSTRAINT:
        code = (src == SQLITE_CONSTRAINT_UNIQUE || src == SQLITE_CONSTRAINT_PRIMARYKEY)
                   ? ERR_DUPLICATE
                   : ERR_INVALID_ARGUMENTS;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = ERR_BUSY;
        break;
    case SQLITE_NOMEM:
        code = ERR_NOMEM;
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        code = ERR_DB_UNAVAILABLE;
        break;
    default:
        code = ERR_INTERNAL;
    }
    return err_set(e, code, NULL, "sqlite: %s (code %d) in: %.80s",
                   d && d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(src), src, sql ? sql : "");
}

/* ---- statements ---- */

static void cache_clear(struct sq_db *d)
{
    for (int i = 0; i < SQ_CACHE; i++) {
        sqlite3_finalize(d->cache[i].st);
        free(d->cache[i].sql);
        d->cache[i].st = NULL;
        d->cache[i].sql = NULL;
    }
}

static bool only_space(const char *s)
{
    while (s && *s && isspace((unsigned char)*s))
        s++;
    return !s || !*s;
}

static int prepare_one(struct sq_db *d, const char *sql, sqlite3_stmt **st, struct err *e)
{
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(d->h, sql, -1, st, &tail);
    if (rc != SQLITE_OK)
        return sq_fail(d, rc, sql, e);
    if (!*st || !only_space(tail)) {
        sqlite3_finalize(*st);
        *st = NULL;
        return err_set(e, ERR_INTERNAL, NULL, "sqlite: expected exactly one statement in: %.80s",
                       sql);
    }
    return 0;
}

/* A prepared statement for sql: from the cache when possible. *cached says who finalizes. */
static int stmt_get(struct sq_db *d, const char *sql, sqlite3_stmt **st, bool *cached,
                    struct err *e)
{
    size_t len = strlen(sql);
    *cached = false;
    for (int i = 0; i < SQ_CACHE; i++)
        if (d->cache[i].sql && !strcmp(d->cache[i].sql, sql)) {
            *st = d->cache[i].st;
            *cached = true;
            return 0;
        }
    int rc = prepare_one(d, sql, st, e);
    if (rc || len > SQ_CACHE_SQL_MAX)
        return rc;
    char *key = db__strndup(sql, len);
    if (!key)
        return 0; /* run uncached */
    int slot = -1;
    for (int i = 0; i < SQ_CACHE && slot < 0; i++)
        if (!d->cache[i].sql)
            slot = i;
    if (slot < 0) {
        slot = d->next_evict;
        d->next_evict = (d->next_evict + 1) % SQ_CACHE;
        sqlite3_finalize(d->cache[slot].st);
        free(d->cache[slot].sql);
    }
    d->cache[slot].sql = key;
    d->cache[slot].st = *st;
    *cached = true;
    return 0;
}

static void stmt_done(sqlite3_stmt *st, bool cached)
{
    if (cached) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* text was bound SQLITE_STATIC: drop the borrowed pointers */
    } else {
        sqlite3_finalize(st);
    }
}

static int bind_args(struct sq_db *d, sqlite3_stmt *st, const char *sql, const struct db_val *a,
                     int n, struct err *e)
{
    int want = sqlite3_bind_parameter_count(st);
    if (want != n)
        return err_set(e, ERR_INTERNAL, NULL,
                       "sqlite: statement takes %d parameter(s), %d given: %.80s", want, n, sql);
    for (int i = 0; i < n; i++) {
        int rc;
        if (a[i].type == DB_INT)
            rc = sqlite3_bind_int64(st, i + 1, a[i].i);
        else if (a[i].type == DB_TEXT && a[i].s)
            rc = sqlite3_bind_text(st, i + 1, a[i].s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(st, i + 1);
        if (rc != SQLITE_OK)
            return sq_fail(d, rc, sql, e);
    }
    return 0;
}

static int read_columns(sqlite3_stmt *st, struct db_rows *out, struct err *e)
{
    int n = sqlite3_column_count(st);
    int rc = db__rows_init(out, n, e);
    for (int i = 0; !rc && i < n; i++)
        rc = db__rows_set_col(out, i, sqlite3_column_name(st, i), e);
    return rc;
}

static int read_row(sqlite3_stmt *st, struct db_rows *out, struct err *e)
{
    char **row = db__rows_add(out, e);
    if (!row)
        return e->code; /* db_exec always passes an err */
    for (int i = 0; i < out->ncols; i++) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL)
            continue;
        const unsigned char *t = sqlite3_column_text(st, i);
        int len = sqlite3_column_bytes(st, i);
        if (len > DB_CELL_MAX)
            return err_set(e, ERR_INTERNAL, NULL, "sqlite: cell of %d bytes too large", len);
        row[i] = db__strndup(t ? (const char *)t : "", t ? (size_t)len : 0);
        if (!row[i])
            return err_set(e, ERR_NOMEM, NULL, "sqlite: out of memory reading a row");
    }
    return 0;
}

static bool is_insert(const char *sql)
{
    while (isspace((unsigned char)*sql))
        sql++;
    return !strncasecmp(sql, "INSERT", 6) || !strncasecmp(sql, "REPLACE", 7);
}

static int step_all(struct sq_db *d, sqlite3_stmt *st, const char *sql, struct db_rows *out,
                    struct err *e)
{
    sqlite3_int64 before = sqlite3_total_changes64(d->h);
    int rc = read_columns(st, out, e), src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
        rc = read_row(st, out, e);
    if (rc)
        return rc;
    if (src != SQLITE_DONE)
        return sq_fail(d, src, sql, e);
    /* changes64 is stale after statements that change nothing; total_changes tells */
    if (!sqlite3_stmt_readonly(st) && sqlite3_total_changes64(d->h) != before) {
        out->changes = sqlite3_changes64(d->h);
        if (out->changes > 0 && is_insert(sql))
            out->insert_id = sqlite3_last_insert_rowid(d->h);
    }
    return 0;
}

static int sq_exec(struct db *db, const char *sql, const struct db_val *args, int nargs,
                   struct db_rows *out, struct err *e)
{
    struct sq_db *d = (struct sq_db *)db;
    sqlite3_stmt *st = NULL;
    bool cached = false;
    int rc = stmt_get(d, sql, &st, &cached, e);
    if (rc)
        return rc;
    rc = bind_args(d, st, sql, args, nargs, e);
    if (!rc)
        rc = step_all(d, st, sql, out, e);
    stmt_done(st, cached);
    return rc;
}

/* Run a fixed statement (no parameters, rows ignored) outside the cache. */
static int run_fixed(struct sq_db *d, const char *sql, struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_one(d, sql, &st, e), src;
    if (rc)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (src != SQLITE_DONE)
        rc = sq_fail(d, src, sql, e);
    sqlite3_finalize(st);
    return rc;
}

/* ---- open / close ---- */

/* mkdir -p of path's directory part. */
static int make_parent_dirs(const char *path, struct err *e)
{
    char dir[1024];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return err_set(e, ERR_DB_UNAVAILABLE, NULL, "DB_PATH too long (%zu bytes)", n);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(dir, 0755) && errno != EEXIST)
                return err_set(e, ERR_DB_UNAVAILABLE, NULL,
                               "cannot create directory %s for DB_PATH=%s: %s", dir, path,
                               strerror(errno));
            if (end)
                break;
            *p = '/';
        }
    }
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return err_set(e, ERR_DB_UNAVAILABLE, NULL, "DB_PATH=%s: %s is not a directory", path, dir);
    return 0;
}

static void sq_close(struct db *db)
{
    struct sq_db *d = (struct sq_db *)db;
    if (!d)
        return;
    cache_clear(d);
    if (sqlite3_close_v2(d->h) != SQLITE_OK)
        log_warn("sqlite close: %s", sqlite3_errmsg(d->h));
    free(d);
}

static int sq_setup(struct sq_db *d, const char *path, struct err *e)
{
    static const char *const pragmas[] = {
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        NULL,
    };
    sqlite3_extended_result_codes(d->h, 1);
    sqlite3_busy_timeout(d->h, SQ_BUSY_TIMEOUT_MS);
    for (int i = 0; pragmas[i]; i++) {
        struct err pe = {0};
        if (run_fixed(d, pragmas[i], &pe))
            return err_set(e, ERR_DB_UNAVAILABLE, NULL, "cannot use DB_PATH=%s: %s", path,
                           pe.detail);
    }
    return 0;
}

static int sq_open(struct db **out, const struct cfg *cfg, struct err *e)
{
    const char *path = cfg->db_path && cfg->db_path[0] ? cfg->db_path : "data/voice-ws.db";
    bool memory = !strcmp(path, ":memory:");
    if (!memory && make_parent_dirs(path, e))
        return ERR_DB_UNAVAILABLE;
    struct sq_db *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, ERR_NOMEM, NULL, "sqlite: out of memory");
    int src = sqlite3_open_v2(
        path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (src != SQLITE_OK) {
        err_set(e, ERR_DB_UNAVAILABLE, NULL, "cannot open DB_PATH=%s: %s", path,
                d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(src));
        sqlite3_close(d->h);
        free(d);
        return ERR_DB_UNAVAILABLE;
    }
    if (sq_setup(d, path, e)) {
        sq_close(&d->base);
        return ERR_DB_UNAVAILABLE;
    }
    d->base.ops = &db_sqlite_ops;
    *out = &d->base;
    return 0;
}

/* ---- transactions, ping ---- */

static int sq_begin(struct db *db, struct err *e)
{
    /* IMMEDIATE takes the write lock now, so the busy timeout applies here
     * instead of failing later on a read-to-write upgrade. */
    return run_fixed((struct sq_db *)db, "BEGIN IMMEDIATE", e);
}

static int sq_commit(struct db *db, struct err *e)
{
    return run_fixed((struct sq_db *)db, "COMMIT", e);
}

static int sq_rollback(struct db *db)
{
    struct sq_db *d = (struct sq_db *)db;
    if (sqlite3_get_autocommit(d->h))
        return 0; /* nothing open (or SQLite already rolled back) */
    return run_fixed(d, "ROLLBACK", NULL);
}

static int sq_ping(struct db *db, struct err *e)
{
    return run_fixed((struct sq_db *)db, "SELECT 1", e);
}

/* ---- knowledge base ---- */

static bool word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80; /* UTF-8 letters stay inside words */
}

static bool stop_word(const char *w, size_t n)
{
    static const char *const stop[] = {
        "a",     "an",   "and", "are",  "can", "do",  "does", "for", "how",   "i",  "in",
        "is",    "it",   "me",  "my",   "of",  "on",  "or",   "s",   "the",   "to", "what",
        "whats", "when", "you", "your", "we",  "our", "with", "be",  "about", NULL,
    };
    for (int i = 0; stop[i]; i++)
        if (strlen(stop[i]) == n && !strncasecmp(stop[i], w, n))
            return true;
    return false;
}

/*
 * Build an FTS5 MATCH expression from user text: each word quoted (raw user
 * text is an FTS5 syntax error on quotes, apostrophes, '-', '*', ':' ...),
 * joined with OR. Words are runs of letters/digits so a quote can never
 * appear inside one. Common words are dropped (as MySQL FULLTEXT does), so
 * a query of only common words finds nothing.
 * Returns the number of words used (0 = nothing searchable).
 */
static int kb_match_expr(const char *q, char *out, size_t outsz)
{
    size_t len = 0;
    int n = 0;
    out[0] = '\0';
    while (*q && n < SQ_KB_TOKENS) {
        while (*q && !word_byte((unsigned char)*q))
            q++;
        const char *w = q;
        while (*q && word_byte((unsigned char)*q))
            q++;
        size_t wl = (size_t)(q - w);
        if (!wl || stop_word(w, wl))
            continue;
        if (wl > SQ_KB_TOKEN_MAX) {
            wl = SQ_KB_TOKEN_MAX;
            while (wl > 0 && ((unsigned char)w[wl] & 0xC0) == 0x80)
                wl--; /* never cut a UTF-8 character in half */
        }
        if (!wl)
            continue;
        int k = snprintf(out + len, outsz - len, "%s\"%.*s\"", n ? " OR " : "", (int)wl, w);
        if (k < 0 || (size_t)k >= outsz - len)
            break;
        len += (size_t)k;
        n++;
    }
    return n;
}

static const char sql_kb_search[] =
    "SELECT kb.id AS id, kb.category AS category, kb.title AS title,"
    " snippet(knowledge_base_fts, 1, '', '', '...', 40) AS snippet"
    " FROM knowledge_base_fts JOIN knowledge_base kb ON kb.id = knowledge_base_fts.rowid"
    " WHERE knowledge_base_fts MATCH ? AND (? IS NULL OR kb.category = ?)"
    " ORDER BY bm25(knowledge_base_fts, 10.0, 1.0), kb.id LIMIT ?";

static int sq_kb_search(struct db *db, const char *query, const char *category, int limit,
                        struct db_rows *out, struct err *e)
{
    char expr[SQ_KB_TOKENS * (SQ_KB_TOKEN_MAX + 6) + 1];
    if (limit <= 0)
        limit = 3;
    if (limit > SQ_KB_LIMIT_MAX)
        limit = SQ_KB_LIMIT_MAX;
    if (!kb_match_expr(query, expr, sizeof expr)) {
        static const char *const cols[] = {"id", "category", "title", "snippet"};
        int rc = db__rows_init(out, 4, e);
        for (int i = 0; !rc && i < 4; i++)
            rc = db__rows_set_col(out, i, cols[i], e);
        return rc; /* nothing searchable: no rows, not an error */
    }
    const char *match = expr; /* DB_S() of an array trips -Waddress */
    struct db_val a[] = {DB_S(match), DB_S(category), DB_S(category), DB_I(limit)};
    return sq_exec(db, sql_kb_search, a, 4, out, e);
}

/* ---- schema ---- */

static const char *const sq_v1[] = {
    "CREATE TABLE IF NOT EXISTS users ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " first_name TEXT NOT NULL,"
    " last_name TEXT NOT NULL,"
    " phone TEXT NOT NULL,"
    " email TEXT NULL,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_users_phone ON users(phone)",

    "CREATE TABLE IF NOT EXISTS user_claims ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " claim_reference TEXT NOT NULL UNIQUE,"
    " lender TEXT NOT NULL,"
    " claim_type TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_user_claims_user ON user_claims(user_id)",

    "CREATE TABLE IF NOT EXISTS claim_requirements ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " claim_id INTEGER NOT NULL REFERENCES user_claims(id),"
    " requirement_type TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT 'outstanding' CHECK (status IN ('outstanding','received')),"
    " due_date TEXT NULL,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_claim_requirements_claim ON claim_requirements(claim_id)",

    "CREATE TABLE IF NOT EXISTS missed_calls ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NULL REFERENCES users(id),"
    " phone TEXT NOT NULL,"
    " callback_time TEXT NOT NULL,"
    " reason TEXT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending',"
    " source TEXT NOT NULL DEFAULT 'voice',"
    " call_sid TEXT NULL,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_missed_calls_call ON missed_calls(call_sid)",
    "CREATE INDEX IF NOT EXISTS idx_missed_calls_user ON missed_calls(user_id)",

    "CREATE TABLE IF NOT EXISTS voice_action_logs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " call_sid TEXT NULL,"
    " provider TEXT NULL,"
    " action TEXT NOT NULL,"
    " user_id INTEGER NULL,"
    " phone_masked TEXT NULL,"
    " arguments TEXT NULL,"
    " success INTEGER NOT NULL CHECK (success IN (0,1)),"
    " error_code TEXT NULL,"
    " execution_time_ms REAL NULL,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_voice_action_logs_call ON voice_action_logs(call_sid)",
    "CREATE INDEX IF NOT EXISTS idx_voice_action_logs_created ON voice_action_logs(created_at)",

    "CREATE TABLE IF NOT EXISTS sms_messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " to_number TEXT NOT NULL,"
    " intended_to TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " mode TEXT NOT NULL CHECK (mode IN ('mock','live','redirected')),"
    " status TEXT NOT NULL CHECK (status IN ('mock','queued','failed','unknown','refused')),"
    " provider_sid TEXT NULL,"
    " error_code TEXT NULL,"
    " segments INTEGER NOT NULL DEFAULT 1,"
    " purpose TEXT NULL,"
    " call_sid TEXT NULL,"
    " user_id INTEGER NULL,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_sms_messages_intended ON sms_messages(intended_to, created_at)",
    "CREATE INDEX IF NOT EXISTS idx_sms_messages_created ON sms_messages(created_at)",

    "CREATE TABLE IF NOT EXISTS portal_links ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " link_type TEXT NOT NULL CHECK (link_type IN ('portal','documents','review')),"
    " token_hash TEXT NOT NULL UNIQUE,"
    " method TEXT NOT NULL CHECK (method IN ('sms','email')),"
    " call_sid TEXT NULL,"
    " expires_at TEXT NOT NULL,"
    " used_at TEXT NULL,"
    " created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE INDEX IF NOT EXISTS idx_portal_links_user ON portal_links(user_id, link_type, "
    "created_at)",

    "CREATE TABLE IF NOT EXISTS knowledge_base ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " category TEXT NOT NULL,"
    " title TEXT NOT NULL,"
    " body TEXT NOT NULL)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_base_fts USING fts5("
    "title, body, content='knowledge_base', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS knowledge_base_ai AFTER INSERT ON knowledge_base BEGIN"
    " INSERT INTO knowledge_base_fts(rowid, title, body) VALUES (new.id, new.title, new.body);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_base_ad AFTER DELETE ON knowledge_base BEGIN"
    " INSERT INTO knowledge_base_fts(knowledge_base_fts, rowid, title, body)"
    " VALUES ('delete', old.id, old.title, old.body);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_base_au AFTER UPDATE ON knowledge_base BEGIN"
    " INSERT INTO knowledge_base_fts(knowledge_base_fts, rowid, title, body)"
    " VALUES ('delete', old.id, old.title, old.body);"
    " INSERT INTO knowledge_base_fts(rowid, title, body) VALUES (new.id, new.title, new.body);"
    " END",
    /* index rows of a knowledge_base that existed before this migration */
    "INSERT INTO knowledge_base_fts(knowledge_base_fts) VALUES ('rebuild')",

    "CREATE TABLE IF NOT EXISTS voice_calls ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " call_sid TEXT NOT NULL UNIQUE,"
    " phone_masked TEXT NULL,"
    " user_id INTEGER NULL,"
    " provider TEXT NULL,"
    " started_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " ended_at TEXT NULL,"
    " end_reason TEXT NULL,"
    " actions_count INTEGER NOT NULL DEFAULT 0)",
    NULL,
};

static const struct db_migration sq_migrations[] = {
    {1, sq_v1},
};

const struct db_ops db_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .kb_search = sq_kb_search,
    .ping = sq_ping,
    .migrations = sq_migrations,
    .n_migrations = (int)(sizeof sq_migrations / sizeof sq_migrations[0]),
};
