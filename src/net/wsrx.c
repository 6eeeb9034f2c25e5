/*
 * wsrx.c - WebSocket message reassembly (see wsrx.h).
 */
#include "net/wsrx.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WSRX_FIRST 2048 /* first reassembly buffer; doubled as needed */

void wsrx_done(struct wsrx *r)
{
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

enum wsrx_rc wsrx_feed(struct wsrx *r, struct lws *wsi, const void *in, size_t len, size_t max,
                       const char **msg, size_t *n)
{
    bool last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (lws_is_first_fragment(wsi))
        r->len = 0;
    if (!r->len && last) { /* the whole message in one piece: no copy */
        *msg = in;
        *n = len;
        return WSRX_MSG;
    }
    if (r->len + len > max) {
        wsrx_done(r);
        return WSRX_TOO_BIG;
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : WSRX_FIRST;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb) {
            wsrx_done(r);
            return WSRX_NOMEM;
        }
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, in, len);
    r->len += len;
    r->buf[r->len] = '\0';
    if (!last)
        return WSRX_MORE;
    *msg = r->buf;
    *n = r->len;
    return WSRX_MSG;
}
