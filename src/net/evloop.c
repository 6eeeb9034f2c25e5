/*
 * evloop.c - libwebsockets on our own libuv loop (see evloop.h).
 */
#include "net/evloop.h"

#include <string.h>

struct lws_context *evloop_create(struct evloop *ev, struct lws_context_creation_info *info)
{
    memset(ev, 0, sizeof *ev);
    if (uv_loop_init(&ev->uv))
        return NULL;
    ev->open = true;
    ev->foreign[0] = &ev->uv;
    info->options |= LWS_SERVER_OPTION_LIBUV;
    info->foreign_loops = ev->foreign;
    info->pcontext = &ev->ctx; /* lws writes NULL here when the destroy has completed */
    ev->ctx = lws_create_context(info);
    if (!ev->ctx)
        evloop_destroy(ev);
    return ev->ctx;
}

void evloop_turn(struct evloop *ev)
{
    uv_run(&ev->uv, UV_RUN_ONCE);
}

int evloop_destroy(struct evloop *ev)
{
    int rc = 0;
    /* each call takes the next stage once the loop has run the previous one's callbacks */
    for (int i = 0; i < 8 && ev->ctx; i++) {
        lws_context_destroy(ev->ctx);
        uv_run(&ev->uv, UV_RUN_DEFAULT);
    }
    if (ev->ctx) {
        ev->ctx = NULL;
        rc = -1; /* lws did not finish: leave it rather than touch a half-destroyed context */
    }
    if (ev->open) {
        uv_run(&ev->uv, UV_RUN_DEFAULT);
        if (uv_loop_close(&ev->uv))
            rc = -1;
        ev->open = false;
    }
    return rc;
}
