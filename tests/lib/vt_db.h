/*
 * vt_db.h - database helpers for tests of every layer: which backends to
 * test, and a brand-new empty database (with its cfg) per test.
 *
 * Backends: "sqlite" always; "mysql" too unless VWS_SQLITE_ONLY=1. A test
 * that asks for "mysql" when VWS_MYSQL_HOST is unset FAILS (cmocka
 * fail_msg), it never skips: start the server with scripts/mariadb.sh and
 * source its env.sh (make test does this).
 *
 * Include after cmocka's prerequisites and <cmocka.h>. Test threads only.
 */
#ifndef VWS_VT_DB_H
#define VWS_VT_DB_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct db;

#define VT_DB_ENV_MAX 8

struct vt_db {
    char backend[16]; /* "sqlite" | "mysql" */
    char label[320];  /* for messages: "sqlite:/tmp/vws-test-x/t.db", "mysql:vws_t_12_3" */
    char dir[256];    /* sqlite: temp dir holding the file (removed by cleanup) */
    char path[300];   /* sqlite: DB_PATH */
    char dbname[64];  /* mysql: database created for this test */
    char env_buf[VT_DB_ENV_MAX][320];
    const char *env[VT_DB_ENV_MAX + 1]; /* "K=V" entries selecting this db, NULL-terminated */
};

/* Backends to test (names are static strings). Returns how many were written. */
int vt_db_backends(const char **names, int max);

struct CMUnitTest;
/*
 * Run the cmocka group `tests` once per backend from vt_db_backends, named
 * "<prefix>_<backend>", with *backend set to the backend's name before each
 * run (the suite's fixtures read it). Returns the number of failures.
 */
int vt_db_run_per_backend(const char *prefix, const struct CMUnitTest *tests, size_t n,
                          int (*setup)(void **), int (*teardown)(void **), const char **backend);

/*
 * Make a brand-new empty database on backend and fill c (cfg) for it, plus
 * extra "K=V" settings (NULL-terminated, may be NULL). The cfg's DB_* keys
 * select the new database (SQLite: DB_PATH in a temp dir; MySQL: DB_HOST,
 * DB_PORT, DB_USER, DB_PASSWORD, DB_NAME of a fresh `vws_t_<pid>_<n>`).
 * h->env lists the same DB_* settings as "K=V" strings for vt_run() of the
 * binary. Fails the current test on any error. Free with vt_db_cleanup.
 */
void vt_db_fresh(const char *backend, struct cfg *c, struct vt_db *h, const char *const *extra_kv);

/* Drop the database / remove the temp dir, and cfg_free(c) when c is non-NULL. */
void vt_db_cleanup(struct vt_db *h, struct cfg *c);

/* Open a connection on c's backend, migrate, and load the demo data when demo. Fails the test on
 * error. */
struct db *vt_db_open(const struct cfg *c, bool demo);

/* Single value of a query with no parameters (first cell as integer); fails the test on error. */
long long vt_db_int(struct db *db, const char *sql);

#endif
