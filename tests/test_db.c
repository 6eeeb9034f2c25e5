/*
 * test_db.c - the database layer on real backends: migrations, demo data,
 * prepared parameters, NULLs, insert ids, transactions, knowledge-base
 * search, the connection pool, and unreachable databases.
 *
 * The whole table runs once per backend from vt_db_backends(): SQLite
 * always, MySQL unless VWS_SQLITE_ONLY=1 (a missing MySQL server then fails).
 * Each test gets a brand-new database (vt_db_fresh).
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

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_backend; /* backend of the group being run */

struct fx {
    struct cfg c;
    struct vt_db h;
    struct db *db; /* migrated, no demo */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    vt_db_fresh(g_backend, &f->c, &f->h, NULL);
    f->db = vt_db_open(&f->c, false);
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    db_close(f->db);
    vt_db_cleanup(&f->h, &f->c);
    free(f);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Count of rows of a query with parameters. */
static long long count_where(struct db *db, const char *sql, const struct db_val *a, int n)
{
    struct db_rows r;
    struct err e = {0};
    int rc = db_exec(db, sql, a, n, &r, &e);
    if (rc)
        fail_msg("%s: %s", sql, e.detail);
    long long v = db_cell_int(&r, 0, "n", -1);
    db_rows_free(&r);
    return v;
}

static const char *const all_tables[] = {
    "users",        "user_claims",  "claim_requirements", "missed_calls", "voice_action_logs",
    "sms_messages", "portal_links", "knowledge_base",     "voice_calls",  "schema_migrations",
    NULL,
};

static long long table_count(struct db *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
    return vt_db_int(db, sql);
}

/* ---- migrations and demo ---- */

static void test_db_migrate_twice_is_noop(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    const struct db_ops *ops = db_backend_for(&f->c);
    long long before[16];

    assert_string_equal(db_backend_name(f->db), g_backend);
    assert_int_equal(vt_db_int(f->db, "SELECT COUNT(*) FROM schema_migrations"), ops->n_migrations);
    assert_int_equal(vt_db_int(f->db, "SELECT MAX(version) FROM schema_migrations"),
                     ops->migrations[ops->n_migrations - 1].version);
    assert_int_equal(db_run(f->db,
                            "INSERT INTO users (first_name, last_name, phone) VALUES "
                            "('Keep', 'Me', '+447700900055')",
                            NULL, 0, &e),
                     0);
    for (int i = 0; all_tables[i]; i++)
        before[i] = table_count(f->db, all_tables[i]);

    assert_int_equal(db_migrate(f->db, &e), 0);
    assert_int_equal(db_migrate(f->db, &e), 0);
    for (int i = 0; all_tables[i]; i++)
        assert_int_equal(table_count(f->db, all_tables[i]), before[i]);
    assert_int_equal(vt_db_int(f->db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 1"),
                     1);

    /* a second connection (a second `db init`) agrees */
    struct db *db2 = vt_db_open(&f->c, false);
    assert_int_equal(table_count(db2, "schema_migrations"), ops->n_migrations);
    assert_int_equal(table_count(db2, "users"), 1);
    db_close(db2);
}

static void assert_demo_rows(struct db *db)
{
    struct db_rows r;
    struct err e = {0};
    assert_int_equal(table_count(db, "users"), 2);
    assert_int_equal(table_count(db, "user_claims"), 3);
    assert_int_equal(table_count(db, "claim_requirements"), 4);
    assert_true(table_count(db, "knowledge_base") >= 8);

    assert_int_equal(db_exec(db,
                             "SELECT id, first_name, last_name, phone, email FROM users "
                             "ORDER BY id",
                             NULL, 0, &r, &e),
                     0);
    assert_int_equal(r.nrows, 2);
    assert_int_equal(db_cell_int(&r, 0, "id", 0), 1);
    assert_string_equal(db_cell(&r, 0, "first_name"), "Sarah");
    assert_string_equal(db_cell(&r, 0, "last_name"), "Thompson");
    assert_string_equal(db_cell(&r, 0, "phone"), "+447700900001");
    assert_string_equal(db_cell(&r, 0, "email"), "sarah@example.com");
    assert_int_equal(db_cell_int(&r, 1, "id", 0), 2);
    assert_string_equal(db_cell(&r, 1, "first_name"), "James");
    assert_string_equal(db_cell(&r, 1, "phone"), "+447700900002");
    assert_string_equal(db_cell(&r, 1, "email"), "james.patel@example.com");
    db_rows_free(&r);

    assert_int_equal(db_exec(db,
                             "SELECT id, user_id, claim_reference, lender, claim_type, status "
                             "FROM user_claims ORDER BY id",
                             NULL, 0, &r, &e),
                     0);
    assert_int_equal(r.nrows, 3);
    static const char *const refs[] = {"RMC-1001", "RMC-1002", "RMC-2001"};
    static const char *const status[] = {"in_progress", "offer_received", "submitted"};
    static const char *const lender[] = {"Northway Motor Finance", "Albion Bank",
                                         "Crown Credit Cards"};
    static const int owner[] = {1, 1, 2};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(db_cell_int(&r, i, "id", 0), i + 1);
        assert_int_equal(db_cell_int(&r, i, "user_id", 0), owner[i]);
        assert_string_equal(db_cell(&r, i, "claim_reference"), refs[i]);
        assert_string_equal(db_cell(&r, i, "status"), status[i]);
        assert_string_equal(db_cell(&r, i, "lender"), lender[i]);
    }
    db_rows_free(&r);

    const char *sql = "SELECT COUNT(*) AS n FROM claim_requirements q JOIN user_claims c ON "
                      "c.id = q.claim_id WHERE c.claim_reference = ? AND q.status = 'outstanding'";
    struct db_val a1[] = {DB_S("RMC-1001")}, a2[] = {DB_S("RMC-1002")}, a3[] = {DB_S("RMC-2001")};
    assert_int_equal(count_where(db, sql, a1, 1), 2);
    assert_int_equal(count_where(db, sql, a2, 1), 0);
    assert_int_equal(count_where(db, sql, a3, 1), 1);
    struct db_val nobody[] = {DB_S("+447700900099")};
    assert_int_equal(count_where(db, "SELECT COUNT(*) AS n FROM users WHERE phone = ?", nobody, 1),
                     0);
    assert_int_equal(db_exec(db,
                             "SELECT requirement_type, description FROM claim_requirements "
                             "WHERE claim_id = 1 ORDER BY id",
                             NULL, 0, &r, &e),
                     0);
    assert_int_equal(r.nrows, 2);
    assert_string_equal(db_cell(&r, 0, "requirement_type"), "id_proof");
    assert_string_equal(db_cell(&r, 0, "description"), "Photo ID: passport or driving licence");
    assert_string_equal(db_cell(&r, 1, "requirement_type"), "bank_statement");
    db_rows_free(&r);
    assert_int_equal(
        vt_db_int(db, "SELECT COUNT(DISTINCT category) FROM knowledge_base WHERE category IN "
                      "('claims','fees','timescales','documents','complaints','portal')"),
        6);
}

static void test_db_demo_twice_gives_exactly_the_demo_rows(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    assert_int_equal(db_load_demo(f->db, &e), 0);
    assert_demo_rows(f->db);
    long long kb = table_count(f->db, "knowledge_base");
    assert_int_equal(db_load_demo(f->db, &e), 0);
    assert_int_equal(db_migrate(f->db, &e), 0);
    assert_demo_rows(f->db);
    assert_int_equal(table_count(f->db, "knowledge_base"), kb);

    /* new rows get ids after the fixed demo ids */
    struct db_rows r;
    assert_int_equal(
        db_exec(f->db, "INSERT INTO users (first_name, last_name, phone) VALUES (?, ?, ?)",
                (struct db_val[]){DB_S("New"), DB_S("Person"), DB_S("+447700900077")}, 3, &r, &e),
        0);
    assert_true(r.insert_id > 2);
    db_rows_free(&r);
}

/* ---- statements ---- */

static void test_db_params_round_trip_literally(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    static const char *const nasty[] = {
        "O'Brien",
        "Robert'); DROP TABLE users;--",
        "\"double\" and \\backslash\\ and `tick`",
        "100% _like_ %",
        "' OR '1'='1",
        "Zo\xc3\xab \xf0\x9f\x98\x80 \xe2\x82\xac",
        "",
        "?",
        "line1\nline2\ttab",
        NULL,
    };
    for (int i = 0; nasty[i]; i++) {
        struct db_rows r;
        struct db_val a[] = {DB_S(nasty[i]), DB_S("Test"), DB_S("+447700900050")};
        assert_int_equal(
            db_exec(f->db, "INSERT INTO users (first_name, last_name, phone) VALUES (?, ?, ?)", a,
                    3, &r, &e),
            0);
        long long id = r.insert_id;
        db_rows_free(&r);
        struct db_val q[] = {DB_I(id)};
        assert_int_equal(db_exec(f->db, "SELECT first_name FROM users WHERE id = ?", q, 1, &r, &e),
                         0);
        assert_int_equal(r.nrows, 1);
        assert_string_equal(db_cell(&r, 0, "first_name"), nasty[i]);
        db_rows_free(&r);
        struct db_val w[] = {DB_S(nasty[i])};
        assert_int_equal(
            count_where(f->db, "SELECT COUNT(*) AS n FROM users WHERE first_name = ?", w, 1), 1);
    }
    assert_int_equal(table_count(f->db, "users"), 9);
}

static void test_db_nulls_read_back_as_null(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    struct db_val a[] = {DB_S("Nora"), DB_S("Null"), DB_S("+447700900051"), DB_S(NULL)};
    assert_int_equal(db_run(f->db,
                            "INSERT INTO users (first_name, last_name, phone, email) "
                            "VALUES (?, ?, ?, ?)",
                            a, 4, &e),
                     0);
    struct db_val b[] = {DB_S("+447700900051"), DB_NIL};
    assert_int_equal(db_run(f->db,
                            "INSERT INTO missed_calls (phone, callback_time, user_id) "
                            "VALUES (?, '2027-01-01 10:00:00', ?)",
                            b, 2, &e),
                     0);
    assert_int_equal(db_exec(f->db,
                             "SELECT u.email AS email, m.user_id AS user_id, m.status AS status "
                             "FROM users u JOIN missed_calls m ON m.phone = u.phone",
                             NULL, 0, &r, &e),
                     0);
    assert_int_equal(r.nrows, 1);
    assert_int_equal(r.ncols, 3);
    assert_null(db_cell(&r, 0, "email"));
    assert_null(db_cell(&r, 0, "user_id"));
    assert_int_equal(db_cell_int(&r, 0, "user_id", -7), -7);
    assert_string_equal(db_cell(&r, 0, "status"), "pending");
    assert_null(db_cell(&r, 0, "no_such_column"));
    assert_null(db_cell(&r, 1, "status"));
    db_rows_free(&r);
    db_rows_free(&r); /* freeing twice is harmless */
}

static void test_db_insert_id_and_changes(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    long long ids[3];
    for (int i = 0; i < 3; i++) {
        struct db_val a[] = {DB_S("+447700900060"), DB_S("2027-01-01 10:00:00")};
        assert_int_equal(db_exec(f->db,
                                 "INSERT INTO missed_calls (phone, callback_time) VALUES (?, ?)", a,
                                 2, &r, &e),
                         0);
        assert_int_equal(r.changes, 1);
        assert_true(r.insert_id > 0);
        ids[i] = r.insert_id;
        db_rows_free(&r);
    }
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
    struct db_val u[] = {DB_S("done"), DB_I(ids[1])};
    assert_int_equal(
        db_exec(f->db, "UPDATE missed_calls SET status = ? WHERE id >= ?", u, 2, &r, &e), 0);
    assert_int_equal(r.changes, 2);
    assert_int_equal(r.insert_id, 0);
    db_rows_free(&r);
    assert_int_equal(
        db_exec(f->db, "UPDATE missed_calls SET status = 'x' WHERE id < 0", NULL, 0, &r, &e), 0);
    assert_int_equal(r.changes, 0);
    db_rows_free(&r);
    assert_int_equal(db_exec(f->db, "SELECT id FROM missed_calls ORDER BY id", NULL, 0, &r, &e), 0);
    assert_int_equal(r.nrows, 3);
    assert_int_equal(r.changes, 0);
    assert_int_equal(r.insert_id, 0);
    assert_int_equal(db_cell_int(&r, 2, "id", 0), ids[2]);
    db_rows_free(&r);
    assert_int_equal(db_exec(f->db, "DELETE FROM missed_calls", NULL, 0, &r, &e), 0);
    assert_int_equal(r.changes, 3);
    db_rows_free(&r);
}

static void test_db_transactions_roll_back(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    const char *ins = "INSERT INTO users (first_name, last_name, phone) VALUES ('T', 'X', ?)";
    struct db_val a[] = {DB_S("+447700900070")};

    assert_int_equal(db_begin(f->db, &e), 0);
    assert_int_equal(db_run(f->db, ins, a, 1, &e), 0);
    assert_int_equal(db_run(f->db, ins, a, 1, &e), 0);
    assert_int_equal(table_count(f->db, "users"), 2);
    assert_int_equal(db_rollback(f->db), 0);
    assert_int_equal(table_count(f->db, "users"), 0);

    assert_int_equal(db_begin(f->db, &e), 0);
    assert_int_equal(db_run(f->db, ins, a, 1, &e), 0);
    assert_int_equal(db_commit(f->db, &e), 0);
    assert_int_equal(table_count(f->db, "users"), 1);
    assert_int_equal(db_rollback(f->db), 0); /* nothing open: harmless */
    assert_int_equal(table_count(f->db, "users"), 1);
}

static void test_db_errors_are_codes_not_crashes(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    assert_int_equal(db_load_demo(f->db, &e), 0);
    /* a duplicate unique key is ERR_DUPLICATE on every backend */
    struct db_val a[] = {DB_S("RMC-1001")};
    int rc = db_run(f->db,
                    "INSERT INTO user_claims (user_id, claim_reference, lender, claim_type, status)"
                    " VALUES (1, ?, 'L', 'car_finance', 'submitted')",
                    a, 1, &e);
    assert_int_equal(rc, ERR_DUPLICATE);
    assert_int_equal(e.code, ERR_DUPLICATE);
    assert_true(strlen(e.detail) > 0);
    assert_int_equal(table_count(f->db, "user_claims"), 3);
    /* SQL errors come back as an error with detail, and the connection still works */
    err_clear(&e);
    struct db_rows r;
    assert_true(db_exec(f->db, "SELECT nope FROM no_such_table", NULL, 0, &r, &e) < 0);
    assert_true(strlen(e.detail) > 0);
    assert_int_equal(r.nrows, 0);
    assert_int_equal(table_count(f->db, "users"), 2);
}

/* ---- knowledge base ---- */

static bool has_title(const struct db_rows *r, const char *title)
{
    for (int i = 0; i < r->nrows; i++)
        if (!strcmp(db_cell(r, i, "title"), title))
            return true;
    return false;
}

static void kb(struct db *db, const char *q, const char *cat, int limit, struct db_rows *r)
{
    struct err e = {0};
    int rc = db_kb_search(db, q, cat, limit, r, &e);
    if (rc)
        fail_msg("kb_search(%s): %s", q, e.detail);
}

static void test_db_kb_search_finds_articles(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    assert_int_equal(db_load_demo(f->db, &e), 0);

    kb(f->db, "fees", NULL, 3, &r);
    assert_true(r.nrows >= 1 && r.nrows <= 3);
    assert_string_equal(db_cell(&r, 0, "category"), "fees");
    assert_true(has_title(&r, "Our fees"));
    assert_true(db_cell_int(&r, 0, "id", 0) > 0);
    assert_non_null(db_cell(&r, 0, "snippet"));
    assert_true(strlen(db_cell(&r, 0, "snippet")) > 0);
    db_rows_free(&r);

    kb(f->db, "how long does a claim take", NULL, 3, &r);
    assert_true(r.nrows >= 1);
    assert_true(has_title(&r, "How long a claim takes"));
    db_rows_free(&r);

    kb(f->db, "what's my claim?", NULL, 3, &r);
    assert_true(r.nrows >= 1);
    db_rows_free(&r);

    kb(f->db, "documents", NULL, 5, &r);
    assert_true(r.nrows >= 1);
    assert_string_equal(db_cell(&r, 0, "category"), "documents");
    assert_true(has_title(&r, "Documents we need"));
    db_rows_free(&r);

    /* typographic apostrophe, accents, emoji and a very long word are fine too */
    kb(f->db,
       "what\xe2\x80\x99s the fee? caf\xc3\xa9 \xe2\x98\x95 a"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x",
       NULL, 3, &r);
    assert_true(r.nrows >= 1);
    assert_string_equal(db_cell(&r, 0, "category"), "fees");
    db_rows_free(&r);

    kb(f->db, "Can I complain to the Financial Ombudsman?", NULL, 3, &r);
    assert_true(has_title(&r, "How to complain"));
    db_rows_free(&r);
}

static void test_db_kb_search_category_filter(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    assert_int_equal(db_load_demo(f->db, &e), 0);

    kb(f->db, "claim fee", "fees", 10, &r);
    assert_true(r.nrows >= 1);
    for (int i = 0; i < r.nrows; i++)
        assert_string_equal(db_cell(&r, i, "category"), "fees");
    db_rows_free(&r);

    kb(f->db, "claim fee", NULL, 10, &r);
    bool other = false;
    for (int i = 0; i < r.nrows; i++)
        other |= strcmp(db_cell(&r, i, "category"), "fees") != 0;
    assert_true(other);
    db_rows_free(&r);

    kb(f->db, "fees", "portal", 3, &r);
    for (int i = 0; i < r.nrows; i++)
        assert_string_equal(db_cell(&r, i, "category"), "portal");
    db_rows_free(&r);

    kb(f->db, "claim", NULL, 2, &r);
    assert_int_equal(r.nrows, 2);
    db_rows_free(&r);
}

static void test_db_kb_search_garbage_gives_no_rows(void **state)
{
    struct fx *f = *state;
    struct err e = {0};
    struct db_rows r;
    assert_int_equal(db_load_demo(f->db, &e), 0);
    static const char *const junk[] = {
        "",
        "   ",
        "\"",
        "'",
        "\"*:()^-'+",
        "NEAR(",
        "zzqxv wqqzk",
        "*",
        "title:",
        "\"unterminated",
        "-- ; DROP TABLE knowledge_base",
        NULL,
    };
    for (int i = 0; junk[i]; i++) {
        err_clear(&e);
        int rc = db_kb_search(f->db, junk[i], NULL, 3, &r, &e);
        if (rc)
            fail_msg("kb_search(%s) failed: %s", junk[i], e.detail);
        if (r.nrows != 0)
            fail_msg("kb_search(%s) found %d rows, first '%s'", junk[i], r.nrows,
                     db_cell(&r, 0, "title"));
        assert_int_equal(r.ncols, 4);
        db_rows_free(&r);
    }
    assert_true(table_count(f->db, "knowledge_base") >= 8);
    assert_int_equal(db_kb_search(f->db, NULL, NULL, 3, &r, &e) < 0, 1);
}

/* ---- pool ---- */

static void test_db_pool_third_get_waits_then_busy(void **state)
{
    struct fx *f = *state;
    struct db_pool *p = NULL;
    struct db *a = NULL, *b = NULL, *c = NULL;
    struct err e = {0};
    assert_int_equal(db_pool_new(&p, db_backend_for(&f->c), &f->c, 2, &e), 0);
    assert_int_equal(db_pool_size(p), 2);
    assert_ptr_equal(db_pool_ops(p), db_backend_for(&f->c));
    assert_int_equal(db_pool_get(p, 1000, &a, &e), 0);
    assert_int_equal(db_pool_get(p, 1000, &b, &e), 0);
    assert_ptr_not_equal(a, b);

    double t0 = now_ms();
    int rc = db_pool_get(p, 300, &c, &e);
    double waited = now_ms() - t0;
    assert_int_equal(rc, ERR_BUSY);
    assert_null(c);
    assert_true(waited >= 299.0);
    assert_true(waited < 300.0 + 2000.0);
    assert_int_equal(e.code, ERR_BUSY);
    assert_true(strlen(e.say) > 0);
    assert_non_null(strstr(e.detail, "busy"));

    db_pool_put(p, a, false);
    err_clear(&e);
    t0 = now_ms();
    assert_int_equal(db_pool_get(p, 300, &c, &e), 0);
    assert_true(now_ms() - t0 < 250.0);
    assert_ptr_equal(c, a);
    assert_int_equal(db_ping(c, &e), 0);
    db_pool_put(p, b, false);
    db_pool_put(p, c, false);
    db_pool_free(p);
}

struct waiter {
    struct db_pool *p;
    int rc;
    double waited;
    struct db *got;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    struct err e = {0};
    double t0 = now_ms();
    w->rc = db_pool_get(w->p, 5000, &w->got, &e);
    w->waited = now_ms() - t0;
    return NULL;
}

static void test_db_pool_waiter_gets_returned_connection(void **state)
{
    struct fx *f = *state;
    struct db_pool *p = NULL;
    struct db *a = NULL;
    struct err e = {0};
    pthread_t t;
    assert_int_equal(db_pool_new(&p, db_backend_for(&f->c), &f->c, 1, &e), 0);
    assert_int_equal(db_pool_get(p, 100, &a, &e), 0);
    struct waiter w = {.p = p, .rc = 99};
    assert_int_equal(pthread_create(&t, NULL, waiter_run, &w), 0);
    usleep(150 * 1000);
    db_pool_put(p, a, false);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_ptr_equal(w.got, a);
    assert_true(w.waited >= 100.0 && w.waited < 4000.0);
    db_pool_put(p, w.got, false);
    db_pool_free(p);
}

static void test_db_pool_broken_put_reconnects(void **state)
{
    struct fx *f = *state;
    struct db_pool *p = NULL;
    struct db *a = NULL;
    struct err e = {0};
    assert_int_equal(db_pool_new(&p, db_backend_for(&f->c), &f->c, 1, &e), 0);
    assert_int_equal(db_pool_get(p, 100, &a, &e), 0);
    /* a TEMPORARY table lives exactly as long as its connection */
    assert_int_equal(db_run(a, "CREATE TEMPORARY TABLE vt_marker (x INTEGER)", NULL, 0, &e), 0);
    db_pool_put(p, a, false);
    assert_int_equal(db_pool_get(p, 100, &a, &e), 0);
    assert_int_equal(vt_db_int(a, "SELECT COUNT(*) FROM vt_marker"), 0); /* same connection */
    db_pool_put(p, a, true);

    assert_int_equal(db_pool_get(p, 100, &a, &e), 0); /* slot freed, reopened */
    assert_true(db_run(a, "SELECT COUNT(*) FROM vt_marker", NULL, 0, &e) < 0);
    err_clear(&e);
    assert_int_equal(db_ping(a, &e), 0);
    assert_int_equal(table_count(a, "schema_migrations"), 1);
    db_pool_put(p, a, false);
    db_pool_free(p);
}

static void test_db_pool_put_inside_transaction_rolls_back(void **state)
{
    struct fx *f = *state;
    struct db_pool *p = NULL;
    struct db *a = NULL;
    struct err e = {0};
    const char *ins = "INSERT INTO users (first_name, last_name, phone) VALUES ('Tx', 'Left', ?)";
    struct db_val ph[] = {DB_S("+447700900071")};
    assert_int_equal(db_pool_new(&p, db_backend_for(&f->c), &f->c, 1, &e), 0);
    assert_int_equal(db_pool_get(p, 100, &a, &e), 0);
    assert_int_equal(db_begin(a, &e), 0);
    assert_true(a->in_tx);
    assert_int_equal(db_run(a, ins, ph, 1, &e), 0);
    db_pool_put(p, a, false); /* caller forgot commit/rollback */

    /* the write was undone and no lock is left behind for other connections */
    double t0 = now_ms();
    assert_int_equal(db_run(f->db, ins, ph, 1, &e), 0);
    assert_true(now_ms() - t0 < 1000.0);
    assert_int_equal(table_count(f->db, "users"), 1);
    assert_int_equal(db_pool_get(p, 100, &a, &e), 0);
    assert_false(a->in_tx);
    assert_int_equal(table_count(a, "users"), 1);
    db_pool_put(p, a, false);
    db_pool_free(p);
}

#define HAMMER_THREADS 4
#define HAMMER_QUERIES 200

struct hammer {
    struct db_pool *p;
    int id, ok, inserted;
    char fail[400];
};

static int hammer_one(struct hammer *h, int i)
{
    struct db *db = NULL;
    struct err e = {0};
    struct db_rows r;
    char phone[32];
    int rc = db_pool_get(h->p, 20000, &db, &e);
    if (rc)
        goto out;
    if (i % 2 == 0) {
        snprintf(phone, sizeof phone, "+4477009%02d%03d", h->id, i);
        const char *ph = phone;
        struct db_val a[] = {DB_S(ph), DB_S("2027-01-01 10:00:00"), DB_S("hammer")};
        rc = db_exec(db, "INSERT INTO missed_calls (phone, callback_time, reason) VALUES (?, ?, ?)",
                     a, 3, &r, &e);
        if (!rc && r.changes == 1 && r.insert_id > 0)
            h->inserted++;
    } else {
        struct db_val a[] = {DB_S("hammer")};
        rc = db_exec(db, "SELECT COUNT(*) AS n FROM missed_calls WHERE reason = ?", a, 1, &r, &e);
        if (!rc && db_cell_int(&r, 0, "n", -1) < 0)
            rc = ERR_INTERNAL;
    }
    db_rows_free(&r);
    db_pool_put(h->p, db, rc == ERR_DB_UNAVAILABLE);
out:
    if (rc && !h->fail[0])
        snprintf(h->fail, sizeof h->fail, "thread %d query %d: %s %s", h->id, i, err_name(rc),
                 e.detail);
    return rc;
}

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < HAMMER_QUERIES; i++)
        if (!hammer_one(h, i))
            h->ok++;
    return NULL;
}

static void test_db_pool_threads_hammering_all_succeed(void **state)
{
    struct fx *f = *state;
    struct db_pool *p = NULL;
    struct err e = {0};
    pthread_t t[HAMMER_THREADS];
    struct hammer h[HAMMER_THREADS];
    assert_int_equal(db_pool_new(&p, db_backend_for(&f->c), &f->c, 3, &e), 0);
    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (struct hammer){.p = p, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    int ok = 0, inserted = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(t[i], NULL);
        if (h[i].fail[0])
            print_error("%s\n", h[i].fail);
        ok += h[i].ok;
        inserted += h[i].inserted;
    }
    db_pool_free(p);
    assert_int_equal(ok, HAMMER_THREADS * HAMMER_QUERIES);
    assert_int_equal(inserted, HAMMER_THREADS * HAMMER_QUERIES / 2);
    assert_int_equal(table_count(f->db, "missed_calls"), inserted);
}

/* ---- unreachable database ---- */

static void unopenable_cfg(struct cfg *c, char *dir, size_t dirsz)
{
    char path[600], kv0[700], kv1[64];
    const char *kv[4] = {0};
    char *d = vt_tmpdir();
    snprintf(dir, dirsz, "%s", d);
    free(d);
    if (!strcmp(g_backend, "sqlite")) {
        /* parent is a regular file: no directory can be made (even as root) */
        snprintf(path, sizeof path, "%s/afile", dir);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
        snprintf(kv0, sizeof kv0, "DB_PATH=%s/afile/sub/voice-ws.db", dir);
        kv[0] = kv0;
    } else {
        snprintf(kv0, sizeof kv0, "DB_HOST=127.0.0.1");
        snprintf(kv1, sizeof kv1, "DB_PORT=%d", vt_free_port()); /* nothing listens there */
        kv[0] = kv0;
        kv[1] = kv1;
        kv[2] = "DB_CONNECT_TIMEOUT=2";
    }
    vt_cfg(c, kv);
}

static void test_db_unopenable_database_is_unavailable(void **state)
{
    (void)state;
    struct cfg c;
    char dir[256];
    struct db *db = NULL;
    struct db_pool *p = NULL;
    struct err e = {0};
    unopenable_cfg(&c, dir, sizeof dir);

    assert_int_equal(db_open(db_backend_for(&c), &db, &c, &e), ERR_DB_UNAVAILABLE);
    assert_null(db);
    assert_int_equal(e.code, ERR_DB_UNAVAILABLE);
    assert_true(strlen(e.detail) > 0);
    assert_true(strlen(e.say) > 0);

    assert_int_equal(db_pool_new(&p, db_backend_for(&c), &c, 2, &e), 0);
    for (int i = 0; i < 3; i++) { /* failed opens give their slot back: never ERR_BUSY */
        err_clear(&e);
        assert_int_equal(db_pool_get(p, 100, &db, &e), ERR_DB_UNAVAILABLE);
        assert_true(strlen(e.detail) > 0);
    }
    db_pool_free(p);
    cfg_free(&c);
    vt_rmdir(dir);
}

static void test_db_sqlite_garbage_file_is_unavailable(void **state)
{
    (void)state;
    struct cfg c;
    struct db *db = NULL;
    struct err e = {0};
    char path[512], kv0[600];
    char *dir = vt_tmpdir();
    snprintf(path, sizeof path, "%s/not-a-db.db", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not an sqlite database, just text. ", fp);
    fclose(fp);
    snprintf(kv0, sizeof kv0, "DB_PATH=%s", path);
    const char *kv[] = {kv0, NULL};
    vt_cfg(&c, kv);
    int rc = db_open(&db_sqlite_ops, &db, &c, &e);
    if (!rc) /* some SQLite versions read the header lazily: then migrate must fail cleanly */
        rc = db_migrate(db, &e);
    assert_int_equal(rc, ERR_DB_UNAVAILABLE);
    db_close(db);
    cfg_free(&c);
    vt_rmdir(dir);
    free(dir);
}

static void test_db_utc_text_and_backend_choice(void **state)
{
    (void)state;
    char buf[32];
    db_utc_text(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01 00:00:00");
    db_utc_text(1798761599LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-12-31 23:59:59");

    struct cfg c;
    const char *kv[] = {"DB_PATH=:memory:", NULL};
    vt_cfg(&c, kv);
    assert_ptr_equal(db_backend_for(&c), &db_sqlite_ops);
    struct db *db = vt_db_open(&c, true);
    assert_string_equal(db_backend_name(db), "sqlite");
    assert_int_equal(table_count(db, "users"), 2);
    db_close(db);
    cfg_free(&c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

static const struct CMUnitTest per_backend[] = {
    T(test_db_migrate_twice_is_noop),
    T(test_db_demo_twice_gives_exactly_the_demo_rows),
    T(test_db_params_round_trip_literally),
    T(test_db_nulls_read_back_as_null),
    T(test_db_insert_id_and_changes),
    T(test_db_transactions_roll_back),
    T(test_db_errors_are_codes_not_crashes),
    T(test_db_kb_search_finds_articles),
    T(test_db_kb_search_category_filter),
    T(test_db_kb_search_garbage_gives_no_rows),
    T(test_db_pool_third_get_waits_then_busy),
    T(test_db_pool_waiter_gets_returned_connection),
    T(test_db_pool_broken_put_reconnects),
    T(test_db_pool_put_inside_transaction_rolls_back),
    T(test_db_pool_threads_hammering_all_succeed),
    cmocka_unit_test(test_db_unopenable_database_is_unavailable),
};

static const struct CMUnitTest sqlite_only[] = {
    cmocka_unit_test(test_db_sqlite_garbage_file_is_unavailable),
    cmocka_unit_test(test_db_utc_text_and_backend_choice),
};

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = vt_db_run_per_backend("db", per_backend, sizeof per_backend / sizeof per_backend[0],
                                       NULL, NULL, &g_backend);
    failed += cmocka_run_group_tests_name("db_sqlite_only", sqlite_only, NULL, NULL);
    return failed ? 1 : 0;
}
