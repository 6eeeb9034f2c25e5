/*
 * wsout.c - direct WebSocket writes (see wsout.h).
 *
 * lws_write() outside WRITEABLE is safe on an h1 WebSocket: lws_issue_raw() keeps whatever
 * the kernel did not take in the wsi's output buflist, asks for POLLOUT itself, and appends
 * any later write to that buflist (lws 4.1 private-lib-core, "back-to-back write"). We do
 * not rely on the append: while lws_partial_buffered() is true the caller queues instead,
 * so our queue stays the only place where output accumulates, and it is bounded.
 */
#include "net/wsout.h"

enum wsout_rc wsout_now(struct lws *wsi, unsigned char *payload, size_t len)
{
    if (lws_partial_buffered(wsi))
        return WSOUT_QUEUE;
    int n = lws_write(wsi, payload, len, LWS_WRITE_TEXT);
    if (n < (int)len) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return WSOUT_ERR;
    }
    return WSOUT_SENT;
}
