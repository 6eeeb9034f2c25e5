/*
 * call.c - call sessions: the Twilio Media Streams socket (/media-stream),
 * the provider session bridged to it, marks and barge-in, tool calls on the
 * worker pool, failover, and the voice_calls / missed_calls rows.
 *
 * Owns: struct call (one per CallSid; created at the webhook to pre-warm the
 * provider, or at the stream's start), struct tw_conn (lws per-session data
 * of a Twilio socket, with its outgoing queue), and the jobs a call submits.
 * Jobs carry the call id, never a pointer; done callbacks look the call up
 * (it may have ended). The act_session is shared with running jobs through a
 * refcount touched only on the loop thread.
 * Must not touch: vendor JSON (providers do), SQL beyond the two call tables.
 *
 * Audio: Twilio payloads go to the provider as they are (base64 u-law);
 * provider audio goes into Twilio media messages as it is, split only at
 * 4-character boundaries into 120 ms chunks so a mark can follow every
 * ~100 ms, and paced to stay about one second ahead of playback.
 *
 * Threads: loop thread, except *_run job callbacks (workers), which see only
 * their job and the act_session (which locks itself).
 */
#include "core/cfg.h"
#include "core/err.h"
#include "core/util.h"
#include "db/db.h"
#include "net/internal.h"
#include "net/tw_fast.h"
#include "net/wsout.h"
#include "net/wsrx.h"
#include "net/twilio.h"
#include "providers/provider.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "call"
#include "core/log.h"

#define TW_MSG_MAX (64 * 1024) /* a Twilio message is < 2 KiB; bigger closes the socket */
#define START_TIMEOUT_S 10     /* a socket must send a valid start by then */
#define PREWARM_MS 20000       /* webhook-opened provider dropped without a stream */
#define GREET_WAIT_MS 1500     /* wait this long for the caller lookup before greeting */
#define CHUNK_B64 1280         /* 960 u-law bytes = 120 ms, a multiple of 4 chars */
#define MARK_EVERY_MS 100
#define LEAD_MS 1000.0 /* agent audio handed to Twilio ahead of playback */
#define MARKS_MAX 32 /* 3.2 s of audio; pacing keeps ~1 s (LEAD_MS) ahead */
#define ITEM_RING 4
#define BAD_MSG_LOG_MAX 5
#define HOLD_FRAMES 50 /* caller audio kept while the provider connects (1 s) */
#define DB_WAIT_MS 3000
#define AUTO_RETRY_MS 30000.0 /* auto: skip a provider that failed this recently */

/* ---- types ---- */

struct call_sess { /* act_session shared with jobs; refs on the loop only */
    int refs;
    struct act_session s;
};

struct tw_conn { /* lws per-session data of one Twilio socket */
    struct srv *s;
    struct lws *wsi;
    struct call *call; /* NULL before start / after the call ended */
    struct wsrx rx;    /* message reassembly (net/wsrx.h) */
    struct net_msg *oq_head, *oq_tail; /* written one per WRITEABLE */
    bool closing;                      /* close after the queue is flushed */
    bool closed;                       /* lws closed it (CLOSED seen) */
    bool started;
    int bad_msgs;
};

struct mark {
    uint32_t item; /* item sequence number */
    int off_ms;    /* audio of that item before the mark */
    bool flushed;  /* a clear was sent after it: its echo is not "heard" */
    char name[24];
};

struct tool_job;

struct call {
    struct call *next;
    struct srv *s;
    uint64_t id;
    char call_sid[72];
    char stream_sid[72];
    char from[24];        /* E.164 of the signed From, "" = withheld */
    struct tw_conn *conn; /* NULL until the stream attaches */
    double started_ms;
    char started_at[24];
    bool ending, failed, row_started;
    bool prewarmed;       /* opened by the webhook, before the stream */
    char fail_reason[200];

    /* provider */
    int pidx; /* index into s->provs */
    struct prov *prov;
    bool tried[NET_PROV_N];
    bool ready, waiting_dns, fail_pending;
    enum prov_close fail_why;
    char fail_detail[160];
    double prov_open_ms;
    const char *served_by; /* provider that became ready */
    lws_sorted_usec_list_t sul_connect, sul_prewarm, sul_greet, sul_pace, sul_provfail;

    /* identity */
    struct call_sess *cs;
    bool identified, greet_timer, greet_wait_over, greeted;
    char first_name[64];
    long long user_id;

    /* agent audio: arrival side */
    char items[ITEM_RING][96]; /* item ids by seq % ITEM_RING */
    uint32_t item_seq;         /* latest arrived item */
    char truncated_item[96];
    struct net_msg *bl_head, *bl_tail; /* paced backlog, not yet queued to Twilio */
    /* agent audio: sent side */
    uint32_t sent_item;
    long sent_bytes, mark_bytes; /* of sent_item */
    double item_first_ms, play_until;
    struct mark marks[MARKS_MAX];
    int mk_head, mk_n;
    uint32_t heard_item;
    int heard_ms;
    double heard_at;

    /* tools */
    struct tool_job *tools;
    int tool_calls;
    bool budget_logged;

    /* caller audio held until the provider is ready (newest HOLD_FRAMES frames) */
    char **hold; /* HOLD_FRAMES slots, allocated on first use, freed when flushed */
    int hold_head, hold_n;

    /* stats */
    long frames_in, frames_dropped, msgs_out;
    int bad_audio_logged;
};

struct tool_job {
    struct pool_job base;
    struct srv *s;
    uint64_t call_id;
    struct call_sess *cs;
    atomic_bool cancelled;
    bool skipped;
    struct tool_job *next; /* in call->tools (loop thread) */
    char id[128];
    char name[64];
    char *args;
    char *result;
    int success, sms_sent;
    double ms;
    char code[48];
};

static void call_end(struct call *c, const char *reason);
static void call_fail(struct call *c, const char *reason);
static void open_provider(struct call *c, int idx);
static void pump(struct call *c);
static void maybe_greet(struct call *c);

size_t net__media_pss_size(void)
{
    return sizeof(struct tw_conn);
}

static const struct prov_ops *ops_of(struct call *c)
{
    return c->s->provs[c->pidx];
}

static struct call *find_call(struct srv *s, uint64_t id)
{
    for (struct call *c = s->calls; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

int net__calls_count(struct srv *s)
{
    int n = 0;
    for (struct call *c = s->calls; c; c = c->next)
        n++;
    return n;
}

static void sess_put(struct call_sess *cs)
{
    if (cs && --cs->refs == 0) {
        act_session_cleanup(&cs->s);
        free(cs);
    }
}

/* ---- Twilio socket output ---- */

/* Queue m behind what is waiting (written one per WRITEABLE). */
static void conn_queue(struct tw_conn *k, struct net_msg *m)
{
    if (k->oq_tail)
        k->oq_tail->next = m;
    else
        k->oq_head = m;
    k->oq_tail = m;
    lws_callback_on_writable(k->wsi);
}

/* Nothing waiting: write now (wsout.h). true when the message is dealt with (written, or the
 * socket failed and is being killed; CLOSED then ends the call), false when it must queue. */
static bool conn_write_now(struct tw_conn *k, unsigned char *payload, size_t len)
{
    if (k->oq_head)
        return false;
    enum wsout_rc rc = wsout_now(k->wsi, payload, len);
    if (rc == WSOUT_ERR)
        k->closing = true;
    return rc != WSOUT_QUEUE;
}

static void conn_push(struct tw_conn *k, struct net_msg *m)
{
    if (!k || k->closing || k->closed || conn_write_now(k, m->buf + LWS_PRE, m->len)) {
        free(m);
        return;
    }
    conn_queue(k, m);
}

static void conn_close(struct tw_conn *k)
{
    if (!k || k->closing || k->closed)
        return;
    k->closing = true;
    lws_callback_on_writable(k->wsi);
}

/* Longest Twilio message we build: the keys and punctuation, a SID (< 72), a value. */
#define TW_OUT_MAX(vlen) (96 + 72 + (vlen))

/* Write {"event":EV,"streamSid":SID,<key>:{<field>:"<val>"}} (no key: just event and SID) to
 * p, which has TW_OUT_MAX(vlen) bytes, without a JSON library: the SID is checked at start to be
 * [A-Za-z0-9_.:-] (< 72 chars), val is checked base64 or one of our mark names, ev/key/field
 * are our literals. Returns the length. */
static size_t msg_fill(char *p, const char *ev, const char *sid, const char *key,
                       const char *field, const char *val, size_t vlen)
{
    char *w = p;
#define PUT(str, n) (memcpy(w, (str), (n)), w += (n))
#define PUTS(lit) PUT(lit, sizeof lit - 1)
    PUTS("{\"event\":\"");
    PUT(ev, strlen(ev));
    PUTS("\",\"streamSid\":\"");
    PUT(sid, strlen(sid));
    if (key) {
        PUTS("\",\"");
        PUT(key, strlen(key));
        PUTS("\":{\"");
        PUT(field, strlen(field));
        PUTS("\":\"");
        PUT(val, vlen);
        PUTS("\"}}");
    } else {
        PUTS("\"}");
    }
#undef PUTS
#undef PUT
    return (size_t)(w - p);
}

static struct net_msg *msg_build(enum net_msg_kind kind, const char *ev, const char *sid,
                                 const char *key, const char *field, const char *val, size_t vlen)
{
    struct net_msg *m = net_msg_new(kind, TW_OUT_MAX(vlen));
    if (m)
        m->len = msg_fill((char *)m->buf + LWS_PRE, ev, sid, key, field, val, vlen);
    return m;
}

/* Send a message to Twilio: written from the stack when nothing is queued (the usual case, no
 * allocation), else built on the heap and queued. vlen <= CHUNK_B64. */
static void conn_send(struct tw_conn *k, enum net_msg_kind kind, const char *ev, const char *sid,
                      const char *key, const char *field, const char *val, size_t vlen)
{
    if (!k || k->closing || k->closed)
        return;
    if (!k->oq_head && vlen <= CHUNK_B64) {
        unsigned char buf[LWS_PRE + TW_OUT_MAX(CHUNK_B64)];
        size_t n = msg_fill((char *)buf + LWS_PRE, ev, sid, key, field, val, vlen);
        if (conn_write_now(k, buf + LWS_PRE, n))
            return;
    }
    struct net_msg *m = msg_build(kind, ev, sid, key, field, val, vlen);
    if (m)
        conn_queue(k, m);
}

static void free_msgs(struct net_msg *m)
{
    while (m) {
        struct net_msg *n = m->next;
        free(m);
        m = n;
    }
}

/* ---- marks and pacing ---- */

static void send_mark(struct call *c)
{
    if (c->mk_n >= MARKS_MAX)
        return; /* Twilio is not echoing: stop adding, audio still flows */
    struct mark *mk = &c->marks[(c->mk_head + c->mk_n) % MARKS_MAX];
    mk->item = c->sent_item;
    mk->off_ms = (int)(c->sent_bytes / 8);
    mk->flushed = false;
    snprintf(mk->name, sizeof mk->name, "%u:%d", mk->item, mk->off_ms);
    c->mk_n++;
    c->mark_bytes = c->sent_bytes;
    conn_send(c->conn, NET_MSG_MARK, "mark", c->stream_sid, "mark", "name", mk->name,
              strlen(mk->name));
}

static void pace_cb(lws_sorted_usec_list_t *sul)
{
    struct call *c = lws_container_of(sul, struct call, sul_pace);
    pump(c);
}

/* Agent audio of item `item` (bytes of u-law) is being handed to Twilio now. */
static void media_account(struct call *c, uint32_t item, int bytes, double now)
{
    if (item != c->sent_item) {
        c->sent_item = item;
        c->sent_bytes = c->mark_bytes = 0;
    }
    if (c->sent_bytes == 0)
        c->item_first_ms = now;
    if (c->play_until < now)
        c->play_until = now;
    c->play_until += bytes / 8.0;
    c->sent_bytes += bytes;
    c->msgs_out++;
}

/* Move backlog to Twilio while we are less than LEAD_MS ahead of playback. */
static void pump(struct call *c)
{
    double now = util_mono_ms();
    while (c->bl_head && c->conn) {
        if (c->play_until - now > LEAD_MS) {
            lws_usec_t us = (lws_usec_t)((c->play_until - LEAD_MS - now) * 1000.0) + 1000;
            lws_sul_schedule(c->s->ctx, 0, &c->sul_pace, pace_cb, us);
            return;
        }
        struct net_msg *m = c->bl_head;
        c->bl_head = m->next;
        if (!c->bl_head)
            c->bl_tail = NULL;
        m->next = NULL;
        media_account(c, m->item, m->bytes, now);
        conn_push(c->conn, m);
        if ((c->sent_bytes - c->mark_bytes) / 8 >= MARK_EVERY_MS)
            send_mark(c);
    }
}

/* u-law bytes in n base64 chars (the last chunk may carry padding). */
static int b64_bytes(const char *b, size_t n)
{
    int pad = (n >= 1 && b[n - 1] == '=') + (n >= 2 && b[n - 2] == '=');
    return (int)(n / 4 * 3) - pad;
}

/* Agent audio to Twilio in pieces of at most CHUNK_B64: written at once while nothing is
 * waiting and we are less than LEAD_MS ahead of playback, else kept in the paced backlog. */
static void queue_audio(struct call *c, const char *b64, size_t len)
{
    size_t off = 0;
    double now = util_mono_ms();
    while (off < len) {
        size_t n = len - off;
        if (n > CHUNK_B64 && len % 4 == 0)
            n = CHUNK_B64; /* split only well-formed base64, at a 4-char boundary */
        if (!c->bl_head && c->conn && c->play_until - now <= LEAD_MS) {
            media_account(c, c->item_seq, b64_bytes(b64 + off, n), now);
            conn_send(c->conn, NET_MSG_MEDIA, "media", c->stream_sid, "media", "payload",
                      b64 + off, n);
            if ((c->sent_bytes - c->mark_bytes) / 8 >= MARK_EVERY_MS)
                send_mark(c);
            off += n;
            continue;
        }
        struct net_msg *m =
            msg_build(NET_MSG_MEDIA, "media", c->stream_sid, "media", "payload", b64 + off, n);
        if (!m)
            return;
        m->bytes = b64_bytes(b64 + off, n);
        m->item = c->item_seq;
        if (c->bl_tail)
            c->bl_tail->next = m;
        else
            c->bl_head = m;
        c->bl_tail = m;
        off += n;
    }
}

/* ---- caller audio held while the provider connects ---- */

static void hold_frame(struct call *c, const char *b64, size_t len)
{
    if (!c->hold && !(c->hold = calloc(HOLD_FRAMES, sizeof *c->hold)))
        return;
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, b64, len + 1);
    if (c->hold_n == HOLD_FRAMES) { /* keep the newest second: drop the oldest */
        free(c->hold[c->hold_head]);
        c->hold_head = (c->hold_head + 1) % HOLD_FRAMES;
        c->hold_n--;
        c->frames_dropped++;
    }
    c->hold[(c->hold_head + c->hold_n) % HOLD_FRAMES] = copy;
    c->hold_n++;
}

/* Send (send=true) or discard what was held, oldest first. */
static void hold_flush(struct call *c, bool send)
{
    while (c->hold_n > 0) {
        char *f = c->hold[c->hold_head];
        c->hold[c->hold_head] = NULL;
        c->hold_head = (c->hold_head + 1) % HOLD_FRAMES;
        c->hold_n--;
        if (send && c->prov)
            ops_of(c)->send_audio(c->prov, f, strlen(f));
        free(f);
    }
    free(c->hold);
    c->hold = NULL;
    c->hold_head = 0;
}

/* ---- provider events ---- */

static void ev_ready(void *owner)
{
    struct call *c = owner;
    struct srv *s = c->s;
    if (c->ending || c->ready)
        return;
    c->ready = true;
    lws_sul_cancel(&c->sul_connect);
    c->served_by = ops_of(c)->name;
    s->pstate[c->pidx].state = "ok";
    pthread_mutex_lock(&c->cs->s.mu);
    util_strlcpy(c->cs->s.provider, c->served_by, sizeof c->cs->s.provider);
    pthread_mutex_unlock(&c->cs->s.mu);
    log_info("call=%s provider %s ready in %.0f ms%s", c->call_sid, c->served_by,
             util_mono_ms() - c->prov_open_ms, c->hold_n ? "; sending the caller audio held" : "");
    hold_flush(c, true);
    maybe_greet(c);
}

static void ev_audio(void *owner, const char *b64, size_t len, const char *item_id)
{
    struct call *c = owner;
    if (c->ending || !c->conn || !len)
        return;
    if (!item_id)
        item_id = "";
    if (item_id[0] && !strcmp(item_id, c->truncated_item))
        return; /* late audio of an item cut by barge-in */
    /* It goes into our JSON verbatim: only the base64 alphabet may pass. */
    if (!util_b64_plain(b64, len)) {
        if (!c->bad_audio_logged++)
            log_warn("call=%s provider audio is not base64: dropped", c->call_sid);
        return;
    }
    if (strcmp(item_id, c->items[c->item_seq % ITEM_RING]) || c->item_seq == 0) {
        c->item_seq++;
        util_strlcpy(c->items[c->item_seq % ITEM_RING], item_id, sizeof c->items[0]);
    }
    queue_audio(c, b64, len);
    pump(c);
}

/* Drop queued media and marks not yet written; returns how many marks went. */
static int conn_drop_unsent(struct tw_conn *k)
{
    int marks = 0;
    struct net_msg **pp = &k->oq_head, *last = NULL;
    while (*pp) {
        struct net_msg *m = *pp;
        if (m->kind == NET_MSG_MEDIA || m->kind == NET_MSG_MARK) {
            marks += m->kind == NET_MSG_MARK;
            *pp = m->next;
            free(m);
        } else {
            last = m;
            pp = &m->next;
        }
    }
    k->oq_tail = last;
    return marks;
}

/* What the caller heard of the item being played: last heard mark, plus the time
 * since it came back, capped at the next outstanding mark (twilio.md §3.3). */
static int heard_estimate(struct call *c, double now)
{
    int base = 0;
    double base_at = c->item_first_ms;
    if (c->heard_item == c->sent_item && c->heard_ms > 0) {
        base = c->heard_ms;
        base_at = c->heard_at;
    }
    int cap = (int)(c->sent_bytes / 8);
    for (int i = 0; i < c->mk_n; i++) {
        struct mark *mk = &c->marks[(c->mk_head + i) % MARKS_MAX];
        if (!mk->flushed && mk->item == c->sent_item && mk->off_ms > base) {
            cap = mk->off_ms;
            break;
        }
    }
    int h = base + (int)(now - base_at);
    if (h > cap)
        h = cap;
    return h < base ? base : h;
}

static void ev_barge_in(void *owner)
{
    struct call *c = owner;
    if (c->ending || !c->conn)
        return;
    double now = util_mono_ms();
    int unflushed = 0;
    for (int i = 0; i < c->mk_n; i++)
        unflushed += !c->marks[(c->mk_head + i) % MARKS_MAX].flushed;
    if (!c->bl_head && !unflushed && now >= c->play_until)
        return; /* everything already played: nothing to cut */
    int heard = heard_estimate(c, now);
    free_msgs(c->bl_head);
    c->bl_head = c->bl_tail = NULL;
    lws_sul_cancel(&c->sul_pace);
    int dropped = conn_drop_unsent(c->conn);
    c->mk_n -= dropped < c->mk_n ? dropped : c->mk_n; /* never sent: no echo will come */
    for (int i = 0; i < c->mk_n; i++)
        c->marks[(c->mk_head + i) % MARKS_MAX].flushed = true;
    conn_send(c->conn, NET_MSG_OTHER, "clear", c->stream_sid, NULL, NULL, NULL, 0);
    c->play_until = now;
    const char *item = c->items[c->sent_item % ITEM_RING];
    log_info("call=%s barge-in: clear sent, caller heard %d ms of item %s", c->call_sid, heard,
             item[0] ? item : "-");
    if (item[0]) {
        util_strlcpy(c->truncated_item, item, sizeof c->truncated_item);
        if (ops_of(c)->truncate && c->prov)
            ops_of(c)->truncate(c->prov, item, heard);
    }
}

static void on_mark_echo(struct call *c, const char *name)
{
    while (c->mk_n > 0) {
        struct mark *mk = &c->marks[c->mk_head];
        c->mk_head = (c->mk_head + 1) % MARKS_MAX;
        c->mk_n--;
        if (!strcmp(mk->name, name)) {
            if (!mk->flushed) {
                c->heard_item = mk->item;
                c->heard_ms = mk->off_ms;
                c->heard_at = util_mono_ms();
            }
            return;
        }
        /* Twilio echoes in order: an earlier mark that never came back is skipped. */
    }
    log_debug("call=%s mark %s not outstanding (ignored)", c->call_sid, name);
}

/* ---- tool calls ---- */

static void tool_run(struct pool_job *pj)
{
    struct tool_job *j = (struct tool_job *)pj;
    if (atomic_load(&j->cancelled)) {
        j->skipped = true;
        return;
    }
    json_t *env = act_execute_text(&j->s->env, &j->cs->s, j->name, j->args);
    net__envelope_stats(env, &j->success, &j->ms, &j->sms_sent, j->code, sizeof j->code);
    j->result = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
}

static void tool_unlink(struct call *c, struct tool_job *j)
{
    for (struct tool_job **pp = &c->tools; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    j->next = NULL;
}

static void tool_done(struct pool_job *pj)
{
    struct tool_job *j = (struct tool_job *)pj;
    struct srv *s = j->s;
    if (!j->skipped && j->result)
        net__metrics_action(s, j->name, j->success, j->ms, j->sms_sent);
    struct call *c = find_call(s, j->call_id);
    if (c)
        tool_unlink(c, j);
    if (j->skipped || atomic_load(&j->cancelled)) {
        log_info("call=%s tool call %s (%s) was withdrawn by the provider: %s", j->cs->s.call_sid,
                 j->name, j->id, j->skipped ? "not run" : "result dropped");
    } else if (!c || c->ending || !c->prov) {
        log_info("call=%s tool call %s finished after the call ended", j->cs->s.call_sid, j->name);
    } else if (!j->result) {
        log_error("call=%s tool call %s produced no envelope", c->call_sid, j->name);
    } else {
        if (!strcmp(j->code, "budget_exceeded"))
            log_warn("call=%s tool-call budget exhausted (MAX_TOOL_CALLS=%d): %s refused",
                     c->call_sid, s->cfg->max_tool_calls, j->name);
        ops_of(c)->tool_result(c->prov, j->id, j->name, j->result);
    }
    sess_put(j->cs);
    free(j->args);
    free(j->result);
    free(j);
}

static void answer_busy(struct call *c, const char *id, const char *name)
{
    log_warn("call=%s tool call %s (%s) refused: the work queue is full (answered busy)",
             c->call_sid, name, id);
    json_t *e = json_pack("{s:b,s:s,s:{},s:{s:s},s:i}", "success", 0, "message", err_say(ERR_BUSY),
                          "data", "error", "code", "busy", "execution_time_ms", 0);
    char *txt = e ? json_dumps(e, JSON_COMPACT) : NULL;
    if (txt)
        ops_of(c)->tool_result(c->prov, id, name, txt);
    free(txt);
    json_decref(e);
}

static void ev_tool_call(void *owner, const char *call_id, const char *name, const char *args)
{
    struct call *c = owner;
    if (c->ending || !c->prov)
        return;
    c->tool_calls++;
    if (c->tool_calls > c->s->cfg->max_tool_calls && !c->budget_logged) {
        c->budget_logged = true;
        log_warn("call=%s tool-call budget reached (MAX_TOOL_CALLS=%d): further tool calls "
                 "are refused",
                 c->call_sid, c->s->cfg->max_tool_calls);
    }
    struct tool_job *j = calloc(1, sizeof *j);
    if (!j || !(j->args = strdup(args ? args : "{}"))) {
        free(j);
        answer_busy(c, call_id, name);
        return;
    }
    j->base.run = tool_run;
    j->base.done = tool_done;
    j->s = c->s;
    j->call_id = c->id;
    j->cs = c->cs;
    util_strlcpy(j->id, call_id, sizeof j->id);
    util_strlcpy(j->name, name, sizeof j->name);
    atomic_init(&j->cancelled, false);
    if (net__submit(c->s, &j->base)) {
        free(j->args);
        free(j);
        answer_busy(c, call_id, name);
        return;
    }
    c->cs->refs++;
    j->next = c->tools;
    c->tools = j;
    log_info("call=%s tool call %s (%s) queued", c->call_sid, name, call_id);
}

static void ev_tool_cancel(void *owner, const char *call_id)
{
    struct call *c = owner;
    for (struct tool_job *j = c->tools; j; j = j->next)
        if (!strcmp(j->id, call_id)) {
            atomic_store(&j->cancelled, true);
            log_info("call=%s tool call %s cancelled by the provider", c->call_sid, call_id);
            return;
        }
}

/* ---- provider lifecycle and failover ---- */

static int reason_of(enum prov_close why)
{
    switch (why) {
    case PROV_CLOSE_CONNECT_FAILED:
        return NET_PR_CONNECT_FAILED;
    case PROV_CLOSE_REJECTED:
        return NET_PR_REJECTED;
    case PROV_CLOSE_PROTOCOL:
        return NET_PR_PROTOCOL;
    case PROV_CLOSE_EXPIRED:
        return NET_PR_EXPIRED;
    case PROV_CLOSE_DROPPED:
    case PROV_CLOSE_NORMAL:
        break;
    }
    return NET_PR_DROPPED;
}

static bool try_failover(struct call *c, const char *why)
{
    struct srv *s = c->s;
    for (int i = 0; i < NET_PROV_N; i++) {
        if (i == c->pidx || c->tried[i] || !s->provs[i] || !s->provs[i]->configured(s->cfg))
            continue;
        log_warn("call=%s provider %s failed before ready (%s): failing over to %s", c->call_sid,
                 ops_of(c)->name, why, s->provs[i]->name);
        s->m.calls_failed_over++;
        open_provider(c, i);
        return true;
    }
    return false;
}

/* Provider gone (event or timeout): close it, then fail over or fail the call. */
static void provider_failed(struct call *c, int reason, enum prov_close why, const char *detail)
{
    struct srv *s = c->s;
    const struct prov_ops *ops = ops_of(c);
    lws_sul_cancel(&c->sul_connect);
    lws_sul_cancel(&c->sul_provfail);
    c->fail_pending = false;
    c->waiting_dns = false;
    if (c->prov) {
        struct prov *p = c->prov;
        c->prov = NULL;
        ops->close(p);
    }
    s->m.prov_err[c->pidx][reason]++;
    s->pstate[c->pidx].last_fail_ms = util_mono_ms();
    if (reason == NET_PR_REJECTED)
        s->pstate[c->pidx].state = "rejected";
    else if (reason == NET_PR_CONNECT_FAILED || reason == NET_PR_TIMEOUT ||
             reason == NET_PR_DROPPED)
        s->pstate[c->pidx].state = "unreachable";
    char why_txt[240];
    snprintf(why_txt, sizeof why_txt, "%s %s%s%s", ops->name, net__prov_reason_name(reason),
             detail && *detail ? ": " : "", detail ? detail : "");
    bool early = !c->ready && (why == PROV_CLOSE_CONNECT_FAILED || why == PROV_CLOSE_REJECTED);
    if (early && try_failover(c, why_txt))
        return;
    c->ready = false;
    call_fail(c, why_txt);
}

static void provfail_cb(lws_sorted_usec_list_t *sul)
{
    struct call *c = lws_container_of(sul, struct call, sul_provfail);
    provider_failed(c, reason_of(c->fail_why), c->fail_why, c->fail_detail);
}

static void ev_closed(void *owner, enum prov_close why, const char *detail)
{
    struct call *c = owner;
    if (c->ending || c->fail_pending)
        return;
    /* Deferred: we may be inside the provider's own callback (or its open()). */
    c->fail_pending = true;
    c->fail_why = why;
    util_strlcpy(c->fail_detail, detail ? detail : "", sizeof c->fail_detail);
    lws_sul_schedule(c->s->ctx, 0, &c->sul_provfail, provfail_cb, 1);
}

static void connect_timeout_cb(lws_sorted_usec_list_t *sul)
{
    struct call *c = lws_container_of(sul, struct call, sul_connect);
    if (c->ready || c->ending)
        return;
    char d[96];
    snprintf(d, sizeof d, "not ready within PROVIDER_CONNECT_TIMEOUT_MS=%d",
             c->s->cfg->provider_connect_timeout_ms);
    /* A timeout counts as a failed connect for failover purposes. */
    provider_failed(c, NET_PR_TIMEOUT, PROV_CLOSE_CONNECT_FAILED, d);
}

static const struct prov_events call_events = {
    .ready = ev_ready,
    .audio = ev_audio,
    .barge_in = ev_barge_in,
    .tool_call = ev_tool_call,
    .tool_cancel = ev_tool_cancel,
    .closed = ev_closed,
};

static void open_provider_now(struct call *c)
{
    struct srv *s = c->s;
    const struct prov_ops *ops = ops_of(c);
    struct net_dns *d = &s->dns[c->pidx];
    struct prov_open_args a = {
        .ctx = s->ctx,
        .vhost = s->vh,
        .cfg = s->cfg,
        .ev = &call_events,
        .owner = c,
        .instructions = s->instructions,
        .call_sid = c->call_sid,
        .address = d->addr[0] ? d->addr : NULL,
    };
    struct err e = {0};
    struct prov *p = NULL;
    if (ops->open(&p, &a, &e)) {
        if (!c->fail_pending)
            ev_closed(c, PROV_CLOSE_CONNECT_FAILED, e.detail[0] ? e.detail : err_name(e.code));
        return;
    }
    c->prov = p; /* if closed already fired inside open(), provfail_cb closes it */
}

static void open_provider(struct call *c, int idx)
{
    struct srv *s = c->s;
    c->pidx = idx;
    c->tried[idx] = true;
    c->ready = false;
    c->prov_open_ms = util_mono_ms();
    lws_sul_schedule(s->ctx, 0, &c->sul_connect, connect_timeout_cb,
                     (lws_usec_t)s->cfg->provider_connect_timeout_ms * 1000);
    struct net_dns *d = &s->dns[idx];
    if (d->host[0] && !d->addr[0]) { /* not resolved yet: a worker does it, then we open */
        c->waiting_dns = true;
        net__dns_refresh(s, idx);
        if (!d->resolving) {
            c->waiting_dns = false;
            ev_closed(c, PROV_CLOSE_CONNECT_FAILED, "cannot resolve the provider host");
        }
        return;
    }
    net__dns_refresh(s, idx); /* refresh a stale cache in the background */
    open_provider_now(c);
}

void net__calls_dns_ready(struct srv *s, int idx)
{
    for (struct call *c = s->calls; c; c = c->next) {
        if (!c->waiting_dns || c->pidx != idx || c->ending)
            continue;
        c->waiting_dns = false;
        if (s->dns[idx].addr[0])
            open_provider_now(c);
        else
            ev_closed(c, PROV_CLOSE_CONNECT_FAILED, "cannot resolve the provider host");
    }
}

int net__provider_first(struct srv *s)
{
    int order[NET_PROV_N] = {0, 1};
    if (s->provider_sel == CFG_PROV_GEMINI) {
        order[0] = 1;
        order[1] = 0;
    }
    int avail[NET_PROV_N], n = 0;
    for (int i = 0; i < NET_PROV_N; i++) {
        const struct prov_ops *o = s->provs[order[i]];
        if (o && o->configured(s->cfg))
            avail[n++] = order[i];
    }
    if (n == 0)
        return -1;
    /* auto: skip one that failed in the last AUTO_RETRY_MS when the other is available. */
    if (s->provider_sel == CFG_PROV_AUTO && n > 1) {
        struct net_prov_state *st = &s->pstate[avail[0]];
        if (strcmp(st->state, "ok") && st->last_fail_ms > 0 &&
            util_mono_ms() - st->last_fail_ms < AUTO_RETRY_MS)
            return avail[1];
    }
    return avail[0];
}

/* ---- greeting and caller lookup ---- */

static void greet_timer_cb(lws_sorted_usec_list_t *sul)
{
    struct call *c = lws_container_of(sul, struct call, sul_greet);
    c->greet_wait_over = true;
    if (!c->identified)
        log_warn("call=%s caller lookup still running after %d ms: greeting without a name",
                 c->call_sid, GREET_WAIT_MS);
    maybe_greet(c);
}

static void maybe_greet(struct call *c)
{
    if (!c->conn || !c->ready || c->greeted || c->ending || !c->prov)
        return;
    if (!c->identified && !c->greet_wait_over) {
        if (!c->greet_timer) {
            c->greet_timer = true;
            lws_sul_schedule(c->s->ctx, 0, &c->sul_greet, greet_timer_cb,
                             (lws_usec_t)GREET_WAIT_MS * 1000);
        }
        return;
    }
    c->greeted = true;
    lws_sul_cancel(&c->sul_greet);
    ops_of(c)->greet(c->prov, c->identified ? c->first_name : "");
}

struct ident_job {
    struct pool_job base;
    struct srv *s;
    uint64_t call_id;
    struct call_sess *cs;
    char first_name[64];
    long long user_id;
    int rc;
    char detail[256];
};

static void ident_run(struct pool_job *pj)
{
    struct ident_job *j = (struct ident_job *)pj;
    struct err e = {0};
    j->rc =
        act_session_identify(&j->s->env, &j->cs->s, j->first_name, (int)sizeof j->first_name, &e);
    util_strlcpy(j->detail, e.detail, sizeof j->detail);
    pthread_mutex_lock(&j->cs->s.mu);
    j->user_id = j->cs->s.user_id;
    pthread_mutex_unlock(&j->cs->s.mu);
}

static void ident_done(struct pool_job *pj)
{
    struct ident_job *j = (struct ident_job *)pj;
    struct call *c = find_call(j->s, j->call_id);
    if (c && !c->ending) {
        if (j->rc)
            log_warn("call=%s caller lookup failed (%s): carrying on as an unknown caller",
                     c->call_sid, j->detail);
        c->identified = true;
        c->user_id = j->rc ? 0 : j->user_id;
        if (!j->rc)
            util_strlcpy(c->first_name, j->first_name, sizeof c->first_name);
        log_info("call=%s caller %s", c->call_sid,
                 c->user_id ? "is on file (user found)" : "not on file");
        maybe_greet(c);
    }
    sess_put(j->cs);
    free(j);
}

static void start_identify(struct call *c)
{
    if (!c->from[0]) {
        c->identified = true; /* withheld: nobody to look up */
        return;
    }
    struct ident_job *j = calloc(1, sizeof *j);
    if (!j) {
        c->identified = true;
        return;
    }
    j->base.run = ident_run;
    j->base.done = ident_done;
    j->s = c->s;
    j->call_id = c->id;
    j->cs = c->cs;
    if (net__submit(c->s, &j->base)) {
        free(j);
        c->identified = true;
        return;
    }
    c->cs->refs++;
}

/* ---- database rows (workers) ---- */

enum row_kind { ROW_START, ROW_END, ROW_MISSED };

struct row_job {
    struct pool_job base;
    enum row_kind kind;
    struct srv *s;
    char call_sid[72];
    char phone[24]; /* ROW_MISSED: E.164 (operational callback list) */
    char phone_masked[32];
    long long user_id;
    char provider[16];
    char started_at[24], ended_at[24];
    char end_reason[200];
    int actions;
};

static void row_run(struct pool_job *pj)
{
    struct row_job *j = (struct row_job *)pj;
    struct db *db = NULL;
    struct err e = {0};
    if (db_pool_get(j->s->env.pool, DB_WAIT_MS, &db, &e)) {
        log_error("call=%s call row not written: %s", j->call_sid, e.detail);
        return;
    }
    struct db_val uid = j->user_id ? DB_I(j->user_id) : DB_NIL;
    struct db_rows r = {0};
    int rc = 0;
    if (j->kind == ROW_START) {
        struct db_val a[] = {DB_S(j->call_sid), DB_S(j->phone_masked), uid, DB_S(j->provider),
                             DB_S(j->started_at)};
        rc = db_run(db,
                    "INSERT INTO voice_calls (call_sid, phone_masked, user_id, provider, "
                    "started_at, actions_count) VALUES (?, ?, ?, ?, ?, 0)",
                    a, 5, &e);
    } else if (j->kind == ROW_END) {
        struct db_val a[] = {DB_S(j->ended_at), DB_S(j->end_reason), DB_I(j->actions), uid,
                             DB_S(j->provider), DB_S(j->call_sid)};
        rc = db_exec(db,
                     "UPDATE voice_calls SET ended_at = ?, end_reason = ?, actions_count = ?, "
                     "user_id = ?, provider = ? WHERE call_sid = ?",
                     a, 6, &r, &e);
        long long changed = r.changes;
        db_rows_free(&r);
        if (!rc && changed == 0) { /* the start row lost a race or failed: write it whole */
            struct db_val b[] = {DB_S(j->call_sid),   DB_S(j->phone_masked), uid,
                                 DB_S(j->provider),   DB_S(j->started_at),   DB_S(j->ended_at),
                                 DB_S(j->end_reason), DB_I(j->actions)};
            rc = db_run(db,
                        "INSERT INTO voice_calls (call_sid, phone_masked, user_id, provider, "
                        "started_at, ended_at, end_reason, actions_count) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        b, 8, &e);
        }
    } else {
        struct db_val q[] = {DB_S(j->phone)};
        if (!db_exec(db, "SELECT id FROM users WHERE phone = ?", q, 1, &r, &e))
            j->user_id = db_cell_int(&r, 0, "id", 0);
        db_rows_free(&r);
        err_clear(&e);
        struct db_val a[] = {j->user_id ? DB_I(j->user_id) : DB_NIL,
                             DB_S(j->phone),
                             DB_S(j->ended_at),
                             DB_S(j->end_reason),
                             DB_S(j->call_sid),
                             DB_S(j->ended_at)};
        rc = db_run(db,
                    "INSERT INTO missed_calls (user_id, phone, callback_time, reason, status, "
                    "source, call_sid, created_at) "
                    "VALUES (?, ?, ?, ?, 'pending', 'voice_fallback', ?, ?)",
                    a, 6, &e);
        if (!rc)
            log_info("call=%s callback requested for %s (missed_calls, voice_fallback)",
                     j->call_sid, j->phone);
    }
    db_pool_put(j->s->env.pool, db, rc == ERR_DB_UNAVAILABLE);
    if (rc)
        log_error("call=%s %s row not written: %s", j->call_sid,
                  j->kind == ROW_MISSED ? "missed_calls" : "voice_calls", e.detail);
}

static void row_done(struct pool_job *pj)
{
    free(pj);
}

static void submit_row(struct call *c, enum row_kind kind, const char *reason)
{
    struct row_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->base.run = row_run;
    j->base.done = row_done;
    j->kind = kind;
    j->s = c->s;
    util_strlcpy(j->call_sid, c->call_sid, sizeof j->call_sid);
    util_strlcpy(j->phone, c->from, sizeof j->phone);
    if (c->from[0])
        log_mask_phone(c->from, j->phone_masked, sizeof j->phone_masked);
    else
        util_strlcpy(j->phone_masked, "withheld", sizeof j->phone_masked);
    j->user_id = c->user_id;
    util_strlcpy(j->provider,
                 c->served_by           ? c->served_by
                 : c->s->provs[c->pidx] ? ops_of(c)->name
                                        : "none",
                 sizeof j->provider);
    util_strlcpy(j->started_at, c->started_at, sizeof j->started_at);
    db_utc_text(util_now(), j->ended_at, (int)sizeof j->ended_at);
    util_strlcpy(j->end_reason, reason ? reason : "", sizeof j->end_reason);
    pthread_mutex_lock(&c->cs->s.mu);
    j->actions = c->cs->s.actions_count;
    pthread_mutex_unlock(&c->cs->s.mu);
    if (net__submit(c->s, &j->base)) {
        log_error("call=%s %s row dropped: work queue full", c->call_sid,
                  kind == ROW_MISSED ? "missed_calls" : "voice_calls");
        free(j);
    }
}

/* ---- call lifecycle ---- */

static void prewarm_expired_cb(lws_sorted_usec_list_t *sul)
{
    struct call *c = lws_container_of(sul, struct call, sul_prewarm);
    if (c->conn)
        return;
    log_warn("call=%s no media stream within %d s of the webhook: dropping the pre-warmed "
             "session",
             c->call_sid, PREWARM_MS / 1000);
    call_end(c, "no_stream");
}

static struct call *call_new(struct srv *s, const char *call_sid, const char *from)
{
    struct call *c = calloc(1, sizeof *c);
    struct call_sess *cs = calloc(1, sizeof *cs);
    if (!c || !cs) {
        free(c);
        free(cs);
        return NULL;
    }
    c->s = s;
    c->id = s->next_id++;
    c->cs = cs;
    cs->refs = 1;
    util_strlcpy(c->call_sid, call_sid, sizeof c->call_sid);
    util_strlcpy(c->from, from, sizeof c->from);
    c->next = s->calls;
    s->calls = c;
    int first = net__provider_first(s);
    act_session_init(&cs->s, from, call_sid, first >= 0 ? s->provs[first]->name : "none",
                     s->cfg->max_tool_calls);
    start_identify(c);
    if (first < 0) {
        c->pidx = 0;
        call_fail(c, "no voice provider configured");
    } else {
        open_provider(c, first);
    }
    return c;
}

void net__call_prewarm(struct srv *s, const char *call_sid, const char *from)
{
    for (struct call *c = s->calls; c; c = c->next)
        if (!strcmp(c->call_sid, call_sid))
            return; /* a webhook retry: already warming */
    struct call *c = call_new(s, call_sid, from);
    if (!c || c->ending)
        return;
    c->prewarmed = true;
    lws_sul_schedule(s->ctx, 0, &c->sul_prewarm, prewarm_expired_cb, (lws_usec_t)PREWARM_MS * 1000);
}

static void call_fail(struct call *c, const char *reason)
{
    if (c->failed)
        return;
    c->failed = true;
    util_strlcpy(c->fail_reason, reason, sizeof c->fail_reason);
    c->s->m.calls_fallback++;
    log_error("call=%s voice agent unavailable (%s): caller gets the fallback message%s",
              c->call_sid, reason, c->from[0] ? " and a callback" : " (caller ID withheld)");
    if (c->from[0])
        submit_row(c, ROW_MISSED, reason);
    if (c->conn)
        call_end(c, reason);
    /* else: the stream is closed as soon as it attaches (or the pre-warm expires) */
}

static void call_end(struct call *c, const char *reason)
{
    struct srv *s = c->s;
    if (c->ending)
        return;
    c->ending = true;
    lws_sul_cancel(&c->sul_connect);
    lws_sul_cancel(&c->sul_prewarm);
    lws_sul_cancel(&c->sul_greet);
    lws_sul_cancel(&c->sul_pace);
    lws_sul_cancel(&c->sul_provfail);
    if (c->prov) {
        struct prov *p = c->prov;
        c->prov = NULL;
        ops_of(c)->close(p);
    }
    c->tools = NULL; /* running jobs find no call and only clean up */
    hold_flush(c, false);
    free_msgs(c->bl_head);
    c->bl_head = c->bl_tail = NULL;
    if (c->conn) {
        c->conn->call = NULL;
        conn_close(c->conn);
        c->conn = NULL;
        s->calls_active--;
        submit_row(c, ROW_END, reason);
        log_info("call=%s ended (%s) after %.1f s: %d tool calls, provider %s, %ld frames in "
                 "(%ld dropped before ready), %ld out",
                 c->call_sid, reason, (util_mono_ms() - c->started_ms) / 1000.0, c->tool_calls,
                 c->served_by ? c->served_by : "none", c->frames_in, c->frames_dropped,
                 c->msgs_out);
    }
    for (struct call **pp = &s->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    sess_put(c->cs);
    free(c);
    net__maybe_exit(s);
}

void net__call_unavailable(struct srv *s, const char *call_sid, const char *from)
{
    struct call *c = call_new(s, call_sid, from); /* fails at once: logs, callback row */
    if (c && !c->ending)
        call_end(c, c->fail_reason[0] ? c->fail_reason : "no_provider");
}

void net__calls_drop_failed(struct srv *s)
{
    struct call *c = s->calls;
    while (c) {
        struct call *next = c->next;
        if (c->failed && !c->conn)
            call_end(c, c->fail_reason);
        c = next;
    }
}

void net__calls_end_all(struct srv *s, const char *reason)
{
    while (s->calls)
        call_end(s->calls, reason);
}

/* ---- inbound Twilio messages ---- */

static void bad_msg(struct tw_conn *k, const char *what)
{
    if (++k->bad_msgs <= BAD_MSG_LOG_MAX)
        log_warn("call=%s ignored a malformed message from Twilio: %s%s",
                 k->call ? k->call->call_sid : "-", what,
                 k->bad_msgs == BAD_MSG_LOG_MAX ? " (further ones not logged)" : "");
}

static bool sid_safe(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 2 && n < 72 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The start message: token check, then attach to (or create) the call. 0 or -1 = close. */
static int on_start(struct tw_conn *k, json_t *root)
{
    struct srv *s = k->s;
    json_t *st = json_object_get(root, "start");
    json_t *cp = json_object_get(st, "customParameters");
    const char *stream = jstr(root, "streamSid") ? jstr(root, "streamSid") : jstr(st, "streamSid");
    const char *sid = jstr(st, "callSid");
    const char *p_sid = jstr(cp, "callSid"), *p_from = jstr(cp, "from"), *tok = jstr(cp, "token");
    if (k->started) {
        bad_msg(k, "second start");
        return 0;
    }
    enum tw_token_result tr = TW_TOKEN_MALFORMED;
    if (sid_safe(stream) && tw_call_sid_ok(sid) && p_from && (!p_sid || !strcmp(p_sid, sid)))
        tr = tw_stream_token_check(s->token_key, s->token_key_len, sid, p_from, tok, util_now());
    if (tr != TW_TOKEN_OK) {
        s->m.streams_rejected++;
        log_warn("media-stream refused: %s stream token (call=%s from=%s): closing the socket",
                 tok ? tw_token_result_name(tr) : "missing", sid ? sid : "-",
                 p_from ? p_from : "-");
        return -1;
    }
    char from[24];
    tw_caller_from(p_from, from, sizeof from);
    struct call *c = s->calls;
    while (c && strcmp(c->call_sid, sid))
        c = c->next;
    if (c && (c->conn || strcmp(c->from, from))) {
        s->m.streams_rejected++;
        log_warn("media-stream refused: call=%s already has a stream", sid);
        return -1;
    }
    if (!c && s->draining) {
        log_warn("media-stream refused: call=%s arrived while shutting down", sid);
        return -1;
    }
    if (!c && !(c = call_new(s, sid, from)))
        return -1;
    k->started = true;
    lws_set_timeout(k->wsi, NO_PENDING_TIMEOUT, 0);
    lws_sul_cancel(&c->sul_prewarm);
    c->conn = k;
    k->call = c;
    util_strlcpy(c->stream_sid, stream, sizeof c->stream_sid);
    c->started_ms = util_mono_ms();
    db_utc_text(util_now(), c->started_at, (int)sizeof c->started_at);
    s->calls_active++;
    s->m.calls_total++;
    log_info("call=%s stream %s started from=%s (%s); provider %s %s", sid, stream,
             from[0] ? from : "withheld", c->prewarmed ? "pre-warmed" : "cold",
             c->s->provs[c->pidx] ? ops_of(c)->name : "none", c->ready ? "ready" : "connecting");
    submit_row(c, ROW_START, NULL);
    if (c->failed)
        call_end(c, c->fail_reason);
    else
        maybe_greet(c);
    return 0;
}

static void on_media_fields(struct tw_conn *k, const char *sid, const char *track, const char *pl,
                            size_t pllen)
{
    struct call *c = k->call;
    if (!sid || strcmp(sid, c->stream_sid)) {
        bad_msg(k, "media for another streamSid");
        return;
    }
    if (track && strcmp(track, "inbound"))
        return;
    c->frames_in++;
    if (!c->ready || !c->prov) {
        hold_frame(c, pl, pllen);
        return;
    }
    ops_of(c)->send_audio(c->prov, pl, pllen);
}

static void on_media(struct tw_conn *k, json_t *root)
{
    json_t *media = json_object_get(root, "media");
    json_t *pl = json_object_get(media, "payload");
    if (!json_is_string(pl)) {
        bad_msg(k, "media without payload");
        return;
    }
    on_media_fields(k, jstr(root, "streamSid"), jstr(media, "track"), json_string_value(pl),
                    json_string_length(pl));
}

static int on_message(struct tw_conn *k, const char *msg, size_t len)
{
    struct net_media fm; /* the 50/s media message without jansson (tw_fast.c) */
    if (k->call && !net__media_fast(msg, len, &fm)) {
        on_media_fields(k, fm.sid, fm.has_track ? fm.track : NULL, fm.payload, fm.plen);
        return 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        bad_msg(k, root ? "not a JSON object" : "invalid JSON");
        json_decref(root);
        return 0;
    }
    int rc = 0;
    const char *ev = jstr(root, "event");
    struct call *c = k->call;
    if (!ev)
        bad_msg(k, "no event");
    else if (!strcmp(ev, "connected"))
        ;
    else if (!strcmp(ev, "start"))
        rc = on_start(k, root);
    else if (!c)
        bad_msg(k, "event before start");
    else if (!strcmp(ev, "media"))
        on_media(k, root);
    else if (!strcmp(ev, "mark")) {
        const char *name = jstr(json_object_get(root, "mark"), "name");
        if (name)
            on_mark_echo(c, name);
        else
            bad_msg(k, "mark without name");
    } else if (!strcmp(ev, "dtmf")) {
        const char *d = jstr(json_object_get(root, "dtmf"), "digit");
        log_info("call=%s caller pressed %s", c->call_sid, d && strlen(d) == 1 ? d : "?");
    } else if (!strcmp(ev, "stop")) {
        log_info("call=%s Twilio stopped the stream", c->call_sid);
        call_end(c, "caller_hangup");
    } else {
        bad_msg(k, "unknown event");
    }
    json_decref(root);
    return rc;
}

static int on_receive(struct lws *wsi, struct tw_conn *k, const void *in, size_t len)
{
    const char *msg;
    size_t n;
    switch (wsrx_feed(&k->rx, wsi, in, len, TW_MSG_MAX, &msg, &n)) {
    case WSRX_MORE:
        return 0;
    case WSRX_TOO_BIG:
        log_warn("call=%s message from Twilio over %d bytes: closing this stream",
                 k->call ? k->call->call_sid : "-", TW_MSG_MAX);
        if (k->call)
            call_fail(k->call, "oversized message from Twilio");
        return -1;
    case WSRX_NOMEM:
        return -1;
    case WSRX_MSG:
        break;
    }
    int rc = lws_frame_is_binary(wsi) ? (bad_msg(k, "binary frame"), 0) : on_message(k, msg, n);
    wsrx_done(&k->rx);
    return rc;
}

static int on_writeable(struct lws *wsi, struct tw_conn *k)
{
    struct net_msg *m = k->oq_head;
    if (m) {
        k->oq_head = m->next;
        if (!k->oq_head)
            k->oq_tail = NULL;
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        bool short_write = n < (int)m->len;
        free(m);
        if (short_write)
            return -1;
        if (k->oq_head || k->closing)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (k->closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

int net__media_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct tw_conn *k = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        if (lws_hdr_copy(wsi, uri, (int)sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
            strcmp(uri, "/media-stream"))
            return 1;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        memset(k, 0, sizeof *k);
        k->s = lws_context_user(lws_get_context(wsi));
        k->wsi = wsi;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, START_TIMEOUT_S);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, k, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, k);
    case LWS_CALLBACK_CLOSED:
        k->closed = true;
        if (!k->started)
            log_info("media-stream closed before a valid start");
        if (k->call)
            call_end(k->call, k->started ? "stream_closed" : "closed_before_start");
        free_msgs(k->oq_head);
        k->oq_head = k->oq_tail = NULL;
        wsrx_done(&k->rx);
        return 0;
    default:
        break;
    }
    return 0;
}
