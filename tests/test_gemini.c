/*
 * test_gemini.c - prov_gemini_ops against the Gemini Live stand-in
 * (tests/peers/gemini_standin.js) in a small lws client context.
 *
 * The stand-in validates every message the way Google does (setup fields,
 * the tool schemas, audio formats, function response ids) and closes with
 * Google's codes otherwise; tests assert on what it logged and on the
 * provider's events. Audio is checked by decoding it and measuring the tone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libwebsockets.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "audio/audio.h"
#include "audtest.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "gem_peer.h"
#include "providers/gemini_live.h"
#include "providers/provider.h"
#include "vwstest.h"

/* ---- the fake call session: records every event ---- */

#define MAX_CALLS 16

struct rec {
    int ready;
    int barge;
    int closed;
    enum prov_close why;
    char detail[256];
    uint8_t *ulaw; /* agent audio, concatenated frames */
    size_t nulaw, cap;
    int frames, bad_frames;
    int short_frames;     /* frames under 20 ms (a partial frame sent early, GEM_TAIL_MS) */
    size_t ulaw_at_barge; /* bytes received when barge_in came */
    size_t barge_at[8];   /* the same for the first 8 barge-ins */
    struct {
        char id[128], name[64], args[1024];
    } calls[MAX_CALLS];
    int ncalls;
    char cancels[MAX_CALLS][128];
    int ncancels;
    struct prov *p;
    bool close_in_closed; /* call close() from inside the closed event */
};

static void ev_ready(void *o)
{
    ((struct rec *)o)->ready++;
}

static void ev_audio(void *o, const char *b64, size_t len, const char *item)
{
    struct rec *r = o;
    uint8_t buf[AUD_FRAME_BYTES + 8];
    (void)item;
    r->frames++;
    long n = util_b64_decode(b64, len, buf, sizeof buf);
    if (n <= 0 || n > AUD_FRAME_BYTES || len != (size_t)(n + 2) / 3 * 4) {
        r->bad_frames++;
        return;
    }
    r->short_frames += n < AUD_FRAME_BYTES;
    if (r->nulaw + AUD_FRAME_BYTES > r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32768;
        r->ulaw = realloc(r->ulaw, r->cap);
    }
    memcpy(r->ulaw + r->nulaw, buf, (size_t)n);
    r->nulaw += (size_t)n;
}

static void ev_barge(void *o)
{
    struct rec *r = o;
    r->barge++;
    r->ulaw_at_barge = r->nulaw;
    if (r->barge <= 8)
        r->barge_at[r->barge - 1] = r->nulaw;
}

static void ev_tool_call(void *o, const char *id, const char *name, const char *args)
{
    struct rec *r = o;
    if (r->ncalls >= MAX_CALLS)
        return;
    util_strlcpy(r->calls[r->ncalls].id, id, sizeof r->calls[0].id);
    util_strlcpy(r->calls[r->ncalls].name, name, sizeof r->calls[0].name);
    util_strlcpy(r->calls[r->ncalls].args, args, sizeof r->calls[0].args);
    r->ncalls++;
}

static void ev_tool_cancel(void *o, const char *id)
{
    struct rec *r = o;
    if (r->ncancels < MAX_CALLS)
        util_strlcpy(r->cancels[r->ncancels++], id, sizeof r->cancels[0]);
}

static void ev_closed(void *o, enum prov_close why, const char *detail)
{
    struct rec *r = o;
    r->closed++;
    r->why = why;
    util_strlcpy(r->detail, detail ? detail : "", sizeof r->detail);
    if (r->close_in_closed && r->p) {
        prov_gemini_ops.close(r->p);
        r->p = NULL;
    }
}

static const struct prov_events events = {
    ev_ready, ev_audio, ev_barge, ev_tool_call, ev_tool_cancel, ev_closed,
};

/* ---- harness: lws context, stand-in, feeding caller audio in real time ---- */

struct h {
    struct gem_peer peer;
    struct cfg cfg;
    bool cfg_loaded;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protos[3];
    lws_sorted_usec_list_t tick;
    struct rec r;
    bool feeding; /* send one 20 ms frame of caller tone per tick */
    double feed_hz;
    size_t fed_frames;
    size_t feed_pos;
};

static struct h *H; /* the running harness (ticker callback) */

/* TLS mode for h_start/h_open (set by the TLS test, NULL otherwise). */
static const char *tls_ca, *tls_cert, *tls_key, *tls_url_host;

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct h *h = H;
    (void)sul;
    if (h->feeding && h->r.p) {
        int16_t pcm[160];
        uint8_t u[160];
        char b64[AUD_FRAME_B64 + 4];
        audt_tone(pcm, 160, h->feed_hz, 8000, 8000, h->feed_pos);
        h->feed_pos += 160;
        aud_ulaw_encode(pcm, 160, u);
        size_t n = util_b64_encode(u, 160, b64);
        prov_gemini_ops.send_audio(h->r.p, b64, n);
        h->fed_frames++;
    }
    lws_sul_schedule(h->ctx, 0, &h->tick, tick_cb, 20 * LWS_US_PER_MS);
}

static double ms_now(void)
{
    return util_mono_ms();
}

typedef bool cond_fn(struct h *h);

static bool run_until(struct h *h, cond_fn *cond, int timeout_ms)
{
    double end = ms_now() + timeout_ms;
    while (ms_now() < end) {
        if (cond && cond(h))
            return true;
        lws_service(h->ctx, 0);
    }
    return cond ? cond(h) : true;
}

static void run_for(struct h *h, int ms)
{
    run_until(h, NULL, ms);
}

static bool c_ready(struct h *h)
{
    return h->r.ready > 0 || h->r.closed > 0;
}
static bool c_closed(struct h *h)
{
    return h->r.closed > 0;
}
static bool c_call(struct h *h)
{
    return h->r.ncalls > 0 || h->r.closed > 0;
}
static bool c_barge(struct h *h)
{
    return h->r.barge > 0 || h->r.closed > 0;
}
static int want_n;
static bool c_barge_n(struct h *h)
{
    return h->r.barge >= want_n || h->r.closed > 0;
}

/* Waits on counters (each also ends on a close, so a failure shows as an assertion). */
static bool c_frames(struct h *h)
{
    return h->r.frames >= want_n || h->r.closed > 0;
}
static bool c_cancels(struct h *h)
{
    return h->r.ncancels >= want_n || h->r.closed > 0;
}
static bool wait_frames(struct h *h, int n, int ms)
{
    want_n = n;
    return run_until(h, c_frames, ms);
}
/* Agent audio is counted in u-law bytes: a partial frame may go out early (short). */
static size_t want_bytes;
static bool c_bytes(struct h *h)
{
    return h->r.nulaw >= want_bytes || h->r.closed > 0;
}
static bool wait_bytes(struct h *h, size_t n, int ms)
{
    want_bytes = n;
    return run_until(h, c_bytes, ms);
}
static bool c_resumes(struct h *h)
{
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h->r.p, &st);
    return st.resumes + st.fresh_restarts >= want_n || h->r.closed > 0;
}

/* The stand-in's log once it holds at least n client messages with this key (or timeout). */
static json_t *log_with(struct h *h, const char *key, int n, int ms)
{
    double end = util_mono_ms() + ms;
    json_t *log = gem_peer_log(&h->peer);
    while (gem_peer_count_in(log, key, 0) < n && util_mono_ms() < end) {
        json_decref(log);
        run_until(h, NULL, 50);
        log = gem_peer_log(&h->peer);
    }
    return log;
}

/* The stand-in's log once it stops growing (it runs in another process; under load its
 * records may trail what we already sent). Services the loop meanwhile. */
static json_t *settled_log(struct h *h)
{
    json_t *prev = gem_peer_log(&h->peer);
    for (int i = 0; i < 40; i++) {
        run_until(h, NULL, 150);
        json_t *log = gem_peer_log(&h->peer);
        bool same = json_array_size(prev) == json_array_size(log);
        json_decref(prev);
        prev = log;
        if (same)
            break;
    }
    return prev;
}

/* Start the stand-in with script, load cfg (extra KEY=VALUE entries), make the lws context. */
static void h_start(struct h *h, const char *script, const char *version, const char *const *extra)
{
    const char *kv[40];
    int n = 0;
    char url[300];

    memset(h, 0, sizeof *h);
    H = h;
    if (tls_cert)
        assert_int_equal(gem_peer_start_tls(&h->peer, script, "test-key", tls_cert, tls_key), 0);
    else
        assert_int_equal(
            gem_peer_start_ver(&h->peer, script, "test-key", version ? version : "v1beta"), 0);
    snprintf(url, sizeof url, "GEMINI_LIVE_URL=%s", h->peer.url);
    if (tls_url_host) { /* same port, another name in the URL (hostname check) */
        char *p = strstr(url, "localhost");
        assert_non_null(p);
        char rest[300];
        snprintf(rest, sizeof rest, "%s", p + strlen("localhost"));
        snprintf(p, sizeof url - (size_t)(p - url), "%s%s", tls_url_host, rest);
    }
    for (int i = 0; extra && extra[i] && n < 30; i++) /* first match wins: extras first */
        kv[n++] = extra[i];
    kv[n++] = "GEMINI_API_KEY=test-key";
    kv[n++] = url;
    kv[n++] = "PROVIDER_CONNECT_TIMEOUT_MS=4000";
    kv[n++] = "LOG_LEVEL=warn";
    kv[n] = NULL;
    vt_cfg(&h->cfg, kv);
    h->cfg_loaded = true;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    h->protos[0] = (struct lws_protocols){"test-http", lws_callback_http_dummy, 0, 0, 0, NULL, 0};
    h->protos[1] = *prov_gemini_ops.protocol;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = h->protos;
    info.gid = -1;
    info.uid = -1;
    if (tls_ca) {
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = tls_ca;
    }
    lws_set_log_level(getenv("GEM_LWS_LOG") ? atoi(getenv("GEM_LWS_LOG")) : LLL_ERR, NULL);
    h->ctx = lws_create_context(&info);
    assert_non_null(h->ctx);
    h->vh = lws_get_vhost_by_name(h->ctx, "default");
    assert_non_null(h->vh);
    lws_sul_schedule(h->ctx, 0, &h->tick, tick_cb, 20 * LWS_US_PER_MS);
}

static int h_open(struct h *h, struct err *e)
{
    struct prov_open_args a = {
        .ctx = h->ctx,
        .vhost = h->vh,
        .cfg = &h->cfg,
        .ev = &events,
        .owner = &h->r,
        .instructions = "You are the claims assistant for Resolve My Claim. TESTMARKER-INSTR",
        .call_sid = "CAtest",
        .address = tls_cert ? "127.0.0.1" : NULL, /* resolved off-loop in production */
    };
    return prov_gemini_ops.open(&h->r.p, &a, e);
}

static void h_open_ok(struct h *h)
{
    struct err e = {0};
    int rc = h_open(h, &e);
    if (rc)
        fprintf(stderr, "open: %s\n", e.detail);
    assert_int_equal(rc, 0);
    assert_non_null(h->r.p);
}

static void h_stop(struct h *h)
{
    if (h->r.p)
        prov_gemini_ops.close(h->r.p);
    h->r.p = NULL;
    if (h->ctx) {
        run_for(h, 50); /* let the close frames go out */
        lws_sul_cancel(&h->tick);
        lws_context_destroy(h->ctx);
        h->ctx = NULL;
    }
    gem_peer_stop(&h->peer);
    if (h->cfg_loaded)
        cfg_free(&h->cfg);
    free(h->r.ulaw);
    H = NULL;
}

/* No rejection by the stand-in (it would close 1007/1008 like Google). */
static void assert_no_reject(json_t *log)
{
    json_t *rj = gem_peer_kind(log, "reject", 0);
    if (rj) {
        char *s = json_dumps(rj, 0);
        fprintf(stderr, "stand-in rejected: %s\n", s);
        free(s);
    }
    assert_null(rj);
}

static double agent_dominant(const struct rec *r, size_t from, size_t to, double *rms)
{
    size_t n = to - from;
    int16_t *pcm = malloc((n + 1) * sizeof *pcm);
    aud_ulaw_decode(r->ulaw + from, n, pcm);
    double d = audt_dominant_hz(pcm, n, 8000, 100, 3900, 5);
    if (rms)
        *rms = audt_rms(pcm, n);
    free(pcm);
    return d;
}

/* ---- schema checks for the tools ---- */

static void check_google_schema(json_t *s, const char *where)
{
    static const char *const allowed[] = {"type",
                                          "format",
                                          "title",
                                          "description",
                                          "nullable",
                                          "enum",
                                          "items",
                                          "minItems",
                                          "maxItems",
                                          "properties",
                                          "required",
                                          "minProperties",
                                          "maxProperties",
                                          "propertyOrdering",
                                          "minimum",
                                          "maximum",
                                          "minLength",
                                          "maxLength",
                                          "pattern",
                                          "anyOf",
                                          "default",
                                          "example",
                                          NULL};
    const char *k;
    json_t *v;

    assert_true(json_is_object(s));
    json_object_foreach(s, k, v)
    {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            ok |= !strcmp(k, allowed[i]);
        if (!ok)
            fprintf(stderr, "%s: keyword %s not in Google's subset\n", where, k);
        assert_true(ok);
    }
    const char *t = json_string_value(json_object_get(s, "type"));
    assert_non_null(t);
    for (const char *c = t; *c; c++)
        assert_true(*c >= 'A' && *c <= 'Z');
    json_t *props = json_object_get(s, "properties");
    json_object_foreach(props, k, v) check_google_schema(v, where);
    if (json_object_get(s, "items"))
        check_google_schema(json_object_get(s, "items"), where);
    json_t *req = json_object_get(s, "required");
    size_t i;
    json_array_foreach(req, i, v) assert_non_null(json_object_get(props, json_string_value(v)));
}

/* ---- tests ---- */

static void test_gemini_setup_accepted_ready_after_setup_complete(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, "{\"setup_delay_ms\":800}", NULL, NULL);
    h_open_ok(&h);
    run_for(&h, 200);
    assert_int_equal(h.r.ready, 0); /* socket open, setup sent, not confirmed */
    /* audio before setupComplete is not sent */
    h.feeding = true;
    h.feed_hz = 440;
    run_until(&h, c_ready, 3000);
    size_t fed_before = h.fed_frames;
    h.feeding = false;
    assert_int_equal(h.r.ready, 1);
    assert_int_equal(h.r.closed, 0);
    json_t *log = settled_log(&h);
    assert_no_reject(log);
    assert_true(fed_before > 5);
    assert_int_equal(gem_peer_count_in(log, "realtimeInput", 0), 0);
    json_t *hs = gem_peer_kind(log, "handshake", 0);
    assert_string_equal(json_string_value(json_object_get(hs, "key_via")), "query");
    assert_true(json_is_true(json_object_get(hs, "key_ok")));
    assert_int_equal(gem_peer_count_in(log, "setup", 0), 1);

    json_t *setup = json_object_get(gem_peer_nth_in(log, "setup", 0), "setup");
    assert_string_equal(json_string_value(json_object_get(setup, "model")),
                        "models/gemini-3.8-live");
    json_t *gen = json_object_get(setup, "generationConfig");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(gen, "responseModalities"), 0)), "AUDIO");
    assert_null(json_object_get(gen, "enableAffectiveDialog"));
    assert_null(json_object_get(gen, "thinkingConfig"));
    assert_null(json_object_get(setup, "proactivity"));
    json_t *speech = json_object_get(gen, "speechConfig");
    assert_null(json_object_get(speech, "languageCode"));
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(speech, "voiceConfig"), "prebuiltVoiceConfig"),
            "voiceName")),
        "Kore");
    const char *sys = json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(setup, "systemInstruction"), "parts"), 0),
        "text"));
    assert_non_null(strstr(sys, "British English"));
    assert_non_null(strstr(sys, "TESTMARKER-INSTR"));
    json_t *ric = json_object_get(setup, "realtimeInputConfig");
    assert_string_equal(json_string_value(json_object_get(ric, "activityHandling")),
                        "START_OF_ACTIVITY_INTERRUPTS");
    json_t *aad = json_object_get(ric, "automaticActivityDetection");
    assert_int_equal(json_integer_value(json_object_get(aad, "silenceDurationMs")), 600);
    assert_true(json_is_false(json_object_get(aad, "disabled")));
    assert_true(json_is_object(json_object_get(setup, "inputAudioTranscription")));
    assert_true(json_is_object(json_object_get(setup, "outputAudioTranscription")));
    assert_true(json_is_object(
        json_object_get(json_object_get(setup, "contextWindowCompression"), "slidingWindow")));
    json_t *sr = json_object_get(setup, "sessionResumption");
    assert_true(json_is_object(sr));
    assert_int_equal(json_object_size(sr), 0);

    /* the tools: one declaration per action, Google's schema subset, BLOCKING */
    json_t *tools = json_object_get(setup, "tools");
    assert_int_equal(json_array_size(tools), 1);
    json_t *decls = json_object_get(json_array_get(tools, 0), "functionDeclarations");
    assert_int_equal((int)json_array_size(decls), act_count());
    assert_int_equal(act_count(), 8);
    for (int i = 0; i < act_count(); i++) {
        const struct act_def *d = act_at(i);
        json_t *decl = NULL, *x;
        size_t j;
        json_array_foreach(decls, j, x) if (!strcmp(json_string_value(json_object_get(x, "name")),
                                                    d->name)) decl = x;
        assert_non_null(decl);
        assert_string_equal(json_string_value(json_object_get(decl, "behavior")), "BLOCKING");
        assert_true(json_string_length(json_object_get(decl, "description")) > 10);
        json_t *params = json_object_get(decl, "parameters");
        assert_string_equal(json_string_value(json_object_get(params, "type")), "OBJECT");
        check_google_schema(params, d->name);
        /* required list is the action's own */
        json_t *js = json_loads(d->schema, 0, NULL);
        json_t *want = json_object_get(js, "required");
        json_t *got = json_object_get(params, "required");
        assert_int_equal(json_array_size(want), json_array_size(got));
        json_array_foreach(want, j, x)
            assert_string_equal(json_string_value(x), json_string_value(json_array_get(got, j)));
        assert_int_equal(json_object_size(json_object_get(js, "properties")),
                         json_object_size(json_object_get(params, "properties")));
        json_decref(js);
    }
    /* every client frame was a text frame */
    size_t i;
    json_t *rr;
    json_array_foreach(log, i, rr)
    {
        const char *f = json_string_value(json_object_get(rr, "frame"));
        if (f)
            assert_string_equal(f, "text");
    }
    json_decref(log);
    h_stop(&h);
}

/* Caller tone up (8k u-law -> 16k PCM) and agent tone down (24k PCM, odd chunks -> 8k u-law):
 * both keep their frequency; formats on the wire are the documented ones. */
static void run_audio_roundtrip(const char *rate_kv, int want_rate, bool binary)
{
    struct h h;
    const char *extra[] = {rate_kv, NULL};
    char script[600];
    snprintf(
        script, sizeof script,
        "{\"binary\":%s,\"rules\":[{\"on\":\"audio\",\"ms\":400,\"do\":[{\"tone\":{\"hz\":1000,"
        "\"ms\":600,\"chunk_ms\":40,\"amp\":9000,\"odd\":true,\"turn_complete\":true}}]}]}",
        binary ? "true" : "false");
    h_start(&h, script, NULL, rate_kv ? extra : NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    h.feeding = true;
    h.feed_hz = 440;
    run_for(&h, 1200);
    h.feeding = false;
    assert_true(wait_bytes(&h, 29 * 160, 5000));
    json_t *log = settled_log(&h);
    assert_int_equal(h.r.closed, 0);
    assert_int_equal(h.r.bad_frames, 0);
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.fast_msgs, 15); /* every 40 ms audio message took the fast path */
    /* 600 ms of 24 kHz = 4 800 u-law bytes (the tail padded at turnComplete unless it went
     * out early, less what the filter holds back) */
    assert_true(h.r.nulaw >= 29 * 160 && h.r.nulaw <= 30 * 160);
    double rms;
    double dom = agent_dominant(&h.r, 160, h.r.nulaw - 160, &rms);
    assert_true(fabs(dom - 1000) <= 10);
    assert_true(fabs(rms - 9000 / sqrt(2.0)) < 0.08 * 9000 / sqrt(2.0));

    assert_no_reject(log);
    size_t n;
    int rate = 0;
    int16_t *pcm = gem_peer_audio(log, 0, &n, &rate);
    assert_int_equal(rate, want_rate);
    /* nearly all fed audio arrived (a partial batch may still be held) */
    double fed_ms = h.fed_frames * 20.0, got_ms = n * 1000.0 / rate;
    assert_true(got_ms > fed_ms - 60 && got_ms <= fed_ms + 1);
    double cdom = audt_dominant_hz(pcm + rate / 50, n - rate / 25, rate, 100, 3900, 5);
    assert_true(fabs(cdom - 440) <= 10);
    /* the stand-in's own analysis agrees */
    json_t *rep = gem_peer_audio_report(&h.peer, "1");
    assert_non_null(rep);
    assert_int_equal(json_integer_value(json_object_get(rep, "rate")), want_rate);
    assert_true(fabs(json_number_value(json_object_get(rep, "dominant_hz")) - 440) <= 10);
    json_decref(rep);
    /* no batching: one realtimeInput message per 20 ms caller frame (GEM_BATCH_MS) */
    int msgs = gem_peer_count_in(log, "realtimeInput", 0);
    assert_true(msgs >= (int)h.fed_frames - 1 && msgs <= (int)h.fed_frames);
    free(pcm);
    json_decref(log);
    h_stop(&h);
}

static void test_gemini_audio_roundtrip_keeps_frequency(void **state)
{
    (void)state;
    run_audio_roundtrip(NULL, 16000, false);
}

static void test_gemini_audio_input_rate_8000(void **state)
{
    (void)state;
    run_audio_roundtrip("GEMINI_INPUT_RATE=8000", 8000, false);
}

static void test_gemini_binary_server_frames_accepted(void **state)
{
    (void)state;
    run_audio_roundtrip(NULL, 16000, true);
}

static json_t *nth_function_response(json_t *log, int n)
{
    json_t *m = gem_peer_nth_in(log, "toolResponse", n);
    return json_array_get(json_object_get(json_object_get(m, "toolResponse"), "functionResponses"),
                          0);
}

static void test_gemini_tool_call_and_result_shape(void **state)
{
    (void)state;
    struct h h;
    h_start(&h,
            "{\"rules\":[{\"on\":\"setup\",\"do\":[{\"tool_call\":{\"id\":\"fc_7f3a\",\"name\":"
            "\"check_requirements\",\"args\":{\"claim_reference\":\"RMC-1001\"}}}]}]}",
            NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_call, 3000));
    assert_int_equal(h.r.ncalls, 1);
    assert_string_equal(h.r.calls[0].id, "fc_7f3a");
    assert_string_equal(h.r.calls[0].name, "check_requirements");
    json_t *args = json_loads(h.r.calls[0].args, 0, NULL);
    assert_true(json_is_object(args));
    assert_string_equal(json_string_value(json_object_get(args, "claim_reference")), "RMC-1001");
    json_decref(args);

    const char *env = "{\"success\":true,\"message\":\"Two documents are outstanding.\","
                      "\"data\":{\"requirements\":[{\"type\":\"id_proof\"},{\"type\":"
                      "\"bank_statement\"}]},\"execution_time_ms\":3}";
    prov_gemini_ops.tool_result(h.r.p, "fc_7f3a", "check_requirements", env);
    /* an id Gemini never sent, and a second answer: neither goes out */
    prov_gemini_ops.tool_result(h.r.p, "fc_unknown", "check_requirements", env);
    prov_gemini_ops.tool_result(h.r.p, "fc_7f3a", "check_requirements", env);
    json_t *log = log_with(&h, "toolResponse", 1, 3000);
    json_decref(log);
    log = settled_log(&h);
    assert_int_equal(h.r.closed, 0);
    assert_no_reject(log);
    assert_int_equal(gem_peer_count_in(log, "toolResponse", 0), 1);
    json_t *fr = nth_function_response(log, 0);
    assert_string_equal(json_string_value(json_object_get(fr, "id")), "fc_7f3a");
    assert_string_equal(json_string_value(json_object_get(fr, "name")), "check_requirements");
    json_t *resp = json_object_get(fr, "response");
    assert_int_equal(json_object_size(resp), 1);
    json_t *out = json_object_get(resp, "output");
    json_t *want = json_loads(env, 0, NULL);
    assert_true(json_equal(out, want)); /* the envelope, as an object, not a string */
    json_decref(want);
    json_decref(log);
    h_stop(&h);
}

static void test_gemini_cancelled_call_gets_no_response(void **state)
{
    (void)state;
    struct h h;
    h_start(&h,
            "{\"rules\":[{\"on\":\"setup\",\"do\":[{\"tool_call\":{\"id\":\"fc_2\",\"name\":"
            "\"schedule_callback\",\"args\":{\"preferred_time\":\"tomorrow at 3pm\",\"reason\":"
            "\"claim\"}}},{\"wait\":100,\"cancel\":[\"fc_2\"]}]}]}",
            NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_call, 3000));
    want_n = 1;
    assert_true(run_until(&h, c_cancels, 3000));
    assert_int_equal(h.r.ncancels, 1);
    assert_string_equal(h.r.cancels[0], "fc_2");
    prov_gemini_ops.tool_result(h.r.p, "fc_2", "schedule_callback",
                                "{\"success\":true,\"message\":\"Booked.\",\"data\":{},"
                                "\"execution_time_ms\":1}");
    run_for(&h, 300);
    assert_int_equal(h.r.closed, 0);
    json_t *log = settled_log(&h);
    assert_no_reject(log); /* the stand-in closes 1007 on a response for a cancelled id */
    assert_int_equal(gem_peer_count_in(log, "toolResponse", 0), 0);
    json_decref(log);
    h_stop(&h);
}

/* interrupted: barge_in, and nothing of the old answer (partial frame, filter history) leaks
 * into the next one. */
static void test_gemini_interruption_barge_in_no_stale_audio(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    /* 330 ms: 16 whole frames and 80 samples, which go out early (GEM_TAIL_MS) as a short
     * frame, less the few samples the resampler holds back */
    assert_int_equal(
        gem_peer_control(&h.peer, "last", "[{\"tone\":{\"hz\":440,\"ms\":330,\"amp\":12000}}]"),
        200);
    assert_true(wait_bytes(&h, 2640 - 40, 3000));
    run_for(&h, 100);
    assert_true(h.r.short_frames >= 1);
    size_t first = h.r.nulaw;
    assert_true(first >= 2640 - 40 && first < 2640);
    assert_int_equal(gem_peer_control(&h.peer, "last", "[{\"interrupted\":true}]"), 200);
    assert_true(run_until(&h, c_barge, 2000));
    assert_int_equal(h.r.barge, 1);
    run_for(&h, 50);
    assert_int_equal(h.r.nulaw, first); /* nothing stale (held samples, padding) after it */
    assert_int_equal(gem_peer_control(&h.peer, "last",
                                      "[{\"tone\":{\"hz\":1000,\"ms\":400,\"amp\":12000,"
                                      "\"turn_complete\":true}}]"),
                     200);
    assert_true(wait_bytes(&h, first + 19 * 160, 3000));
    run_for(&h, 100);
    /* 400 ms = 3 200 bytes, less the held samples unless turnComplete padded the tail */
    assert_true(h.r.nulaw >= first + 3200 - 40 && h.r.nulaw <= first + 3200);
    /* the first new frame is pure 1 kHz: no 440 Hz left over */
    size_t at = h.r.ulaw_at_barge;
    int16_t pcm[160];
    aud_ulaw_decode(h.r.ulaw + at, 160, pcm);
    double p440 = audt_power(pcm, 160, 440, 8000), p1k = audt_power(pcm, 160, 1000, 8000);
    assert_true(p440 < p1k * 0.01);
    double dom = agent_dominant(&h.r, at, h.r.nulaw, NULL);
    assert_true(fabs(dom - 1000) <= 10);
    json_t *log = settled_log(&h);
    assert_no_reject(log);
    json_decref(log);
    h_stop(&h);
}

/* args not an object: answered by the provider with invalid_arguments (a BLOCKING call must
 * never stall); no id: tolerated a few times; too many malformed messages: PROTOCOL. */
static void test_gemini_malformed_function_calls(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    assert_int_equal(gem_peer_control(&h.peer, "last",
                                      "[{\"tool_call\":{\"id\":\"fc_bad\",\"name\":"
                                      "\"check_claim_details\",\"args\":\"RMC-1001\"}}]"),
                     200);
    json_t *log = log_with(&h, "toolResponse", 1, 3000);
    assert_int_equal(h.r.ncalls, 0);
    assert_no_reject(log);
    json_t *fr = nth_function_response(log, 0);
    assert_non_null(fr);
    assert_string_equal(json_string_value(json_object_get(fr, "id")), "fc_bad");
    json_t *out = json_object_get(json_object_get(fr, "response"), "output");
    assert_true(json_is_false(json_object_get(out, "success")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "error"), "code")),
                        "invalid_arguments");
    json_decref(log);

    /* no id, not JSON, a non-object: tolerated up to the limit */
    assert_int_equal(
        gem_peer_control(&h.peer, "last",
                         "[{\"send\":{\"toolCall\":{\"functionCalls\":[{\"name\":\"x\"}]}}},"
                         "{\"raw\":\"{not json\"},{\"raw\":\"[1,2]\"}]"),
        200);
    run_for(&h, 300);
    assert_int_equal(h.r.closed, 0);
    /* a good call still works between the bad ones */
    assert_int_equal(gem_peer_control(&h.peer, "last",
                                      "[{\"tool_call\":{\"id\":\"fc_ok\",\"name\":"
                                      "\"check_claim_details\"}}]"),
                     200);
    assert_true(run_until(&h, c_call, 2000));
    assert_string_equal(h.r.calls[0].args, "{}"); /* args missing = no arguments */
    assert_int_equal(
        gem_peer_control(&h.peer, "last", "[{\"raw\":\"x\"},{\"raw\":\"y\"},{\"raw\":\"z\"}]"),
        200);
    assert_true(run_until(&h, c_closed, 2000));
    assert_int_equal(h.r.why, PROV_CLOSE_PROTOCOL);
    h_stop(&h);
}

/* Closes mid-call: without a handle -> DROPPED; 1008 -> REJECTED; 1007 -> PROTOCOL. */
static void run_mid_call_close(const char *script, const char *steps, enum prov_close want)
{
    struct h h;
    h_start(&h, script, NULL, NULL);
    h.r.close_in_closed = true; /* the session frees the provider from inside the event */
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    h.feeding = true;
    h.feed_hz = 300;
    run_for(&h, 100);
    assert_int_equal(gem_peer_control(&h.peer, "last", steps), 200);
    assert_true(run_until(&h, c_closed, 3000));
    h.feeding = false;
    assert_int_equal(h.r.closed, 1);
    assert_int_equal(h.r.why, want);
    run_for(&h, 200);
    assert_int_equal(h.r.closed, 1); /* exactly once */
    h_stop(&h);
}

static void test_gemini_provider_closing_mid_call(void **state)
{
    (void)state;
    run_mid_call_close("{\"no_handles\":true}",
                       "[{\"close\":{\"code\":1011,\"reason\":\"Internal error occurred.\"}}]",
                       PROV_CLOSE_DROPPED);
    run_mid_call_close("{\"no_handles\":true}", "[{\"drop\":true}]", PROV_CLOSE_DROPPED);
    run_mid_call_close(NULL,
                       "[{\"close\":{\"code\":1008,\"reason\":\"Operation is not implemented, "
                       "or supported, or enabled.\"}}]",
                       PROV_CLOSE_REJECTED);
    run_mid_call_close(NULL,
                       "[{\"close\":{\"code\":1007,\"reason\":\"Request contains an invalid "
                       "argument.\"}}]",
                       PROV_CLOSE_PROTOCOL);
}

/* goAway: a second socket resumes the session with the latest handle while caller audio is
 * held; the old socket is closed by us; events on the new socket reach the session; no
 * caller audio is lost across the switch. */
static void test_gemini_resumption_on_go_away(void **state)
{
    (void)state;
    struct h h;
    h_start(&h,
            "{\"rules\":[{\"on\":\"setup\",\"resumed\":true,\"do\":[{\"wait\":300,\"tool_call\":"
            "{\"id\":\"fc_after\",\"name\":\"check_claim_details\",\"args\":{\"claim_reference\":"
            "\"RMC-1002\"}}},{\"tone\":{\"hz\":700,\"ms\":200,\"turn_complete\":true}}]}]}",
            NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    h.feeding = true;
    h.feed_hz = 440;
    run_for(&h, 500);
    assert_int_equal(gem_peer_control(&h.peer, "last",
                                      "[{\"handle\":true},{\"go_away\":{\"time_left_ms\":3000}}]"),
                     200);
    assert_true(run_until(&h, c_call, 4000));
    run_for(&h, 600);
    h.feeding = false;
    assert_true(wait_frames(&h, 10, 3000));
    assert_int_equal(h.r.closed, 0);
    assert_int_equal(h.r.ready, 1); /* the session saw one ready, nothing else */
    assert_int_equal(h.r.ncalls, 1);
    assert_string_equal(h.r.calls[0].id, "fc_after");
    assert_true(h.r.frames >= 10);
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.resumes, 1);
    assert_int_equal(st.connects, 2);
    prov_gemini_ops.tool_result(h.r.p, "fc_after", "check_claim_details",
                                "{\"success\":true,\"message\":\"ok\",\"data\":{},"
                                "\"execution_time_ms\":1}");
    json_t *log = log_with(&h, "toolResponse", 1, 3000);
    json_decref(log);
    log = settled_log(&h);
    assert_no_reject(log);
    json_t *s2 = json_object_get(gem_peer_nth_in(log, "setup", 1), "setup");
    const char *hd =
        json_string_value(json_object_get(json_object_get(s2, "sessionResumption"), "handle"));
    assert_non_null(hd);
    assert_string_equal(hd, "h-1-2"); /* the latest resumable handle */
    assert_int_equal(gem_peer_count_in(log, "toolResponse", 2), 1); /* answered on socket 2 */
    /* socket 1 was closed by us, normally, before its time ran out */
    json_t *c1 = NULL, *rr;
    size_t i;
    json_array_foreach(log, i, rr)
    {
        const char *k = json_string_value(json_object_get(rr, "kind"));
        if (k && !strcmp(k, "closed") && json_integer_value(json_object_get(rr, "conn")) == 1)
            c1 = rr;
    }
    assert_non_null(c1);
    assert_string_equal(json_string_value(json_object_get(c1, "by")), "client");
    assert_int_equal(json_integer_value(json_object_get(c1, "code")), 1000);
    /* no caller audio lost: what both sockets received adds up to what was fed */
    size_t n1, n2;
    int rate;
    int16_t *a1 = gem_peer_audio(log, 1, &n1, &rate);
    int16_t *a2 = gem_peer_audio(log, 2, &n2, &rate);
    double got_ms = (n1 + n2) * 1000.0 / 16000, fed_ms = h.fed_frames * 20.0;
    assert_true(n2 > 16000 / 5);
    assert_true(got_ms > fed_ms - 60 && got_ms <= fed_ms + 1);
    assert_true(fabs(audt_dominant_hz(a2, n2, 16000, 100, 3900, 5) - 440) <= 10);
    free(a1);
    free(a2);
    json_decref(log);
    h_stop(&h);
}

/* An unexpected 1011 with a handle: resumed, the session notices nothing. A stale handle
 * (1008 session not found) on the way: a fresh session with the transcript. */
static void test_gemini_resumption_after_drop_and_stale_handle(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    h.feeding = true;
    h.feed_hz = 440;
    /* the last transcript arrives next to model audio (3.x): taken by the fast path */
    static uint8_t silence[1920]; /* 40 ms at 24 kHz */
    char b64[2600], steps[4096];
    util_b64_encode(silence, sizeof silence, b64);
    snprintf(steps, sizeof steps,
             "[{\"transcript\":{\"in\":\"I'd like to check my claim\"}},"
             "{\"transcript\":{\"out\":\"Of course, one moment.\"}},"
             "{\"send\":{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{"
             "\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"%s\"}}]},"
             "\"outputTranscription\":{\"text\":\" It is RMC-1001.\"}}}},"
             "{\"close\":{\"code\":1011,\"reason\":\"Internal error occurred.\"}}]",
             b64);
    assert_int_equal(gem_peer_control(&h.peer, "last", steps), 200);
    want_n = 1;
    assert_true(run_until(&h, c_resumes, 5000));
    run_for(&h, 200);
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.resumes, 1);
    assert_int_equal(h.r.closed, 0);
    /* now every handle expires, and the socket drops */
    assert_int_equal(
        gem_peer_control(&h.peer, "last", "[{\"forget_handles\":true},{\"drop\":true}]"), 200);
    want_n = 2;
    assert_true(run_until(&h, c_resumes, 5000));
    run_for(&h, 500);
    h.feeding = false;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(h.r.closed, 0);
    assert_int_equal(st.fresh_restarts, 1);
    assert_int_equal(st.connects, 4);
    json_t *log = settled_log(&h);
    json_t *rj = gem_peer_kind(log, "reject", 0); /* the stale handle, as Google does */
    assert_non_null(rj);
    assert_int_equal(json_integer_value(json_object_get(rj, "code")), 1008);
    assert_null(gem_peer_kind(log, "reject", 1));
    json_t *s4 = json_object_get(gem_peer_nth_in(log, "setup", 3), "setup");
    assert_int_equal(json_object_size(json_object_get(s4, "sessionResumption")), 0);
    const char *sys = json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(s4, "systemInstruction"), "parts"), 0),
        "text"));
    assert_non_null(strstr(sys, "reconnected"));
    assert_non_null(strstr(sys, "check my claim"));
    assert_non_null(strstr(sys, "Agent: Of course, one moment. It is RMC-1001."));
    assert_int_equal(st.fast_msgs, 1);
    assert_true(gem_peer_count_in(log, "realtimeInput", 4) > 5);
    json_decref(log);
    h_stop(&h);
}

static void test_gemini_wrong_key_rejected(void **state)
{
    (void)state;
    struct h h;
    const char *extra[] = {"GEMINI_API_KEY=wrong-key", NULL};
    h_start(&h, NULL, NULL, extra);
    h_open_ok(&h);
    assert_true(run_until(&h, c_closed, 3000));
    assert_int_equal(h.r.ready, 0);
    assert_int_equal(h.r.why, PROV_CLOSE_REJECTED);
    assert_non_null(strstr(h.r.detail, "API key not valid"));
    assert_null(strstr(h.r.detail, "wrong-key"));
    h_stop(&h);
}

static void test_gemini_key_in_header(void **state)
{
    (void)state;
    struct h h;
    const char *extra[] = {"GEMINI_KEY_IN=header", NULL};
    h_start(&h, NULL, NULL, extra);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    assert_int_equal(h.r.ready, 1);
    json_t *log = settled_log(&h);
    json_t *hs = gem_peer_kind(log, "handshake", 0);
    assert_string_equal(json_string_value(json_object_get(hs, "key_via")), "header");
    assert_null(strstr(json_string_value(json_object_get(hs, "path")), "key="));
    json_decref(log);
    h_stop(&h);
}

static void test_gemini_handshake_refused_and_connect_failures(void **state)
{
    (void)state;
    struct h h;
    /* HTTP 403 at the upgrade: rejected (fail over) */
    h_start(&h, "{\"handshake_status\":403}", NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_closed, 3000));
    assert_int_equal(h.r.why, PROV_CLOSE_REJECTED);
    h_stop(&h);

    /* accepted socket that never confirms setup: CONNECT_FAILED after the timeout */
    const char *extra[] = {"PROVIDER_CONNECT_TIMEOUT_MS=300", NULL};
    h_start(&h, "{\"no_setup_complete\":true}", NULL, extra);
    h_open_ok(&h);
    assert_true(run_until(&h, c_closed, 3000));
    assert_int_equal(h.r.why, PROV_CLOSE_CONNECT_FAILED);
    assert_non_null(strstr(h.r.detail, "setupComplete"));
    h_stop(&h);

    /* nobody listening: CONNECT_FAILED (event or open() error) */
    h_start(&h, NULL, NULL, NULL);
    free(h.cfg.gemini_live_url);
    char url[128];
    snprintf(url, sizeof url,
             "ws://127.0.0.1:%d/ws/google.ai.generativelanguage.v1beta.GenerativeService."
             "BidiGenerateContent",
             vt_free_port());
    h.cfg.gemini_live_url = strdup(url);
    struct err e = {0};
    if (h_open(&h, &e) == 0) {
        assert_true(run_until(&h, c_closed, 3000));
        assert_int_equal(h.r.why, PROV_CLOSE_CONNECT_FAILED);
    } else {
        assert_null(h.r.p);
    }
    h_stop(&h);
}

static void test_gemini_affective_dialog_startup_error(void **state)
{
    (void)state;
    struct cfg c;
    struct err e = {0};
    const char *kv1[] = {"GEMINI_API_KEY=k", "GEMINI_AFFECTIVE_DIALOG=true", NULL};
    vt_cfg(&c, kv1);
    assert_int_equal(prov_gemini_check_config(&c, &e), ERR_CONFIG);
    assert_non_null(strstr(e.detail, "GEMINI_AFFECTIVE_DIALOG"));
    assert_non_null(strstr(e.detail, "gemini-3.8-live"));
    assert_non_null(strstr(e.detail, "2.5"));
    cfg_free(&c);

    const char *kv2[] = {"GEMINI_API_KEY=k", "GEMINI_AFFECTIVE_DIALOG=true",
                         "GEMINI_MODEL=gemini-2.5-flash-native-audio-preview-12-2025", NULL};
    vt_cfg(&c, kv2);
    err_clear(&e);
    assert_int_equal(prov_gemini_check_config(&c, &e), ERR_CONFIG); /* v1beta */
    assert_non_null(strstr(e.detail, "v1alpha"));
    cfg_free(&c);

    const char *kv3[] = {"GEMINI_API_KEY=k", "GEMINI_AFFECTIVE_DIALOG=true",
                         "GEMINI_API_VERSION=v1alpha",
                         "GEMINI_MODEL=gemini-2.5-flash-native-audio-preview-12-2025", NULL};
    vt_cfg(&c, kv3);
    err_clear(&e);
    assert_int_equal(prov_gemini_check_config(&c, &e), 0);
    json_t *s = prov_gemini_setup_json(&c, "x", NULL, NULL);
    assert_true(json_is_true(
        json_object_get(json_object_get(json_object_get(s, "setup"), "generationConfig"),
                        "enableAffectiveDialog")));
    json_decref(s);
    cfg_free(&c);

    const char *kv4[] = {"GEMINI_API_KEY=k", NULL};
    vt_cfg(&c, kv4);
    err_clear(&e);
    assert_int_equal(prov_gemini_check_config(&c, &e), 0); /* the defaults are fine */
    s = prov_gemini_setup_json(&c, "x", NULL, NULL);
    assert_null(json_object_get(json_object_get(json_object_get(s, "setup"), "generationConfig"),
                                "enableAffectiveDialog"));
    json_decref(s);
    cfg_free(&c);
    const char *kv5[] = {"GEMINI_API_KEY=k", "GEMINI_MODEL=gemini 3", NULL};
    vt_cfg(&c, kv5);
    err_clear(&e);
    assert_int_equal(prov_gemini_check_config(&c, &e), ERR_CONFIG);
    cfg_free(&c);
}

/* Affective dialog accepted end to end on a 2.5 model over v1alpha; on v1beta open() refuses
 * it; a model the server no longer has is refused at setup (1008), which is REJECTED. */
static void test_gemini_affective_dialog_at_setup(void **state)
{
    (void)state;
    struct h h;
    const char *extra[] = {"GEMINI_AFFECTIVE_DIALOG=true",
                           "GEMINI_MODEL=gemini-2.5-flash-native-audio-preview-12-2025", NULL};
    h_start(&h, NULL, "v1alpha", extra);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    assert_int_equal(h.r.ready, 1);
    json_t *log = settled_log(&h);
    assert_no_reject(log);
    json_decref(log);
    h_stop(&h);

    /* v1beta: the start-up check refuses it before any socket is opened */
    h_start(&h, NULL, "v1beta", extra);
    struct err e = {0};
    assert_int_equal(h_open(&h, &e), ERR_CONFIG);
    assert_null(h.r.p);
    assert_non_null(strstr(e.detail, "v1alpha"));
    h_stop(&h);

    /* a retired 2.5 model: the server refuses the setup (1008 not found) -> REJECTED */
    const char *gone[] = {"GEMINI_AFFECTIVE_DIALOG=true",
                          "GEMINI_MODEL=gemini-2.5-flash-native-audio-preview-09-2025", NULL};
    h_start(&h, NULL, "v1alpha", gone);
    h_open_ok(&h);
    assert_true(run_until(&h, c_closed, 3000));
    assert_int_equal(h.r.why, PROV_CLOSE_REJECTED);
    assert_non_null(strstr(h.r.detail, "1008"));
    assert_non_null(strstr(h.r.detail, "not found"));
    h_stop(&h);
}

static void test_gemini_greet_before_ready_sent_after(void **state)
{
    (void)state;
    struct h h;
    h_start(&h,
            "{\"setup_delay_ms\":200,\"rules\":[{\"on\":\"client_content\",\"do\":[{\"tone\":{"
            "\"hz\":600,\"ms\":200,\"turn_complete\":true}}]}]}",
            NULL, NULL);
    h_open_ok(&h);
    prov_gemini_ops.greet(h.r.p, "Sarah");
    assert_true(run_until(&h, c_ready, 3000));
    assert_true(wait_bytes(&h, 1600 - 40, 3000));
    json_t *log = settled_log(&h);
    assert_no_reject(log);
    json_t *cc = json_object_get(gem_peer_nth_in(log, "clientContent", 0), "clientContent");
    assert_non_null(cc);
    assert_true(json_is_true(json_object_get(cc, "turnComplete")));
    json_t *turn = json_array_get(json_object_get(cc, "turns"), 0);
    assert_string_equal(json_string_value(json_object_get(turn, "role")), "user");
    const char *t = json_string_value(
        json_object_get(json_array_get(json_object_get(turn, "parts"), 0), "text"));
    assert_non_null(strstr(t, "Greet the caller"));
    assert_non_null(strstr(t, "Sarah"));
    assert_true(h.r.nulaw >= 1600 - 40 && h.r.nulaw <= 1600); /* 200 ms */
    json_decref(log);
    h_stop(&h);
}

/* Several keys in one message, thought parts, wrong audio rate, usage. */
static void test_gemini_parses_every_key_and_part(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    /* 40 ms of 24 kHz PCM = 1920 bytes: one whole 8 kHz frame (the filter holds a few) */
    static uint8_t pcm[1920];
    char b64[2700], steps[12288];
    util_b64_encode(pcm, sizeof pcm, b64);
    snprintf(steps, sizeof steps,
             "[{\"send\":{\"serverContent\":{\"modelTurn\":{\"parts\":["
             "{\"text\":\"secret plan\",\"thought\":true},"
             "{\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"%s\"},"
             "\"thought\":true},"
             "{\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"%s\"}},"
             "{\"text\":\"Hello\"}]}},"
             "\"usageMetadata\":{\"promptTokenCount\":10,\"responseTokenCount\":5,"
             "\"totalTokenCount\":15},"
             "\"toolCall\":{\"functionCalls\":[{\"id\":\"fc_m\",\"name\":\"search_knowledge_base\","
             "\"args\":{\"query\":\"fees\"}}]}}},"
             "{\"send\":{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{"
             "\"mimeType\":\"audio/pcm;rate=16000\",\"data\":\"%s\"}}]}}}},"
             "{\"send\":{\"voiceActivity\":{\"voiceActivityType\":\"ACTIVITY_START\"}}}]",
             b64, b64, b64);
    assert_int_equal(gem_peer_control(&h.peer, "last", steps), 200);
    assert_true(run_until(&h, c_call, 3000));
    assert_true(wait_frames(&h, 1, 3000));
    run_for(&h, 200);
    assert_int_equal(h.r.closed, 0);
    assert_int_equal(h.r.ncalls, 1); /* toolCall next to serverContent */
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.usage_total_tokens, 15);
    assert_int_equal(st.malformed, 1); /* the 16 kHz audio */
    /* only the non-thought 24 kHz part: 40 ms = 320 bytes, less the held samples */
    assert_true(h.r.nulaw >= 320 - 40 && h.r.nulaw < 320);
    h_stop(&h);
}

/* Model audio messages larger than the lws receive buffer (4 KiB) arrive in pieces and are
 * reassembled. The same audio through the fast path (audio-only messages, core/jpick) and
 * through jansson (the same messages with one extra harmless field) gives the same u-law. */
static void test_gemini_fragmented_audio_fast_and_general_path_agree(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    enum { CHUNK = 2400, NCHUNK = 4 }; /* 100 ms of 24 kHz per message: 6 400 base64 chars */
    int16_t pcm[CHUNK];
    uint8_t le[CHUNK * 2];
    char *b64[NCHUNK];
    for (int k = 0; k < NCHUNK; k++) {
        audt_tone(pcm, CHUNK, 700, 24000, 9000, (size_t)k * CHUNK);
        aud_pcm_to_le(pcm, CHUNK, le);
        b64[k] = malloc(sizeof le * 4 / 3 + 8);
        util_b64_encode(le, sizeof le, b64[k]);
    }
    size_t cap = 8 * NCHUNK * 7000 + 4096, n = 0;
    char *steps = malloc(cap);
    n += (size_t)snprintf(steps + n, cap - n, "[");
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < NCHUNK; k++)
            n += (size_t)snprintf(steps + n, cap - n,
                                  "{\"send\":{\"serverContent\":{\"modelTurn\":{%s\"parts\":[{"
                                  "\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\","
                                  "\"data\":\"%s\"}}]}}}},",
                                  pass ? "\"role\":5," : "", b64[k]);
        n += (size_t)snprintf(steps + n, cap - n,
                              "{\"send\":{\"serverContent\":{\"interrupted\":true}}}%s",
                              pass ? "]" : ",");
    }
    assert_true(n < cap);
    assert_int_equal(gem_peer_control(&h.peer, "last", steps), 200);
    want_n = 2;
    assert_true(run_until(&h, c_barge, 3000));
    assert_true(run_until(&h, c_barge_n, 3000));
    assert_int_equal(h.r.closed, 0);
    assert_int_equal(h.r.barge, 2);
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(st.fast_msgs, NCHUNK); /* the first pass only */
    assert_int_equal(h.r.bad_frames, 0);
    size_t a = h.r.barge_at[0], b = h.r.barge_at[1] - h.r.barge_at[0];
    /* 400 ms = 3 200 u-law bytes each; the resampler holds back a few samples */
    assert_true(a >= 3000 && a <= 3200);
    size_t same = a < b ? a : b;
    assert_true(same + 160 >= (a > b ? a : b));
    assert_memory_equal(h.r.ulaw, h.r.ulaw + a, same);
    double rms;
    double dom = agent_dominant(&h.r, 160, a - 160, &rms);
    assert_true(fabs(dom - 700) <= 10);
    assert_true(fabs(rms - 9000 / sqrt(2.0)) < 0.08 * 9000 / sqrt(2.0));
    for (int k = 0; k < NCHUNK; k++)
        free(b64[k]);
    free(steps);
    h_stop(&h);
}

/* Reference u-law for 24 kHz PCM through a fresh output pipeline, partial frame included. */
struct refbuf {
    uint8_t u[4096];
    size_t n;
};
static void ref_collect(void *arg, const char *b64, size_t len)
{
    struct refbuf *r = arg;
    long n = util_b64_decode(b64, len, r->u + r->n, sizeof r->u - r->n);
    assert_true(n > 0);
    r->n += (size_t)n;
}

/* A chunk whose tail doesn't fill a 20 ms frame: the tail goes out within a few ms
 * (GEM_TAIL_MS) as a short frame instead of waiting for the next chunk, and the stream is
 * exactly the audio the model sent (nothing padded, repeated or dropped: no click). */
static void test_gemini_partial_frame_flushed_promptly(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    enum { N = 720 }; /* 30 ms of 24 kHz: 240 samples at 8 kHz, i.e. 1.5 frames */
    int16_t pcm[2 * N];
    uint8_t le[2 * N * 2];
    char b64[2][N * 2 * 4 / 3 + 8];
    audt_tone(pcm, 2 * N, 500, 24000, 10000, 0);
    aud_pcm_to_le(pcm, 2 * N, le);
    for (int k = 0; k < 2; k++)
        util_b64_encode(le + k * N * 2, N * 2, b64[k]);
    char steps[2][6000];
    for (int k = 0; k < 2; k++)
        snprintf(steps[k], sizeof steps[k],
                 "[{\"send\":{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{"
                 "\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"%s\"}}]}}}}]",
                 b64[k]);
    /* (the stand-in answers a control request once its steps ran: our loop is not served
     * meanwhile, so the next chunk goes in a later request) */
    assert_int_equal(gem_peer_control(&h.peer, "last", steps[0]), 200);
    assert_true(wait_frames(&h, 1, 3000));
    double t0 = util_mono_ms();
    /* 240 out less the 32 the filter holds: one whole frame and a 48-byte tail */
    assert_true(wait_bytes(&h, 240 - 32, 400));
    double waited = util_mono_ms() - t0;
    run_for(&h, 100);
    assert_int_equal(h.r.nulaw, 240 - 32);
    assert_int_equal(h.r.frames, 2);
    assert_int_equal(h.r.short_frames, 1);
    assert_true(waited < 100); /* a few ms in fact; generous for a loaded machine */
    assert_int_equal(gem_peer_control(&h.peer, "last", steps[1]), 200);
    assert_true(wait_bytes(&h, 480 - 32, 3000));
    run_for(&h, 50);
    assert_int_equal(h.r.nulaw, 480 - 32);

    /* byte for byte what one pipeline makes of the same 60 ms */
    struct aud_out *o = NULL;
    struct err e = {0};
    static struct refbuf ref;
    ref.n = 0;
    assert_int_equal(aud_out_new(&o, 24000, &e), 0);
    aud_out_push_bytes(o, le, sizeof le, ref_collect, &ref);
    aud_out_flush_partial(o, ref_collect, &ref);
    aud_out_free(o);
    assert_int_equal(ref.n, h.r.nulaw);
    assert_memory_equal(ref.u, h.r.ulaw, ref.n);
    assert_int_equal(h.r.closed, 0);
    assert_int_equal(h.r.bad_frames, 0);
    h_stop(&h);
}

/* The stand-in itself refuses what Google refuses (else the tests above would prove little). */
static void test_gemini_standin_rejects_like_google(void **state)
{
    (void)state;
    char js[512];
    struct vt_run r;
    snprintf(js, sizeof js, "%s/tests/peers/gemini_standin_check.js", vt_src());
    const char *argv[] = {"/usr/bin/env", "node", js, NULL}; /* execve: no PATH search */
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 60), 0);
    if (r.status != 0)
        fprintf(stderr, "%s\n%s\n", r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "cases as expected"));
    assert_null(strstr(r.out, "FAIL"));
    vt_run_free(&r);
}

/* The stand-in's echo mode (used by load tests): the caller's own tone comes back to the
 * caller through both conversions, on time and at the same pitch. */
static void test_gemini_echo_round_trip(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, "{\"echo\":true}", NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    h.feeding = true;
    h.feed_hz = 620;
    run_for(&h, 1000);
    h.feeding = false;
    wait_bytes(&h, h.fed_frames * 160 - 80, 3000);
    run_for(&h, 100);
    assert_int_equal(h.r.closed, 0);
    /* 1 s in -> 1 s back, less the filter history of both resamplers (< 10 ms): the tail of
     * each echo chunk is not kept waiting for the next one (GEM_TAIL_MS) */
    assert_true(h.r.nulaw >= h.fed_frames * 160 - 80 && h.r.nulaw <= h.fed_frames * 160);
    double dom = agent_dominant(&h.r, 160, h.r.nulaw - 160, NULL);
    assert_true(fabs(dom - 620) <= 10);
    h_stop(&h);
}

/* goAway, and the first new socket fails (1011): retried after a backoff, resumed on the
 * third socket; meanwhile the old socket keeps carrying the caller. */
static void test_gemini_resumption_retries_after_failed_attempt(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, "{\"fail_setup\":{\"2\":{\"code\":1011,\"reason\":\"Internal error occurred.\"}}}",
            NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    h.feeding = true;
    h.feed_hz = 440;
    run_for(&h, 300);
    assert_int_equal(gem_peer_control(&h.peer, "last", "[{\"go_away\":{\"time_left_ms\":4000}}]"),
                     200);
    want_n = 1;
    assert_true(run_until(&h, c_resumes, 6000));
    run_for(&h, 300);
    h.feeding = false;
    assert_int_equal(h.r.closed, 0);
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.connects, 3);
    assert_int_equal(st.resumes, 1);
    json_t *log = settled_log(&h);
    size_t n1, n3;
    int rate;
    int16_t *a1 = gem_peer_audio(log, 1, &n1, &rate);
    int16_t *a3 = gem_peer_audio(log, 3, &n3, &rate);
    double got_ms = (n1 + n3) * 1000.0 / 16000, fed_ms = h.fed_frames * 20.0;
    assert_true(n3 > 0);
    assert_true(got_ms > fed_ms - 60 && got_ms <= fed_ms + 1);
    assert_int_equal(gem_peer_count_in(log, "realtimeInput", 2), 0);
    free(a1);
    free(a3);
    json_decref(log);
    h_stop(&h);
}

static int sh(const char *dir, const char *cmd)
{
    char full[1200];
    snprintf(full, sizeof full, "cd '%s' && ( %s ) >/dev/null 2>&1", dir, cmd);
    return system(full);
}

/* wss:// like Google: TLS with certificate and hostname verification (a test CA). A
 * certificate for another name, or from a CA we don't trust, fails to connect. */
static void test_gemini_wss_verified_tls(void **state)
{
    (void)state;
    char *dir = vt_tmpdir();
    char ca[256], cert[256], key[256], other_ca[256];
    assert_int_equal(
        sh(dir, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                "-keyout ca.key -out ca.pem -days 2 -subj /CN=vws-test-ca && "
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                "-keyout srv.key -out srv.csr -subj /CN=localhost && "
                "printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf && "
                "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                "-out srv.pem -days 2 -extfile ext.cnf && "
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                "-keyout o.key -out other-ca.pem -days 2 -subj /CN=other-ca"),
        0);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/srv.pem", dir);
    snprintf(key, sizeof key, "%s/srv.key", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", dir);
    tls_ca = ca;
    tls_cert = cert;
    tls_key = key;

    struct h h;
    h_start(&h,
            "{\"rules\":[{\"on\":\"setup\",\"do\":[{\"tone\":{\"hz\":1000,\"ms\":200,"
            "\"turn_complete\":true}}]}]}",
            NULL, NULL);
    assert_non_null(strstr(h.peer.url, "wss://localhost:"));
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 4000));
    assert_int_equal(h.r.ready, 1);
    assert_true(wait_bytes(&h, 1600 - 40, 3000));
    run_for(&h, 100);
    assert_true(h.r.nulaw >= 1600 - 40 && h.r.nulaw <= 1600); /* 200 ms */
    h_stop(&h);

    /* the certificate names localhost, the URL another host: hostname check fails */
    tls_url_host = "wrong.example";
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_closed, 4000));
    assert_int_equal(h.r.ready, 0);
    assert_int_equal(h.r.why, PROV_CLOSE_CONNECT_FAILED);
    h_stop(&h);
    tls_url_host = NULL;

    /* a CA we don't trust */
    tls_ca = other_ca;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_closed, 4000));
    assert_int_equal(h.r.why, PROV_CLOSE_CONNECT_FAILED);
    json_t *log = settled_log(&h);
    assert_int_equal(gem_peer_count_in(log, "setup", 0), 0); /* nothing was sent */
    json_decref(log);
    h_stop(&h);

    tls_ca = tls_cert = tls_key = NULL;
    vt_rmdir(dir);
    free(dir);
}

/* Hostile or odd server messages: wrong types everywhere, huge ids, garbage base64, a second
 * setupComplete. Nothing crashes or reads out of bounds (ASan); unknown keys and harmless
 * oddities are tolerated; real garbage ends the call as PROTOCOL after the limit. */
static void test_gemini_hostile_messages_never_crash(void **state)
{
    (void)state;
    struct h h;
    h_start(&h, NULL, NULL, NULL);
    h_open_ok(&h);
    assert_true(run_until(&h, c_ready, 3000));
    /* harmless: unknown keys, empty objects, extra fields, a non-resumable update */
    assert_int_equal(
        gem_peer_control(
            &h.peer, "last",
            "[{\"send\":{\"somethingNew\":{\"a\":1}}},{\"send\":{\"serverContent\":{}}},"
            "{\"send\":{\"serverContent\":{\"generationComplete\":true,\"x\":[1]}}},"
            "{\"send\":{\"sessionResumptionUpdate\":{\"resumable\":false}}},"
            "{\"send\":{\"goAway\":{}}},{\"send\":{\"usageMetadata\":{}}},"
            "{\"send\":{\"voiceActivity\":{\"voiceActivityType\":\"ACTIVITY_END\"}}}]"),
        200);
    run_for(&h, 300);
    struct prov_gemini_stats st;
    prov_gemini_get_stats(h.r.p, &st);
    assert_int_equal(st.malformed, 0);
    assert_int_equal(h.r.closed, 0);

    char big[600];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *steps = malloc(8192);
    snprintf(steps, 8192,
             "[{\"send\":{\"toolCall\":{\"functionCalls\":\"x\"}}},"
             "{\"calls\":[null,1,{\"id\":5},{\"id\":\"%s\",\"name\":\"x\"},"
             "{\"id\":\"fc_n\",\"name\":5},{\"id\":\"fc_long\",\"name\":\"%s\"}]}]",
             big, big);
    assert_int_equal(gem_peer_control(&h.peer, "last", steps), 200);
    /* the calls with a usable id but a bad name are answered, never left hanging */
    json_t *log = log_with(&h, "toolResponse", 2, 3000);
    assert_int_equal(gem_peer_count_in(log, "toolResponse", 0), 2);
    json_decref(log);
    assert_int_equal(h.r.closed, 0); /* 5 malformed so far: at the limit, not over it */
    snprintf(
        steps, 8192,
        "[{\"send\":{\"serverContent\":\"x\"}},"
        "{\"send\":{\"serverContent\":{\"modelTurn\":{\"parts\":\"x\"}}}},"
        "{\"send\":{\"serverContent\":{\"modelTurn\":{\"parts\":[1,null,{\"inlineData\":5},"
        "{\"inlineData\":{\"mimeType\":5}},{\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\","
        "\"data\":5}},{\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"QQ=\"}},"
        "{\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"!!!!\"}}]}}}},"
        "{\"send\":{\"toolCallCancellation\":{\"ids\":[1,null,\"never-seen\"]}}},"
        "{\"send\":{\"goAway\":{\"timeLeft\":5}}},"
        "{\"send\":{\"sessionResumptionUpdate\":{\"newHandle\":5,\"resumable\":\"yes\"}}},"
        "{\"send\":{\"usageMetadata\":{\"totalTokenCount\":\"x\"}}},"
        "{\"send\":{\"setupComplete\":{}}},{\"raw\":\"\"},{\"raw\":\"null\"},{\"raw\":"
        "\"\\\"s\\\"\"}]");
    assert_int_equal(gem_peer_control(&h.peer, "last", steps), 200);
    free(steps);
    assert_true(run_until(&h, c_closed, 3000));
    assert_int_equal(h.r.why, PROV_CLOSE_PROTOCOL);
    assert_int_equal(h.r.ncalls, 0); /* nothing with a bad id or name reached the session */
    assert_int_equal(h.r.bad_frames, 0);
    h_stop(&h);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    log_setup(LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_setup_accepted_ready_after_setup_complete),
        cmocka_unit_test(test_gemini_audio_roundtrip_keeps_frequency),
        cmocka_unit_test(test_gemini_audio_input_rate_8000),
        cmocka_unit_test(test_gemini_binary_server_frames_accepted),
        cmocka_unit_test(test_gemini_tool_call_and_result_shape),
        cmocka_unit_test(test_gemini_cancelled_call_gets_no_response),
        cmocka_unit_test(test_gemini_interruption_barge_in_no_stale_audio),
        cmocka_unit_test(test_gemini_malformed_function_calls),
        cmocka_unit_test(test_gemini_provider_closing_mid_call),
        cmocka_unit_test(test_gemini_resumption_on_go_away),
        cmocka_unit_test(test_gemini_resumption_after_drop_and_stale_handle),
        cmocka_unit_test(test_gemini_wrong_key_rejected),
        cmocka_unit_test(test_gemini_key_in_header),
        cmocka_unit_test(test_gemini_handshake_refused_and_connect_failures),
        cmocka_unit_test(test_gemini_affective_dialog_startup_error),
        cmocka_unit_test(test_gemini_affective_dialog_at_setup),
        cmocka_unit_test(test_gemini_greet_before_ready_sent_after),
        cmocka_unit_test(test_gemini_parses_every_key_and_part),
        cmocka_unit_test(test_gemini_fragmented_audio_fast_and_general_path_agree),
        cmocka_unit_test(test_gemini_partial_frame_flushed_promptly),
        cmocka_unit_test(test_gemini_standin_rejects_like_google),
        cmocka_unit_test(test_gemini_echo_round_trip),
        cmocka_unit_test(test_gemini_resumption_retries_after_failed_attempt),
        cmocka_unit_test(test_gemini_wss_verified_tls),
        cmocka_unit_test(test_gemini_hostile_messages_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
