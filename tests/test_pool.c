/*
 * test_pool.c - the worker pool: jobs run off the calling thread, done
 * callbacks run only in pool_run_done (on the caller's thread), the queue is
 * bounded, the wake function fires, and pool_free drains and joins.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct tjob {
    struct pool_job base;
    pthread_t ran_on;
    int sleep_ms;
    int *done_count;       /* loop-side counter */
    pthread_mutex_t *gate; /* run blocks on it when set */
};

static atomic_int wakes;
static atomic_int ran;

static void wake_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static void tjob_run(struct pool_job *j)
{
    struct tjob *t = (struct tjob *)j;
    t->ran_on = pthread_self();
    if (t->gate) {
        pthread_mutex_lock(t->gate);
        pthread_mutex_unlock(t->gate);
    }
    if (t->sleep_ms)
        usleep((useconds_t)t->sleep_ms * 1000);
    atomic_fetch_add(&ran, 1);
}

static void tjob_done(struct pool_job *j)
{
    struct tjob *t = (struct tjob *)j;
    (*t->done_count)++;
    free(t);
}

static struct tjob *mk(int sleep_ms, int *count, pthread_mutex_t *gate)
{
    struct tjob *t = calloc(1, sizeof *t);
    t->base.run = tjob_run;
    t->base.done = tjob_done;
    t->sleep_ms = sleep_ms;
    t->done_count = count;
    t->gate = gate;
    return t;
}

static void wait_pending_zero(struct pool *p)
{
    for (int i = 0; i < 500 && pool_pending(p) > 0; i++)
        usleep(2000);
}

static void test_pool_runs_jobs_on_workers_and_done_on_caller(void **state)
{
    (void)state;
    struct pool *p = NULL;
    struct err e = {0};
    atomic_store(&wakes, 0);
    atomic_store(&ran, 0);
    assert_int_equal(pool_new(&p, 3, 16, wake_fn, NULL, &e), 0);
    int done = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(pool_submit(p, &mk(5, &done, NULL)->base), 0);
    wait_pending_zero(p);
    assert_int_equal(atomic_load(&ran), 10);
    /* Nothing ran on this thread until we ask. */
    assert_int_equal(done, 0);
    assert_true(atomic_load(&wakes) >= 1);
    int n = 0;
    for (int i = 0; i < 100 && n < 10; i++) {
        n += pool_run_done(p);
        usleep(1000);
    }
    assert_int_equal(n, 10);
    assert_int_equal(done, 10);
    assert_int_equal(pool_run_done(p), 0);
    pool_free(p);
}

static void test_pool_refuses_when_queue_full(void **state)
{
    (void)state;
    struct pool *p = NULL;
    struct err e = {0};
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate);
    assert_int_equal(pool_new(&p, 1, 2, wake_fn, NULL, &e), 0);
    int done = 0;
    /* One job blocks the only worker; two fill the queue; the fourth is refused. */
    assert_int_equal(pool_submit(p, &mk(0, &done, &gate)->base), 0);
    for (int i = 0; i < 200 && pool_pending(p) != 1; i++)
        usleep(1000);
    usleep(20000);
    assert_int_equal(pool_submit(p, &mk(0, &done, NULL)->base), 0);
    assert_int_equal(pool_submit(p, &mk(0, &done, NULL)->base), 0);
    struct tjob *extra = mk(0, &done, NULL);
    assert_int_equal(pool_submit(p, &extra->base), ERR_BUSY);
    free(extra); /* refused: still ours */
    assert_int_equal(pool_pending(p), 3);
    pthread_mutex_unlock(&gate);
    wait_pending_zero(p);
    pool_free(p); /* runs the remaining done callbacks */
    assert_int_equal(done, 3);
}

static void test_pool_free_drains_queued_jobs(void **state)
{
    (void)state;
    struct pool *p = NULL;
    struct err e = {0};
    atomic_store(&ran, 0);
    assert_int_equal(pool_new(&p, 2, 64, NULL, NULL, &e), 0);
    int done = 0;
    for (int i = 0; i < 20; i++)
        assert_int_equal(pool_submit(p, &mk(2, &done, NULL)->base), 0);
    pool_free(p);
    assert_int_equal(atomic_load(&ran), 20);
    assert_int_equal(done, 20);
}

static void test_pool_slow_job_does_not_block_others(void **state)
{
    (void)state;
    struct pool *p = NULL;
    struct err e = {0};
    atomic_store(&ran, 0);
    assert_int_equal(pool_new(&p, 2, 64, NULL, NULL, &e), 0);
    int done = 0;
    assert_int_equal(pool_submit(p, &mk(600, &done, NULL)->base), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pool_submit(p, &mk(1, &done, NULL)->base), 0);
    while (atomic_load(&ran) < 5)
        usleep(1000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < 400); /* the second worker ran the quick ones meanwhile */
    pool_free(p);
    assert_int_equal(done, 6);
}

static void test_pool_rejects_bad_sizes(void **state)
{
    (void)state;
    struct pool *p = NULL;
    struct err e = {0};
    assert_int_equal(pool_new(&p, 0, 4, NULL, NULL, &e), ERR_CONFIG);
    assert_null(p);
    pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs_jobs_on_workers_and_done_on_caller),
        cmocka_unit_test(test_pool_refuses_when_queue_full),
        cmocka_unit_test(test_pool_free_drains_queued_jobs),
        cmocka_unit_test(test_pool_slow_job_does_not_block_others),
        cmocka_unit_test(test_pool_rejects_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
