/*
 * evloop.h - libwebsockets on our own libuv loop (epoll instead of lws's poll()), for the
 * server, the relay bench and the tests that need the same loop: create, turn, destroy.
 *
 * A foreign loop is ours to turn, so the caller keeps its own `while` with whatever it checks
 * between turns (signals, drain, a bench window). lws destroys a context on a foreign loop in
 * stages (each lws_context_destroy() call closes what it can, the loop runs the close callbacks)
 * and reports completion through info.pcontext; evloop_destroy() does that dance.
 * Loop thread only.
 */
#ifndef VWS_NET_EVLOOP_H
#define VWS_NET_EVLOOP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <uv.h>

struct evloop {
    uv_loop_t uv;
    void *foreign[1];        /* info.foreign_loops: &uv */
    struct lws_context *ctx; /* the context until lws has finished destroying it */
    bool open;               /* uv is initialised */
};

/* Initialise the loop and create the lws context on it: info gets LWS_SERVER_OPTION_LIBUV,
 * foreign_loops and pcontext added. NULL when either fails (nothing is left open). */
struct lws_context *evloop_create(struct evloop *ev, struct lws_context_creation_info *info);

/* One turn: wait for what is ready (sockets, lws timers, lws_cancel_service) and handle it. */
void evloop_turn(struct evloop *ev);

/* Destroy the context (in lws's stages), run the loop until every handle is closed, close it.
 * The caller closes its own handles on ev->uv first. 0 when all of that completed. */
int evloop_destroy(struct evloop *ev);

#endif
