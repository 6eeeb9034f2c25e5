/*
 * wsrx.h - one whole WebSocket message from lws's RECEIVE pieces.
 *
 * lws hands a message over in pieces when it is longer than the protocol's rx_buffer_size
 * (or arrives in several frames). Nearly every message on our sockets fits in one piece:
 * those are handed back where lws left them, with no copy and no buffer of ours. Only a
 * fragmented message is gathered, in a buffer that lives until wsrx_done(), so no socket keeps
 * one for its whole life. Used by the Twilio media socket, both providers and the relay bench.
 * Loop thread only; one struct per socket.
 */
#ifndef VWS_NET_WSRX_H
#define VWS_NET_WSRX_H

#include <libwebsockets.h>
#include <stddef.h>

struct wsrx {
    char *buf; /* reassembly, NUL-terminated; NULL when nothing is being gathered */
    size_t len, cap;
};

enum wsrx_rc {
    WSRX_MORE = 0,     /* a piece was kept: wait for the rest */
    WSRX_MSG = 1,      /* *msg / *n is one whole message; call wsrx_done() after handling it */
    WSRX_TOO_BIG = -1, /* the message would pass max bytes: what was gathered is dropped */
    WSRX_NOMEM = -2,   /* out of memory: what was gathered is dropped */
};

/* Feed the piece of one RECEIVE callback (in/len as lws passed them). */
enum wsrx_rc wsrx_feed(struct wsrx *r, struct lws *wsi, const void *in, size_t len, size_t max,
                       const char **msg, size_t *n);

/* Drop the reassembly buffer: after a WSRX_MSG has been handled, and when the socket closes. */
void wsrx_done(struct wsrx *r);

#endif
