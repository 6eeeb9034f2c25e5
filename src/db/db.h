/*
 * db.h - the database interface: a table of function pointers per backend
 * (SQLite embedded, MySQL/MariaDB), a generic bounded connection pool, the
 * versioned migration runner and the demo data.
 *
 * SQL lives with its callers, written once in portable SQL with `?`
 * placeholders; a backend only binds parameters, reads rows as text and runs
 * its own DDL (migrations) and full-text search. Times are passed and stored
 * as UTC text "YYYY-MM-DD HH:MM:SS".
 *
 * Threads: a struct db (one connection) is used by one thread at a time;
 * borrow one from the pool, use it, put it back. The pool is any-thread.
 */
#ifndef VWS_DB_H
#define VWS_DB_H

#include <stdbool.h>

struct cfg;
struct err;
struct db;

enum db_type { DB_NULL = 0, DB_INT, DB_TEXT };

struct db_val {               /* one bound parameter */
    enum db_type type;
    long long i;              /* DB_INT */
    const char *s;            /* DB_TEXT, borrowed for the duration of the call */
};

#define DB_I(x) ((struct db_val){.type = DB_INT, .i = (long long)(x)})
#define DB_S(x) ((struct db_val){.type = (x) ? DB_TEXT : DB_NULL, .s = (x)})
#define DB_NIL ((struct db_val){.type = DB_NULL})

struct db_rows {              /* a result, all cells as text */
    int ncols, nrows;
    char **col;               /* ncols column names */
    char **cell;              /* nrows * ncols, row-major; NULL = SQL NULL */
    long long insert_id;      /* last insert id after an INSERT, else 0 */
    long long changes;        /* rows changed by INSERT/UPDATE/DELETE */
};

struct db_migration {         /* one version of a backend's schema */
    int version;
    const char *const *sql;   /* NULL-terminated statements, run in order */
};

struct db_ops {
    const char *name;         /* "sqlite", "mysql" */
    /* MUST: connect using cfg (borrowed, must outlive the db). */
    int (*open)(struct db **out, const struct cfg *cfg, struct err *e);
    /* MUST: accept NULL. */
    void (*close)(struct db *db);
    /*
     * MUST: run one statement with n args; out (required) is filled, free with db_rows_free.
     * Errors, the same on every backend: unique/primary key violation ERR_DUPLICATE; other
     * constraint (FK, NOT NULL, CHECK) ERR_INVALID_ARGUMENTS; lock wait/busy ERR_BUSY;
     * connection or storage lost ERR_DB_UNAVAILABLE (put the connection back as broken);
     * SQL errors ERR_INTERNAL. e->detail carries the backend's message.
     */
    int (*exec)(struct db *db, const char *sql, const struct db_val *args, int nargs,
                struct db_rows *out, struct err *e);
    /* MUST: transactions. */
    int (*begin)(struct db *db, struct err *e);
    int (*commit)(struct db *db, struct err *e);
    int (*rollback)(struct db *db);
    /* MUST: full-text search of knowledge_base; columns id, category, title, snippet; best first. */
    int (*kb_search)(struct db *db, const char *query, const char *category, int limit,
                     struct db_rows *out, struct err *e);
    /* MAY: cheap liveness check (0 = alive). */
    int (*ping)(struct db *db, struct err *e);
    /* MUST: the backend's migrations, ascending versions. */
    const struct db_migration *migrations;
    int n_migrations;
};

struct db {                   /* every backend embeds this first */
    const struct db_ops *ops;
    bool in_tx;               /* set by db_begin, cleared by db_commit/db_rollback (wrappers) */
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_mysql_ops;

/* Backend for this configuration: MySQL when DB_HOST is set, else SQLite. */
const struct db_ops *db_backend_for(const struct cfg *cfg);

/* ---- wrappers (use these, never ->ops-> directly) ---- */

int db_open(const struct db_ops *ops, struct db **out, const struct cfg *cfg, struct err *e);
void db_close(struct db *db);
int db_exec(struct db *db, const char *sql, const struct db_val *args, int nargs,
            struct db_rows *out, struct err *e);
/* exec and free the result: for statements whose rows are not needed. */
int db_run(struct db *db, const char *sql, const struct db_val *args, int nargs, struct err *e);
int db_begin(struct db *db, struct err *e);
int db_commit(struct db *db, struct err *e);
int db_rollback(struct db *db);
/*
 * Inside a transaction: take the one row lock that every cross-process
 * check-then-insert section contends for (the SMS rate limits, the review
 * link's 30 days), so processes sharing the database run those sections one
 * at a time. SQLite's BEGIN IMMEDIATE already serialises writers; on InnoDB
 * this UPDATE of schema_migrations' version-1 row does, and the REPEATABLE
 * READ snapshot is only taken by the first plain SELECT after it, so counts
 * made after the lock see the other process's committed rows. Needs the
 * ordinary UPDATE privilege and migration 1 (always there after db init).
 * Hold it for a few statements, never across network I/O.
 */
int db_lock_serial(struct db *db, struct err *e);
int db_kb_search(struct db *db, const char *query, const char *category, int limit,
                 struct db_rows *out, struct err *e);
int db_ping(struct db *db, struct err *e);
const char *db_backend_name(const struct db *db);

void db_rows_free(struct db_rows *r);
/* Cell by column name; NULL when NULL, out of range or unknown column. */
const char *db_cell(const struct db_rows *r, int row, const char *col);
long long db_cell_int(const struct db_rows *r, int row, const char *col, long long dflt);

/* Apply pending migrations (versioned, idempotent; records schema_migrations). */
int db_migrate(struct db *db, struct err *e);
/* Load the demo data of ARCHITECTURE.md (idempotent). */
int db_load_demo(struct db *db, struct err *e);

/* Current UTC time (+ offset seconds) as "YYYY-MM-DD HH:MM:SS". out >= 20 bytes. */
void db_utc_text(long long unix_s, char *out, int outsz);

/* ---- pool ---- */

struct db_pool;

/* size connections max, opened lazily. cfg borrowed. Any thread after creation. */
int db_pool_new(struct db_pool **out, const struct db_ops *ops, const struct cfg *cfg, int size,
                struct err *e);
void db_pool_free(struct db_pool *p);
/*
 * Borrow a connection, waiting at most wait_ms for a free one; then
 * ERR_BUSY. Connection failure: ERR_DB_UNAVAILABLE. Any thread.
 */
int db_pool_get(struct db_pool *p, int wait_ms, struct db **out, struct err *e);
/*
 * Return a borrowed connection; broken=true closes it (the next get reconnects).
 * A connection returned inside a transaction is rolled back first (and closed
 * if that fails), so no lock or half-done write leaks to the next borrower.
 */
void db_pool_put(struct db_pool *p, struct db *db, bool broken);
const struct db_ops *db_pool_ops(const struct db_pool *p);
int db_pool_size(const struct db_pool *p);

#endif
