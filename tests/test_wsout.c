/*
 * test_wsout.c - the direct-write contract of src/net/wsout.c under real backpressure.
 *
 * One lws context on a libuv loop (as src/net/server.c builds it) holds a WS server vhost
 * on 127.0.0.1 and a WS client connected to it, both in this process. The sending end uses
 * exactly the caller pattern of call.c / openai_rt.c: its own FIFO queue, wsout_now() while
 * that queue is empty, queue + WRITEABLE (one message per WRITEABLE) otherwise. The
 * receiving end stops reading (lws_rx_flow_control) and both sockets get small kernel
 * buffers, so the sender soon runs into partial writes.
 *
 * Checked: the fallback path is really taken (WSOUT_QUEUE, lws_partial_buffered); after the
 * receiver resumes every numbered message arrives exactly once, in order, byte for byte; a
 * plain uv timer keeps ticking during the stall (the loop never blocks); a peer that
 * vanishes with data pending (in our queue, or in lws's own tail), and a socket that fails
 * under wsout_now, end in a close without crash or leak (ASan build); and lws's per-send cap
 * (tx_packet_size / rx_buffer_size), which decides whether a long message leaves a tail on
 * an idle socket. Everything runs on the test thread; waits are bounded (no sleeps).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "net/evloop.h"
#include "net/wsout.h"

#include <libwebsockets.h>
#include <uv.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- the numbered messages ---- */

#define N_MSGS 3000u /* per transfer: ~1 MB, far more than the shrunk buffers hold */
#define MSG_MIN 180u /* bytes; like a Twilio media message or an audio append */
#define MSG_SPAN 300u
#define MSG_BIG 1448u     /* the longest Twilio message call.c builds: TW_OUT_MAX(CHUNK_B64) */
#define MSG_MAX MSG_BIG   /* buffer size */
#define BURST 24          /* messages per producer turn (every 1 ms) */
#define QMAX 256u         /* the caller's queue: the producer waits above this, never drops */
#define SOCKBUF 4096      /* SO_SNDBUF / SO_RCVBUF asked for (the kernel doubles it) */
#define STALL_MIN_MS 300u /* the receiver reads nothing for at least this long */
#define STALL_MAX_MS 3000u
#define TICK_MS 5u
#define BACKED_TICKS 20u /* ticks the loop must turn while the sender is backed up */

#define MSG_HUGE 65536u /* far more than the kernel buffers of a stalled connection take */

static bool g_big;  /* every message MSG_BIG bytes (test_send_cap) */
static bool g_huge; /* message 0 is MSG_HUGE bytes (test_client_vanishes_lws_tail) */

static size_t msg_len(unsigned seq)
{
    if (g_huge && seq == 0)
        return MSG_HUGE;
    return g_big ? MSG_BIG : MSG_MIN + (seq * 131u) % MSG_SPAN;
}

static unsigned char msg_byte(unsigned seq, size_t i)
{
    return (unsigned char)('A' + (seq * 7u + i * 13u) % 58u); /* printable ASCII A..z */
}

/* "%08u|" then a pattern that depends on seq and position; returns the length. */
static size_t msg_fill(unsigned char *p, unsigned seq)
{
    size_t n = msg_len(seq);
    char head[16];
    snprintf(head, sizeof head, "%08u|", seq);
    memcpy(p, head, 9);
    for (size_t i = 9; i < n; i++)
        p[i] = msg_byte(seq, i);
    return n;
}

/* ---- one end of the connection ---- */

struct tmsg {
    struct tmsg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + payload */
};

struct ep {
    const char *name;
    struct lws *wsi; /* NULL once closed */
    bool open, closed;
    bool closing;       /* graceful close asked: drain the queue, then close */
    bool failed;        /* wsout_now said WSOUT_ERR: the wsi is being killed */
    bool conn_error;    /* client connect failed */
    int sndbuf, rcvbuf; /* what the kernel granted, bytes */
    /* as sender */
    struct tmsg *qh, *qt;
    unsigned qn, qn_max;                /* queued messages now / at most */
    unsigned produced;                  /* messages handed to push() */
    unsigned rc_sent, rc_queue, rc_err; /* wsout_now results */
    unsigned enqueued;                  /* messages put on the queue (QUEUE, or queue not empty) */
    unsigned wr_writeable;              /* messages written from WRITEABLE */
    unsigned partial_seen;              /* times lws_partial_buffered() was seen true */
    unsigned freed_at_close;            /* queued messages dropped by CLOSED */
    /* as receiver */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    unsigned nrx;  /* whole messages received */
    unsigned bad;  /* messages that were not the next one, intact */
    char why[160]; /* the first bad one */
};

struct fx {
    struct evloop ev; /* lws on a libuv loop, exactly as the server runs it (net/evloop.h) */
    uv_timer_t tick;
    bool tick_open;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protos[3];
    lws_sorted_usec_list_t sul_prod;
    struct ep srv, cli;
    struct ep *tx, *rx; /* the direction under test */
    int port;
    unsigned srv_conns;
    /* loop liveness */
    uint64_t last_tick_ns, max_gap_ns;
    unsigned ticks;
    bool stall;
    uint64_t stall_start_ns;
    unsigned ticks_in_stall;
    unsigned ticks_backed; /* ticks in the stall with messages waiting on the sender's queue */
    unsigned prod_waits;   /* producer turns that found the queue full */
    void (*cli_rx_hook)(struct fx *fx); /* called in CLIENT_RECEIVE after a whole message */
    unsigned hook[5];                   /* what the hook saw */
};

static void note_partial(struct ep *e)
{
    if (e->wsi && lws_partial_buffered(e->wsi))
        e->partial_seen++;
}

static void free_queue(struct ep *e)
{
    while (e->qh) {
        struct tmsg *m = e->qh;
        e->qh = m->next;
        free(m);
        e->freed_at_close++;
    }
    e->qt = NULL;
    e->qn = 0;
}

static void bad(struct ep *e, const char *fmt, unsigned a, unsigned b)
{
    if (!e->bad++)
        snprintf(e->why, sizeof e->why, fmt, a, b);
}

static void check_msg(struct ep *e, const unsigned char *p, size_t n)
{
    unsigned seq = 0;
    bool ok = n >= 9 && p[8] == '|';
    for (int i = 0; ok && i < 8; i++) {
        ok = p[i] >= '0' && p[i] <= '9';
        seq = seq * 10u + (unsigned)(p[i] - '0');
    }
    unsigned want = e->nrx++;
    if (!ok)
        bad(e, "message #%u: no sequence header (%u bytes)", want, (unsigned)n);
    else if (seq != want) /* below: a duplicate; above: lost or reordered */
        bad(e, "got message %u where %u was due", seq, want);
    else if (n != msg_len(seq))
        bad(e, "message %u has %u bytes", seq, (unsigned)n);
    else
        for (size_t i = 9; i < n; i++)
            if (p[i] != msg_byte(seq, i)) {
                bad(e, "message %u corrupt at byte %u", seq, (unsigned)i);
                break;
            }
}

/* ---- the caller pattern (call.c conn_send/conn_push/on_writeable) ---- */

static void enqueue(struct ep *e, unsigned seq)
{
    struct tmsg *m = malloc(sizeof *m + LWS_PRE + msg_len(seq));
    assert_non_null(m);
    m->next = NULL;
    m->len = msg_fill(m->buf + LWS_PRE, seq);
    if (e->qt)
        e->qt->next = m;
    else
        e->qh = m;
    e->qt = m;
    e->enqueued++;
    if (++e->qn > e->qn_max)
        e->qn_max = e->qn;
    lws_callback_on_writable(e->wsi);
}

/* Written from the stack when nothing is queued, else queued. */
static void push(struct ep *e, unsigned seq)
{
    if (!e->wsi || e->closing || e->failed || e->closed)
        return;
    if (!e->qh) {
        unsigned char sbuf[LWS_PRE + MSG_MAX], *hbuf = NULL, *buf = sbuf;
        if (msg_len(seq) > MSG_MAX) {
            buf = hbuf = malloc(LWS_PRE + msg_len(seq));
            assert_non_null(buf);
        }
        size_t n = msg_fill(buf + LWS_PRE, seq);
        enum wsout_rc rc = wsout_now(e->wsi, buf + LWS_PRE, n);
        free(hbuf); /* lws copied any tail it kept */
        if (rc == WSOUT_SENT) {
            e->rc_sent++;
            note_partial(e);
            return;
        }
        if (rc == WSOUT_ERR) {
            e->rc_err++;
            e->failed = true; /* being killed; CLOSED frees the queue */
            return;
        }
        assert_int_equal(rc, WSOUT_QUEUE);
        e->rc_queue++;
    }
    enqueue(e, seq);
}

static int on_writeable(struct ep *e, struct lws *wsi)
{
    struct tmsg *m = e->qh;
    if (m) {
        e->qh = m->next;
        if (!e->qh)
            e->qt = NULL;
        e->qn--;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        bool short_write = n < (int)m->len;
        free(m);
        if (short_write)
            return -1;
        e->wr_writeable++;
        note_partial(e);
        if (e->qh || e->closing)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (e->closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

/* ---- receiving ---- */

static int on_rx(struct ep *e, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi))
        e->rx_len = 0;
    if (e->rx_len + len > e->rx_cap) {
        size_t cap = e->rx_cap ? e->rx_cap : 1024;
        while (cap < e->rx_len + len)
            cap *= 2;
        unsigned char *p = realloc(e->rx, cap);
        if (!p)
            return -1;
        e->rx = p;
        e->rx_cap = cap;
    }
    memcpy(e->rx + e->rx_len, in, len);
    e->rx_len += len;
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        if (lws_frame_is_binary(wsi))
            bad(e, "binary frame after %u messages (%u bytes)", e->nrx, (unsigned)e->rx_len);
        check_msg(e, e->rx, e->rx_len);
        e->rx_len = 0;
    }
    return 0;
}

/* ---- lws glue ---- */

static void on_open(struct ep *e, struct lws *wsi)
{
    e->wsi = wsi;
    e->open = true;
    /* Small kernel buffers, so a stalled reader backs the writer up after a few KB. */
    int fd = (int)lws_get_socket_fd(wsi);
    int sz = SOCKBUF;
    socklen_t sl = sizeof sz;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &e->sndbuf, &sl);
    sl = sizeof sz;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &e->rcvbuf, &sl);
}

static void on_closed(struct ep *e)
{
    e->closed = true;
    e->wsi = NULL;
    free_queue(e);
}

static struct fx *fx_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        fx_of(wsi)->srv_conns++;
        on_open(&fx_of(wsi)->srv, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_rx(&fx_of(wsi)->srv, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(&fx_of(wsi)->srv, wsi);
    case LWS_CALLBACK_CLOSED:
        on_closed(&fx_of(wsi)->srv);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static int cli_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        on_open(&fx_of(wsi)->cli, wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        struct fx *fx = fx_of(wsi);
        unsigned before = fx->cli.nrx;
        int rc = on_rx(&fx->cli, wsi, in, len);
        if (fx->cli_rx_hook && fx->cli.nrx != before)
            fx->cli_rx_hook(fx);
        return rc;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(&fx_of(wsi)->cli, wsi);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        fx_of(wsi)->cli.conn_error = true;
        on_closed(&fx_of(wsi)->cli);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        on_closed(&fx_of(wsi)->cli);
        return 0;
    default:
        return 0;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct fx *fx = t->data;
    uint64_t now = uv_hrtime();
    if (fx->last_tick_ns && now - fx->last_tick_ns > fx->max_gap_ns)
        fx->max_gap_ns = now - fx->last_tick_ns;
    fx->last_tick_ns = now;
    fx->ticks++;
    if (fx->stall)
        fx->ticks_in_stall++;
    if (fx->stall && fx->tx && fx->tx->qn)
        fx->ticks_backed++;
    if (fx->tx)
        note_partial(fx->tx);
}

static void produce(lws_sorted_usec_list_t *sul)
{
    struct fx *fx = lws_container_of(sul, struct fx, sul_prod);
    struct ep *e = fx->tx;
    if (!e->wsi || e->closing || e->failed)
        return;
    if (e->qn >= QMAX)
        fx->prod_waits++;
    for (int i = 0; i < BURST && e->produced < N_MSGS && e->qn < QMAX; i++)
        push(e, e->produced++);
    if (e->produced < N_MSGS)
        lws_sul_schedule(fx->ctx, 0, &fx->sul_prod, produce, 1000 /* us */);
}

typedef bool fx_pred(struct fx *fx);

/* Run the loop until pred holds or ms pass; the tick timer wakes it every TICK_MS. */
static bool run_until(struct fx *fx, fx_pred *pred, unsigned ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (!pred(fx)) {
        if (uv_hrtime() > end)
            return false;
        evloop_turn(&fx->ev);
    }
    return true;
}

static bool both_open(struct fx *fx)
{
    return (fx->srv.open && fx->cli.open) || fx->cli.conn_error;
}

static bool both_closed(struct fx *fx)
{
    return fx->srv.closed && fx->cli.closed;
}

static void fx_connect(struct fx *fx)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = fx->ctx;
    ci.vhost = fx->vh;
    ci.address = "127.0.0.1";
    ci.port = fx->port;
    ci.path = "/stream";
    ci.host = "127.0.0.1";
    ci.origin = ci.host;
    ci.local_protocol_name = "wsout-cli";
    assert_non_null(lws_client_connect_via_info(&ci));
    assert_true(run_until(fx, both_open, 3000));
    assert_false(fx->cli.conn_error);
    assert_int_equal(fx->srv_conns, 1);
}

/* The server protocol's buffer sizes for the next fx_setup (0 = lws defaults). */
static size_t g_srv_rx, g_srv_tx;

static int fx_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    *state = fx;
    fx->srv.name = "server";
    fx->cli.name = "client";
    lws_set_log_level(getenv("WSOUT_LWS_LOG") ? atoi(getenv("WSOUT_LWS_LOG")) : LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = fx;
    fx->ctx = evloop_create(&fx->ev, &info);
    assert_non_null(fx->ctx);
    assert_int_equal(uv_timer_init(&fx->ev.uv, &fx->tick), 0);
    fx->tick_open = true;
    fx->tick.data = fx;
    assert_int_equal(uv_timer_start(&fx->tick, on_tick, TICK_MS, TICK_MS), 0);

    /* [0] takes upgrades without a subprotocol; rx_buffer_size 0 = 4096-byte chunks, which
     * also caps one send() (tx_packet_size 0): our messages fit in one. */
    fx->protos[0] = (struct lws_protocols){.name = "wsout-srv",
                                           .callback = srv_cb,
                                           .rx_buffer_size = g_srv_rx,
                                           .tx_packet_size = g_srv_tx};
    fx->protos[1] = (struct lws_protocols){.name = "wsout-cli", .callback = cli_cb};
    info.protocols = fx->protos;
    info.port = 0; /* any free port */
    info.iface = "127.0.0.1";
    info.vhost_name = "wsout";
    info.options = 0;
    fx->vh = lws_create_vhost(fx->ctx, &info);
    assert_non_null(fx->vh);
    fx->port = lws_get_vhost_listen_port(fx->vh);
    assert_true(fx->port > 0);
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    if (fx->tick_open) { /* else UV_RUN_DEFAULT below never returns */
        uv_timer_stop(&fx->tick);
        uv_close((uv_handle_t *)&fx->tick, NULL);
        fx->tick_open = false;
    }
    if (fx->ctx)
        lws_sul_cancel(&fx->sul_prod);
    /* Staged destroy on the foreign loop, as the server's teardown: a context that never
     * finished its destroy, or a handle left on the loop, is a leak. */
    int bad = evloop_destroy(&fx->ev);
    fx->ctx = NULL;
    free_queue(&fx->srv);
    free_queue(&fx->cli);
    free(fx->srv.rx);
    free(fx->cli.rx);
    free(fx);
    g_srv_rx = g_srv_tx = 0;
    g_big = g_huge = false;
    return bad ? -1 : 0;
}

/* ---- transfer under backpressure ---- */

static bool stall_done(struct fx *fx)
{
    uint64_t ms = (uv_hrtime() - fx->stall_start_ns) / 1000000u;
    struct ep *t = fx->tx;
    if (t->closed || t->failed)
        return true;
    /* Time alone is no measure on a loaded machine: also wait for the loop to have turned. */
    return ms >= STALL_MAX_MS ||
           (ms >= STALL_MIN_MS && t->rc_queue && t->qn >= QMAX && fx->ticks_backed >= BACKED_TICKS);
}

static bool all_delivered(struct fx *fx)
{
    return fx->rx->nrx >= N_MSGS || fx->rx->bad || fx->tx->closed || fx->rx->closed;
}

static void print_stats(struct fx *fx, const char *what)
{
    struct ep *t = fx->tx, *r = fx->rx;
    print_message("%s: %s->%s direct=%u QUEUE=%u ERR=%u enqueued=%u from-writeable=%u "
                  "partial-seen=%u queue-max=%u producer-waits=%u | received=%u bad=%u | sndbuf=%d "
                  "rcvbuf=%d | "
                  "ticks=%u (in stall %u, backed up %u) max-gap=%.1f ms\n",
                  what, t->name, r->name, t->rc_sent, t->rc_queue, t->rc_err, t->enqueued,
                  t->wr_writeable, t->partial_seen, t->qn_max, fx->prod_waits, r->nrx, r->bad,
                  t->sndbuf, r->rcvbuf, fx->ticks, fx->ticks_in_stall, fx->ticks_backed,
                  (double)fx->max_gap_ns / 1e6);
}

/* Start the stalled receiver and the producer; returns after the stall phase. */
static void stall_phase(struct fx *fx, struct ep *tx, struct ep *rx)
{
    fx_connect(fx);
    fx->tx = tx;
    fx->rx = rx;
    assert_int_equal(lws_rx_flow_control(rx->wsi, 0), 0);
    fx->stall = true;
    fx->ticks_in_stall = 0;
    fx->stall_start_ns = uv_hrtime();
    lws_sul_schedule(fx->ctx, 0, &fx->sul_prod, produce, 1);
    lws_cancel_service(fx->ctx); /* a sul added from outside lws: see vanish() */
    run_until(fx, stall_done, STALL_MAX_MS + 500);
    fx->stall = false;
}

static void transfer(void **state, bool server_sends)
{
    struct fx *fx = *state;
    struct ep *tx = server_sends ? &fx->srv : &fx->cli;
    struct ep *rx = server_sends ? &fx->cli : &fx->srv;
    stall_phase(fx, tx, rx);
    print_stats(fx, "stalled");
    assert_false(tx->closed);
    assert_false(tx->failed);
    /* The receiver really read nothing, so the kernel buffers filled and lws kept a tail:
     * the caller had to take the queue path. */
    assert_int_equal(rx->nrx, 0);
    assert_true(tx->rc_sent > 0);
    assert_true(tx->rc_queue > 0);
    assert_true(tx->partial_seen > 0);
    assert_true(tx->qn > 0);
    /* The loop kept turning while the writer was backed up (a blocking write would have
     * hung it for good: the reader is on the same loop). */
    assert_true(fx->ticks_backed >= BACKED_TICKS);
    assert_true(fx->prod_waits > 0); /* the producer (an lws_sul) ran too, found the queue full */

    assert_int_equal(lws_rx_flow_control(rx->wsi, 1), 0);
    assert_true(run_until(fx, all_delivered, 6000));
    print_stats(fx, "delivered");
    if (rx->bad)
        fail_msg("%s", rx->why);
    assert_int_equal(rx->nrx, N_MSGS);
    assert_int_equal(tx->produced, N_MSGS);
    assert_int_equal(tx->rc_sent + tx->enqueued, N_MSGS); /* each went one way or the other */
    assert_int_equal(tx->qn, 0);
    assert_int_equal(tx->wr_writeable, tx->enqueued); /* each queued one written once */
    assert_int_equal(tx->rc_err, 0);

    /* Graceful close from the sender: nothing more may arrive. */
    tx->closing = true;
    lws_callback_on_writable(tx->wsi);
    assert_true(run_until(fx, both_closed, 3000));
    assert_int_equal(rx->nrx, N_MSGS);
    assert_int_equal(rx->bad, 0);
}

/* Server -> client: the direction of agent audio to Twilio. */
static void test_server_to_client(void **state)
{
    transfer(state, true);
}

/* Client -> server: the direction of caller audio to the provider. */
static void test_client_to_server(void **state)
{
    transfer(state, false);
}

/* ---- failures ---- */

static bool tx_closed(struct fx *fx)
{
    return fx->tx->closed;
}

/* e's socket goes away with a reset (linger 0: no FIN, no WebSocket close), as a peer whose
 * process died. The kill is an lws timeout, i.e. an lws_sul; called from outside any lws
 * callback, lws 4.1 on libuv would not look at its timer list again until its next event
 * (a sul inserted from outside does not re-arm the loop's timer), so wake it as a worker
 * would: lws_cancel_service. */
static void vanish(struct fx *fx, struct ep *e)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(
        setsockopt((int)lws_get_socket_fd(e->wsi), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    lws_set_timeout(e->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(fx->ctx);
}

/* The receiver vanishes (RST) while the sender has a partial write in lws and a queue. */
static void peer_vanishes(void **state, bool server_sends)
{
    struct fx *fx = *state;
    struct ep *tx = server_sends ? &fx->srv : &fx->cli;
    struct ep *rx = server_sends ? &fx->cli : &fx->srv;
    stall_phase(fx, tx, rx);
    assert_true(tx->rc_queue > 0);
    assert_true(tx->qn > 0);
    assert_non_null(tx->wsi);
    bool partial = lws_partial_buffered(tx->wsi);

    vanish(fx, rx);
    unsigned pending = tx->qn;
    assert_true(run_until(fx, tx_closed, 3000));
    print_stats(fx, "vanished");
    print_message("sender closed with %u queued (%u freed at CLOSED), lws tail %s, wsout_now "
                  "errors %u\n",
                  pending, tx->freed_at_close, partial ? "yes" : "no", tx->rc_err);
    assert_true(rx->closed);
    assert_true(rx->nrx < N_MSGS); /* it really went away with data in flight */
    assert_true(tx->freed_at_close > 0 || tx->rc_err > 0);
    assert_int_equal(tx->qn, 0);
    assert_null(tx->qh);
}

static void test_client_vanishes(void **state)
{
    peer_vanishes(state, true);
}

static void test_server_vanishes(void **state)
{
    peer_vanishes(state, false);
}

static bool backed_long(struct fx *fx)
{
    return fx->ticks_backed >= BACKED_TICKS || fx->tx->closed;
}

/* Same, but with an lws tail for certain: message 0 (64 KB) cannot leave a stalled
 * connection, so lws holds most of it while the caller queues the rest behind it. */
static void test_client_vanishes_lws_tail(void **state)
{
    struct fx *fx = *state;
    g_huge = true;
    fx_connect(fx);
    fx->tx = &fx->srv;
    fx->rx = &fx->cli;
    assert_int_equal(lws_rx_flow_control(fx->rx->wsi, 0), 0);
    push(fx->tx, 0);
    assert_int_equal(fx->tx->rc_sent, 1);
    assert_true(lws_partial_buffered(fx->tx->wsi));
    for (unsigned i = 1; i <= 20; i++)
        push(fx->tx, i);
    assert_int_equal(fx->tx->rc_queue, 1);
    assert_int_equal(fx->tx->qn, 20);
    fx->stall = true;
    assert_true(run_until(fx, backed_long, 3000));
    fx->stall = false;
    /* The loop turned, the kernel took what it could, and the tail is still there. */
    assert_false(fx->tx->closed);
    assert_true(lws_partial_buffered(fx->tx->wsi));
    assert_int_equal(fx->tx->wr_writeable, 0); /* no WRITEABLE while lws has a tail */

    vanish(fx, fx->rx);
    assert_true(run_until(fx, tx_closed, 3000));
    assert_true(fx->rx->closed);
    assert_int_equal(fx->rx->nrx, 0);
    assert_int_equal(fx->tx->freed_at_close, 20);
    assert_int_equal(fx->tx->wr_writeable, 0);
    assert_null(fx->tx->qh);
}

/* The socket fails under wsout_now itself: WSOUT_ERR, and the wsi is killed (CLOSED comes),
 * later pushes are refused by the caller, nothing leaks. Done inside an lws callback (the
 * client's RECEIVE), where call.c and openai_rt.c write from. The server is paused, so it
 * cannot notice the FIN that shutdown() sends: the client's close can only come from the
 * kill that wsout_now asked for. */
static bool cli_closed(struct fx *fx)
{
    return fx->cli.closed;
}

static bool srv_closed(struct fx *fx)
{
    return fx->srv.closed;
}

/* Runs inside an lws callback: records, the test asserts afterwards (no longjmp out of lws). */
static void fail_in_callback(struct fx *fx)
{
    struct ep *t = &fx->cli;
    fx->cli_rx_hook = NULL;
    push(t, 0);
    fx->hook[0] = t->rc_sent;
    /* Our own write side shut: the next send() fails with EPIPE. */
    fx->hook[1] = (unsigned)shutdown((int)lws_get_socket_fd(t->wsi), SHUT_WR);
    push(t, 1);
    fx->hook[2] = t->rc_err;
    fx->hook[3] = t->failed;
    push(t, 2); /* the caller drops it: the connection is going */
    fx->hook[4] = t->rc_err + t->rc_sent + t->rc_queue + t->enqueued;
}

static void test_write_error(void **state)
{
    struct fx *fx = *state;
    fx_connect(fx);
    fx->tx = &fx->cli;
    fx->rx = &fx->srv;
    assert_int_equal(lws_rx_flow_control(fx->srv.wsi, 0), 0);
    fx->cli_rx_hook = fail_in_callback;
    push(&fx->srv, 0); /* the trigger, server -> client */
    assert_true(run_until(fx, cli_closed, 3000));
    assert_int_equal(fx->hook[0], 1); /* message 0 sent */
    assert_int_equal(fx->hook[1], 0); /* shutdown ok */
    assert_int_equal(fx->hook[2], 1); /* message 1: WSOUT_ERR */
    assert_int_equal(fx->hook[3], 1);
    assert_int_equal(fx->hook[4], 2); /* message 2 never reached lws nor the queue */
    assert_int_equal(fx->cli.rc_err, 1);
    assert_int_equal(fx->cli.freed_at_close, 0);
    assert_false(fx->srv.closed); /* it was not the peer that closed */
    /* The server reads what came before the failure, then the end of the stream. */
    assert_int_equal(lws_rx_flow_control(fx->srv.wsi, 1), 0);
    assert_true(run_until(fx, srv_closed, 3000));
    if (fx->srv.bad)
        fail_msg("%s", fx->srv.why);
    assert_int_equal(fx->srv.nrx, 1);
}

/* ---- lws's own send cap ---- */

/*
 * lws_issue_raw() hands at most tx_packet_size bytes (when 0: rx_buffer_size, when that is 0
 * too: 4096) + LWS_PRE + 4 to one send() and keeps the rest in its buflist, whatever room the
 * kernel has. So a message longer than the protocol's cap leaves an lws tail even on an idle
 * socket: the next wsout_now() says WSOUT_QUEUE, and the message costs a POLLOUT round per
 * cap-sized piece. The Twilio "media" protocol has rx_buffer_size 512 and agent audio
 * messages of up to 1448 bytes, so it needs a tx_packet_size (server.c).
 */
static int fx_setup_cap_rx512(void **state)
{
    g_srv_rx = 512; /* as server.c's "media" protocol without a tx_packet_size */
    g_srv_tx = 0;
    return fx_setup(state);
}

static int fx_setup_cap_tx4096(void **state)
{
    g_srv_rx = 512;
    g_srv_tx = 4096; /* as server.c's "media" protocol */
    return fx_setup(state);
}

static bool got_two(struct fx *fx)
{
    return fx->rx->nrx >= 2 || fx->rx->bad || fx->rx->closed;
}

static void send_two_big(struct fx *fx)
{
    g_big = true;
    fx_connect(fx);
    fx->tx = &fx->srv;
    fx->rx = &fx->cli;
    push(fx->tx, 0);
    assert_int_equal(fx->tx->rc_sent, 1);
}

static void test_send_cap_splits(void **state)
{
    struct fx *fx = *state;
    send_two_big(fx);
    /* Nothing is backed up (fresh socket, reader reading), yet lws kept a tail. */
    assert_true(lws_partial_buffered(fx->tx->wsi));
    push(fx->tx, 1);
    assert_int_equal(fx->tx->rc_queue, 1);
    assert_true(run_until(fx, got_two, 3000));
    if (fx->rx->bad)
        fail_msg("%s", fx->rx->why);
    assert_int_equal(fx->rx->nrx, 2);
    assert_int_equal(fx->tx->wr_writeable, 1);
}

static void test_send_cap_fits(void **state)
{
    struct fx *fx = *state;
    send_two_big(fx);
    assert_false(lws_partial_buffered(fx->tx->wsi));
    push(fx->tx, 1);
    assert_int_equal(fx->tx->rc_sent, 2); /* direct again: no POLLOUT round */
    assert_int_equal(fx->tx->rc_queue, 0);
    assert_true(run_until(fx, got_two, 3000));
    if (fx->rx->bad)
        fail_msg("%s", fx->rx->why);
    assert_int_equal(fx->rx->nrx, 2);
    assert_int_equal(fx->tx->wr_writeable, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_to_client, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_to_server, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_vanishes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_server_vanishes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_vanishes_lws_tail, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_error, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_cap_splits, fx_setup_cap_rx512, fx_teardown),
        cmocka_unit_test_setup_teardown(test_send_cap_fits, fx_setup_cap_tx4096, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
