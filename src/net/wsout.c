/*
 * wsout.c - direct WebSocket writes (see wsout.h).
 *
 * lws_write() outside WRITEABLE is safe on an h1 WebSocket: lws_issue_raw() keeps whatever
 * the kernel did not take in the wsi's output buflist and asks for POLLOUT itself. A second
 * write while that tail is pending is NOT appended by lws 4.1.6 for WebSockets: it returns a
 * short count (and we would kill the socket). So while lws_partial_buffered() is true the
 * caller queues instead; our queue stays the only place where output accumulates, and it is
 * bounded. Note lws also caps each send() at the protocol's tx_packet_size (rx_buffer_size when
 * 0): set it to the largest message, or every long message leaves a tail. tests/test_wsout.c
 * checks this contract under real backpressure.
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
