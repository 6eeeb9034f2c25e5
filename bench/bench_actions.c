/*
 * bench_actions.c - voice actions in process: actions per second and p50/p99
 * latency per action, audit row included, on a demo database.
 *
 *   bench_actions [--backend sqlite|mysql] [--threads N] [--iterations N] [--pool N]
 *
 * sqlite: a fresh file in a temporary directory (removed afterwards).
 * mysql: the DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME of the environment
 * (the database is migrated and gets the demo data; bench rows are added).
 * Every iteration is a new call session (so the exactly-once cache never
 * short-circuits a side effect). SMS run in mock mode with rate limits off.
 * --pool sets DB_POOL_SIZE (default: max(8, threads)); with fewer connections than
 * threads the workers queue for one (bounded by DB_POOL_WAIT_MS), which shows
 * the pool's cost. Prints one line per metric: metric, backend, threads, pool
 * size, value, unit.
 */
#include "actions/action.h"
#include "core/app.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "db/db.h"

#include "core/when.h"

#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job { /* one action measured */
    const char *name;
    const char *args;
};

static struct job jobs[] = { /* not const: the callback time is set at start */
    {"check_user_details", "{\"phone_number\":\"07700 900001\",\"claim_reference\":\"RMC-1001\"}"},
    {"check_claim_details", "{\"claim_reference\":\"rmc 1001\"}"},
    {"check_requirements", "{\"claim_reference\":\"RMC-1001\"}"},
    {"search_knowledge_base", "{\"query\":\"how long does a claim take\"}"},
    {"schedule_callback", NULL}, /* a business-hours slot two days ahead, see main */
    {"send_portal_link", "{\"method\":\"sms\"}"},
    {"send_document_link", "{\"method\":\"sms\",\"document_type\":\"id_proof\"}"},
    {"send_review_link", "{\"method\":\"sms\"}"}, /* after the first: the 30-day refusal */
};

struct worker {
    const struct act_env *env;
    const struct job *job;
    int n;       /* iterations for this thread */
    double *lat; /* n latencies, ms */
    int failures;
};

static const char *env_lookup(const char *name, void *arg)
{
    const char *const *kv = arg;
    size_t n = strlen(name);
    for (; kv && *kv; kv++)
        if (!strncmp(*kv, name, n) && (*kv)[n] == '=')
            return *kv + n + 1;
    return getenv(name);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char sid[64];

    for (int i = 0; i < w->n; i++) {
        struct act_session s;
        snprintf(sid, sizeof sid, "CAbench%lx-%d", (unsigned long)pthread_self(), i);
        act_session_init(&s, "+447700900001", sid, "bench", 0);
        double t0 = util_mono_ms();
        json_t *env = act_execute_text(w->env, &s, w->job->name, w->job->args);
        w->lat[i] = util_mono_ms() - t0;
        if (!json_is_true(json_object_get(env, "success")))
            w->failures++;
        json_decref(env);
        act_session_cleanup(&s);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int g_pool; /* DB_POOL_SIZE of this run, for the output lines (set once) */

static void line(const char *metric, const char *backend, int threads, double v, const char *unit)
{
    printf("%-44s %-7s %7d %5d %12.3f %s\n", metric, backend, threads, g_pool, v, unit);
}

static int bench_one(const struct act_env *env, const struct job *job, const char *backend,
                     int threads, int iters)
{
    struct worker w[64];
    pthread_t t[64];
    double *all = calloc((size_t)iters, sizeof *all);
    int per = iters / threads, total = per * threads, failures = 0;
    char m[96];

    if (!all)
        return 1;
    double t0 = util_mono_ms();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){env, job, per, all + (size_t)i * per, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    double wall = util_mono_ms() - t0;
    qsort(all, (size_t)total, sizeof *all, cmp_double);
    snprintf(m, sizeof m, "%s.ops_per_s", job->name);
    line(m, backend, threads, total / (wall / 1000.0), "ops/s");
    snprintf(m, sizeof m, "%s.p50", job->name);
    line(m, backend, threads, all[total / 2], "ms");
    snprintf(m, sizeof m, "%s.p99", job->name);
    line(m, backend, threads, all[(int)(total * 0.99) < total ? (int)(total * 0.99) : total - 1],
         "ms");
    snprintf(m, sizeof m, "%s.success_rate", job->name);
    line(m, backend, threads, 100.0 * (total - failures) / total, "%");
    free(all);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_actions [--backend sqlite|mysql] [--threads N] [--iterations N] "
                    "[--pool N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *backend = "sqlite";
    int threads = 1, iters = 500;
    char dir[] = "/tmp/vws-bench-XXXXXX", dbkv[128], pool[32];
    struct cfg c;
    struct act_env env;
    struct err e = {0};
    struct db *db = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "--pool") && i + 1 < argc)
            g_pool = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else
            return usage();
    }
    if (threads < 1 || threads > 64 || iters < threads ||
        (strcmp(backend, "sqlite") && strcmp(backend, "mysql")))
        return usage();
    if (!strcmp(backend, "mysql") && !getenv("DB_HOST")) {
        fprintf(stderr, "bench_actions: --backend mysql needs DB_HOST (and DB_PORT, DB_USER, "
                        "DB_PASSWORD, DB_NAME) in the environment\n");
        return 2;
    }
    if (!strcmp(backend, "sqlite")) {
        if (!mkdtemp(dir))
            return 1;
        snprintf(dbkv, sizeof dbkv, "DB_PATH=%s/bench.db", dir);
    } else {
        snprintf(dbkv, sizeof dbkv, "BENCH_UNUSED=1");
    }
    if (g_pool < 0 || g_pool > 512)
        return usage();
    if (g_pool == 0)
        g_pool = threads < 8 ? 8 : threads;
    snprintf(pool, sizeof pool, "DB_POOL_SIZE=%d", g_pool);
    const char *const kv[] = {dbkv,
                              pool,
                              "DB_HOST=",
                              "SMS_RATE_LIMIT=off",
                              "SMS_GLOBAL_RATE_LIMIT=off",
                              "LOG_LEVEL=error",
                              "REVIEW_URL=https://reviews.example.com/bench",
                              "APP_ENV=development",
                              "ENABLE_REAL_SMS=false",
                              NULL};
    const char *const *use = kv;
    const char *const kv_mysql[] = {pool,
                                    "SMS_RATE_LIMIT=off",
                                    "SMS_GLOBAL_RATE_LIMIT=off",
                                    "LOG_LEVEL=error",
                                    "REVIEW_URL=https://reviews.example.com/bench",
                                    "APP_ENV=development",
                                    "ENABLE_REAL_SMS=false",
                                    NULL};
    if (!strcmp(backend, "mysql"))
        use = kv_mysql;
    if (cfg_load_from(&c, env_lookup, (void *)use, &e)) {
        fprintf(stderr, "bench_actions: configuration: %s\n", e.detail);
        return 2;
    }
    log_setup(LOG_ERROR, false);
    if (db_open(db_backend_for(&c), &db, &c, &e) || db_migrate(db, &e) || db_load_demo(db, &e)) {
        fprintf(stderr, "bench_actions: database: %s\n", e.detail);
        return 1;
    }
    db_close(db);
    if (app_env_open(&env, &c, &e)) {
        fprintf(stderr, "bench_actions: %s\n", e.detail);
        return 1;
    }
    /* The callback must be bookable whenever the bench runs: the next opening two days
     * ahead (within the 90-day horizon, never a weekend or bank holiday). */
    static char cb_args[128];
    struct when_hours h;
    struct tm tm;
    when_hours_from_cfg(&c, &h);
    time_t slot = (time_t)when_next_slot(util_now() + 2 * 86400, &h);
    gmtime_r(&slot, &tm);
    snprintf(cb_args, sizeof cb_args,
             "{\"preferred_time\":\"%04d-%02d-%02dT%02d:%02d:00Z\",\"reason\":\"bench\"}",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++)
        if (!jobs[i].args)
            jobs[i].args = cb_args;
    printf("%-44s %-7s %7s %5s %12s %s\n", "metric", "backend", "threads", "pool", "value", "unit");
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++)
        bench_one(&env, &jobs[i], backend, threads, iters);
    app_env_close(&env);
    cfg_free(&c);
    if (!strcmp(backend, "sqlite")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_actions: could not remove %s\n", dir);
    }
    return 0;
}
