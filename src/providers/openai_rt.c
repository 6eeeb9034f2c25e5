/*
 * openai_rt.c - OpenAI Realtime provider (GA interface only), one lws client
 * WebSocket per call.
 *
 * Owns: the vendor socket (connect, Authorization header, reassembly of
 * fragmented frames, a bounded outgoing queue written one message per
 * WRITEABLE), the session.update and its confirmation (audio/pcmu both ways
 * before `ready`), the per-call response state machine (one response.create
 * at a time, queued while a response is active), function calls (collected
 * from response.output_item.done, run only after response.done "completed",
 * cross-checked with response.output[]), per-item audio accounting for
 * conversation.item.truncate, and classifying failures into enum prov_close.
 * Must not touch: Twilio, the database, actions (it only reads the tool list
 * from act_tools_openai()). The API key is never logged.
 * Threads: loop thread only (lws callbacks, timers and the prov_ops calls).
 *
 * Lifetime: the call session owns struct oai through open()/close(). The wsi
 * points back at it through opaque user data; close() replaces that pointer by
 * a static "bye" marker (the socket then sends a close frame, with a 3 s kill as
 * backstop), so no lws callback can reach freed memory.
 * `closed` is always delivered from a 0 ms timer (never from inside another
 * call into us), and close() cancels the timers, so nothing follows close().
 */
#define LOG_MODULE "openai"

#include "providers/provider.h"

#include "actions/action.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/jpick.h"
#include "core/log.h"
#include "core/util.h"
#include "net/wsout.h"
#include "net/wsrx.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OAI_PROTOCOL_NAME "openai-realtime"
#define OAI_RX_MAX (2u * 1024 * 1024)       /* one reassembled vendor message */
#define OAI_TX_AUDIO_MAX (1u * 1024 * 1024) /* queued bytes above which caller audio is dropped */
#define OAI_TX_MAX (4u * 1024 * 1024)       /* queued bytes above which the call is failed */
#define OAI_BAD_MAX 5                       /* malformed vendor messages tolerated per call */
#define OAI_SETUP_MS 5000                   /* session.created -> session.updated deadline */
#define OAI_CONNECT_MS_DEFAULT 5000         /* when PROVIDER_CONNECT_TIMEOUT_MS is 0 */
#define OAI_RETRY_CREATE_MS                                                                        \
    2000                 /* safety net: resend a refused response.create when                      \
                           no response is known to be active by then */
#define OAI_MAX_CALLS 32 /* function calls held per call at once */
#define OAI_ITEMS 8      /* assistant items remembered for truncate */
#define OAI_ID_MAX 96    /* vendor ids (resp_, item_, call_) */

enum oai_state {
    OAI_CONNECTING = 0, /* TCP/TLS/upgrade in progress */
    OAI_OPEN,           /* upgraded, waiting for session.created */
    OAI_CONFIGURING,    /* session.update sent, waiting for session.updated */
    OAI_READY,          /* pcmu confirmed, audio flows */
    OAI_DOWN,           /* failed; closed() pending or delivered */
};

struct oai_msg { /* one queued outgoing text frame */
    struct oai_msg *next;
    size_t len;          /* payload bytes after the LWS_PRE headroom */
    unsigned char buf[]; /* LWS_PRE + len */
};

struct oai_call { /* a function call seen in output_item.done */
    char resp_id[OAI_ID_MAX];
    char call_id[OAI_ID_MAX];
    char name[64];
    char *args;   /* JSON text (object), owned */
    bool emitted; /* tool_call delivered, waiting for tool_result */
    bool answered;
};

struct oai_item { /* audio generated per assistant item */
    char id[OAI_ID_MAX];
    long bytes;   /* decoded u-law bytes (8 bytes = 1 ms) */
    bool dropped; /* truncated or barged in: drop late deltas */
};

struct oai {
    const struct prov_events *ev;
    void *owner;
    const struct cfg *cfg; /* borrowed */
    struct lws_context *ctx;
    struct lws *wsi; /* NULL once detached */
    enum oai_state st;
    char call_sid[72];
    char *instructions; /* owned copy */

    /* target */
    bool tls;
    int port;
    char host[256];    /* Host header, SNI, certificate name */
    char *address;     /* where to connect (numeric IP or host); freed once upgraded */
    char *path;        /* path + ?model=; freed once upgraded */

    /* receive */
    struct wsrx rx; /* reassembly (net/wsrx.h), up to OAI_RX_MAX */
    int bad; /* malformed vendor messages so far */

    /* send */
    struct oai_msg *qhead, *qtail;
    size_t qbytes;
    unsigned long audio_dropped; /* caller chunks dropped under backpressure */
    unsigned long audio_bad;     /* caller chunks dropped: not base64 */
    int seq;                     /* client event_id counter */
    char su_event[32];           /* event_id of our session.update */
    char rc_event[32];           /* event_id of the last response.create */

    /* response state machine (protocol notes §6) */
    char active_resp[OAI_ID_MAX]; /* from response.created, cleared on its response.done */
    bool create_inflight;         /* response.create sent, its response.created not seen yet */
    bool create_queued;           /* a response.create is wanted once nothing is active */
    bool greet_pending;           /* greet() before ready: sent on ready */
    char greet_name[48];

    /* function calls */
    struct oai_call *calls; /* grown on demand, at most OAI_MAX_CALLS (most calls use 0-2) */
    int ncalls, calls_cap;

    /* audio per assistant item */
    struct oai_item items[OAI_ITEMS];
    int item_next;
    char barge_item[OAI_ID_MAX]; /* item current when the caller barged in */
    char last_item[OAI_ID_MAX];

    /* timers */
    lws_sorted_usec_list_t sul_deadline; /* connect / setup deadline */
    lws_sorted_usec_list_t sul_closed;   /* deliver closed() outside any call into us */
    lws_sorted_usec_list_t sul_retry;    /* resend a refused response.create */

    /* close */
    enum prov_close why;
    char detail[200];
    bool closed_sent;
    bool dead;        /* close() called: no more events, free when not busy */
    bool established; /* the upgrade succeeded (a close frame can be sent) */
    int busy;         /* depth of our own dispatch (events may call close()) */
};

static int oai_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
static void deadline_cb(lws_sorted_usec_list_t *sul);

static const struct lws_protocols oai_protocol = {
    .name = OAI_PROTOCOL_NAME,
    .callback = oai_callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 2048, /* audio deltas mostly fit; longer messages are reassembled */
    .id = 0,
    .user = NULL,
    .tx_packet_size = 65536, /* lws caps each send() at rx_buffer_size unless this is set:
                                session.update (tools + instructions) goes out in one piece */
};

/* ---- small helpers ---- */

static void oai_free(struct oai *p)
{
    lws_sul_cancel(&p->sul_deadline);
    lws_sul_cancel(&p->sul_closed);
    lws_sul_cancel(&p->sul_retry);
    while (p->qhead) {
        struct oai_msg *m = p->qhead;
        p->qhead = m->next;
        free(m);
    }
    for (int i = 0; i < p->ncalls; i++)
        free(p->calls[i].args);
    free(p->calls);
    free(p->address);
    free(p->path);
    wsrx_done(&p->rx);
    free(p->instructions);
    free(p);
}

static bool live(const struct oai *p)
{
    return !p->dead && p->st != OAI_DOWN;
}

/* String member or NULL (missing, null or not a string: OpenAI sends null for many fields). */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *jstr_or(const json_t *o, const char *key, const char *dflt)
{
    const char *v = jstr(o, key);
    return v ? v : dflt;
}

static void next_event_id(struct oai *p, const char *kind, char *out, size_t outsz)
{
    snprintf(out, outsz, "vws_%s_%d", kind, ++p->seq);
}

/*
 * A detached but still open socket carries one of these as opaque user data instead of p:
 * on its next WRITEABLE it is closed with a close frame (1000 normal, 1002 protocol error).
 * Nothing else of ours is reachable from it.
 */
static char oai_bye[2];
#define OAI_BYE_NORMAL ((void *)&oai_bye[0])
#define OAI_BYE_PROTOCOL ((void *)&oai_bye[1])

/*
 * Detach from the wsi: no callback reaches p again. An upgraded socket is closed politely
 * (close frame, then a 3 s kill backstop); one still connecting is killed at once.
 */
static void detach(struct oai *p, bool protocol_error)
{
    if (!p->wsi)
        return;
    if (p->established) {
        lws_set_opaque_user_data(p->wsi, protocol_error ? OAI_BYE_PROTOCOL : OAI_BYE_NORMAL);
        lws_callback_on_writable(p->wsi);
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_CLOSE_SEND, 3);
    } else {
        lws_set_opaque_user_data(p->wsi, NULL);
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    p->wsi = NULL;
}

/* Callbacks of a detached socket (see oai_bye). */
static int bye_callback(struct lws *wsi, enum lws_callback_reasons reason, void *bye)
{
    switch (reason) {
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        lws_close_reason(
            wsi, bye == OAI_BYE_PROTOCOL ? LWS_CLOSE_STATUS_PROTOCOL_ERR : LWS_CLOSE_STATUS_NORMAL,
            NULL, 0);
        return -1;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        lws_set_opaque_user_data(wsi, NULL);
        return 0;
    default:
        return 0; /* late vendor messages after close() are ignored */
    }
}

static void closed_cb(lws_sorted_usec_list_t *sul)
{
    struct oai *p = lws_container_of(sul, struct oai, sul_closed);
    if (p->dead || p->closed_sent)
        return;
    p->closed_sent = true;
    p->busy++;
    if (p->ev->closed)
        p->ev->closed(p->owner, p->why, p->detail);
    p->busy--;
    if (p->dead && !p->busy)
        oai_free(p);
}

/*
 * The connection is over for this call: record why, drop the socket (kill it
 * unless lws is already closing it), and deliver closed() from a timer.
 * First reason wins.
 */
static void fail(struct oai *p, enum prov_close why, bool wsi_gone, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct oai *p, enum prov_close why, bool wsi_gone, const char *fmt, ...)
{
    va_list ap;
    if (p->st == OAI_DOWN)
        return;
    p->st = OAI_DOWN;
    p->why = why;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    log_warn("call=%s provider closed why=%d detail=%s", p->call_sid, (int)why, p->detail);
    if (wsi_gone && p->wsi) {
        lws_set_opaque_user_data(p->wsi, NULL);
        p->wsi = NULL;
    }
    detach(p, why == PROV_CLOSE_PROTOCOL);
    lws_sul_cancel(&p->sul_deadline);
    lws_sul_cancel(&p->sul_retry);
    lws_sul_schedule(p->ctx, 0, &p->sul_closed, closed_cb, 1);
}

/* ---- sending ---- */

/* Room for n more queued bytes? audio=true: caller audio, dropped (not failed) first. */
static int queue_room(struct oai *p, size_t n, bool audio)
{
    if (!p->wsi || p->st == OAI_DOWN || p->st == OAI_CONNECTING)
        return ERR_IO;
    if (audio && p->qbytes + n > OAI_TX_AUDIO_MAX) {
        if (p->audio_dropped++ % 250 == 0)
            log_warn("call=%s send queue full: dropping caller audio (dropped=%lu)", p->call_sid,
                     p->audio_dropped);
        return ERR_BUSY;
    }
    if (p->qbytes + n > OAI_TX_MAX) {
        fail(p, PROV_CLOSE_DROPPED, false, "send queue over %u bytes", OAI_TX_MAX);
        return ERR_BUSY;
    }
    return 0;
}

static void queue_link(struct oai *p, struct oai_msg *m)
{
    if (!p->qhead && p->established) { /* nothing waiting: write now (net/wsout.h) */
        enum wsout_rc rc = wsout_now(p->wsi, m->buf + LWS_PRE, m->len);
        if (rc != WSOUT_QUEUE) {
            free(m);
            if (rc == WSOUT_ERR)
                fail(p, PROV_CLOSE_DROPPED, true, "write failed");
            return;
        }
    }
    m->next = NULL;
    if (p->qtail)
        p->qtail->next = m;
    else
        p->qhead = m;
    p->qtail = m;
    p->qbytes += m->len;
    lws_callback_on_writable(p->wsi);
}

/* Queue one client event (takes the reference to j). audio=true: droppable under backpressure. */
static int enqueue(struct oai *p, json_t *j, bool audio)
{
    size_t n;
    struct oai_msg *m;
    int rc;

    if (!j) { /* json_pack failed: a NULL or non-UTF-8 string */
        log_error("call=%s could not build a client event (invalid text?)", p->call_sid);
        return ERR_NOMEM;
    }
    n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if ((rc = queue_room(p, n, audio))) {
        json_decref(j);
        return rc;
    }
    m = malloc(sizeof *m + LWS_PRE + n);
    if (!m) {
        json_decref(j);
        return ERR_NOMEM;
    }
    m->len = json_dumpb(j, (char *)m->buf + LWS_PRE, n, JSON_COMPACT);
    json_decref(j);
    queue_link(p, m);
    return 0;
}

/* input_audio_buffer.append, the hot path (50 events/s per call), built without jansson:
 * json_pack + two json_dumpb cost 2.5-2.9 us per frame (docs/loadgen.md), this ~0.1 us.
 * The payload must be plain base64, so it needs no JSON escaping; anything else is dropped. */
static void enqueue_append(struct oai *p, const char *b64, size_t len)
{
    static const char head[] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"";
    static const char tail[] = "\"}";
    if (!util_b64_plain(b64, len)) {
        if (p->audio_bad++ % 250 == 0)
            log_warn("call=%s caller audio is not base64: dropped (dropped=%lu)", p->call_sid,
                     p->audio_bad);
        return;
    }
    size_t n = sizeof head - 1 + len + sizeof tail - 1;
    if (queue_room(p, n, true))
        return;
    struct oai_msg *m = malloc(sizeof *m + LWS_PRE + n);
    if (!m)
        return;
    char *w = (char *)m->buf + LWS_PRE;
    memcpy(w, head, sizeof head - 1);
    memcpy(w + sizeof head - 1, b64, len);
    memcpy(w + sizeof head - 1 + len, tail, sizeof tail - 1);
    m->len = n;
    queue_link(p, m);
}

/* CLIENT_WRITEABLE: exactly one lws_write, then re-arm if more is queued. */
static int write_one(struct oai *p, struct lws *wsi)
{
    struct oai_msg *m = p->qhead;
    if (!m)
        return 0;
    p->qhead = m->next;
    if (!p->qhead)
        p->qtail = NULL;
    p->qbytes -= m->len;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
    free(m);
    if (n < 0) {
        fail(p, PROV_CLOSE_DROPPED, true, "write failed");
        return -1;
    }
    if (p->qhead)
        lws_callback_on_writable(wsi);
    return 0;
}

static json_t *voice_json(const char *voice)
{
    if (!strncmp(voice, "voice_", 6)) /* custom voice id */
        return json_pack("{s:s}", "id", voice);
    return json_string(voice);
}

static int send_session_update(struct oai *p)
{
    json_t *tools = act_tools_openai();
    if (!tools) {
        log_error("call=%s no tool list from the action registry; sending none", p->call_sid);
        tools = json_array();
    }
    json_t *instr = json_string(p->instructions);
    if (!instr) {
        log_error("call=%s instructions are not valid UTF-8; sending none", p->call_sid);
        instr = json_string("");
    }
    next_event_id(p, "session", p->su_event, sizeof p->su_event);
    json_t *j =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:[s],"
                  " s:{s:{s:{s:s}, s:{s:s}, s:{s:s, s:b, s:b}}, s:{s:{s:s}, s:o}},"
                  " s:o, s:s}}",
                  "type", "session.update", "event_id", p->su_event, "session", "type", "realtime",
                  "model", p->cfg->openai_model, "instructions", instr, "output_modalities",
                  "audio", "audio", "input", "format", "type", "audio/pcmu", "noise_reduction",
                  "type", "near_field", "turn_detection", "type", "server_vad", "create_response",
                  1, "interrupt_response", 1, "output", "format", "type", "audio/pcmu", "voice",
                  voice_json(p->cfg->openai_voice), "tools", tools, "tool_choice", "auto");
    log_info("call=%s session.update sent model=%s voice=%s tools=%zu", p->call_sid,
             p->cfg->openai_model, p->cfg->openai_voice, json_array_size(tools));
    free(p->instructions); /* sent once per session: don't hold ~3 KB for the whole call */
    p->instructions = NULL;
    return enqueue(p, j, false);
}

/* Ask for one response: now if nothing is active, else after the next response.done. */
static void want_response(struct oai *p)
{
    if (p->active_resp[0] || p->create_inflight || p->st != OAI_READY) {
        p->create_queued = true;
        return;
    }
    p->create_queued = false;
    p->create_inflight = true;
    next_event_id(p, "rc", p->rc_event, sizeof p->rc_event);
    enqueue(p, json_pack("{s:s, s:s}", "type", "response.create", "event_id", p->rc_event), false);
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct oai *p = lws_container_of(sul, struct oai, sul_retry);
    if (live(p) && p->create_queued && !p->active_resp[0] && !p->create_inflight)
        want_response(p);
}

/* Only letters, spaces, hyphens and apostrophes of a name reach the model. */
static void clean_name(const char *in, char *out, size_t outsz)
{
    size_t n = 0;
    for (; in && *in && n + 1 < outsz; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ' ' || c == '-' || c == '\'')
            out[n++] = (char)c;
    }
    out[n] = '\0';
}

static void send_greeting(struct oai *p)
{
    char text[640], evid[32];
    const char *company = p->cfg->company_name[0] ? p->cfg->company_name : "the company";
    if (p->greet_name[0])
        snprintf(text, sizeof text,
                 "The caller has just been connected. Greet the caller by first name %s, say you "
                 "are the virtual assistant for %s, and ask how you can help today. Keep it to "
                 "one short sentence or two.",
                 p->greet_name, company);
    else
        snprintf(text, sizeof text,
                 "The caller has just been connected. Greet them warmly, say you are the virtual "
                 "assistant for %s, and ask how you can help today. Keep it to one short "
                 "sentence or two.",
                 company);
    next_event_id(p, "greet", evid, sizeof evid);
    enqueue(p,
            json_pack("{s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s}]}}", "type",
                      "conversation.item.create", "event_id", evid, "item", "type", "message",
                      "role", "system", "content", "type", "input_text", "text", text),
            false);
    want_response(p);
}

/* ---- receiving: per-item audio ---- */

static struct oai_item *item_find(struct oai *p, const char *id)
{
    for (int i = 0; i < OAI_ITEMS; i++)
        if (p->items[i].id[0] && !strcmp(p->items[i].id, id))
            return &p->items[i];
    return NULL;
}

static struct oai_item *item_get(struct oai *p, const char *id)
{
    struct oai_item *it = item_find(p, id);
    if (it)
        return it;
    it = &p->items[p->item_next];
    p->item_next = (p->item_next + 1) % OAI_ITEMS;
    memset(it, 0, sizeof *it);
    util_strlcpy(it->id, id, sizeof it->id);
    return it;
}

/* Decoded length of base64 text (no decoding needed: 4 chars = 3 bytes, minus padding). */
static long b64_decoded_len(const char *s, size_t n)
{
    long len = (long)(n / 4) * 3;
    if (n >= 1 && s[n - 1] == '=')
        len--;
    if (n >= 2 && s[n - 2] == '=')
        len--;
    return len < 0 ? 0 : len;
}

/* ---- receiving: function calls ---- */

static struct oai_call *call_find(struct oai *p, const char *call_id)
{
    for (int i = 0; i < p->ncalls; i++)
        if (!strcmp(p->calls[i].call_id, call_id))
            return &p->calls[i];
    return NULL;
}

static void call_remove(struct oai *p, int i)
{
    free(p->calls[i].args);
    p->calls[i] = p->calls[--p->ncalls];
    memset(&p->calls[p->ncalls], 0, sizeof p->calls[0]);
}

static void call_store(struct oai *p, const char *resp_id, const char *call_id, const char *name,
                       const char *args)
{
    if (call_find(p, call_id)) {
        log_warn("call=%s function call %s seen twice; keeping the first", p->call_sid, call_id);
        return;
    }
    if (p->ncalls >= OAI_MAX_CALLS) {
        log_warn("call=%s too many function calls held; ignoring %s", p->call_sid, name);
        return;
    }
    if (p->ncalls == p->calls_cap) {
        int cap = p->calls_cap ? p->calls_cap * 2 : 2;
        if (cap > OAI_MAX_CALLS)
            cap = OAI_MAX_CALLS;
        struct oai_call *nc = realloc(p->calls, (size_t)cap * sizeof *nc);
        if (!nc) {
            log_error("call=%s out of memory holding function call %s", p->call_sid, name);
            return;
        }
        p->calls = nc;
        p->calls_cap = cap;
    }
    struct oai_call *c = &p->calls[p->ncalls];
    memset(c, 0, sizeof *c);
    c->args = strdup(args && *args ? args : "{}");
    if (!c->args)
        return;
    util_strlcpy(c->resp_id, resp_id, sizeof c->resp_id);
    util_strlcpy(c->call_id, call_id, sizeof c->call_id);
    util_strlcpy(c->name, name, sizeof c->name);
    p->ncalls++;
}

static void on_output_item_done(struct oai *p, json_t *m)
{
    json_t *item = json_object_get(m, "item");
    const char *resp = jstr(m, "response_id"), *type = jstr(item, "type");
    if (!resp || !type) {
        p->bad++;
        log_warn("call=%s malformed response.output_item.done", p->call_sid);
        return;
    }
    if (strcmp(type, "function_call"))
        return;
    const char *call_id = jstr(item, "call_id"), *name = jstr(item, "name");
    const char *status = jstr_or(item, "status", "");
    if (!call_id || !name) {
        p->bad++;
        log_warn("call=%s function_call item without call_id/name", p->call_sid);
        return;
    }
    if (strcmp(status, "completed")) {
        log_info("call=%s function call %s (%s) ended %s: not stored", p->call_sid, name, call_id,
                 status);
        return;
    }
    call_store(p, resp, call_id, name, jstr_or(item, "arguments", "{}"));
}

/* response.done "completed": run every completed function_call in output[] (authoritative). */
static void run_calls(struct oai *p, const char *resp_id, json_t *output)
{
    size_t i;
    json_t *it;
    int emitted = 0;

    json_array_foreach(output, i, it)
    {
        const char *type = jstr_or(it, "type", ""), *status = jstr_or(it, "status", "");
        const char *call_id = jstr(it, "call_id"), *name = jstr(it, "name");
        const char *args = jstr_or(it, "arguments", "{}");
        if (strcmp(type, "function_call") || !call_id || !name)
            continue;
        if (strcmp(status, "completed")) {
            log_info("call=%s %s (%s) status %s in response.done: not run", p->call_sid, name,
                     call_id, status);
            continue;
        }
        if (!call_find(p, call_id)) /* output_item.done missed: output[] is authoritative */
            call_store(p, resp_id, call_id, name, args);
        struct oai_call *c = call_find(p, call_id);
        if (!c || c->emitted)
            continue;
        if (strcmp(c->resp_id, resp_id))
            util_strlcpy(c->resp_id, resp_id, sizeof c->resp_id);
        c->emitted = true;
        emitted++;
    }
    /* Calls stored for this response but absent from output[] never run. */
    for (int k = p->ncalls - 1; k >= 0; k--)
        if (!strcmp(p->calls[k].resp_id, resp_id) && !p->calls[k].emitted) {
            log_warn("call=%s %s (%s) not in response.output: not run", p->call_sid,
                     p->calls[k].name, p->calls[k].call_id);
            call_remove(p, k);
        }
    if (!emitted)
        return;
    log_info("call=%s response %s completed with %d function call(s)", p->call_sid, resp_id,
             emitted);
    /* Copy first: the owner may answer (and so change p->calls) from inside tool_call. */
    struct {
        char id[OAI_ID_MAX], name[64];
        char *args;
    } todo[OAI_MAX_CALLS];
    int n = 0;
    for (int k = 0; k < p->ncalls; k++)
        if (!strcmp(p->calls[k].resp_id, resp_id) && p->calls[k].emitted && !p->calls[k].answered) {
            util_strlcpy(todo[n].id, p->calls[k].call_id, sizeof todo[n].id);
            util_strlcpy(todo[n].name, p->calls[k].name, sizeof todo[n].name);
            todo[n].args = strdup(p->calls[k].args);
            n++;
        }
    for (int k = 0; k < n; k++) {
        if (live(p) && todo[k].args && p->ev->tool_call)
            p->ev->tool_call(p->owner, todo[k].id, todo[k].name, todo[k].args);
        free(todo[k].args);
    }
}

static void drop_calls(struct oai *p, const char *resp_id, const char *status)
{
    for (int k = p->ncalls - 1; k >= 0; k--)
        if (!strcmp(p->calls[k].resp_id, resp_id) && !p->calls[k].emitted) {
            log_warn("call=%s response %s %s: function call %s (%s) not run", p->call_sid, resp_id,
                     status, p->calls[k].name, p->calls[k].call_id);
            call_remove(p, k);
        }
}

static void on_response_done(struct oai *p, json_t *m)
{
    json_t *r = json_object_get(m, "response");
    const char *id = jstr(r, "id"), *status = jstr(r, "status");
    json_t *output = json_object_get(r, "output");
    if (!id || !status) {
        p->bad++;
        log_warn("call=%s malformed response.done", p->call_sid);
        return;
    }
    if (!strcmp(p->active_resp, id))
        p->active_resp[0] = '\0';
    if (strcmp(status, "completed")) {
        json_t *sd = json_object_get(r, "status_details");
        json_t *er = json_object_get(sd, "error");
        log_info("call=%s response %s %s reason=%s error=%s %.160s", p->call_sid, id, status,
                 jstr_or(sd, "reason", "-"), jstr_or(er, "code", jstr_or(er, "type", "-")),
                 jstr_or(er, "message", ""));
    }
    if (!strcmp(status, "completed") && json_is_array(output))
        run_calls(p, id, output);
    else
        drop_calls(p, id, status);
    if (live(p) && p->create_queued && !p->active_resp[0] && !p->create_inflight)
        want_response(p);
}

/* ---- receiving: session and errors ---- */

static void on_session_updated(struct oai *p, json_t *m)
{
    json_t *audio = json_object_get(json_object_get(m, "session"), "audio");
    const char *in =
        jstr_or(json_object_get(json_object_get(audio, "input"), "format"), "type", "");
    const char *out =
        jstr_or(json_object_get(json_object_get(audio, "output"), "format"), "type", "");
    if (p->st != OAI_CONFIGURING) {
        if (p->st == OAI_READY && (strcmp(in, "audio/pcmu") || strcmp(out, "audio/pcmu")))
            fail(p, PROV_CLOSE_PROTOCOL, false, "session.updated changed formats in=%s out=%s", in,
                 out);
        return;
    }
    if (strcmp(in, "audio/pcmu") || strcmp(out, "audio/pcmu")) {
        fail(p, PROV_CLOSE_REJECTED, false,
             "session.updated formats are not audio/pcmu (in=%s out=%s)", in, out);
        return;
    }
    p->st = OAI_READY;
    lws_sul_cancel(&p->sul_deadline);
    log_info("call=%s openai session ready (audio/pcmu both ways)", p->call_sid);
    if (p->ev->ready)
        p->ev->ready(p->owner);
    if (live(p) && p->greet_pending) {
        p->greet_pending = false;
        send_greeting(p);
    }
    if (live(p) && p->create_queued)
        want_response(p);
}

static bool is_fatal(const char *code, enum prov_close *why)
{
    static const char *const rejected[] = {"beta_api_shape_disabled",
                                           "invalid_api_key",
                                           "authentication_error",
                                           "insufficient_quota",
                                           "model_not_found",
                                           "unauthorized",
                                           NULL};
    if (!code)
        return false;
    if (!strcmp(code, "session_expired")) {
        *why = PROV_CLOSE_EXPIRED;
        return true;
    }
    for (const char *const *r = rejected; *r; r++)
        if (!strcmp(code, *r)) {
            *why = PROV_CLOSE_REJECTED;
            return true;
        }
    return false;
}

static void on_error(struct oai *p, json_t *m)
{
    json_t *er = json_object_get(m, "error");
    const char *type = jstr_or(er, "type", ""), *code = jstr(er, "code");
    const char *msg = jstr_or(er, "message", ""), *evid = jstr(er, "event_id");
    enum prov_close why;
    log_warn("call=%s openai error type=%s code=%s event=%s message=%.200s", p->call_sid, type,
             code ? code : "null", evid ? evid : "null", msg);
    if (is_fatal(code, &why)) {
        fail(p, why, false, "openai error %s", code);
        return;
    }
    if (evid && !strcmp(evid, p->su_event) && p->st == OAI_CONFIGURING) {
        fail(p, PROV_CLOSE_REJECTED, false, "session.update refused: %s", code ? code : "error");
        return;
    }
    if (code && !strcmp(code, "conversation_already_has_active_response")) {
        /* Harmless: keep it queued, resend after the next response.done. */
        p->create_inflight = false;
        p->create_queued = true;
        if (!p->active_resp[0])
            lws_sul_schedule(p->ctx, 0, &p->sul_retry, retry_cb,
                             OAI_RETRY_CREATE_MS * LWS_US_PER_MS);
        return;
    }
    if (evid && !strcmp(evid, p->rc_event)) /* our response.create failed otherwise */
        p->create_inflight = false;
}

/* ---- receiving: dispatch ---- */

static void on_audio_fields(struct oai *p, const char *item, const char *b64, size_t n)
{
    struct oai_item *it = *item ? item_get(p, item) : NULL;
    if (it && it->dropped)
        return; /* late audio of an item the caller talked over */
    if (it)
        it->bytes += b64_decoded_len(b64, n);
    util_strlcpy(p->last_item, item, sizeof p->last_item);
    if (p->ev->audio)
        p->ev->audio(p->owner, b64, n, item);
}

static void on_audio_delta(struct oai *p, json_t *m)
{
    json_t *d = json_object_get(m, "delta");
    if (!json_is_string(d)) {
        p->bad++;
        log_warn("call=%s output_audio.delta without delta", p->call_sid);
        return;
    }
    on_audio_fields(p, jstr_or(m, "item_id", ""), json_string_value(d), json_string_length(d));
}

/* The audio delta is most of the traffic (50+/s per call): picked with core/jpick (LEJP)
 * instead of json_loadb (4.5-5 us, docs/loadgen.md). Returns false when the message is
 * anything else or unusual: then it takes the general path. */
static bool on_message_fast(struct oai *p, const char *text, size_t len)
{
    char type[32], item[OAI_ID_MAX], delta[16384];
    struct jpick f[] = {
        {"type", type, sizeof type, 0, false},
        {"item_id", item, sizeof item, 0, false},
        {"delta", delta, sizeof delta, 0, false},
    };
    if (len > sizeof delta + 1024 || jpick(text, len, f, 3) || !f[0].found ||
        strcmp(type, "response.output_audio.delta") || !f[2].found)
        return false;
    on_audio_fields(p, f[1].found ? item : "", delta, f[2].len);
    return true;
}

static void on_event(struct oai *p, const char *type, json_t *m)
{
    if (!strcmp(type, "response.output_audio.delta")) {
        on_audio_delta(p, m);
    } else if (!strcmp(type, "input_audio_buffer.speech_started")) {
        if (p->last_item[0]) { /* the server cancels that response (interrupt_response) */
            struct oai_item *it = item_find(p, p->last_item);
            if (it)
                it->dropped = true;
        }
        if (p->ev->barge_in && p->st == OAI_READY)
            p->ev->barge_in(p->owner);
    } else if (!strcmp(type, "response.created")) {
        const char *id = jstr(json_object_get(m, "response"), "id");
        if (!id) {
            p->bad++;
            return;
        }
        util_strlcpy(p->active_resp, id, sizeof p->active_resp);
        p->create_inflight = false;
    } else if (!strcmp(type, "response.output_item.done")) {
        on_output_item_done(p, m);
    } else if (!strcmp(type, "response.done")) {
        on_response_done(p, m);
    } else if (!strcmp(type, "session.created")) {
        if (p->st == OAI_OPEN) {
            p->st = OAI_CONFIGURING;
            send_session_update(p);
        }
    } else if (!strcmp(type, "session.updated")) {
        on_session_updated(p, m);
    } else if (!strcmp(type, "error")) {
        on_error(p, m);
    } else if (!strcmp(type, "response.output_audio_transcript.done")) {
        const char *t = jstr_or(m, "transcript", "");
        log_debug("call=%s agent said: %.300s", p->call_sid, t); /* may hold personal data */
    } else if (!strcmp(type, "rate_limits.updated")) {
        size_t i;
        json_t *rl;
        json_array_foreach(json_object_get(m, "rate_limits"), i, rl) log_debug(
            "call=%s rate limit %s remaining=%lld of %lld", p->call_sid, jstr_or(rl, "name", "?"),
            (long long)json_number_value(json_object_get(rl, "remaining")),
            (long long)json_number_value(json_object_get(rl, "limit")));
    } else if (!strcmp(type, "conversation.item.truncated")) {
        log_debug("call=%s item truncated", p->call_sid);
    }
    /* Everything else (rate_limits.updated, item added/done, deltas of transcripts, ...) is
     * informational; unknown types are ignored, new ones get added by the vendor. */
}

static void on_message(struct oai *p, const char *text, size_t len)
{
    if (on_message_fast(p, text, len))
        return;
    json_error_t jerr;
    json_t *m = json_loadb(text, len, 0, &jerr);
    json_t *t = m ? json_object_get(m, "type") : NULL;

    if (!json_is_object(m) || !json_is_string(t)) {
        p->bad++;
        log_warn("call=%s malformed message from openai (%s) bad=%d", p->call_sid,
                 m ? "no type" : jerr.text, p->bad);
    } else {
        on_event(p, json_string_value(t), m);
    }
    json_decref(m);
    if (p->bad > OAI_BAD_MAX && live(p))
        fail(p, PROV_CLOSE_PROTOCOL, false, "%d malformed messages from openai", p->bad);
}

static int on_receive(struct oai *p, struct lws *wsi, const void *in, size_t len)
{
    if (lws_frame_is_binary(wsi)) {
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            p->bad++;
            log_warn("call=%s binary frame from openai", p->call_sid);
            if (p->bad > OAI_BAD_MAX)
                fail(p, PROV_CLOSE_PROTOCOL, false, "%d malformed messages", p->bad);
        }
        return 0;
    }
    const char *msg;
    size_t n;
    switch (wsrx_feed(&p->rx, wsi, in, len, OAI_RX_MAX, &msg, &n)) {
    case WSRX_MORE:
        break;
    case WSRX_TOO_BIG:
        fail(p, PROV_CLOSE_PROTOCOL, false, "message over %u bytes", OAI_RX_MAX);
        break;
    case WSRX_NOMEM:
        fail(p, PROV_CLOSE_PROTOCOL, false, "out of memory reassembling a message");
        break;
    case WSRX_MSG:
        on_message(p, msg, n);
        wsrx_done(&p->rx);
        break;
    }
    return 0;
}

/* ---- lws callback ---- */

static enum prov_close close_code_why(int code)
{
    switch (code) {
    case 4000: /* beta shape refused */
    case 1007:
    case 1008:
        return PROV_CLOSE_REJECTED;
    default:
        return PROV_CLOSE_DROPPED;
    }
}

static int handshake_header(struct oai *p, struct lws *wsi, void *in, size_t len)
{
    unsigned char **pp = in, *end = *pp + len;
    char v[512];
    int n = snprintf(v, sizeof v, "Bearer %s", p->cfg->openai_api_key);
    if (n < 0 || (size_t)n >= sizeof v ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)v, n, pp,
                                     end)) {
        memset(v, 0, sizeof v);
        return -1;
    }
    memset(v, 0, sizeof v);
    return 0;
}

static void connection_error(struct oai *p, struct lws *wsi, const char *why)
{
    unsigned int status = wsi ? lws_http_client_http_response(wsi) : 0;
    if (status == 401 || status == 403)
        fail(p, PROV_CLOSE_REJECTED, true, "handshake refused: HTTP %u", status);
    else if (status && status != 101)
        fail(p, PROV_CLOSE_CONNECT_FAILED, true, "handshake failed: HTTP %u", status);
    else
        fail(p, PROV_CLOSE_CONNECT_FAILED, true, "connect failed: %s", why ? why : "unknown");
}

static int oai_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    void *o = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    struct oai *p = o;
    int rc = 0;
    (void)user;

    if (!o)
        return 0; /* not ours, or fully detached */
    if (o == OAI_BYE_NORMAL || o == OAI_BYE_PROTOCOL)
        return bye_callback(wsi, reason, o);
    p->busy++;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        p->wsi = wsi;
        rc = handshake_header(p, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        connection_error(p, wsi, in ? (const char *)in : NULL);
        lws_set_opaque_user_data(wsi, NULL); /* even if p->wsi was never recorded */
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        p->wsi = wsi;
        p->established = true;
        free(p->address); /* only needed to connect (a new call opens a new provider) */
        free(p->path);
        p->address = p->path = NULL;
        if (p->st == OAI_CONNECTING) {
            p->st = OAI_OPEN;
            log_info("call=%s openai socket open", p->call_sid);
            /* now session.created and our session.update's session.updated must follow */
            lws_sul_schedule(p->ctx, 0, &p->sul_deadline, deadline_cb,
                             (lws_usec_t)OAI_SETUP_MS * LWS_US_PER_MS);
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        rc = on_receive(p, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        rc = write_one(p, wsi);
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        int code = len >= 2 ? (((const unsigned char *)in)[0] << 8) | ((const unsigned char *)in)[1]
                            : 1005;
        fail(p, close_code_why(code), true, "openai closed the socket (code %d)", code);
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        fail(p, PROV_CLOSE_DROPPED, true, "connection lost");
        lws_set_opaque_user_data(wsi, NULL);
        break;
    case LWS_CALLBACK_WSI_DESTROY: /* never keep a pointer to a destroyed wsi */
        fail(p, p->st == OAI_CONNECTING ? PROV_CLOSE_CONNECT_FAILED : PROV_CLOSE_DROPPED, true,
             "connection destroyed");
        if (p->wsi == wsi)
            p->wsi = NULL;
        lws_set_opaque_user_data(wsi, NULL);
        break;
    default:
        break;
    }
    p->busy--;
    if (p->dead && !p->busy) {
        oai_free(p);
        return -1;
    }
    return rc;
}

/* ---- timers ---- */

static void deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct oai *p = lws_container_of(sul, struct oai, sul_deadline);
    if (!live(p))
        return;
    if (p->st == OAI_CONNECTING)
        fail(p, PROV_CLOSE_CONNECT_FAILED, false, "connect timeout");
    else
        fail(p, PROV_CLOSE_REJECTED, false, "no session.updated within %d ms", OAI_SETUP_MS);
}

/* ---- URL ---- */

static bool is_loopback(const char *h)
{
    return !strcmp(h, "localhost") || !strncmp(h, "127.", 4) || !strcmp(h, "::1");
}

/* Model names are simple, but never let one break the query string. */
static void url_escape(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *in && n + 4 < outsz; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

static int parse_url(struct oai *p, const char *url, const char *model, struct err *e)
{
    const char *rest, *hs, *he, *slash;
    char esc[200];

    if (!strncmp(url, "wss://", 6)) {
        p->tls = true;
        p->port = 443;
        rest = url + 6;
    } else if (!strncmp(url, "ws://", 5)) {
        p->tls = false;
        p->port = 80;
        rest = url + 5;
    } else {
        return err_set(e, ERR_CONFIG, NULL, "OPENAI_REALTIME_URL must start with wss://");
    }
    slash = strchr(rest, '/');
    if (!slash)
        slash = rest + strlen(rest);
    if (*rest == '[') { /* [v6]:port */
        hs = rest + 1;
        he = memchr(hs, ']', (size_t)(slash - hs));
        if (!he)
            return err_set(e, ERR_CONFIG, NULL, "OPENAI_REALTIME_URL: bad IPv6 host");
    } else {
        hs = rest;
        he = memchr(hs, ':', (size_t)(slash - hs));
        if (!he)
            he = slash;
    }
    if (he == hs || (size_t)(he - hs) >= sizeof p->host)
        return err_set(e, ERR_CONFIG, NULL, "OPENAI_REALTIME_URL: bad host");
    memcpy(p->host, hs, (size_t)(he - hs));
    p->host[he - hs] = '\0';
    const char *pc = (*rest == '[') ? he + 1 : he;
    if (pc < slash && *pc == ':') {
        char *endp;
        long port = strtol(pc + 1, &endp, 10);
        if (endp != slash || port < 1 || port > 65535)
            return err_set(e, ERR_CONFIG, NULL, "OPENAI_REALTIME_URL: bad port");
        p->port = (int)port;
    }
    url_escape(model, esc, sizeof esc);
    const char *path = *slash ? slash : "/";
    char full[1024];
    int n = snprintf(full, sizeof full, "%s%cmodel=%s", path, strchr(path, '?') ? '&' : '?', esc);
    if (n < 0 || (size_t)n >= sizeof full)
        return err_set(e, ERR_CONFIG, NULL, "OPENAI_REALTIME_URL: path too long");
    if (!p->tls && !is_loopback(p->host))
        return err_set(e, ERR_CONFIG, NULL,
                       "OPENAI_REALTIME_URL: ws:// (no TLS) is only allowed to loopback");
    if (!(p->path = strdup(full)))
        return err_set(e, ERR_NOMEM, NULL, "openai provider");
    return 0;
}

/* ---- prov_ops ---- */

static bool oai_configured(const struct cfg *cfg)
{
    return cfg && cfg->openai_api_key[0] && cfg->openai_realtime_url[0];
}

static int oai_open(struct prov **out, const struct prov_open_args *a, struct err *e)
{
    struct lws_client_connect_info ci;
    struct oai *p;
    int ms;

    if (!oai_configured(a->cfg))
        return err_set(e, ERR_NOT_CONFIGURED, NULL, "OPENAI_API_KEY is not set");
    p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, ERR_NOMEM, NULL, "openai provider");
    p->ev = a->ev;
    p->owner = a->owner;
    p->cfg = a->cfg;
    p->ctx = a->ctx;
    util_strlcpy(p->call_sid, a->call_sid ? a->call_sid : "-", sizeof p->call_sid);
    p->instructions = strdup(a->instructions ? a->instructions : "");
    if (!p->instructions) {
        free(p);
        return err_set(e, ERR_NOMEM, NULL, "openai provider");
    }
    if (parse_url(p, a->cfg->openai_realtime_url, a->cfg->openai_model, e)) {
        oai_free(p);
        return e ? e->code : ERR_CONFIG;
    }
    p->address = strdup(a->address && *a->address ? a->address : p->host);
    if (!p->address) {
        oai_free(p);
        return err_set(e, ERR_NOMEM, NULL, "openai provider");
    }
    if (!p->tls && !is_loopback(p->address)) {
        oai_free(p);
        return err_set(e, ERR_CONFIG, NULL, "ws:// (no TLS) is only allowed to loopback");
    }

    memset(&ci, 0, sizeof ci);
    ci.context = a->ctx;
    ci.vhost = a->vhost;
    ci.address = p->address;
    ci.port = p->port;
    ci.path = p->path;
    ci.host = p->host;
    ci.origin = NULL; /* no Origin header: we are a server, not a browser */
    ci.ssl_connection = p->tls ? LCCSCF_USE_SSL : 0; /* full certificate verification */
    ci.protocol = NULL;                              /* no subprotocol: server-to-server */
    ci.local_protocol_name = OAI_PROTOCOL_NAME;
    ci.alpn = "http/1.1";
    ci.opaque_user_data = p;

    ms = a->cfg->provider_connect_timeout_ms > 0 ? a->cfg->provider_connect_timeout_ms
                                                 : OAI_CONNECT_MS_DEFAULT;
    lws_sul_schedule(p->ctx, 0, &p->sul_deadline, deadline_cb, (lws_usec_t)ms * LWS_US_PER_MS);
    log_info("call=%s connecting to openai host=%s port=%d tls=%d model=%s", p->call_sid, p->host,
             p->port, (int)p->tls, a->cfg->openai_model);
    p->busy++; /* a synchronous connect error must not free p under us */
    struct lws *w = lws_client_connect_via_info(&ci);
    p->busy--;
    if (!w)
        fail(p, PROV_CLOSE_CONNECT_FAILED, true, "connect failed at once");
    else if (p->st != OAI_DOWN)
        p->wsi = w;
    *out = (struct prov *)p;
    return 0;
}

static void oai_send_audio(struct prov *pp, const char *b64, size_t len)
{
    struct oai *p = (struct oai *)pp;
    if (!p || p->st != OAI_READY || p->dead || !b64 || !len)
        return;
    enqueue_append(p, b64, len);
}

static void oai_tool_result(struct prov *pp, const char *call_id, const char *name,
                            const char *envelope_json)
{
    struct oai *p = (struct oai *)pp;
    char evid[32];
    if (!p || !live(p) || !call_id)
        return;
    struct oai_call *c = call_find(p, call_id);
    if (!c || !c->emitted || c->answered) {
        log_warn("call=%s tool result for unknown or answered call %s (%s): ignored", p->call_sid,
                 call_id, name ? name : "?");
        return;
    }
    c->answered = true;
    next_event_id(p, "fco", evid, sizeof evid);
    enqueue(p,
            json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "type", "conversation.item.create",
                      "event_id", evid, "item", "type", "function_call_output", "call_id", call_id,
                      "output", envelope_json ? envelope_json : "{}"),
            false);
    /* One response.create once every call of that response is answered. */
    char resp[OAI_ID_MAX];
    util_strlcpy(resp, c->resp_id, sizeof resp);
    for (int k = 0; k < p->ncalls; k++)
        if (!strcmp(p->calls[k].resp_id, resp) && !p->calls[k].answered)
            return;
    for (int k = p->ncalls - 1; k >= 0; k--)
        if (!strcmp(p->calls[k].resp_id, resp))
            call_remove(p, k);
    want_response(p);
}

static void oai_greet(struct prov *pp, const char *first_name)
{
    struct oai *p = (struct oai *)pp;
    if (!p || !live(p))
        return;
    clean_name(first_name, p->greet_name, sizeof p->greet_name);
    if (p->st != OAI_READY) {
        p->greet_pending = true;
        return;
    }
    send_greeting(p);
}

static void oai_truncate(struct prov *pp, const char *item_id, int heard_ms)
{
    struct oai *p = (struct oai *)pp;
    char evid[32];
    if (!p || !live(p) || p->st != OAI_READY || !item_id || !*item_id)
        return;
    struct oai_item *it = item_find(p, item_id);
    if (!it) {
        log_info("call=%s truncate: no audio known for item %s", p->call_sid, item_id);
        return;
    }
    long max_ms = it->bytes / 8;
    long ms = heard_ms < 0 ? 0 : heard_ms;
    if (ms > max_ms)
        ms = max_ms;
    it->dropped = true;
    next_event_id(p, "trunc", evid, sizeof evid);
    enqueue(p,
            json_pack("{s:s, s:s, s:s, s:i, s:I}", "type", "conversation.item.truncate", "event_id",
                      evid, "item_id", item_id, "content_index", 0, "audio_end_ms", (json_int_t)ms),
            false);
}

static void oai_close(struct prov *pp)
{
    struct oai *p = (struct oai *)pp;
    if (!p)
        return;
    p->dead = true;
    lws_sul_cancel(&p->sul_deadline);
    lws_sul_cancel(&p->sul_closed);
    lws_sul_cancel(&p->sul_retry);
    detach(p, false);
    if (!p->busy)
        oai_free(p);
}

const struct prov_ops prov_openai_ops = {
    .name = "openai",
    .configured = oai_configured,
    .protocol = &oai_protocol,
    .open = oai_open,
    .send_audio = oai_send_audio,
    .tool_result = oai_tool_result,
    .greet = oai_greet,
    .truncate = oai_truncate,
    .close = oai_close,
};
