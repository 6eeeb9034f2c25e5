/*
 * pool.h - the worker pool: blocking work (actions, db, SMS) off the loop.
 *
 * A job has a run callback (worker thread) and a done callback (loop
 * thread). Submitting never blocks: the queue is bounded and a full queue is
 * refused (ERR_BUSY). Workers push finished jobs onto a done list and call
 * the wake function (lws_cancel_service); the loop thread calls
 * pool_run_done() to run the done callbacks.
 *
 * Threads: pool_submit and pool_run_done on the loop thread (pool_submit is
 * also safe from any thread); run callbacks on workers.
 */
#ifndef VWS_POOL_H
#define VWS_POOL_H

struct err;
struct pool;

struct pool_job {                 /* embed first in your job struct */
    void (*run)(struct pool_job *j);   /* worker thread */
    void (*done)(struct pool_job *j);  /* loop thread; owns and frees the job */
    struct pool_job *next;        /* pool-private */
};

int pool_new(struct pool **out, int nthreads, int queue_max, void (*wake)(void *arg),
             void *wake_arg, struct err *e);
/* Stops accepting, finishes queued jobs, joins workers, runs remaining done callbacks. */
void pool_free(struct pool *p);
/* 0, or ERR_BUSY when the queue is full (the job is not taken). */
int pool_submit(struct pool *p, struct pool_job *j);
/* Run done callbacks of finished jobs. Loop thread. Returns how many ran. */
int pool_run_done(struct pool *p);
/* Jobs queued or running (for /metrics). */
int pool_pending(struct pool *p);

#endif
