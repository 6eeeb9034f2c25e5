/*
 * wsout.h - write a WebSocket text message at once instead of waiting for WRITEABLE.
 *
 * Why: waiting for WRITEABLE costs, per message, a POLLOUT arm and disarm (epoll_ctl
 * calls: libuv re-registers the descriptor on every change) and an extra loop turn. The
 * hot messages (caller audio to the provider, agent audio and marks to Twilio) are written
 * directly when the socket has nothing waiting ahead of them; lws keeps any part the kernel
 * did not take and sends it before anything else.
 *
 * Rule for callers: keep your own queue. Call wsout_now() only when that queue is empty;
 * on WSOUT_QUEUE put the message on the queue and ask for WRITEABLE as before.
 */
#ifndef VWS_NET_WSOUT_H
#define VWS_NET_WSOUT_H

#include <libwebsockets.h>
#include <stddef.h>

enum wsout_rc {
    WSOUT_SENT = 0,  /* handed to lws (all of it; lws holds any unsent tail) */
    WSOUT_QUEUE = 1, /* lws still holds an earlier partial write: queue it */
    WSOUT_ERR = -1,  /* the socket failed: it is being closed (async kill) */
};

/* payload has LWS_PRE writable bytes before it (lws puts the frame header there). */
enum wsout_rc wsout_now(struct lws *wsi, unsigned char *payload, size_t len);

#endif
