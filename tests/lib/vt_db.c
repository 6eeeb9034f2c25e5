/*
 * vt_db.c - database helpers for tests (see vt_db.h). Test code only.
 *
 * MySQL databases are created and dropped through libmariadb directly
 * (not through our backend) so a broken backend cannot hide a setup
 * problem. Names: vws_t_<pid>_<n>, unique per process and call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "vt_db.h"
#include "vwstest.h"

#include "core/cfg.h"
#include "core/err.h"
#include "db/db.h"

#include <mysql.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VT_KV_MAX 96

int vt_db_backends(const char **names, int max)
{
    int n = 0;
    const char *only = getenv("VWS_SQLITE_ONLY");
    if (n < max)
        names[n++] = "sqlite";
    if (!(only && !strcmp(only, "1")) && n < max)
        names[n++] = "mysql";
    return n;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Run one statement as the test server's admin user; error text into err. */
static int mysql_admin(const char *sql, char *err, size_t errsz)
{
    MYSQL *m = mysql_init(NULL);
    unsigned timeout = 5;
    int rc = -1;
    if (!m) {
        snprintf(err, errsz, "mysql_init failed");
        return -1;
    }
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, env_or("VWS_MYSQL_HOST", "127.0.0.1"),
                            env_or("VWS_MYSQL_USER", "root"), getenv("VWS_MYSQL_PASSWORD"), NULL,
                            (unsigned)atoi(env_or("VWS_MYSQL_PORT", "3306")), NULL, 0))
        snprintf(err, errsz, "connect to test MariaDB at %s:%s: %s",
                 env_or("VWS_MYSQL_HOST", "127.0.0.1"), env_or("VWS_MYSQL_PORT", "3306"),
                 mysql_error(m));
    else if (mysql_query(m, sql))
        snprintf(err, errsz, "%s: %s", sql, mysql_error(m));
    else
        rc = 0;
    mysql_close(m);
    return rc;
}

static void add_env(struct vt_db *h, int *n, const char *key, const char *val)
{
    if (*n >= VT_DB_ENV_MAX)
        fail_msg("vt_db: too many env entries");
    snprintf(h->env_buf[*n], sizeof h->env_buf[*n], "%s=%s", key, val ? val : "");
    h->env[*n] = h->env_buf[*n];
    h->env[++*n] = NULL;
}

static void fresh_sqlite(struct vt_db *h, int *n)
{
    char *dir = vt_tmpdir();
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    free(dir);
    snprintf(h->path, sizeof h->path, "%s/voice-ws.db", h->dir);
    snprintf(h->label, sizeof h->label, "sqlite:%s", h->path);
    add_env(h, n, "DB_PATH", h->path);
}

static void fresh_mysql(struct vt_db *h, int *n)
{
    static atomic_int seq;
    char err[512], sql[160];
    if (!vt_mysql_available())
        fail_msg("vt_db: backend mysql requested but VWS_MYSQL_HOST is unset; start it with "
                 "scripts/mariadb.sh start DIR && . DIR/env.sh (make test does), or set "
                 "VWS_SQLITE_ONLY=1 to test SQLite alone");
    snprintf(h->dbname, sizeof h->dbname, "vws_t_%d_%d", (int)getpid(), atomic_fetch_add(&seq, 1));
    snprintf(sql, sizeof sql,
             "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", h->dbname);
    if (mysql_admin(sql, err, sizeof err))
        fail_msg("vt_db: cannot create test database: %s", err);
    snprintf(h->label, sizeof h->label, "mysql:%s", h->dbname);
    add_env(h, n, "DB_HOST", env_or("VWS_MYSQL_HOST", "127.0.0.1"));
    add_env(h, n, "DB_PORT", env_or("VWS_MYSQL_PORT", "3306"));
    add_env(h, n, "DB_USER", env_or("VWS_MYSQL_USER", "root"));
    add_env(h, n, "DB_PASSWORD", env_or("VWS_MYSQL_PASSWORD", ""));
    add_env(h, n, "DB_NAME", h->dbname);
}

void vt_db_fresh(const char *backend, struct cfg *c, struct vt_db *h, const char *const *extra_kv)
{
    const char *kv[VT_KV_MAX];
    int n = 0, k = 0;
    memset(h, 0, sizeof *h);
    memset(c, 0, sizeof *c);
    snprintf(h->backend, sizeof h->backend, "%s", backend);
    if (!strcmp(backend, "sqlite"))
        fresh_sqlite(h, &n);
    else if (!strcmp(backend, "mysql"))
        fresh_mysql(h, &n);
    else
        fail_msg("vt_db: unknown backend '%s' (sqlite, mysql)", backend);
    for (int i = 0; i < n; i++)
        kv[k++] = h->env[i];
    for (const char *const *p = extra_kv; p && *p && k < VT_KV_MAX - 1; p++)
        kv[k++] = *p;
    kv[k] = NULL;
    char detail[256];
    if (vt_cfg_try(c, kv, detail, sizeof detail))
        fail_msg("vt_db: cfg for %s: %s", h->label, detail);
}

void vt_db_cleanup(struct vt_db *h, struct cfg *c)
{
    char err[512], sql[160];
    if (c)
        cfg_free(c);
    if (h->dir[0])
        vt_rmdir(h->dir);
    if (h->dbname[0]) {
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS `%s`", h->dbname);
        if (mysql_admin(sql, err, sizeof err))
            fprintf(stderr, "vt_db: cannot drop %s: %s\n", h->dbname, err);
    }
    memset(h, 0, sizeof *h);
}

struct db *vt_db_open(const struct cfg *c, bool demo)
{
    struct db *db = NULL;
    struct err e = {0};
    if (db_open(db_backend_for(c), &db, c, &e))
        fail_msg("vt_db: open: %s (%s)", e.detail, err_name(e.code));
    if (db_migrate(db, &e))
        fail_msg("vt_db: migrate on %s: %s", db_backend_name(db), e.detail);
    if (demo && db_load_demo(db, &e))
        fail_msg("vt_db: demo on %s: %s", db_backend_name(db), e.detail);
    return db;
}

long long vt_db_int(struct db *db, const char *sql)
{
    struct db_rows r;
    struct err e = {0};
    if (db_exec(db, sql, NULL, 0, &r, &e))
        fail_msg("vt_db: %s: %s", sql, e.detail);
    if (r.nrows < 1 || r.ncols < 1 || !r.cell[0]) {
        db_rows_free(&r);
        fail_msg("vt_db: %s: no value", sql);
    }
    long long v = strtoll(r.cell[0], NULL, 10);
    db_rows_free(&r);
    return v;
}

int vt_db_run_per_backend(const char *prefix, const struct CMUnitTest *tests, size_t n,
                          int (*setup)(void **), int (*teardown)(void **), const char **backend)
{
    const char *names[4];
    int nb = vt_db_backends(names, 4), failed = 0;
    char name[64];

    for (int i = 0; i < nb; i++) {
        *backend = names[i];
        snprintf(name, sizeof name, "%s_%s", prefix, names[i]);
        failed += _cmocka_run_group_tests(name, tests, n, setup, teardown);
    }
    return failed;
}
