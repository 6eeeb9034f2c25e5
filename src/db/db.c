/*
 * db.c - backend-independent database code: the wrappers of db.h, result
 * helpers, backend choice, the versioned migration runner, the demo data
 * and the bounded connection pool.
 *
 * Owns: the schema_migrations bookkeeping (portable SQL), the demo rows
 * (portable check-then-insert SQL, so the same code runs on SQLite and
 * MySQL), the pool's mutex/condvar. Must not touch: backend handles (only
 * through struct db_ops) or anything outside src/db.
 * Threads: a struct db is used by one thread at a time; the pool functions
 * are any-thread. The pool has one mutex; nothing is called while holding it
 * except pthread functions (connections are opened and closed outside it).
 */
#define LOG_MODULE "db"

#include "db/db.h"

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "db/internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- backends ---- */

const struct db_ops *db_backend_for(const struct cfg *cfg)
{
    if (cfg && cfg->db_host && cfg->db_host[0])
        return &db_mysql_ops;
    return &db_sqlite_ops;
}

/* ---- wrappers ---- */

int db_open(const struct db_ops *ops, struct db **out, const struct cfg *cfg, struct err *e)
{
    assert(ops && out && cfg);
    struct db *db = NULL;
    struct err local = {0};
    int rc = ops->open(&db, cfg, e ? e : &local);
    if (rc)
        return rc;
    db->ops = ops;
    db->in_tx = false; /* backends need not zero the base */
    *out = db;
    return 0;
}

void db_close(struct db *db)
{
    if (db)
        db->ops->close(db);
}

int db_exec(struct db *db, const char *sql, const struct db_val *args, int nargs,
            struct db_rows *out, struct err *e)
{
    assert(db && sql && out && nargs >= 0 && (nargs == 0 || args));
    struct err local = {0};
    memset(out, 0, sizeof *out);
    int rc = db->ops->exec(db, sql, args, nargs, out, e ? e : &local); /* backends get an err */
    if (rc)
        db_rows_free(out);
    return rc;
}

int db_run(struct db *db, const char *sql, const struct db_val *args, int nargs, struct err *e)
{
    struct db_rows r;
    int rc = db_exec(db, sql, args, nargs, &r, e);
    db_rows_free(&r);
    return rc;
}

int db_begin(struct db *db, struct err *e)
{
    assert(db);
    int rc = db->ops->begin(db, e);
    if (!rc)
        db->in_tx = true;
    return rc;
}

int db_commit(struct db *db, struct err *e)
{
    assert(db);
    int rc = db->ops->commit(db, e);
    if (!rc)
        db->in_tx = false; /* a failed commit leaves it open: the caller rolls back */
    return rc;
}

int db_rollback(struct db *db)
{
    assert(db);
    db->in_tx = false;
    return db->ops->rollback(db);
}

int db_lock_serial(struct db *db, struct err *e)
{
    assert(db);
    if (!db->in_tx)
        return err_set(e, ERR_INTERNAL, NULL, "db_lock_serial outside a transaction");
    return db_run(db, "UPDATE schema_migrations SET version = version WHERE version = 1", NULL, 0,
                  e);
}

int db_kb_search(struct db *db, const char *query, const char *category, int limit,
                 struct db_rows *out, struct err *e)
{
    assert(db && out);
    memset(out, 0, sizeof *out);
    if (!query)
        return err_set(e, ERR_INVALID_ARGUMENTS, NULL, "kb_search: NULL query");
    if (category && !category[0])
        category = NULL;
    struct err local = {0};
    int rc = db->ops->kb_search(db, query, category, limit, out, e ? e : &local);
    if (rc)
        db_rows_free(out);
    return rc;
}

int db_ping(struct db *db, struct err *e)
{
    assert(db);
    if (db->ops->ping)
        return db->ops->ping(db, e);
    return db_run(db, "SELECT 1", NULL, 0, e);
}

const char *db_backend_name(const struct db *db)
{
    return db ? db->ops->name : "none";
}

/* ---- results ---- */

void db_rows_free(struct db_rows *r)
{
    if (!r)
        return;
    for (int i = 0; r->col && i < r->ncols; i++)
        free(r->col[i]);
    for (long i = 0; r->cell && i < (long)r->nrows * r->ncols; i++)
        free(r->cell[i]);
    free(r->col);
    free(r->cell);
    memset(r, 0, sizeof *r);
}

static int col_index(const struct db_rows *r, const char *col)
{
    for (int i = 0; col && r->col && i < r->ncols; i++)
        if (r->col[i] && !strcmp(r->col[i], col))
            return i;
    return -1;
}

const char *db_cell(const struct db_rows *r, int row, const char *col)
{
    if (!r || row < 0 || row >= r->nrows)
        return NULL;
    int c = col_index(r, col);
    return c < 0 ? NULL : r->cell[(long)row * r->ncols + c];
}

long long db_cell_int(const struct db_rows *r, int row, const char *col, long long dflt)
{
    const char *s = db_cell(r, row, col);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return dflt;
    return v;
}

char *db__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int db__rows_init(struct db_rows *r, int ncols, struct err *e)
{
    memset(r, 0, sizeof *r);
    if (ncols <= 0)
        return 0;
    r->col = calloc((size_t)ncols, sizeof *r->col);
    if (!r->col)
        return err_set(e, ERR_NOMEM, NULL, "db: out of memory for %d columns", ncols);
    r->ncols = ncols;
    return 0;
}

int db__rows_set_col(struct db_rows *r, int i, const char *name, struct err *e)
{
    assert(i >= 0 && i < r->ncols);
    r->col[i] = db__strndup(name ? name : "", name ? strlen(name) : 0);
    return r->col[i] ? 0 : err_set(e, ERR_NOMEM, NULL, "db: out of memory for a column name");
}

char **db__rows_add(struct db_rows *r, struct err *e)
{
    int n = r->nrows;
    if (n >= DB_ROWS_MAX) {
        err_set(e, ERR_INTERNAL, NULL, "db: result has more than %d rows", DB_ROWS_MAX);
        return NULL;
    }
    /* capacity is implicit: 16, then doubled whenever nrows reaches a power of two */
    if (n == 0 || (n >= 16 && (n & (n - 1)) == 0)) {
        size_t cap = n == 0 ? 16 : (size_t)n * 2;
        char **cell = realloc(r->cell, cap * (size_t)(r->ncols ? r->ncols : 1) * sizeof *cell);
        if (!cell) {
            err_set(e, ERR_NOMEM, NULL, "db: out of memory for %d rows", n + 1);
            return NULL;
        }
        r->cell = cell;
    }
    char **row = r->cell + (long)n * r->ncols;
    for (int i = 0; i < r->ncols; i++)
        row[i] = NULL;
    r->nrows = n + 1;
    return row;
}

/* ---- time ---- */

void db_utc_text(long long unix_s, char *out, int outsz)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (outsz <= 0)
        return;
    if (!gmtime_r(&t, &tm) || !strftime(out, (size_t)outsz, "%Y-%m-%d %H:%M:%S", &tm))
        out[0] = '\0';
}

/* ---- migrations ---- */

/* Portable on both backends: applied_at is UTC text written by us. */
static const char sql_migrations_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                           " version INTEGER NOT NULL PRIMARY KEY,"
                                           " applied_at VARCHAR(19) NOT NULL)";

static int version_applied(struct db *db, int version, bool *applied, struct err *e)
{
    struct db_rows r;
    struct db_val a[] = {DB_I(version)};
    int rc = db_exec(db, "SELECT version FROM schema_migrations WHERE version = ?", a, 1, &r, e);
    if (!rc)
        *applied = r.nrows > 0;
    db_rows_free(&r);
    return rc;
}

/* 0, or ERR_*; *raced: another process recorded this version first (MySQL, see below). */
static int apply_statements(struct db *db, const struct db_migration *m, bool *raced,
                            struct err *e)
{
    for (int i = 0; m->sql[i]; i++) {
        int rc = db_run(db, m->sql[i], NULL, 0, e);
        if (rc) {
            log_error("migration %d statement %d failed: %s", m->version, i + 1,
                      e ? e->detail : "");
            return rc;
        }
    }
    char now[24];
    db_utc_text(time(NULL), now, sizeof now);
    const char *applied_at = now; /* DB_S() of an array trips -Waddress */
    struct db_val a[] = {DB_I(m->version), DB_S(applied_at)};
    struct err ie = {0};
    int rc =
        db_run(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", a, 2, &ie);
    /*
     * MySQL DDL commits implicitly, so the version's transaction does not
     * serialise two processes migrating at once: both run the (IF NOT EXISTS)
     * statements and the second INSERT meets the first one's row. The schema
     * is there either way: that is success, not a failed start.
     */
    if (rc == ERR_DUPLICATE) {
        *raced = true;
        return 0;
    }
    if (rc && e)
        *e = ie;
    return rc;
}

/* One version in its own transaction; re-checked inside it so concurrent runners agree. */
static int apply_migration(struct db *db, const struct db_migration *m, bool *did, struct err *e)
{
    bool applied = false, raced = false;
    int rc = db_begin(db, e);
    if (rc)
        return rc;
    rc = version_applied(db, m->version, &applied, e);
    if (!rc && !applied)
        rc = apply_statements(db, m, &raced, e);
    if (!rc)
        rc = db_commit(db, e);
    if (rc) {
        db_rollback(db);
        return rc;
    }
    *did = !applied && !raced;
    return 0;
}

int db_migrate(struct db *db, struct err *e)
{
    assert(db);
    const struct db_ops *ops = db->ops;
    int rc = db_run(db, sql_migrations_table, NULL, 0, e);
    for (int i = 0; !rc && i < ops->n_migrations; i++) {
        const struct db_migration *m = &ops->migrations[i];
        bool applied = false, did = false;
        rc = version_applied(db, m->version, &applied, e);
        if (rc || applied)
            continue;
        rc = apply_migration(db, m, &did, e);
        if (!rc && did)
            log_info("applied migration backend=%s version=%d", ops->name, m->version);
    }
    return rc;
}

/* ---- demo data ---- */

struct demo_user {
    int id;
    const char *first, *last, *phone, *email;
};

struct demo_claim {
    int id, user_id;
    const char *ref, *lender, *type, *status, *updated_at;
};

struct demo_req {
    int id, claim_id;
    const char *type, *description, *status, *due_date;
};

struct demo_kb {
    int id;
    const char *category, *title, *body;
};

static const struct demo_user demo_users[] = {
    {1, "Sarah", "Thompson", "+447700900001", "sarah@example.com"},
    {2, "James", "Patel", "+447700900002", "james.patel@example.com"},
};

static const struct demo_claim demo_claims[] = {
    {1, 1, "RMC-1001", "Northway Motor Finance", "car_finance", "in_progress",
     "2026-10-28 14:30:00"},
    {2, 1, "RMC-1002", "Albion Bank", "packaged_bank_account", "offer_received",
     "2026-11-10 09:15:00"},
    {3, 2, "RMC-2001", "Crown Credit Cards", "credit_card", "submitted", "2026-11-03 16:45:00"},
};

static const struct demo_req demo_reqs[] = {
    {1, 1, "id_proof", "Photo ID: passport or driving licence", "outstanding", "2027-01-31"},
    {2, 1, "bank_statement", "Bank statement covering the finance period", "outstanding",
     "2027-02-15"},
    {3, 2, "signed_loa", "Signed letter of authority", "received", "2027-01-15"},
    {4, 3, "signed_loa", "Signed letter of authority", "outstanding", "2027-01-20"},
};

static const struct demo_kb demo_kb[] = {
    {1, "claims", "How claims work",
     "We check whether you were mis-sold a financial product or charged unfairly, then we write "
     "to the lender with a formal complaint on your behalf. The lender investigates and either "
     "makes an offer or rejects the claim. If it is rejected we can take your claim to the "
     "Financial Ombudsman Service. We keep you updated at every step and you can check your "
     "claim status at any time."},
    {2, "fees", "Our fees",
     "We work on a no win, no fee basis: if your claim is not successful you pay nothing. If it "
     "succeeds, our fee is a percentage of the compensation you receive. The fee is capped and "
     "includes VAT; it is never more than 30 percent including VAT, and a lower percentage "
     "applies to larger awards. Your agreement sets out the exact fee and there are no upfront "
     "charges or hidden costs."},
    {3, "timescales", "How long a claim takes",
     "Most claims take between three and six months. The lender has up to eight weeks to send a "
     "final response to the complaint. If the claim goes to the Financial Ombudsman it can take "
     "longer, sometimes several months. We chase the lender for you and tell you as soon as "
     "anything changes, so you don't need to wait long to hear from us."},
    {4, "documents", "Documents we need",
     "To progress your claim we usually need photo ID such as a passport or driving licence, "
     "proof of address, a signed letter of authority, and bank statements or agreements that "
     "cover the period of the finance. Outstanding documents for each claim are listed in your "
     "account, and we will tell you which documents are still needed."},
    {5, "complaints", "How to complain",
     "If you are unhappy with our service, tell us by phone, email or through the portal and we "
     "will log a complaint and respond within eight weeks. If you are still not satisfied you "
     "can refer your complaint to the Financial Ombudsman Service, which is free and "
     "independent."},
    {6, "portal", "Using the customer portal",
     "The customer portal lets you check the status of each claim, see which documents are "
     "outstanding, read our messages and update your contact details. We can text or email you "
     "a secure link to log in; the link expires after a short time and works only once."},
    {7, "documents", "Uploading documents securely",
     "You can upload documents securely through a single-use link that we send to the mobile "
     "number or email address on your account. Take a clear photo or scan of each document and "
     "upload it through the link. Never send documents by ordinary email or social media."},
    {8, "claims", "What happens after an offer",
     "When the lender makes an offer we explain it and recommend whether to accept. You decide: "
     "if you accept, the lender pays the compensation, usually within 28 days, and we invoice "
     "our fee. If you reject the offer we can negotiate or take the claim to the Financial "
     "Ombudsman Service."},
    {9, "claims", "Checking your claim status",
     "You can ask us about your claim status at any time by phone, or check it in the customer "
     "portal. Have your claim reference ready: it starts with RMC followed by four digits."},
    {10, "fees", "Cancelling your claim",
     "You can cancel within 14 days of signing your agreement without paying any fee. After "
     "that you can still cancel, but a fee may be charged for the work already done, as set "
     "out in your agreement."},
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Insert when no row matches the check query; *inserted counts inserts. */
static int insert_missing(struct db *db, const char *check_sql, const struct db_val *cargs,
                          int ncargs, const char *insert_sql, const struct db_val *iargs,
                          int niargs, struct err *e)
{
    struct db_rows r;
    int rc = db_exec(db, check_sql, cargs, ncargs, &r, e);
    int exists = !rc && r.nrows > 0;
    db_rows_free(&r);
    if (rc || exists)
        return rc;
    return db_run(db, insert_sql, iargs, niargs, e);
}

static int demo_load_users(struct db *db, struct err *e)
{
    int rc = 0;
    for (int i = 0; !rc && i < N_OF(demo_users); i++) {
        const struct demo_user *u = &demo_users[i];
        struct db_val c[] = {DB_I(u->id), DB_S(u->phone)};
        struct db_val a[] = {DB_I(u->id), DB_S(u->first), DB_S(u->last), DB_S(u->phone),
                             DB_S(u->email)};
        rc = insert_missing(db, "SELECT id FROM users WHERE id = ? OR phone = ?", c, 2,
                            "INSERT INTO users (id, first_name, last_name, phone, email) "
                            "VALUES (?, ?, ?, ?, ?)",
                            a, 5, e);
    }
    return rc;
}

static int demo_load_claims(struct db *db, struct err *e)
{
    int rc = 0;
    for (int i = 0; !rc && i < N_OF(demo_claims); i++) {
        const struct demo_claim *k = &demo_claims[i];
        struct db_val c[] = {DB_I(k->id), DB_S(k->ref)};
        struct db_val a[] = {DB_I(k->id),         DB_I(k->user_id),   DB_S(k->ref),
                             DB_S(k->lender),     DB_S(k->type),      DB_S(k->status),
                             DB_S(k->updated_at), DB_S(k->updated_at)};
        rc = insert_missing(db, "SELECT id FROM user_claims WHERE id = ? OR claim_reference = ?", c,
                            2,
                            "INSERT INTO user_claims (id, user_id, claim_reference, lender, "
                            "claim_type, status, updated_at, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            a, 8, e);
    }
    return rc;
}

static int demo_load_reqs(struct db *db, struct err *e)
{
    int rc = 0;
    for (int i = 0; !rc && i < N_OF(demo_reqs); i++) {
        const struct demo_req *q = &demo_reqs[i];
        struct db_val c[] = {DB_I(q->id)};
        struct db_val a[] = {DB_I(q->id),          DB_I(q->claim_id), DB_S(q->type),
                             DB_S(q->description), DB_S(q->status),   DB_S(q->due_date)};
        rc = insert_missing(db, "SELECT id FROM claim_requirements WHERE id = ?", c, 1,
                            "INSERT INTO claim_requirements (id, claim_id, requirement_type, "
                            "description, status, due_date) VALUES (?, ?, ?, ?, ?, ?)",
                            a, 6, e);
    }
    return rc;
}

static int demo_load_kb(struct db *db, struct err *e)
{
    int rc = 0;
    for (int i = 0; !rc && i < N_OF(demo_kb); i++) {
        const struct demo_kb *k = &demo_kb[i];
        struct db_val c[] = {DB_I(k->id), DB_S(k->title)};
        struct db_val a[] = {DB_I(k->id), DB_S(k->category), DB_S(k->title), DB_S(k->body)};
        rc = insert_missing(db, "SELECT id FROM knowledge_base WHERE id = ? OR title = ?", c, 2,
                            "INSERT INTO knowledge_base (id, category, title, body) "
                            "VALUES (?, ?, ?, ?)",
                            a, 4, e);
    }
    return rc;
}

int db_load_demo(struct db *db, struct err *e)
{
    assert(db);
    int rc = db_begin(db, e);
    if (rc)
        return rc;
    /* Check-then-insert: serialised across processes (two `db init --demo` at once on
     * MySQL both saw no rows and the second failed on a duplicate id). */
    rc = db_lock_serial(db, e);
    if (!rc)
        rc = demo_load_users(db, e);
    if (!rc)
        rc = demo_load_claims(db, e);
    if (!rc)
        rc = demo_load_reqs(db, e);
    if (!rc)
        rc = demo_load_kb(db, e);
    if (!rc)
        rc = db_commit(db, e);
    if (rc) {
        db_rollback(db);
        log_error("loading demo data failed: %s", e ? e->detail : "");
    }
    return rc;
}

/* ---- pool ---- */

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a connection is returned or a slot frees */
    const struct db_ops *ops;
    const struct cfg *cfg; /* borrowed; outlives the pool */
    int size;              /* connections max */
    int n_open;            /* opened or being opened (idle + borrowed + opening) */
    int n_idle;
    struct db **idle; /* size slots, stack of idle connections */
};

int db_pool_new(struct db_pool **out, const struct db_ops *ops, const struct cfg *cfg, int size,
                struct err *e)
{
    assert(ops && out && cfg);
    if (size < 1)
        return err_set(e, ERR_CONFIG, NULL, "db pool size must be >= 1 (got %d)", size);
    struct db_pool *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, ERR_NOMEM, NULL, "db pool: out of memory");
    p->idle = calloc((size_t)size, sizeof *p->idle);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!p->idle || pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->cv, &ca)) {
        pthread_condattr_destroy(&ca);
        free(p->idle);
        free(p);
        return err_set(e, ERR_NOMEM, NULL, "db pool: cannot initialise");
    }
    pthread_condattr_destroy(&ca);
    p->ops = ops;
    p->cfg = cfg;
    p->size = size;
    *out = p;
    return 0;
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    if (p->n_open != p->n_idle)
        log_warn("db pool freed with %d connection(s) still borrowed", p->n_open - p->n_idle);
    for (int i = 0; i < p->n_idle; i++)
        db_close(p->idle[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->idle);
    free(p);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Open a new connection for a slot already reserved in n_open; releases the slot on failure. */
static int pool_open_one(struct db_pool *p, struct db **out, struct err *e)
{
    struct err oe = {0};
    int rc = db_open(p->ops, out, p->cfg, &oe);
    if (!rc)
        return 0;
    pthread_mutex_lock(&p->mu);
    p->n_open--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    log_warn("db pool: cannot open a %s connection: %s", p->ops->name, oe.detail);
    return err_set(e, ERR_DB_UNAVAILABLE, NULL, "%s", oe.detail[0] ? oe.detail : err_name(rc));
}

int db_pool_get(struct db_pool *p, int wait_ms, struct db **out, struct err *e)
{
    assert(p && out);
    struct timespec deadline;
    deadline_after(&deadline, wait_ms > 0 ? wait_ms : 0);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->n_idle > 0) {
            *out = p->idle[--p->n_idle];
            pthread_mutex_unlock(&p->mu);
            return 0;
        }
        if (p->n_open < p->size) {
            p->n_open++;
            pthread_mutex_unlock(&p->mu);
            return pool_open_one(p, out, e);
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT && p->n_idle == 0 &&
            p->n_open >= p->size)
            break;
    }
    pthread_mutex_unlock(&p->mu);
    return err_set(e, ERR_BUSY, NULL,
                   "db pool: all %d %s connections busy for %d ms (DB_POOL_SIZE, "
                   "DB_POOL_WAIT_MS)",
                   p->size, p->ops->name, wait_ms);
}

void db_pool_put(struct db_pool *p, struct db *db, bool broken)
{
    assert(p);
    if (!db)
        return;
    if (!broken && db->in_tx) {
        log_warn("db pool: connection returned inside a transaction; rolling back");
        broken = db_rollback(db) != 0;
    }
    pthread_mutex_lock(&p->mu);
    if (broken)
        p->n_open--;
    else
        p->idle[p->n_idle++] = db;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (broken)
        db_close(db);
}

const struct db_ops *db_pool_ops(const struct db_pool *p)
{
    return p ? p->ops : NULL;
}

int db_pool_size(const struct db_pool *p)
{
    return p ? p->size : 0;
}
