/*
 * gemini_live.c - the Google Gemini Live provider (prov_gemini_ops, "gemini").
 *
 * Owns: one call's Gemini Live WebSocket(s) (lws clients on the server's
 * loop), the setup message, the audio transcoding state (src/audio: u-law 8k
 * <-> PCM16 16k in / 24k out), pending function calls, and session
 * resumption: on goAway, or an unexpected close with a resumption handle,
 * a second socket is opened with the same setup plus the latest resumable
 * handle while caller audio is held (<= 2 s); once it answers setupComplete
 * the old socket is closed and the call goes on, the session notices nothing.
 * Must not touch: Twilio sockets, actions, the database. Everything runs on
 * the loop thread; the call session sees only struct prov_events.
 *
 * Wire format (../shared/protocols/gemini-live.md): camelCase JSON, one
 * top-level key per client message, sent as text frames; server messages come
 * as text or binary frames and may carry several keys at once. Errors come
 * only as close frames (1007 bad request/key, 1008 model/feature/stale
 * handle, 1011 server), so every close is logged with its code and reason.
 *
 * Lifetime: a struct gconn lives from connect until its wsi is destroyed.
 * When the provider closes (or replaces a socket) the gconn is orphaned
 * (g = NULL), closed with 1000 and freed at LWS_CALLBACK_WSI_DESTROY. The
 * struct gem is freed by prov close(); if that happens inside one of our own
 * event callbacks, the free waits until the callback stack unwinds (busy).
 *
 * Hot path (docs/gemini.md "Performance"): model audio messages are picked with core/jpick
 * (providers/gem_fast.c) when they are exactly the audio-only shape, everything else goes
 * through jansson; caller audio goes out one 20 ms frame per realtimeInput message, built
 * by copying text around our base64 and written at once when nothing is queued
 * (net/wsout.h); a partial output frame goes out after GEM_TAIL_MS without more model
 * audio. Per-call memory is kept small: buffers for resumption, batching, function calls,
 * the transcript, the handle and fragmented messages exist only while needed.
 */
#include "providers/gemini_live.h"
#include "providers/gem_fast.h"
#include "providers/provider.h"

#include "actions/action.h"
#include "audio/audio.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include "net/wsout.h"
#include "net/wsrx.h"

#include <ctype.h>
#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "gemini"

#define GEM_PROTOCOL "gemini-live"
#define GEM_RX_MAX (8u << 20)   /* largest server message accepted (bytes) */
#define GEM_TXQ_MAX (4u << 20)  /* bytes queued per socket before audio is dropped */
#define GEM_MALFORMED_MAX 5     /* malformed server messages tolerated per call */
#define GEM_BATCH_MS 20         /* caller audio per realtimeInput message (one Twilio frame) */
#define GEM_TAIL_MS 3           /* partial output frame sent when no model audio follows */
#define GEM_HOLD_MS 2000        /* caller audio kept while a socket is replaced */
#define GEM_CALLS_MAX 32        /* function calls remembered per call */
#define GEM_RESUME_TRIES 3      /* reconnect attempts before giving up */
#define GEM_HANDLE_MAX 2048     /* longest resumption handle kept */
#define GEM_TRANSCRIPT_MAX 3000 /* transcript kept to restart a lost session */
#define GEM_OUT_RATE 24000      /* Gemini's output audio rate */

#define GEM_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- types ---- */

struct txmsg {
    struct txmsg *next;
    size_t len;          /* payload bytes after LWS_PRE */
    unsigned char buf[]; /* LWS_PRE + payload */
};

struct gem;

struct gconn {
    struct gem *g;       /* owner; NULL once orphaned */
    struct lws *wsi;     /* NULL before connect and after destroy */
    struct txmsg *setup; /* setup message, sent first (NULL once queued) */
    bool in_connect;     /* inside lws_client_connect_via_info */
    bool destroyed;      /* LWS_CALLBACK_WSI_DESTROY seen: no more callbacks */
    bool established, setup_done;
    bool closing; /* orphaned: send close 1000 at next writeable */
    bool gone_reported;
    bool fresh;          /* setup without a handle on a resumption */
    bool connect_failed; /* never reached the WebSocket */
    bool write_failed;   /* a direct write failed: the socket is being closed */
    int http_status;     /* handshake status on a failed connect, 0 unknown */
    int close_code;      /* from the server's close frame, 0 = none (1006) */
    char close_reason[128];
    struct wsrx rx; /* reassembly of one fragmented message (net/wsrx.h) */
    struct txmsg *txh, *txt;
    size_t tx_bytes;
};

enum pcall_state { PC_FREE = 0, PC_PENDING, PC_CANCELLED, PC_ANSWERED };

struct pcall {
    enum pcall_state st;
    char id[128];
    char name[64];
};

struct gem {
    const struct cfg *cfg; /* borrowed, outlives us */
    const struct prov_events *ev;
    void *owner;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    char *instructions; /* copy */
    char call_sid[72];
    char *address; /* numeric IP to dial, or NULL */
    char host[256];
    char *path; /* path + query (may hold the key: never logged) */
    int port;
    bool tls;

    struct gconn *cur;   /* socket in use (or the first being set up) */
    struct gconn *next;  /* replacement socket being set up */
    bool ready;          /* first setupComplete seen */
    bool closed_emitted; /* ev->closed sent: no more events */
    bool close_called;   /* prov close() called: free when not busy */
    int busy;            /* depth of our callbacks on the stack */
    bool greet_pending;
    char greet_name[64];

    char *handle; /* latest resumable handle (< GEM_HANDLE_MAX), NULL = none */
    bool goaway;  /* resume at the next safe point */
    int resume_tries;

    struct aud_in *ain;
    struct aud_out *aout;
    uint8_t *batch; /* caller PCM not yet sent (< GEM_BATCH_MS), allocated when needed */
    size_t batch_len, batch_cap;
    uint8_t *hold; /* caller PCM held during resumption, allocated then, freed after */
    size_t hold_len, hold_cap;
    bool warned_audio;

    struct pcall *calls; /* GEM_CALLS_MAX slots, allocated at the first function call */
    char *transcript;    /* GEM_TRANSCRIPT_MAX bytes, allocated at the first transcript */
    size_t tlen;
    char trole; /* 'C' caller, 'A' agent, 0 none */

    lws_sorted_usec_list_t sul_setup; /* setupComplete deadline of cur/next */
    lws_sorted_usec_list_t sul_retry; /* resumption backoff */
    lws_sorted_usec_list_t sul_tail;  /* flush of the partial output frame (GEM_TAIL_MS) */
    bool audio_pushed;                /* this message carried model audio */
    struct prov_gemini_stats stats;
};

static int gem_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);

/* 4 KiB of rx buffer per socket (lws allocates it per connection, so it is per-call
 * memory): the audio messages (1.3-2.6 KB for 20-40 ms) arrive whole, larger messages in
 * pieces that are reassembled (GEM_RX_MAX). tx_packet_size: without it lws would cut every
 * send() to rx_buffer_size and buffer the rest (the setup message is several KB). */
static const struct lws_protocols gem_protocol = {
    .name = GEM_PROTOCOL,
    .callback = gem_callback,
    .rx_buffer_size = 4096,
    .tx_packet_size = 65536,
};

/* ---- configuration checks and the setup message ---- */

bool prov_gemini_model_has_affective(const char *model)
{
    if (!strncmp(model, "models/", 7))
        model += 7;
    /* the 2.5 native-audio family (Developer API preview; Vertex GA) */
    return strstr(model, "2.5") && strstr(model, "native-audio");
}

static bool model_name_ok(const char *m)
{
    if (!*m || strlen(m) > 128)
        return false;
    for (; *m; m++)
        if (!isalnum((unsigned char)*m) && !strchr("._:-/", *m))
            return false;
    return true;
}

static bool uses_v1alpha(const struct cfg *cfg)
{
    return strstr(cfg->gemini_live_url, ".v1alpha.") != NULL;
}

int prov_gemini_check_config(const struct cfg *cfg, struct err *e)
{
    if (!model_name_ok(cfg->gemini_model))
        return err_set(e, ERR_CONFIG, NULL,
                       "GEMINI_MODEL '%s' is not a model id (letters, digits, . _ : -)",
                       cfg->gemini_model);
    if (!*cfg->gemini_voice)
        return err_set(e, ERR_CONFIG, NULL, "GEMINI_VOICE is empty (e.g. Kore, Puck, Aoede)");
    if (cfg->gemini_affective_dialog && !prov_gemini_model_has_affective(cfg->gemini_model))
        return err_set(e, ERR_CONFIG, NULL,
                       "GEMINI_AFFECTIVE_DIALOG=true is not available on %s (Google removed it "
                       "from the 3.x Live models); only Gemini 2.5 native-audio models on v1alpha "
                       "offer it. Set it to false or change GEMINI_MODEL",
                       cfg->gemini_model);
    if (cfg->gemini_affective_dialog && !uses_v1alpha(cfg))
        return err_set(e, ERR_CONFIG, NULL,
                       "GEMINI_AFFECTIVE_DIALOG=true needs the v1alpha API: set "
                       "GEMINI_API_VERSION=v1alpha (or a v1alpha GEMINI_LIVE_URL)");
    return 0;
}

static const char LANG_RULE[] =
    "Always speak British English (en-GB): British spelling, vocabulary, dates (day before "
    "month) and times, and pounds sterling. You are on a phone line: keep answers short and "
    "natural.";

static json_t *tools_json(void)
{
    json_t *decls = act_tools_gemini();
    size_t i;
    json_t *d;

    if (!decls)
        decls = json_array();
    /* Explicit behavior on every declaration (3.8 defaults to NON_BLOCKING): the model
     * waits for our result instead of guessing. */
    json_array_foreach(decls, i, d) if (json_is_object(d))
        json_object_set_new(d, "behavior", json_string("BLOCKING"));
    return json_pack("[{s:o}]", "functionDeclarations", decls);
}

json_t *prov_gemini_setup_json(const struct cfg *cfg, const char *instructions, const char *handle,
                               const char *context)
{
    size_t n = strlen(LANG_RULE) + (instructions ? strlen(instructions) : 0) +
               (context ? strlen(context) : 0) + 8;
    char *sys = malloc(n);
    char model[200];
    json_t *gen, *setup, *resumption;

    if (!sys)
        return NULL;
    snprintf(sys, n, "%s\n\n%s%s%s", LANG_RULE, instructions ? instructions : "",
             context && *context ? "\n\n" : "", context ? context : "");
    snprintf(model, sizeof model, "%s%s", strncmp(cfg->gemini_model, "models/", 7) ? "models/" : "",
             cfg->gemini_model);
    gen = json_pack("{s:[s], s:{s:{s:{s:s}}}}", "responseModalities", "AUDIO", "speechConfig",
                    "voiceConfig", "prebuiltVoiceConfig", "voiceName", cfg->gemini_voice);
    if (gen && cfg->gemini_affective_dialog && prov_gemini_model_has_affective(cfg->gemini_model))
        json_object_set_new(gen, "enableAffectiveDialog", json_true());
    resumption = handle && *handle ? json_pack("{s:s}", "handle", handle) : json_object();
    setup = json_pack(
        "{s:{s:s, s:o, s:{s:[{s:s}]}, s:o, s:{s:{s:b, s:s, s:s, s:i, s:i}, s:s},"
        " s:{}, s:{}, s:{s:{}}, s:o}}",
        "setup", "model", model, "generationConfig", gen, "systemInstruction", "parts", "text", sys,
        "tools", tools_json(), "realtimeInputConfig", "automaticActivityDetection", "disabled", 0,
        "startOfSpeechSensitivity", "START_SENSITIVITY_LOW", "endOfSpeechSensitivity",
        "END_SENSITIVITY_LOW", "prefixPaddingMs", 40, "silenceDurationMs", 600, "activityHandling",
        "START_OF_ACTIVITY_INTERRUPTS", "inputAudioTranscription", "outputAudioTranscription",
        "contextWindowCompression", "slidingWindow", "sessionResumption", resumption);
    free(sys);
    return setup;
}

/* ---- small helpers ---- */

static bool alive(const struct gem *g)
{
    return !g->closed_emitted && !g->close_called;
}

static size_t pcm_bytes_per_ms(const struct gem *g)
{
    return (size_t)aud_in_rate(g->ain) * 2 / 1000;
}

static void gem_free(struct gem *g);

/* Leave one of our callbacks: performs a close() that happened inside it. */
static void leave(struct gem *g)
{
    if (--g->busy == 0 && g->close_called)
        gem_free(g);
}

static void log_close(const struct gem *g, const struct gconn *c, const char *what)
{
    log_warn("call=%s %s: socket closed code=%d reason=\"%s\"", g->call_sid, what,
             c->close_code ? c->close_code : 1006, c->close_reason);
}

/* ---- sockets ---- */

static void conn_free(struct gconn *c)
{
    struct txmsg *m = c->txh;
    while (m) {
        struct txmsg *n = m->next;
        free(m);
        m = n;
    }
    wsrx_done(&c->rx);
    free(c->setup);
    free(c);
}

/* Detach c from the provider; its socket closes with 1000 and c frees itself. */
static void conn_orphan(struct gconn *c)
{
    if (!c)
        return;
    c->g = NULL;
    if (!c->wsi) {
        if (!c->in_connect && !c->destroyed)
            conn_free(c);
        return;
    }
    c->closing = true;
    if (c->established)
        lws_callback_on_writable(c->wsi);
    /* backstop: a socket still connecting (or not writeable) dies by timeout */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, c->established ? 3 : LWS_TO_KILL_ASYNC);
}

/* A message of len payload bytes (after LWS_PRE), for conn_link. */
static struct txmsg *msg_alloc(size_t len)
{
    struct txmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (m) {
        m->next = NULL;
        m->len = len;
    }
    return m;
}

/* Send m (text frame; takes it). Written at once when nothing waits ahead of it
 * (net/wsout.h: saves a POLLOUT arm/disarm and a loop turn per message), else queued for
 * WRITEABLE. Audio may be refused when the queue is full. */
static int conn_link(struct gconn *c, struct txmsg *m, bool droppable)
{
    if (!c->txh && c->wsi && c->established && !c->closing && !c->write_failed) {
        enum wsout_rc rc = wsout_now(c->wsi, m->buf + LWS_PRE, m->len);
        if (rc != WSOUT_QUEUE) {
            free(m);
            if (rc == WSOUT_SENT)
                return 0;
            /* the socket is being killed: its close goes through conn_gone (resume/fail) */
            c->write_failed = true;
            if (c->g)
                log_warn("call=%s Gemini socket write failed", c->g->call_sid);
            return -1;
        }
    }
    if (droppable && c->tx_bytes + m->len > GEM_TXQ_MAX) {
        free(m);
        return -1;
    }
    m->next = NULL;
    if (c->txt)
        c->txt->next = m;
    else
        c->txh = m;
    c->txt = m;
    c->tx_bytes += m->len;
    if (c->wsi && c->established)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Queue one message (text frame). Audio may be refused when the queue is full. */
static int conn_queue(struct gconn *c, const char *text, size_t len, bool droppable)
{
    struct txmsg *m = msg_alloc(len);

    if (!m)
        return -1;
    memcpy(m->buf + LWS_PRE, text, len);
    return conn_link(c, m, droppable);
}

static int conn_send_json(struct gconn *c, json_t *msg, bool droppable)
{
    size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
    char *buf;
    int rc;

    if (!n)
        return -1;
    buf = malloc(n);
    if (!buf)
        return -1;
    json_dumpb(msg, buf, n, JSON_COMPACT);
    rc = conn_queue(c, buf, n, droppable);
    free(buf);
    return rc;
}

static int conn_connect(struct gem *g, struct gconn *c)
{
    struct lws_client_connect_info i;
    struct lws *wsi;

    memset(&i, 0, sizeof i);
    i.context = g->ctx;
    i.vhost = g->vhost;
    i.address = g->address ? g->address : g->host;
    i.port = g->port;
    i.path = g->path;
    i.host = g->host;
    i.origin = NULL; /* server to server: no Origin header */
    i.ssl_connection = g->tls ? LCCSCF_USE_SSL : 0;
    i.alpn = "http/1.1"; /* plain WebSocket over HTTP/1.1, never ws-over-h2 */
    i.protocol = NULL;   /* no Sec-WebSocket-Protocol */
    i.ietf_version_or_minus_one = -1;
    i.local_protocol_name = GEM_PROTOCOL;
    i.opaque_user_data = c;
    c->in_connect = true;
    g->stats.connects++;
    wsi = lws_client_connect_via_info(&i);
    c->in_connect = false;
    if (!wsi || c->destroyed) {
        c->wsi = NULL;
        c->destroyed = false; /* gone for good: the caller frees it */
        c->connect_failed = true;
        return -1;
    }
    c->wsi = wsi;
    /* failed already but the wsi still exists: the caller orphans it (freed at destroy) */
    return c->connect_failed ? -1 : 0;
}

static struct gconn *conn_new(struct gem *g, const char *handle, const char *context)
{
    struct gconn *c = calloc(1, sizeof *c);
    json_t *setup;

    if (!c)
        return NULL;
    setup = prov_gemini_setup_json(g->cfg, g->instructions, handle, context);
    size_t n = setup ? json_dumpb(setup, NULL, 0, JSON_COMPACT) : 0;
    c->setup = n ? msg_alloc(n) : NULL;
    if (c->setup)
        c->setup->len = json_dumpb(setup, (char *)c->setup->buf + LWS_PRE, n, JSON_COMPACT);
    json_decref(setup);
    if (!c->setup || c->setup->len != n) {
        free(c->setup);
        free(c);
        return NULL;
    }
    c->g = g;
    return c;
}

/* ---- events to the session ---- */

static const char *close_name(enum prov_close why)
{
    static const char *const names[] = {"normal",  "connect_failed", "rejected",
                                        "dropped", "protocol",       "expired"};
    return (unsigned)why < sizeof names / sizeof names[0] ? names[why] : "?";
}

/* The call is over for us: tell the session once, drop the sockets. */
static void fail(struct gem *g, enum prov_close why, const char *detail)
{
    if (g->closed_emitted)
        return;
    g->closed_emitted = true;
    lws_sul_cancel(&g->sul_setup);
    lws_sul_cancel(&g->sul_retry);
    lws_sul_cancel(&g->sul_tail);
    conn_orphan(g->cur);
    conn_orphan(g->next);
    g->cur = g->next = NULL;
    log_warn("call=%s Gemini session ended (%s): %s", g->call_sid, close_name(why), detail);
    if (!g->close_called)
        g->ev->closed(g->owner, why, detail);
}

static void malformed(struct gem *g, const char *what)
{
    g->stats.malformed++;
    log_warn("call=%s malformed message from Gemini (%d/%d): %s", g->call_sid, g->stats.malformed,
             GEM_MALFORMED_MAX, what);
    if (g->stats.malformed > GEM_MALFORMED_MAX)
        fail(g, PROV_CLOSE_PROTOCOL, "too many malformed messages from Gemini");
}

static void on_frame(void *arg, const char *b64, size_t len)
{
    struct gem *g = arg;
    if (!alive(g))
        return;
    g->stats.audio_frames_out++;
    g->ev->audio(g->owner, b64, len, "");
}

/* ---- function calls ---- */

static struct pcall *call_find(struct gem *g, const char *id)
{
    for (int i = 0; g->calls && i < GEM_CALLS_MAX; i++)
        if (g->calls[i].st != PC_FREE && !strcmp(g->calls[i].id, id))
            return &g->calls[i];
    return NULL;
}

static struct pcall *call_add(struct gem *g, const char *id, const char *name)
{
    struct pcall *slot = NULL;

    if (!g->calls && !(g->calls = calloc(GEM_CALLS_MAX, sizeof *g->calls)))
        return NULL;
    for (int i = 0; i < GEM_CALLS_MAX && !slot; i++)
        if (g->calls[i].st == PC_FREE)
            slot = &g->calls[i];
    for (int i = 0; i < GEM_CALLS_MAX && !slot; i++) /* reuse a finished one */
        if (g->calls[i].st != PC_PENDING)
            slot = &g->calls[i];
    if (!slot)
        return NULL;
    slot->st = PC_PENDING;
    util_strlcpy(slot->id, id, sizeof slot->id);
    util_strlcpy(slot->name, name, sizeof slot->name);
    return slot;
}

static bool calls_pending(const struct gem *g)
{
    for (int i = 0; g->calls && i < GEM_CALLS_MAX; i++)
        if (g->calls[i].st == PC_PENDING)
            return true;
    return false;
}

/* Calls of a session we left behind can't be answered any more. */
static void calls_cancel_all(struct gem *g)
{
    for (int i = 0; g->calls && i < GEM_CALLS_MAX && alive(g); i++)
        if (g->calls[i].st == PC_PENDING) {
            g->calls[i].st = PC_CANCELLED;
            log_info("call=%s function call %s (%s) dropped with the old session", g->call_sid,
                     g->calls[i].id, g->calls[i].name);
            g->ev->tool_cancel(g->owner, g->calls[i].id);
        }
}

static void send_function_response(struct gem *g, const char *id, const char *name,
                                   json_t *response)
{
    json_t *msg = json_pack("{s:{s:[{s:s, s:s, s:o}]}}", "toolResponse", "functionResponses", "id",
                            id, "name", name, "response", response);
    if (msg && g->cur && g->cur->setup_done)
        conn_send_json(g->cur, msg, false);
    else
        log_warn("call=%s no session to answer function call %s", g->call_sid, id);
    json_decref(msg);
}

/* A call we can't hand to the session (bad args): answer it ourselves so a BLOCKING
 * call never stalls the conversation. */
static void answer_invalid(struct gem *g, const char *id, const char *name, const char *why)
{
    json_t *resp = json_pack("{s:{s:b, s:s, s:{}, s:{s:s}, s:i}}", "output", "success", 0,
                             "message", err_say(ERR_INVALID_ARGUMENTS), "data", "error", "code",
                             "invalid_arguments", "execution_time_ms", 0);
    log_warn("call=%s malformed function call %s (%s): %s", g->call_sid, id, name, why);
    struct pcall *pc = call_add(g, id, name);
    if (pc)
        pc->st = PC_ANSWERED;
    send_function_response(g, id, name, resp);
}

static void handle_function_call(struct gem *g, json_t *fc)
{
    const char *id = json_string_value(json_object_get(fc, "id"));
    const char *name = json_string_value(json_object_get(fc, "name"));
    json_t *args = json_object_get(fc, "args");
    char *args_json;

    if (!json_is_object(fc) || !id || !*id || strlen(id) >= sizeof g->calls[0].id) {
        malformed(g, "functionCall without a usable id");
        return;
    }
    if (call_find(g, id)) {
        malformed(g, "functionCall id repeated");
        return;
    }
    if (!name || !*name || strlen(name) >= sizeof g->calls[0].name) {
        answer_invalid(g, id, name && *name && strlen(name) < 64 ? name : "unknown",
                       "missing or overlong name");
        return;
    }
    if (args && !json_is_object(args) && !json_is_null(args)) {
        answer_invalid(g, id, name, "args is not an object");
        return;
    }
    args_json = json_is_object(args) ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    if (!args_json || !call_add(g, id, name)) {
        free(args_json);
        answer_invalid(g, id, name, "too many calls in flight");
        return;
    }
    log_info("call=%s function call %s name=%s", g->call_sid, id, name);
    g->ev->tool_call(g->owner, id, name, args_json);
    free(args_json);
}

static void handle_tool_call(struct gem *g, json_t *tc)
{
    json_t *fcs = json_object_get(tc, "functionCalls");
    size_t i;
    json_t *fc;

    if (!json_is_array(fcs)) {
        malformed(g, "toolCall without functionCalls");
        return;
    }
    json_array_foreach(fcs, i, fc)
    {
        if (!alive(g))
            return;
        handle_function_call(g, fc);
    }
}

static void handle_cancellation(struct gem *g, json_t *tcc)
{
    json_t *ids = json_object_get(tcc, "ids");
    size_t i;
    json_t *v;

    if (!json_is_array(ids)) {
        malformed(g, "toolCallCancellation without ids");
        return;
    }
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        struct pcall *pc;
        if (!id || !alive(g))
            continue;
        pc = call_find(g, id);
        if (pc && pc->st == PC_ANSWERED) {
            log_info("call=%s function call %s cancelled after it was answered", g->call_sid, id);
            continue;
        }
        if (pc)
            pc->st = PC_CANCELLED;
        else if ((pc = call_add(g, id, ""))) /* remember it so a late result isn't sent */
            pc->st = PC_CANCELLED;
        log_info("call=%s function call %s cancelled by Gemini", g->call_sid, id);
        g->ev->tool_cancel(g->owner, id);
    }
}

/* ---- server content ---- */

static void transcript_add(struct gem *g, char role, const char *text)
{
    size_t n = strlen(text);
    const char *prefix = role == 'C' ? "\nCaller: " : "\nAgent: ";

    if (!n)
        return;
    if (!g->transcript && !(g->transcript = malloc(GEM_TRANSCRIPT_MAX)))
        return;
    if (g->trole != role) {
        size_t pl = strlen(prefix);
        if (g->tlen + pl + 1 < GEM_TRANSCRIPT_MAX) {
            memcpy(g->transcript + g->tlen, prefix, pl);
            g->tlen += pl;
        }
        g->trole = role;
    }
    if (n >= GEM_TRANSCRIPT_MAX / 2)
        n = GEM_TRANSCRIPT_MAX / 2 - 1;
    if (g->tlen + n + 1 > GEM_TRANSCRIPT_MAX) { /* keep the newer half */
        size_t drop = g->tlen / 2;
        memmove(g->transcript, g->transcript + drop, g->tlen - drop);
        g->tlen -= drop;
    }
    memcpy(g->transcript + g->tlen, text, n);
    g->tlen += n;
    g->transcript[g->tlen] = '\0';
}

static bool audio_mime_ok(const char *mime)
{
    const char *r;
    if (!mime || (strncmp(mime, "audio/pcm", 9) && strncmp(mime, "audio/L16", 9)))
        return false;
    r = strstr(mime, "rate=");
    return !r || atoi(r + 5) == GEM_OUT_RATE;
}

/* Model audio (base64 PCM16LE 24 kHz) into the output pipeline (-1: bad base64 or too
 * large); notes that this message carried audio, for the partial-frame tail flush. */
static int push_model_audio(struct gem *g, const char *b64, size_t len)
{
    if (len == 0 || len > AUD_MAX_B64)
        return len ? -1 : 0;
    int rc = aud_out_push(g->aout, b64, len, on_frame, g);
    g->audio_pushed = true;
    return rc;
}

static void handle_part(struct gem *g, json_t *part, bool discard)
{
    json_t *inl = json_object_get(part, "inlineData");
    const char *text = json_string_value(json_object_get(part, "text"));

    if (json_is_true(json_object_get(part, "thought")))
        return; /* thinking never reaches the caller */
    if (json_is_object(inl)) {
        const char *mime = json_string_value(json_object_get(inl, "mimeType"));
        json_t *data = json_object_get(inl, "data");
        if (!audio_mime_ok(mime) || !json_is_string(data)) {
            malformed(g, "inlineData is not 24 kHz PCM audio");
            return;
        }
        if (discard)
            return;
        if (push_model_audio(g, json_string_value(data), json_string_length(data)) < 0)
            malformed(g, "inlineData audio is not valid base64");
        return;
    }
    if (text)
        log_debug("call=%s model text part (%zu chars)", g->call_sid, strlen(text));
}

static void handle_server_content(struct gem *g, json_t *sc)
{
    json_t *turn = json_object_get(sc, "modelTurn");
    json_t *parts = json_object_get(turn, "parts");
    bool interrupted = json_is_true(json_object_get(sc, "interrupted"));
    json_t *it = json_object_get(sc, "inputTranscription");
    json_t *ot = json_object_get(sc, "outputTranscription");
    size_t i;
    json_t *p;

    if (interrupted) {
        /* the rest of the answer is dropped by the server: so is ours, filter state too */
        aud_out_reset(g->aout);
        log_info("call=%s caller barged in", g->call_sid);
        g->ev->barge_in(g->owner);
        if (!alive(g))
            return;
    }
    if (turn && !json_is_array(parts)) {
        malformed(g, "modelTurn without parts");
    } else {
        json_array_foreach(parts, i, p)
        {
            if (!alive(g))
                return;
            if (json_is_object(p))
                handle_part(g, p, interrupted);
            else
                malformed(g, "part is not an object");
        }
    }
    if (!alive(g))
        return;
    if (json_is_string(json_object_get(it, "text")))
        transcript_add(g, 'C', json_string_value(json_object_get(it, "text")));
    if (json_is_string(json_object_get(ot, "text")))
        transcript_add(g, 'A', json_string_value(json_object_get(ot, "text")));
    if (json_is_true(json_object_get(sc, "turnComplete"))) {
        const char *why = json_string_value(json_object_get(sc, "turnCompleteReason"));
        if (!interrupted)
            aud_out_flush(g->aout, on_frame, g); /* the tail, padded with silence */
        if (why && strcmp(why, "NEED_MORE_INPUT"))
            log_info("call=%s turn complete reason=%s", g->call_sid, why);
    }
}

/* ---- resumption ---- */

static void start_next(struct gem *g, bool fresh);
static void hold_append(struct gem *g, const uint8_t *pcm, size_t n);
static void flush_hold(struct gem *g);

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct gem *g = GEM_CONTAINER(sul, struct gem, sul_retry);
    g->busy++;
    if (alive(g) && !g->next)
        start_next(g, !g->handle);
    leave(g);
}

/* The replacement socket failed before setupComplete. */
static void next_failed(struct gem *g, struct gconn *c)
{
    int code = c->close_code;
    bool fresh = c->fresh;

    log_close(g, c, fresh ? "restart" : "resume");
    g->next = NULL;
    conn_orphan(c);
    lws_sul_cancel(&g->sul_setup);
    if (code == 1008 && !fresh) {
        /* handle unknown or expired: start a new session, with the transcript */
        free(g->handle);
        g->handle = NULL;
        start_next(g, true);
        return;
    }
    if (code == 1007 || (code == 1008 && fresh)) {
        fail(g, PROV_CLOSE_REJECTED, c->close_reason[0] ? c->close_reason : "setup rejected");
        return;
    }
    if (++g->resume_tries > GEM_RESUME_TRIES) {
        fail(g, PROV_CLOSE_DROPPED, "Gemini connection lost and could not be resumed");
        return;
    }
    if (g->cur && g->cur->setup_done) /* the old socket still works: keep using it */
        flush_hold(g);
    lws_sul_schedule(g->ctx, 0, &g->sul_retry, retry_cb,
                     (lws_usec_t)(200000LL << (g->resume_tries - 1)));
}

static void setup_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct gem *g = GEM_CONTAINER(sul, struct gem, sul_setup);
    char detail[96];

    g->busy++;
    if (alive(g) && g->next) {
        struct gconn *c = g->next;
        util_strlcpy(c->close_reason, "no setupComplete in time", sizeof c->close_reason);
        next_failed(g, c);
    } else if (alive(g) && !g->ready) {
        snprintf(detail, sizeof detail, "no setupComplete within %d ms",
                 g->cfg->provider_connect_timeout_ms);
        fail(g, PROV_CLOSE_CONNECT_FAILED, detail);
    }
    leave(g);
}

static void arm_setup_deadline(struct gem *g)
{
    lws_sul_schedule(g->ctx, 0, &g->sul_setup, setup_deadline_cb,
                     (lws_usec_t)g->cfg->provider_connect_timeout_ms * 1000);
}

static void start_next(struct gem *g, bool fresh)
{
    char ctx[GEM_TRANSCRIPT_MAX + 200];
    struct gconn *c;

    if (g->next || !alive(g))
        return;
    /* everything not yet sent waits in the hold buffer (sent to the new socket) */
    if (g->batch_len)
        hold_append(g, g->batch, g->batch_len);
    g->batch_len = 0;
    snprintf(ctx, sizeof ctx,
             "This phone call was reconnected after a technical problem. Carry on from where it "
             "left off, without greeting the caller again. Automatic transcript so far:%s",
             g->tlen ? g->transcript : " (none)");
    c = conn_new(g, fresh ? NULL : g->handle, fresh ? ctx : NULL);
    if (!c) {
        fail(g, PROV_CLOSE_DROPPED, "out of memory while resuming");
        return;
    }
    c->fresh = fresh;
    g->next = c;
    log_info("call=%s %s Gemini session on a new socket", g->call_sid,
             fresh ? "restarting the" : "resuming the");
    arm_setup_deadline(g);
    if (conn_connect(g, c)) {
        c->connect_failed = true;
        next_failed(g, c);
    }
}

/* realtimeInput audio, the hot path (25-50 messages/s per call), built without jansson:
 * constant text around our own base64, which needs no JSON escaping. */
static void send_pcm(struct gem *g, const uint8_t *pcm, size_t n)
{
    static const char tail[] = "\"}}}";
    char head[96];
    int hl = snprintf(head, sizeof head,
                      "{\"realtimeInput\":{\"audio\":{\"mimeType\":\"audio/pcm;rate=%d\","
                      "\"data\":\"",
                      aud_in_rate(g->ain));
    size_t bl = 4 * ((n + 2) / 3);
    struct txmsg *m = msg_alloc((size_t)hl + bl + sizeof tail - 1);

    if (!m)
        return;
    char *w = (char *)m->buf + LWS_PRE;
    memcpy(w, head, (size_t)hl);
    bl = util_b64_encode(pcm, n, w + hl);
    memcpy(w + hl + bl, tail, sizeof tail - 1);
    m->len = (size_t)hl + bl + sizeof tail - 1;
    if (conn_link(g->cur, m, true) == 0)
        g->stats.audio_msgs_out++;
    else if (!g->warned_audio) {
        g->warned_audio = true;
        log_warn("call=%s Gemini socket backed up: dropping caller audio", g->call_sid);
    }
}

/* Caller audio held while the socket was replaced goes out in 200 ms messages. */
static void flush_hold(struct gem *g)
{
    size_t step = pcm_bytes_per_ms(g) * 200;
    for (size_t off = 0; off < g->hold_len; off += step)
        send_pcm(g, g->hold + off, g->hold_len - off < step ? g->hold_len - off : step);
    g->hold_len = 0;
    free(g->hold); /* resumptions are rare: don't keep 2 s of buffer per call */
    g->hold = NULL;
}

static void send_greeting(struct gem *g)
{
    char text[200];
    json_t *msg;

    if (*g->greet_name)
        snprintf(text, sizeof text,
                 "Greet the caller (first name %s) warmly and briefly, say who you are, and ask "
                 "how you can help.",
                 g->greet_name);
    else
        snprintf(text, sizeof text,
                 "Greet the caller warmly and briefly, say who you are, and ask how you can "
                 "help.");
    msg = json_pack("{s:{s:[{s:s, s:[{s:s}]}], s:b}}", "clientContent", "turns", "role", "user",
                    "parts", "text", text, "turnComplete", 1);
    if (msg)
        conn_send_json(g->cur, msg, false);
    json_decref(msg);
    g->greet_pending = false;
}

static void on_setup_complete(struct gem *g, struct gconn *c, json_t *v)
{
    const char *sid = json_string_value(json_object_get(v, "sessionId"));

    if (c->setup_done) {
        malformed(g, "second setupComplete");
        return;
    }
    c->setup_done = true;
    lws_sul_cancel(&g->sul_setup);
    if (c == g->next) { /* resumption done: switch sockets */
        struct gconn *old = g->cur;
        g->cur = c;
        g->next = NULL;
        conn_orphan(old);
        g->goaway = false;
        g->resume_tries = 0;
        if (c->fresh)
            g->stats.fresh_restarts++;
        else
            g->stats.resumes++;
        log_info("call=%s Gemini session %s (socket %d)", g->call_sid,
                 c->fresh ? "restarted" : "resumed", g->stats.connects);
        aud_out_flush(g->aout, on_frame, g);
        calls_cancel_all(g);
        if (alive(g))
            flush_hold(g);
        return;
    }
    log_info("call=%s Gemini session ready model=%s%s%s", g->call_sid, g->cfg->gemini_model,
             sid ? " session=" : "", sid ? sid : "");
    g->ready = true;
    g->ev->ready(g->owner);
    if (alive(g) && g->greet_pending)
        send_greeting(g);
}

static void on_resumption_update(struct gem *g, json_t *v)
{
    const char *h = json_string_value(json_object_get(v, "newHandle"));

    if (!json_is_true(json_object_get(v, "resumable")) || !h || !*h)
        return; /* mid-generation or mid-call: not a safe point */
    if (strlen(h) >= GEM_HANDLE_MAX) {
        malformed(g, "resumption handle too long");
        return;
    }
    if (!g->handle || strcmp(g->handle, h)) {
        char *copy = strdup(h);
        if (!copy)
            return; /* keep the older handle */
        free(g->handle);
        g->handle = copy;
    }
    if (g->goaway && !g->next && !calls_pending(g))
        start_next(g, false);
}

static void on_go_away(struct gem *g, json_t *v)
{
    const char *left = json_string_value(json_object_get(v, "timeLeft"));

    log_info("call=%s Gemini goAway timeLeft=%s", g->call_sid, left ? left : "?");
    g->goaway = true;
    if (g->handle && !g->next && !calls_pending(g))
        start_next(g, false);
}

static void on_usage(struct gem *g, json_t *v)
{
    json_t *t = json_object_get(v, "totalTokenCount");
    if (json_is_integer(t))
        g->stats.usage_total_tokens = (long)json_integer_value(t);
    log_debug("call=%s usage prompt=%lld response=%lld total=%lld", g->call_sid,
              json_integer_value(json_object_get(v, "promptTokenCount")),
              json_integer_value(json_object_get(v, "responseTokenCount")), json_integer_value(t));
}

/* The model's audio reaches the caller in 20 ms frames; the tail of a chunk that does not
 * fill a frame would wait for the next chunk (20-100 ms, or the next burst, up to ~1 s).
 * When no more model audio arrives within GEM_TAIL_MS, that partial frame goes out as it
 * is (shorter, unpadded: the stream stays continuous). The few samples the resampler
 * holds back for its filter still wait for the next chunk (or the turn's end). */
static void tail_cb(lws_sorted_usec_list_t *sul)
{
    struct gem *g = GEM_CONTAINER(sul, struct gem, sul_tail);

    g->busy++;
    if (alive(g))
        aud_out_flush_partial(g->aout, on_frame, g);
    leave(g);
}

static void tail_arm(struct gem *g)
{
    g->audio_pushed = false;
    if (alive(g) && aud_out_pending(g->aout))
        lws_sul_schedule(g->ctx, 0, &g->sul_tail, tail_cb, GEM_TAIL_MS * LWS_US_PER_MS);
    else
        lws_sul_cancel(&g->sul_tail);
}

/* The model audio message, nearly all of the traffic, without jansson (providers/gem_fast.c).
 * Returns false when the message is anything else or unusual: the general path takes it. */
static bool handle_audio_fast(struct gem *g, const char *buf, size_t len)
{
    char data[GEM_FAST_DATA_MAX];
    struct gem_audio_msg m;

    m.data = data;
    m.dcap = sizeof data;
    if (prov__gem_audio_fast(buf, len, &m) || !audio_mime_ok(m.mime))
        return false;
    g->stats.fast_msgs++;
    /* the order of handle_server_content: parts, then the transcriptions */
    if (push_model_audio(g, data, m.dlen) < 0)
        malformed(g, "inlineData audio is not valid base64");
    if (m.has_text)
        log_debug("call=%s model text part (%zu chars)", g->call_sid, strlen(m.text));
    if (alive(g) && m.has_in)
        transcript_add(g, 'C', m.in_text);
    if (alive(g) && m.has_out)
        transcript_add(g, 'A', m.out_text);
    tail_arm(g);
    return true;
}

/* One whole server message from socket c. Every key is looked at. */
static void handle_message(struct gem *g, struct gconn *c, const char *buf, size_t len)
{
    json_error_t jerr;
    json_t *root;
    const char *key;
    json_t *v;

    if (c->setup_done && handle_audio_fast(g, buf, len))
        return;
    root = json_loadb(buf, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        malformed(g, "not a JSON object");
        return;
    }
    if (!c->setup_done && !json_object_get(root, "setupComplete")) {
        json_decref(root);
        malformed(g, "message before setupComplete");
        return;
    }
    /* setupComplete first whatever the key order, so a combined message is handled */
    if ((v = json_object_get(root, "setupComplete")))
        on_setup_complete(g, c, v);
    json_object_foreach(root, key, v)
    {
        if (!alive(g) || c->g != g)
            break;
        if (!strcmp(key, "setupComplete"))
            continue;
        if (!json_is_object(v))
            malformed(g, key);
        else if (!strcmp(key, "serverContent"))
            handle_server_content(g, v);
        else if (!strcmp(key, "toolCall"))
            handle_tool_call(g, v);
        else if (!strcmp(key, "toolCallCancellation"))
            handle_cancellation(g, v);
        else if (!strcmp(key, "goAway"))
            on_go_away(g, v);
        else if (!strcmp(key, "sessionResumptionUpdate"))
            on_resumption_update(g, v);
        else if (!strcmp(key, "usageMetadata"))
            on_usage(g, v);
        else
            log_debug("call=%s ignored server key %s", g->call_sid, key);
    }
    json_decref(root);
    if (g->audio_pushed || !aud_out_pending(g->aout)) /* new audio, or a flush/reset */
        tail_arm(g);
}

/* Socket c of g is gone (closed, failed to connect, destroyed). */
static void conn_gone(struct gem *g, struct gconn *c)
{
    int code = c->close_code ? c->close_code : 1006;
    char detail[200];

    if (c->gone_reported)
        return;
    c->gone_reported = true;
    if (c == g->next) {
        next_failed(g, c);
        return;
    }
    if (c != g->cur)
        return;
    g->cur = NULL;
    conn_orphan(c);
    snprintf(detail, sizeof detail, "close %d: %s", code, c->close_reason);
    if (!g->ready) {
        log_close(g, c, "setup");
        if (c->connect_failed && (c->http_status == 401 || c->http_status == 403))
            fail(g, PROV_CLOSE_REJECTED, c->close_reason);
        else if (c->connect_failed)
            fail(g, PROV_CLOSE_CONNECT_FAILED, c->close_reason[0] ? c->close_reason : "connect");
        else if (code == 1007 || code == 1008)
            fail(g, PROV_CLOSE_REJECTED, detail);
        else
            fail(g, PROV_CLOSE_CONNECT_FAILED, detail);
        return;
    }
    if (g->next)
        return; /* already moving to a new socket */
    log_close(g, c, "call");
    if (code == 1007)
        fail(g, PROV_CLOSE_PROTOCOL, detail);
    else if (code == 1008)
        fail(g, PROV_CLOSE_REJECTED, detail);
    else if (g->handle)
        start_next(g, false);
    else
        fail(g, g->goaway ? PROV_CLOSE_EXPIRED : PROV_CLOSE_DROPPED, detail);
}

/* ---- lws callback ---- */

static int on_receive(struct lws *wsi, struct gconn *c, void *in, size_t len)
{
    struct gem *g = c->g;
    const char *msg;
    size_t n;
    enum wsrx_rc rc = wsrx_feed(&c->rx, wsi, in, len, GEM_RX_MAX, &msg, &n);
    if (rc == WSRX_MORE || !g) {
        if (rc == WSRX_MSG)
            wsrx_done(&c->rx);
        return 0;
    }
    g->busy++;
    if (rc == WSRX_MSG)
        handle_message(g, c, msg, n);
    else
        malformed(g, "message too large");
    leave(g);
    wsrx_done(&c->rx);
    return 0;
}

static int on_writeable(struct lws *wsi, struct gconn *c)
{
    struct txmsg *m = c->txh;

    if (c->closing || !c->g) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    if (!m || c->write_failed)
        return 0;
    if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
        return -1;
    c->txh = m->next;
    if (!c->txh)
        c->txt = NULL;
    c->tx_bytes -= m->len;
    free(m);
    if (c->txh)
        lws_callback_on_writable(wsi);
    return 0;
}

static void on_peer_close(struct gconn *c, const unsigned char *in, size_t len)
{
    if (len >= 2) {
        size_t rl = len - 2 < sizeof c->close_reason - 1 ? len - 2 : sizeof c->close_reason - 1;
        c->close_code = (in[0] << 8) | in[1];
        memcpy(c->close_reason, in + 2, rl);
        c->close_reason[rl] = '\0';
    }
}

/* The wsi of c is finished (closed, failed, destroyed): no callback reaches c after
 * this. Report it to the owner and free c (unless conn_connect is still on the stack). */
static void conn_final(struct lws *wsi, struct gconn *c)
{
    lws_set_opaque_user_data(wsi, NULL);
    c->wsi = NULL;
    c->destroyed = true; /* conn_orphan never frees it now: we do, below */
    if (c->in_connect)
        return; /* conn_connect sees the failure and frees it */
    if (c->g) {
        struct gem *g = c->g;
        g->busy++;
        if (!c->gone_reported)
            conn_gone(g, c);
        if (g->cur == c) /* still referenced (should not happen): detach */
            g->cur = NULL;
        if (g->next == c)
            g->next = NULL;
        leave(g);
    }
    conn_free(c);
}

static int gem_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct gconn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    (void)user;

    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c->g && !strcmp(c->g->cfg->gemini_key_in, "header")) {
            unsigned char **p = in, *end = *p + len;
            const char *key = c->g->cfg->gemini_api_key;
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-goog-api-key:",
                                            (const unsigned char *)key, (int)strlen(key), p, end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->wsi = wsi;
        c->established = true;
        if (!c->g || c->closing) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        log_debug("call=%s Gemini socket open, sending setup", c->g->call_sid);
        /* setup goes first, ahead of anything queued meanwhile */
        {
            struct txmsg *m = c->setup;
            if (!m)
                return -1;
            c->setup = NULL;
            m->next = c->txh;
            c->txh = m;
            if (!c->txt)
                c->txt = m;
            c->tx_bytes += m->len;
        }
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(wsi, c, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(wsi, c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        on_peer_close(c, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c->connect_failed = !c->established;
        c->http_status = (int)lws_http_client_http_response(wsi);
        snprintf(c->close_reason, sizeof c->close_reason, "connect failed: %.80s (http %d)",
                 in ? (const char *)in : "unknown", c->http_status);
        conn_final(wsi, c);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        conn_final(wsi, c);
        return 0;
    default:
        return 0;
    }
}

/* ---- prov_ops ---- */

static bool gem_configured(const struct cfg *cfg)
{
    return *cfg->gemini_api_key && *cfg->gemini_live_url;
}

static int url_split(struct gem *g, const char *url, const char *key, bool key_in_query,
                     struct err *e)
{
    char *tmp = strdup(url);
    const char *prot, *ads, *path;
    int port;
    size_t plen;

    if (!tmp)
        return err_set(e, ERR_NOMEM, NULL, "url");
    if (lws_parse_uri(tmp, &prot, &ads, &port, &path)) {
        free(tmp);
        return err_set(e, ERR_CONFIG, NULL, "GEMINI_LIVE_URL is not a URL");
    }
    g->tls = !strcmp(prot, "wss");
    if (!g->tls && strcmp(prot, "ws")) {
        free(tmp);
        return err_set(e, ERR_CONFIG, NULL, "GEMINI_LIVE_URL must be wss:// or ws://");
    }
    util_strlcpy(g->host, ads, sizeof g->host);
    g->port = port;
    plen = strlen(path) + 3 * strlen(key) + 16;
    g->path = malloc(plen);
    if (!g->path) {
        free(tmp);
        return err_set(e, ERR_NOMEM, NULL, "url");
    }
    snprintf(g->path, plen, "/%s", path);
    if (key_in_query) {
        size_t n = strlen(g->path);
        n += (size_t)snprintf(g->path + n, plen - n, "%skey=", strchr(path, '?') ? "&" : "?");
        for (const char *k = key; *k && n + 4 < plen; k++) {
            if (isalnum((unsigned char)*k) || strchr("-_.~", *k))
                g->path[n++] = *k;
            else
                n += (size_t)snprintf(g->path + n, plen - n, "%%%02X", (unsigned char)*k);
        }
        g->path[n] = '\0';
    }
    free(tmp);
    return 0;
}

static int gem_open(struct prov **out, const struct prov_open_args *a, struct err *e)
{
    struct gem *g = calloc(1, sizeof *g);
    const struct cfg *cfg = a->cfg;
    int rc;

    if (!g)
        return err_set(e, ERR_NOMEM, NULL, "gemini");
    g->cfg = cfg;
    g->ev = a->ev;
    g->owner = a->owner;
    g->ctx = a->ctx;
    g->vhost = a->vhost;
    util_strlcpy(g->call_sid, a->call_sid ? a->call_sid : "", sizeof g->call_sid);
    g->instructions = strdup(a->instructions ? a->instructions : "");
    g->address = a->address ? strdup(a->address) : NULL;
    if (!gem_configured(cfg))
        rc = err_set(e, ERR_NOT_CONFIGURED, NULL, "GEMINI_API_KEY is not set");
    else if ((rc = prov_gemini_check_config(cfg, e))) /* serve checks at start too */
        ;
    else if (!g->instructions || (a->address && !g->address))
        rc = err_set(e, ERR_NOMEM, NULL, "gemini");
    else
        rc = url_split(g, cfg->gemini_live_url, cfg->gemini_api_key,
                       strcmp(cfg->gemini_key_in, "header") != 0, e);
    if (!rc)
        rc = aud_in_new(&g->ain, cfg->gemini_input_rate ? cfg->gemini_input_rate : 16000, e);
    if (!rc)
        rc = aud_out_new(&g->aout, GEM_OUT_RATE, e);
    if (!rc) {
        g->batch_cap = pcm_bytes_per_ms(g) * GEM_BATCH_MS * 2;
        g->hold_cap = pcm_bytes_per_ms(g) * GEM_HOLD_MS;
    }
    if (!rc && !(g->cur = conn_new(g, NULL, NULL)))
        rc = err_set(e, ERR_NOMEM, NULL, "gemini setup");
    if (!rc && conn_connect(g, g->cur)) {
        rc = err_set(e, ERR_IO, NULL, "Gemini connect to %s:%d failed: %s", g->host, g->port,
                     g->cur->close_reason[0] ? g->cur->close_reason : "no socket");
        conn_orphan(g->cur);
        g->cur = NULL;
    }
    if (rc) {
        gem_free(g);
        return rc;
    }
    arm_setup_deadline(g);
    log_info("call=%s connecting to Gemini Live %s:%d model=%s input=%d Hz", g->call_sid, g->host,
             g->port, cfg->gemini_model, aud_in_rate(g->ain));
    *out = (struct prov *)g;
    return 0;
}

static void hold_append(struct gem *g, const uint8_t *pcm, size_t n)
{
    if (!g->hold && !(g->hold = malloc(g->hold_cap)))
        return; /* out of memory: this audio is lost */
    if (n > g->hold_cap) {
        pcm += n - g->hold_cap;
        n = g->hold_cap;
    }
    if (g->hold_len + n > g->hold_cap) { /* drop the oldest */
        size_t drop = g->hold_len + n - g->hold_cap;
        drop += drop & 1;
        if (drop > g->hold_len)
            drop = g->hold_len;
        memmove(g->hold, g->hold + drop, g->hold_len - drop);
        g->hold_len -= drop;
    }
    memcpy(g->hold + g->hold_len, pcm, n);
    g->hold_len += n;
}

/* Caller PCM to the model in messages of GEM_BATCH_MS (a whole chunk of that size or
 * more goes out at once, without a copy). */
static void batch_pcm(struct gem *g, const uint8_t *pcm, size_t n)
{
    size_t want = pcm_bytes_per_ms(g) * GEM_BATCH_MS;

    if (!g->batch_len && n >= want) {
        send_pcm(g, pcm, n);
        return;
    }
    if (g->batch_len + n > g->batch_cap) {
        send_pcm(g, g->batch, g->batch_len);
        g->batch_len = 0;
    }
    if (n > g->batch_cap) {
        send_pcm(g, pcm, n);
        return;
    }
    if (!g->batch && !(g->batch = malloc(g->batch_cap))) {
        send_pcm(g, pcm, n);
        return;
    }
    memcpy(g->batch + g->batch_len, pcm, n);
    g->batch_len += n;
    if (g->batch_len >= want) {
        send_pcm(g, g->batch, g->batch_len);
        g->batch_len = 0;
    }
}

static void gem_send_audio(struct prov *p, const char *ulaw_b64, size_t len)
{
    struct gem *g = (struct gem *)p;
    uint8_t stackbuf[2048], *conv = stackbuf; /* a 20 ms frame at 16 kHz is 640 bytes */
    size_t need;
    long n;

    if (!g || !alive(g) || !g->ready)
        return;
    g->stats.audio_frames_in++;
    need = aud_in_out_max(g->ain, len);
    if (len > AUD_MAX_B64 / 8 || need > (1u << 20))
        return;
    if (need > sizeof stackbuf && !(conv = malloc(need)))
        return;
    n = aud_in_convert(g->ain, ulaw_b64, len, conv, need);
    if (n <= 0) {
        if (n < 0)
            log_warn("call=%s caller audio is not valid base64 (%zu chars), skipped", g->call_sid,
                     len);
    } else if (g->next || !g->cur || !g->cur->setup_done) {
        hold_append(g, conv, (size_t)n);
    } else {
        batch_pcm(g, conv, (size_t)n);
    }
    if (conv != stackbuf)
        free(conv);
}

static void gem_tool_result(struct prov *p, const char *call_id, const char *name,
                            const char *envelope_json)
{
    struct gem *g = (struct gem *)p;
    struct pcall *pc;
    json_error_t jerr;
    json_t *env;

    if (!g || !alive(g) || !call_id)
        return;
    pc = call_find(g, call_id);
    if (!pc || pc->st != PC_PENDING) {
        log_info("call=%s result for function call %s not sent (%s)", g->call_sid, call_id,
                 !pc                      ? "unknown id"
                 : pc->st == PC_CANCELLED ? "cancelled"
                                          : "already answered");
        return;
    }
    pc->st = PC_ANSWERED;
    env = envelope_json ? json_loads(envelope_json, 0, &jerr) : NULL;
    if (!json_is_object(env)) {
        json_decref(env);
        env = json_pack("{s:b, s:s, s:{}, s:{s:s}, s:i}", "success", 0, "message",
                        err_say(ERR_INTERNAL), "data", "error", "code", "internal_error",
                        "execution_time_ms", 0);
    }
    send_function_response(g, call_id, *pc->name ? pc->name : (name ? name : "unknown"),
                           json_pack("{s:o}", "output", env));
}

static void gem_greet(struct prov *p, const char *first_name)
{
    struct gem *g = (struct gem *)p;

    if (!g || !alive(g))
        return;
    util_strlcpy(g->greet_name, first_name ? first_name : "", sizeof g->greet_name);
    g->greet_pending = true;
    if (g->ready && g->cur && g->cur->setup_done)
        send_greeting(g);
}

static void gem_free(struct gem *g)
{
    lws_sul_cancel(&g->sul_setup);
    lws_sul_cancel(&g->sul_retry);
    lws_sul_cancel(&g->sul_tail);
    conn_orphan(g->cur);
    conn_orphan(g->next);
    if (g->stats.usage_total_tokens)
        log_info("call=%s Gemini usage total_tokens=%ld", g->call_sid, g->stats.usage_total_tokens);
    aud_in_free(g->ain);
    aud_out_free(g->aout);
    free(g->batch);
    free(g->hold);
    free(g->handle);
    free(g->calls);
    free(g->transcript);
    free(g->instructions);
    free(g->address);
    free(g->path);
    free(g);
}

static void gem_close(struct prov *p)
{
    struct gem *g = (struct gem *)p;

    if (!g)
        return;
    g->close_called = true;
    lws_sul_cancel(&g->sul_setup);
    lws_sul_cancel(&g->sul_retry);
    lws_sul_cancel(&g->sul_tail);
    conn_orphan(g->cur);
    conn_orphan(g->next);
    g->cur = g->next = NULL;
    if (g->busy == 0)
        gem_free(g);
}

void prov_gemini_get_stats(const struct prov *p, struct prov_gemini_stats *out)
{
    const struct gem *g = (const struct gem *)p;
    *out = g->stats;
}

const struct prov_ops prov_gemini_ops = {
    .name = "gemini",
    .configured = gem_configured,
    .protocol = &gem_protocol,
    .open = gem_open,
    .send_audio = gem_send_audio,
    .tool_result = gem_tool_result,
    .greet = gem_greet,
    .truncate = NULL, /* Gemini has no truncate: the server drops the rest itself */
    .close = gem_close,
};
