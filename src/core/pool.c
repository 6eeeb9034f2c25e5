/*
 * pool.c - the worker pool (see pool.h).
 *
 * Owns: a bounded FIFO of submitted jobs, N worker threads that run them,
 * and a done list that the loop thread drains with pool_run_done().
 * Must not touch: anything the jobs point at; a job belongs to the pool from
 * submit until its done callback runs, and done callbacks run only on the
 * thread calling pool_run_done() (the loop) or pool_free().
 *
 * Locking: one mutex guards both lists and the counters. Callbacks (run,
 * done, wake) are never called with it held.
 */
#include "core/pool.h"

#include "core/err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define LOG_MODULE "pool"
#include "core/log.h"

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* signalled when a job is queued or on stop */
    struct pool_job *qhead, *qtail; /* submitted, not yet started */
    struct pool_job *dhead, *dtail; /* finished, done callback not yet run */
    int queued;                     /* jobs in the submit queue */
    int running;                    /* jobs being run by a worker */
    int done_n;                     /* jobs on the done list */
    int queue_max;
    bool stopping;
    int nthreads;
    pthread_t *threads;
    void (*wake)(void *arg);
    void *wake_arg;
};

static void *worker_main(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->qhead && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        struct pool_job *j = p->qhead;
        if (!j) { /* stopping and nothing left to run */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->qhead = j->next;
        if (!p->qhead)
            p->qtail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);

        j->next = NULL;
        if (j->run)
            j->run(j);

        pthread_mutex_lock(&p->mu);
        p->running--;
        if (p->dtail)
            p->dtail->next = j;
        else
            p->dhead = j;
        p->dtail = j;
        p->done_n++;
        pthread_mutex_unlock(&p->mu);
        if (p->wake)
            p->wake(p->wake_arg);
    }
}

int pool_new(struct pool **out, int nthreads, int queue_max, void (*wake)(void *arg),
             void *wake_arg, struct err *e)
{
    if (nthreads < 1 || queue_max < 1)
        return err_set(e, ERR_CONFIG, NULL, "pool: nthreads=%d queue_max=%d", nthreads, queue_max);
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, ERR_NOMEM, NULL, "pool: out of memory");
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return err_set(e, ERR_NOMEM, NULL, "pool: out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->queue_max = queue_max;
    p->wake = wake;
    p->wake_arg = wake_arg;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p)) {
            err_set(e, ERR_INTERNAL, NULL, "pool: pthread_create failed after %d threads", i);
            p->nthreads = i;
            pool_free(p);
            return ERR_INTERNAL;
        }
        p->nthreads = i + 1;
    }
    *out = p;
    return 0;
}

int pool_submit(struct pool *p, struct pool_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->queued >= p->queue_max) {
        pthread_mutex_unlock(&p->mu);
        return ERR_BUSY;
    }
    j->next = NULL;
    if (p->qtail)
        p->qtail->next = j;
    else
        p->qhead = j;
    p->qtail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int pool_run_done(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct pool_job *j = p->dhead;
    p->dhead = p->dtail = NULL;
    p->done_n = 0;
    pthread_mutex_unlock(&p->mu);

    int n = 0;
    while (j) {
        struct pool_job *next = j->next;
        j->next = NULL;
        if (j->done)
            j->done(j);
        j = next;
        n++;
    }
    return n;
}

int pool_pending(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->queued + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* Workers finished every queued job before leaving; hand them back. */
    while (pool_run_done(p) > 0)
        ;
    if (p->qhead)
        log_error("pool: %d jobs left unrun at free", p->queued);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
