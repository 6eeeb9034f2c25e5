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
    uint8_t *ulaw;               /* agent audio, concatenated frames */
    size_t nulaw, cap;
    int frames, bad_frames;
    size_t ulaw_at_barge;        /* bytes received when barge_in came */
    struct {
        char id[128], name[64], args[1024];
    } calls[MAX_CALLS];
    int ncalls;
    char cancels[MAX_CALLS][128];
    int ncancels;
    struct prov *p;
    bool close_in_closed;        /* call close() from inside the closed event */
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
    if (len != AUD_FRAME_B64 || n != AUD_FRAME_BYTES) {
        r->bad_frames++;
        return;
    }
    if (r->nulaw + AUD_FRAME_BYTES > r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32768;
        r->ulaw = realloc(r->ulaw, r->cap);
    }
    memcpy(r->ulaw + r->nulaw, buf, AUD_FRAME_BYTES);
    r->nulaw += AUD_FRAME_BYTES;
}

static void ev_barge(void *o)
{
    struct rec *r = o;
    r->barge++;
    r->ulaw_at_barge = r->nulaw;
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
    bool feeding;                /* send one 20 ms frame of caller tone per tick */
    double feed_hz;
    size_t fed_frames;
    size_t feed_pos;
};

static struct h *H;              /* the running harness (ticker callback) */

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

static bool c_ready(struct h *h) { return h->r.ready > 0 || h->r.closed > 0; }
__attribute__((unused)) static bool c_closed(struct h *h) { return h->r.closed > 0; }
__attribute__((unused)) static bool c_call(struct h *h) { return h->r.ncalls > 0 || h->r.closed > 0; }
__attribute__((unused)) static bool c_barge(struct h *h) { return h->r.barge > 0 || h->r.closed > 0; }

/* Start the stand-in with script, load cfg (extra KEY=VALUE entries), make the lws context. */
static void h_start(struct h *h, const char *script, const char *version,
                    const char *const *extra)
{
    const char *kv[40];
    int n = 0;
    char url[300];

    memset(h, 0, sizeof *h);
    H = h;
    assert_int_equal(gem_peer_start_ver(&h->peer, script, "test-key", version ? version : "v1beta"),
                     0);
    snprintf(url, sizeof url, "GEMINI_LIVE_URL=%s", h->peer.url);
    kv[n++] = "GEMINI_API_KEY=test-key";
    kv[n++] = url;
    kv[n++] = "PROVIDER_CONNECT_TIMEOUT_MS=4000";
    kv[n++] = "LOG_LEVEL=warn";
    for (int i = 0; extra && extra[i] && n < 38; i++)
        kv[n++] = extra[i];
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
    lws_set_log_level(LLL_ERR, NULL);
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
        .address = NULL,
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
        run_for(h, 50);         /* let the close frames go out */
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

__attribute__((unused)) static void dump_on_failure(struct h *h)
{
    char *err = gem_peer_stderr(&h->peer);
    if (*err)
        fprintf(stderr, "stand-in stderr:\n%s\n", err);
    free(err);
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

__attribute__((unused)) static double agent_dominant(const struct rec *r, size_t from, size_t to, double *rms)
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
    static const char *const allowed[] = {
        "type", "format", "title", "description", "nullable", "enum", "items", "minItems",
        "maxItems", "properties", "required", "minProperties", "maxProperties",
        "propertyOrdering", "minimum", "maximum", "minLength", "maxLength", "pattern", "anyOf",
        "default", "example", NULL};
    const char *k;
    json_t *v;

    assert_true(json_is_object(s));
    json_object_foreach(s, k, v) {
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
    h_start(&h, "{\"setup_delay_ms\":400}", NULL, NULL);
    h_open_ok(&h);
    run_for(&h, 200);
    assert_int_equal(h.r.ready, 0);            /* socket open, setup sent, not confirmed */
    /* audio before setupComplete is not sent */
    h.feeding = true;
    h.feed_hz = 440;
    run_until(&h, c_ready, 3000);
    size_t fed_before = h.fed_frames;
    h.feeding = false;
    assert_int_equal(h.r.ready, 1);
    assert_int_equal(h.r.closed, 0);
    run_for(&h, 100);

    json_t *log = gem_peer_log(&h.peer);
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
    assert_string_equal(json_string_value(json_array_get(json_object_get(gen, "responseModalities"), 0)),
                        "AUDIO");
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
    assert_true(json_is_object(json_object_get(
        json_object_get(setup, "contextWindowCompression"), "slidingWindow")));
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
        json_array_foreach(decls, j, x)
            if (!strcmp(json_string_value(json_object_get(x, "name")), d->name))
                decl = x;
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
    json_array_foreach(log, i, rr) {
        const char *f = json_string_value(json_object_get(rr, "frame"));
        if (f)
            assert_string_equal(f, "text");
    }
    json_decref(log);
    h_stop(&h);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    log_setup(LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_setup_accepted_ready_after_setup_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
