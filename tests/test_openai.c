/*
 * test_openai.c - the OpenAI Realtime provider (prov_openai_ops) against the GA stand-in
 * (tests/peers/openai_standin.js) on loopback, inside a small lws client context.
 * No Twilio: the test plays the call session (struct prov_events) itself.
 *
 * The stand-in validates every client event the way the real API does and records it
 * (JSONL), so assertions are on what actually went over the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actions/action.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "oai_peer.h"
#include "providers/provider.h"
#include "vwstest.h"

#include <curl/curl.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the fake call session: records every provider event ---- */

#define MAXC 16

struct rec {
    int ready, barge, closed, audio_events;
    enum prov_close why;
    char detail[256];
    char *audio; /* concatenated base64 received */
    size_t audio_len;
    char item[128]; /* last audio item id */
    int audio_after_barge;
    struct {
        char id[128], name[64], args[1024];
        int done_in_log; /* stand-in had sent response.done when tool_call arrived */
    } calls[MAXC];
    int ncalls;
    int events_after_close; /* must stay 0 */
    int close_in;           /* 1: owner calls close() from inside tool_call; 2: from closed */
    struct prov *p;
    struct vt_oai *peer;
    bool closed_by_owner;
};

static void ev_ready(void *o)
{
    struct rec *r = o;
    if (r->closed_by_owner)
        r->events_after_close++;
    r->ready++;
}

static void ev_audio(void *o, const char *b64, size_t len, const char *item)
{
    struct rec *r = o;
    if (r->closed_by_owner)
        r->events_after_close++;
    r->audio = realloc(r->audio, r->audio_len + len + 1);
    memcpy(r->audio + r->audio_len, b64, len);
    r->audio_len += len;
    r->audio[r->audio_len] = '\0';
    r->audio_events++;
    if (r->barge)
        r->audio_after_barge++;
    snprintf(r->item, sizeof r->item, "%s", item);
}

static void ev_barge(void *o)
{
    struct rec *r = o;
    if (r->closed_by_owner)
        r->events_after_close++;
    r->barge++;
}

static void ev_tool_call(void *o, const char *id, const char *name, const char *args)
{
    struct rec *r = o;
    if (r->closed_by_owner)
        r->events_after_close++;
    if (r->ncalls < MAXC) {
        snprintf(r->calls[r->ncalls].id, sizeof r->calls[0].id, "%s", id);
        snprintf(r->calls[r->ncalls].name, sizeof r->calls[0].name, "%s", name);
        snprintf(r->calls[r->ncalls].args, sizeof r->calls[0].args, "%s", args);
        if (r->peer) { /* the stand-in logs before it sends: done must already be there */
            json_t *log = vt_oai_log(r->peer);
            r->calls[r->ncalls].done_in_log = vt_oai_count_out(log, "response.done");
            json_decref(log);
        }
        r->ncalls++;
    }
    if (r->close_in == 1) {
        r->closed_by_owner = true;
        prov_openai_ops.close(r->p);
        r->p = NULL;
    }
}

static void ev_tool_cancel(void *o, const char *id)
{
    (void)id;
    struct rec *r = o;
    if (r->closed_by_owner)
        r->events_after_close++;
}

static void ev_closed(void *o, enum prov_close why, const char *detail)
{
    struct rec *r = o;
    if (r->closed_by_owner)
        r->events_after_close++;
    r->closed++;
    r->why = why;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
    if (r->close_in == 2) {
        r->closed_by_owner = true;
        prov_openai_ops.close(r->p);
        r->p = NULL;
    }
}

static const struct prov_events events = {
    .ready = ev_ready,
    .audio = ev_audio,
    .barge_in = ev_barge,
    .tool_call = ev_tool_call,
    .tool_cancel = ev_tool_cancel,
    .closed = ev_closed,
};

/* ---- harness: lws context + stand-in + provider ---- */

struct h {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protos[3];
    lws_sorted_usec_list_t tick;
    struct cfg cfg;
    struct vt_oai peer;
    struct rec r;
    char *instr;
    char url[200];
    const char *address; /* prov_open_args.address (NULL: the URL's host) */
};

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct h *h = lws_container_of(sul, struct h, tick);
    lws_sul_schedule(h->ctx, 0, &h->tick, tick_cb, 10 * LWS_US_PER_MS);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

/* Service the loop until cond(h) or timeout; returns cond's final value. */
static bool run_until(struct h *h, bool (*cond)(struct h *), int timeout_ms)
{
    double until = now_ms() + timeout_ms;
    while (now_ms() < until) {
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

static bool is_ready(struct h *h)
{
    return h->r.ready > 0;
}
static bool is_closed(struct h *h)
{
    return h->r.closed > 0;
}

static void ctx_new(struct h *h, const char *ca_path)
{
    struct lws_context_creation_info ci;
    lws_set_log_level(LLL_ERR, NULL);
    memset(&ci, 0, sizeof ci);
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ci.port = CONTEXT_PORT_NO_LISTEN;
    h->ctx = lws_create_context(&ci);
    assert_non_null(h->ctx);
    /* Like the server: an http protocol first, the provider's client protocol after it. */
    memset(h->protos, 0, sizeof h->protos);
    h->protos[0].name = "http";
    h->protos[0].callback = http_cb;
    h->protos[1] = *prov_openai_ops.protocol;
    memset(&ci, 0, sizeof ci);
    ci.vhost_name = "test";
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.protocols = h->protos;
    ci.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ci.client_ssl_ca_filepath = ca_path; /* NULL: the system CA store */
    h->vh = lws_create_vhost(h->ctx, &ci);
    assert_non_null(h->vh);
    lws_sul_schedule(h->ctx, 0, &h->tick, tick_cb, 10 * LWS_US_PER_MS);
}

/* Start the stand-in with script (may be NULL) and a cfg pointing at it (or at url). */
static const char *voice_override; /* "OPENAI_VOICE=..." for one test */

static void h_init_keys(struct h *h, const char *script, const char *peer_key,
                        const char *client_key, const char *url)
{
    memset(h, 0, sizeof *h);
    if (!url) {
        assert_int_equal(vt_oai_start(&h->peer, script, peer_key), 0);
        url = h->peer.url;
        h->r.peer = &h->peer;
    }
    snprintf(h->url, sizeof h->url, "OPENAI_REALTIME_URL=%s", url);
    char key[128];
    snprintf(key, sizeof key, "OPENAI_API_KEY=%s", client_key ? client_key : "sk-test");
    const char *kv[] = {key,
                        h->url,
                        "COMPANY_NAME=Resolve My Claim",
                        voice_override ? voice_override : "OPENAI_VOICE=marin",
                        "PROVIDER_CONNECT_TIMEOUT_MS=4000",
                        NULL};
    vt_cfg(&h->cfg, kv);
    h->instr = prov_instructions(&h->cfg);
    ctx_new(h, NULL);
}

static void h_init(struct h *h, const char *script, const char *client_key, const char *url)
{
    h_init_keys(h, script, "sk-test", client_key, url);
}

/* TLS stand-in with certs from dir; ca: trust this CA (NULL = system store only);
 * url_host: host to put in the URL instead of localhost (certificate name check). */
static void h_init_tls(struct h *h, const char *dir, const char *ca, const char *url_host)
{
    char cert[256], key[256], url[128];
    memset(h, 0, sizeof *h);
    snprintf(cert, sizeof cert, "%s/srv.pem", dir);
    snprintf(key, sizeof key, "%s/srv.key", dir);
    assert_int_equal(vt_oai_start_tls(&h->peer, NULL, "sk-test", cert, key), 0);
    h->r.peer = &h->peer;
    snprintf(url, sizeof url, "wss://%s:%d/v1/realtime", url_host ? url_host : "localhost",
             h->peer.port);
    snprintf(h->url, sizeof h->url, "OPENAI_REALTIME_URL=%s", url);
    const char *kv[] = {"OPENAI_API_KEY=sk-test", h->url, "PROVIDER_CONNECT_TIMEOUT_MS=4000", NULL};
    vt_cfg(&h->cfg, kv);
    h->instr = prov_instructions(&h->cfg);
    h->address = "127.0.0.1"; /* as the server does: resolved off-loop, name kept for TLS */
    ctx_new(h, ca);
}

static void h_open(struct h *h)
{
    struct err e = {0};
    struct prov_open_args a = {
        .ctx = h->ctx,
        .vhost = h->vh,
        .cfg = &h->cfg,
        .ev = &events,
        .owner = &h->r,
        .instructions = h->instr,
        .call_sid = "CAtest",
        .address = h->address,
    };
    assert_int_equal(prov_openai_ops.open(&h->r.p, &a, &e), 0);
    assert_non_null(h->r.p);
}

static void h_done(struct h *h)
{
    if (h->r.p)
        prov_openai_ops.close(h->r.p);
    h->r.p = NULL;
    run_for(h, 50); /* let lws reap the killed socket */
    lws_sul_cancel(&h->tick);
    lws_context_destroy(h->ctx);
    vt_oai_stop(&h->peer);
    cfg_free(&h->cfg);
    free(h->instr);
    free(h->r.audio);
}

static json_t *peer_log(struct h *h)
{
    return vt_oai_log(&h->peer);
}

/* Close code the stand-in saw for its first connection; -1 while still open. */
static int peer_close_code(struct h *h)
{
    json_t *log = peer_log(h);
    size_t i;
    json_t *r;
    int code = -1;
    json_array_foreach(log, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        if (k && !strcmp(k, "closed")) {
            code = (int)json_integer_value(json_object_get(r, "code"));
            break;
        }
    }
    json_decref(log);
    return code;
}

static bool peer_saw_close(struct h *h)
{
    return peer_close_code(h) >= 0;
}

static void fail_with_stderr(struct h *h, const char *what)
{
    char *e = vt_oai_stderr(&h->peer);
    fprintf(stderr, "%s; provider detail='%s'; stand-in stderr:\n%s\n", what, h->r.detail, e);
    free(e);
    fail();
}

static void open_ready(struct h *h)
{
    h_open(h);
    if (!run_until(h, is_ready, 8000))
        fail_with_stderr(h, "provider never became ready");
}

/* ---- 1: session.update shape, headers, ready after session.updated ---- */

static void test_openai_session_update_accepted_with_tools_and_instructions(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, NULL, NULL, NULL);
    open_ready(&h);
    json_t *log = peer_log(&h);

    /* Handshake: GA (no OpenAI-Beta), bearer key accepted, model in the query. */
    json_t *hs = json_array_get(log, 0);
    assert_string_equal(json_string_value(json_object_get(hs, "kind")), "handshake");
    assert_true(json_is_true(json_object_get(hs, "auth_ok")));
    assert_null(json_object_get(json_object_get(hs, "headers"), "openai-beta"));
    assert_null(json_object_get(json_object_get(hs, "headers"), "origin"));
    assert_null(json_object_get(json_object_get(hs, "headers"), "sec-websocket-protocol"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(hs, "query"), "model")),
                        "gpt-realtime-2");
    assert_string_equal(json_string_value(json_object_get(hs, "path")), "/v1/realtime");

    /* Exactly one session.update, accepted (the stand-in validates and sent no error). */
    assert_int_equal(vt_oai_count_in(log, "session.update"), 1);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    assert_int_equal(vt_oai_count_out(log, "session.updated"), 1);
    json_t *su = vt_oai_nth_in(log, "session.update", 0);
    assert_non_null(json_object_get(su, "event_id"));
    json_t *s = json_object_get(su, "session");
    assert_string_equal(json_string_value(json_object_get(s, "type")), "realtime");
    assert_string_equal(json_string_value(json_object_get(s, "model")), "gpt-realtime-2");
    json_t *mods = json_object_get(s, "output_modalities");
    assert_int_equal(json_array_size(mods), 1);
    assert_string_equal(json_string_value(json_array_get(mods, 0)), "audio");
    const char *in_fmt = NULL, *out_fmt = NULL, *nr = NULL, *td = NULL, *voice = NULL;
    int cr = 0, ir = 0;
    assert_int_equal(
        json_unpack(s, "{s:{s:{s:{s:s}, s:{s:s}, s:{s:s, s:b, s:b}}, s:{s:{s:s}, s:s}}}", "audio",
                    "input", "format", "type", &in_fmt, "noise_reduction", "type", &nr,
                    "turn_detection", "type", &td, "create_response", &cr, "interrupt_response",
                    &ir, "output", "format", "type", &out_fmt, "voice", &voice),
        0);
    assert_string_equal(in_fmt, "audio/pcmu");
    assert_string_equal(out_fmt, "audio/pcmu");
    assert_string_equal(nr, "near_field");
    assert_string_equal(td, "server_vad");
    assert_true(cr && ir);
    assert_string_equal(voice, "marin");
    assert_string_equal(json_string_value(json_object_get(s, "tool_choice")), "auto");
    /* Instructions are ours, company filled in. */
    assert_string_equal(json_string_value(json_object_get(s, "instructions")), h.instr);
    assert_non_null(strstr(h.instr, "Resolve My Claim"));
    /* Tools are exactly the registry's 8 functions. */
    json_t *tools = json_object_get(s, "tools");
    json_t *reg = act_tools_openai();
    assert_int_equal(json_array_size(tools), 8);
    assert_true(json_equal(tools, reg));
    json_decref(reg);
    /* No beta-shaped fields anywhere. */
    assert_null(json_object_get(s, "input_audio_format"));
    assert_null(json_object_get(s, "voice"));
    assert_null(json_object_get(s, "modalities"));
    json_decref(log);
    assert_int_equal(h.r.closed, 0);
    /* close(): a close frame 1000, not a dropped TCP connection (1006) */
    prov_openai_ops.close(h.r.p);
    h.r.p = NULL;
    assert_true(run_until(&h, peer_saw_close, 5000));
    assert_int_equal(peer_close_code(&h), 1000);
    h_done(&h);
}

/* ---- 2: audio both ways byte-identical; none before ready ---- */

static void test_openai_audio_passthrough_both_ways(void **state)
{
    (void)state;
    struct h h;
    char b64[40][240];
    h_init(&h, "{\"echo\":true}", NULL, NULL);
    h_open(&h);
    /* Before ready: dropped (held), never sent. */
    prov_openai_ops.send_audio(h.r.p, "/////w==", 8);
    if (!run_until(&h, is_ready, 8000))
        fail_with_stderr(&h, "not ready");
    size_t total = 0;
    for (int i = 0; i < 40; i++) {
        uint8_t pcm[160];
        for (int k = 0; k < 160; k++)
            pcm[k] = (uint8_t)((i * 7 + k * 13) & 0xff);
        util_b64_encode(pcm, sizeof pcm, b64[i]);
        prov_openai_ops.send_audio(h.r.p, b64[i], strlen(b64[i]));
        total += strlen(b64[i]);
        run_for(&h, 2);
    }
    double until = now_ms() + 8000;
    while (h.r.audio_len < total && now_ms() < until)
        lws_service(h.ctx, 0);
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "input_audio_buffer.append"), 40);
    for (int i = 0; i < 40; i++) {
        json_t *ev = vt_oai_nth_in(log, "input_audio_buffer.append", i);
        assert_string_equal(json_string_value(json_object_get(ev, "audio")), b64[i]);
        assert_null(json_object_get(ev, "event_id"));
    }
    /* Echoed back as output_audio.delta: same bytes in the same order. */
    assert_int_equal(h.r.audio_len, total);
    size_t off = 0;
    for (int i = 0; i < 40; i++) {
        assert_memory_equal(h.r.audio + off, b64[i], strlen(b64[i]));
        off += strlen(b64[i]);
    }
    assert_true(h.r.item[0] != '\0');
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    h_done(&h);
}

/* ---- 3: tool call only after response.done completed; output + one response.create ---- */

static const char *ENVELOPE =
    "{\"success\":true,\"message\":\"Claim RMC-1001 is in progress.\",\"data\":{\"status\":"
    "\"in_progress\"},\"execution_time_ms\":3}";

static bool has_call(struct h *h)
{
    return h->r.ncalls > 0;
}

static int peer_count_in(struct h *h, const char *type)
{
    json_t *log = peer_log(h);
    int n = vt_oai_count_in(log, type);
    json_decref(log);
    return n;
}

static bool second_response_audio(struct h *h)
{
    json_t *log = peer_log(h);
    int n = vt_oai_count_out(log, "response.done");
    json_decref(log);
    return n >= 2 && h->r.audio_events >= 5;
}

static void test_openai_tool_call_after_response_done_then_one_response_create(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":["
           "{\"on\":\"audio\",\"do\":[{\"speech\":50},{\"response\":{\"audio_ms\":200,"
           "\"transcript\":\"Let me check that for you.\",\"done_delay_ms\":300,"
           "\"calls\":[{\"name\":\"check_claim_details\",\"arguments\":{\"claim_reference\":"
           "\"RMC-1001\"}}]}}]},"
           "{\"on\":\"response.create\",\"times\":-1,\"do\":[{\"response\":{\"audio_ms\":300,"
           "\"transcript\":\"Your claim is in progress.\"}}]}]}",
           NULL, NULL);
    open_ready(&h);
    prov_openai_ops.send_audio(h.r.p, "/////w==", 8);
    if (!run_until(&h, has_call, 8000))
        fail_with_stderr(&h, "no tool_call");
    assert_int_equal(h.r.ncalls, 1);
    assert_string_equal(h.r.calls[0].name, "check_claim_details");
    assert_int_equal(h.r.calls[0].done_in_log, 1); /* emitted only after response.done */
    json_t *args = json_loads(h.r.calls[0].args, 0, NULL);
    assert_non_null(args);
    assert_string_equal(json_string_value(json_object_get(args, "claim_reference")), "RMC-1001");
    json_decref(args);
    /* Nothing is sent for the call until the session answers. */
    run_for(&h, 200);
    assert_int_equal(peer_count_in(&h, "conversation.item.create"), 0);
    assert_int_equal(peer_count_in(&h, "response.create"), 0);

    prov_openai_ops.tool_result(h.r.p, h.r.calls[0].id, "check_claim_details", ENVELOPE);
    if (!run_until(&h, second_response_audio, 8000))
        fail_with_stderr(&h, "no spoken answer after the tool result");
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "response.create"), 1);
    json_t *fco = vt_oai_nth_in(log, "conversation.item.create", 0);
    json_t *item = json_object_get(fco, "item");
    assert_string_equal(json_string_value(json_object_get(item, "type")), "function_call_output");
    assert_string_equal(json_string_value(json_object_get(item, "call_id")), h.r.calls[0].id);
    assert_string_equal(json_string_value(json_object_get(item, "output")), ENVELOPE);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    /* A second answer for the same call is ignored (no duplicate output). */
    prov_openai_ops.tool_result(h.r.p, h.r.calls[0].id, "check_claim_details", ENVELOPE);
    run_for(&h, 150);
    assert_int_equal(peer_count_in(&h, "conversation.item.create"), 1);
    assert_int_equal(h.r.closed, 0);
    h_done(&h);
}

/* ---- 4: cancelled / incomplete / failed responses never run their calls ---- */

static bool four_done(struct h *h)
{
    json_t *log = peer_log(h);
    int n = vt_oai_count_out(log, "response.done");
    json_decref(log);
    return n >= 4;
}

static void test_openai_cancelled_response_calls_never_run(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":["
           "{\"response\":{\"audio_ms\":100,\"status\":\"cancelled\",\"call_item_status\":"
           "\"completed\",\"calls\":[{\"name\":\"send_portal_link\",\"arguments\":{\"method\":"
           "\"sms\"}}]}},"
           "{\"response\":{\"audio_ms\":0,\"status\":\"incomplete\",\"call_item_status\":"
           "\"completed\",\"calls\":[{\"name\":\"schedule_callback\",\"arguments\":"
           "{\"preferred_time\":\"tomorrow at 3pm\",\"reason\":\"x\"}}]}},"
           "{\"response\":{\"audio_ms\":0,\"status\":\"failed\",\"call_item_status\":"
           "\"completed\",\"calls\":[{\"name\":\"send_review_link\",\"arguments\":{\"method\":"
           "\"sms\"}}]}},"
           "{\"response\":{\"audio_ms\":100}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, four_done, 8000))
        fail_with_stderr(&h, "responses did not finish");
    run_for(&h, 200);
    assert_int_equal(h.r.ncalls, 0);
    assert_int_equal(peer_count_in(&h, "conversation.item.create"), 0);
    assert_int_equal(peer_count_in(&h, "response.create"), 0);
    assert_int_equal(h.r.closed, 0);
    h_done(&h);
}

/* ---- 5: two calls in one response: both outputs, then exactly one response.create ---- */

static bool two_calls(struct h *h)
{
    return h->r.ncalls >= 2;
}
static bool three_calls(struct h *h)
{
    return h->r.ncalls >= 3;
}
static bool one_create(struct h *h)
{
    return peer_count_in(h, "response.create") >= 1;
}

static void test_openai_two_calls_one_response_create_after_both_outputs(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"audio_ms\":100,\"calls\":["
           "{\"name\":\"check_claim_details\",\"arguments\":{\"claim_reference\":\"RMC-1001\"}},"
           "{\"name\":\"check_requirements\",\"arguments\":{\"claim_reference\":\"RMC-1001\"}}"
           "]}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, two_calls, 8000))
        fail_with_stderr(&h, "calls not emitted");
    assert_int_equal(h.r.ncalls, 2);
    assert_string_equal(h.r.calls[0].name, "check_claim_details");
    assert_string_equal(h.r.calls[1].name, "check_requirements");
    assert_string_not_equal(h.r.calls[0].id, h.r.calls[1].id);
    prov_openai_ops.tool_result(h.r.p, h.r.calls[1].id, h.r.calls[1].name, "{\"success\":true}");
    run_for(&h, 300);
    assert_int_equal(peer_count_in(&h, "conversation.item.create"), 1);
    assert_int_equal(peer_count_in(&h, "response.create"), 0); /* not yet: one call open */
    prov_openai_ops.tool_result(h.r.p, h.r.calls[0].id, h.r.calls[0].name, "{\"success\":true}");
    if (!run_until(&h, one_create, 5000))
        fail_with_stderr(&h, "no response.create");
    run_for(&h, 500);
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "conversation.item.create"), 2);
    assert_int_equal(vt_oai_count_in(log, "response.create"), 1);
    /* Order on the wire: both outputs, then the response.create. */
    size_t i;
    json_t *r;
    int seen_outputs = 0, outputs_before_create = -1;
    json_array_foreach(log, i, r)
    {
        const char *t = json_string_value(json_object_get(json_object_get(r, "ev"), "type"));
        const char *d = json_string_value(json_object_get(r, "dir"));
        if (!t || !d || strcmp(d, "in"))
            continue;
        if (!strcmp(t, "conversation.item.create"))
            seen_outputs++;
        if (!strcmp(t, "response.create"))
            outputs_before_create = seen_outputs;
    }
    assert_int_equal(outputs_before_create, 2);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    h_done(&h);
}

/* Duplicates: the same call twice with different call_ids is passed on twice (exactly-once
 * is the action layer's job); the same call_id twice is one call. */
static void test_openai_duplicate_calls(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"audio_ms\":0,\"calls\":["
           "{\"name\":\"send_portal_link\",\"arguments\":{\"method\":\"sms\"}},"
           "{\"name\":\"send_portal_link\",\"arguments\":{\"method\":\"sms\"}}]}},"
           "{\"response\":{\"audio_ms\":0,\"calls\":["
           "{\"name\":\"check_claim_details\",\"call_id\":\"call_same\",\"arguments\":"
           "{\"claim_reference\":\"RMC-1001\"}},"
           "{\"name\":\"check_claim_details\",\"call_id\":\"call_same\",\"arguments\":"
           "{\"claim_reference\":\"RMC-1001\"}}]}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, three_calls, 8000))
        fail_with_stderr(&h, "calls not emitted");
    run_for(&h, 300);
    assert_int_equal(h.r.ncalls, 3);
    assert_string_equal(h.r.calls[0].name, "send_portal_link");
    assert_string_equal(h.r.calls[1].name, "send_portal_link");
    assert_string_not_equal(h.r.calls[0].id, h.r.calls[1].id);
    assert_string_equal(h.r.calls[2].id, "call_same");
    for (int i = 0; i < 3; i++)
        prov_openai_ops.tool_result(h.r.p, h.r.calls[i].id, h.r.calls[i].name,
                                    "{\"success\":true}");
    run_for(&h, 600);
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "conversation.item.create"), 3);
    /* the first pair's response.create ran; the second waits behind it, then runs */
    assert_int_equal(vt_oai_count_in(log, "response.create"), 2);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    h_done(&h);
}

/* ---- 6: response.create queued while a response is active ---- */

static bool got_audio(struct h *h)
{
    return h->r.audio_events > 0;
}

static bool greeted(struct h *h)
{
    json_t *log = peer_log(h);
    int n = vt_oai_count_out(log, "response.done");
    json_decref(log);
    return n >= 2;
}

static void test_openai_greet_waits_for_active_response(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"audio_ms\":3000,"
           "\"chunk_ms\":100,\"pace_ms\":60}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, got_audio, 5000))
        fail_with_stderr(&h, "no audio");
    prov_openai_ops.greet(h.r.p, "Sarah");
    run_for(&h, 150);
    /* The first response is still running: the greeting item goes, response.create waits. */
    assert_int_equal(peer_count_in(&h, "conversation.item.create"), 1);
    assert_int_equal(peer_count_in(&h, "response.create"), 0);
    if (!run_until(&h, greeted, 8000))
        fail_with_stderr(&h, "greeting response never ran");
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "response.create"), 1);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_t *g = json_object_get(vt_oai_nth_in(log, "conversation.item.create", 0), "item");
    assert_string_equal(json_string_value(json_object_get(g, "role")), "system");
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(g, "content"), 0), "text"));
    assert_non_null(strstr(text, "Sarah"));
    json_decref(log);
    h_done(&h);
}

/* The server started a response we have not heard of yet: our response.create is refused
 * with conversation_already_has_active_response, stays queued and is resent after done. */
static bool two_creates(struct h *h)
{
    return peer_count_in(h, "response.create") >= 2;
}

static void test_openai_active_response_error_keeps_create_queued(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"created_delay_ms\":1200,"
           "\"audio_ms\":200}}]}]}",
           NULL, NULL);
    open_ready(&h);
    prov_openai_ops.greet(h.r.p, ""); /* unknown caller: generic greeting */
    if (!run_until(&h, two_creates, 8000))
        fail_with_stderr(&h, "refused response.create was not resent");
    run_for(&h, 600);
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_errors(log, "conversation_already_has_active_response"), 1);
    assert_int_equal(vt_oai_count_in(log, "response.create"), 2);
    assert_int_equal(vt_oai_count_out(log, "response.created"), 2); /* the resend ran */
    json_t *g = json_object_get(vt_oai_nth_in(log, "conversation.item.create", 0), "item");
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(g, "content"), 0), "text"));
    assert_null(strstr(text, "by first name"));
    json_decref(log);
    assert_int_equal(h.r.closed, 0);
    h_done(&h);
}

/* ---- 7: truncate clamped to generated audio; barge-in ---- */

static bool audio_300ms(struct h *h)
{
    return h->r.audio_len >= 3200;
} /* 2400 B = 3200 b64 */

static void test_openai_truncate_clamped_to_generated_audio(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"audio_ms\":300}}]}]}", NULL,
           NULL);
    open_ready(&h);
    if (!run_until(&h, audio_300ms, 8000))
        fail_with_stderr(&h, "no audio");
    run_for(&h, 200);
    char item[128];
    snprintf(item, sizeof item, "%s", h.r.item);
    prov_openai_ops.truncate(h.r.p, item, 5000);          /* heard more than was generated */
    prov_openai_ops.truncate(h.r.p, "item_unknown", 100); /* nothing known: not sent */
    run_for(&h, 300);
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "conversation.item.truncate"), 1);
    json_t *t = vt_oai_nth_in(log, "conversation.item.truncate", 0);
    assert_string_equal(json_string_value(json_object_get(t, "item_id")), item);
    assert_int_equal(json_integer_value(json_object_get(t, "content_index")), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "audio_end_ms")), 300);
    assert_int_equal(vt_oai_count_out(log, "conversation.item.truncated"), 1);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    h_done(&h);
}

static bool late_item_seen(struct h *h)
{
    return !strcmp(h->r.item, "item_late");
}

static bool barged(struct h *h)
{
    return h->r.barge > 0;
}

static void test_openai_barge_in_reported_and_late_audio_dropped(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"audio_ms\":3000,"
           "\"chunk_ms\":100,\"pace_ms\":40,\"wait\":false}},{\"wait\":300},"
           "{\"speech_started\":true},{\"late_delta\":3},{\"wait\":600},{\"send\":{\"type\":"
           "\"response.output_audio.delta\",\"response_id\":\"resp_late\",\"item_id\":"
           "\"item_late\",\"output_index\":0,\"content_index\":0,\"delta\":\"/////w==\"}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, barged, 8000))
        fail_with_stderr(&h, "no barge_in");
    char item[128];
    snprintf(item, sizeof item, "%s", h.r.item);
    int before = h.r.audio_events;
    assert_true(before > 0);
    prov_openai_ops.truncate(h.r.p, item, 150);
    if (!run_until(&h, late_item_seen, 6000))
        fail_with_stderr(&h, "the new item's audio never arrived");
    run_for(&h, 300);
    /* The cancelled item's late deltas were dropped; a new item's audio still flows. */
    assert_int_equal(h.r.audio_events, before + 1);
    assert_string_equal(h.r.item, "item_late");
    json_t *log = peer_log(&h);
    json_t *t = vt_oai_nth_in(log, "conversation.item.truncate", 0);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "audio_end_ms")), 150);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    h_done(&h);
}

/* Vendor errors are logged with code and message (code may be null) and the call goes on;
 * the API key appears in no log line during a whole call with a tool round trip. */
static bool greeted(struct h *h);

static bool log_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_openai_errors_logged_and_key_never_logged(void **state)
{
    (void)state;
    struct h h;
    const char *key = "sk-proj-SECRETKEY0123456789";
    char *dir = vt_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/log.txt", dir);
    FILE *lf = fopen(path, "w");
    log_setup(LOG_DEBUG, false);
    log_set_fd(fileno(lf));
    h_init_keys(&h,
                "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"error\":{\"code\":null,\"message\":"
                "\"Audio content of 10ms is already shorter than 20ms\"}},{\"response\":{"
                "\"audio_ms\":100,\"calls\":[{\"name\":\"check_claim_details\",\"arguments\":"
                "{\"claim_reference\":\"RMC-1001\"}}]}}]},{\"on\":\"response.create\",\"do\":"
                "[{\"response\":{\"audio_ms\":100}}]}]}",
                key, key, NULL);
    open_ready(&h);
    if (!run_until(&h, has_call, 8000))
        fail_with_stderr(&h, "no tool_call");
    prov_openai_ops.tool_result(h.r.p, h.r.calls[0].id, h.r.calls[0].name, ENVELOPE);
    if (!run_until(&h, greeted, 8000)) /* two response.done */
        fail_with_stderr(&h, "no second response");
    assert_int_equal(h.r.closed, 0);
    h_done(&h);
    log_set_fd(2);
    log_setup(LOG_WARN, false);
    fclose(lf);
    assert_true(log_has(path, "code=null"));
    assert_true(log_has(path, "is already shorter than 20ms"));
    assert_true(log_has(path, "session ready"));
    assert_false(log_has(path, "SECRETKEY"));
    vt_rmdir(dir);
    free(dir);
}

/* ---- 8: failures classified ---- */

static void expect_close(struct h *h, enum prov_close why, int timeout_ms)
{
    if (!run_until(h, is_closed, timeout_ms))
        fail_with_stderr(h, "closed() never came");
    if (h->r.why != why) {
        fprintf(stderr, "closed why=%d (want %d) detail=%s\n", h->r.why, why, h->r.detail);
        fail();
    }
    int n = h->r.closed;
    run_for(h, 100);
    assert_int_equal(h->r.closed, n); /* exactly once */
    assert_int_equal(n, 1);
}

static void test_openai_wrong_key_rejected(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, NULL, "sk-wrong", NULL);
    h_open(&h);
    expect_close(&h, PROV_CLOSE_REJECTED, 6000);
    assert_int_equal(h.r.ready, 0);
    assert_non_null(strstr(h.r.detail, "401"));
    /* The key never appears in what we report. */
    assert_null(strstr(h.r.detail, "sk-wrong"));
    json_t *log = peer_log(&h);
    assert_false(json_is_true(json_object_get(json_array_get(log, 0), "auth_ok")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "auth_scheme")),
                        "Bearer");
    json_decref(log);
    h_done(&h);
}

static void test_openai_forbidden_rejected(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"handshake_status\":403}", NULL, NULL);
    h_open(&h);
    expect_close(&h, PROV_CLOSE_REJECTED, 6000);
    assert_non_null(strstr(h.r.detail, "403"));
    h_done(&h);
}

static void test_openai_handshake_429_is_connect_failed(void **state)
{
    (void)state;
    struct h h;
    /* rate limited / server errors at the upgrade are transient: fail over, not "rejected" */
    h_init(&h, "{\"handshake_status\":429}", NULL, NULL);
    h_open(&h);
    expect_close(&h, PROV_CLOSE_CONNECT_FAILED, 6000);
    assert_non_null(strstr(h.r.detail, "429"));
    h_done(&h);
}

static void test_openai_unreachable_port_connect_failed(void **state)
{
    (void)state;
    struct h h;
    char url[96];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/realtime", vt_free_port());
    h_init(&h, NULL, NULL, url);
    h_open(&h);
    expect_close(&h, PROV_CLOSE_CONNECT_FAILED, 6000);
    assert_int_equal(h.r.ready, 0);
    h_done(&h);
}

static void test_openai_mid_call_drop_is_dropped(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"wait\":200},{\"drop\":true}]}]}", NULL,
           NULL);
    open_ready(&h);
    expect_close(&h, PROV_CLOSE_DROPPED, 6000);
    h_done(&h);
}

static void test_openai_mid_call_close_frame_is_dropped(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"wait\":100},{\"close\":1011}]}]}", NULL,
           NULL);
    open_ready(&h);
    expect_close(&h, PROV_CLOSE_DROPPED, 6000);
    assert_non_null(strstr(h.r.detail, "1011"));
    h_done(&h);
}

static void test_openai_session_expired(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"wait\":100},{\"expire\":true}]}]}", NULL,
           NULL);
    open_ready(&h);
    expect_close(&h, PROV_CLOSE_EXPIRED, 6000);
    h_done(&h);
}

static void test_openai_malformed_flood_is_protocol_error(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"malformed\":6}]}]}", NULL, NULL);
    open_ready(&h);
    expect_close(&h, PROV_CLOSE_PROTOCOL, 6000);
    assert_true(run_until(&h, peer_saw_close, 5000));
    assert_int_equal(peer_close_code(&h), 1002);
    h_done(&h);
}

static void test_openai_few_malformed_are_ignored(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"malformed\":3},{\"send\":{\"type\":"
           "\"some.future_event\",\"x\":1}},{\"response\":{\"audio_ms\":200}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, got_audio, 5000))
        fail_with_stderr(&h, "audio stopped after a few bad messages");
    run_for(&h, 200);
    assert_int_equal(h.r.closed, 0);
    h_done(&h);
}

static void test_openai_oversized_message_is_protocol_error(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"big\":2200000}]}]}", NULL, NULL);
    open_ready(&h);
    expect_close(&h, PROV_CLOSE_PROTOCOL, 8000);
    assert_non_null(strstr(h.r.detail, "bytes"));
    h_done(&h);
}

static bool big_audio(struct h *h)
{
    return h->r.audio_events >= 1;
}

static void test_openai_fragmented_large_message_reassembled(void **state)
{
    (void)state;
    struct h h;
    /* 60 s of audio in one delta: 480000 bytes, 640000 base64 chars, many fragments. */
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"big\":1500000},{\"response\":{\"audio_ms\":"
           "60000,\"chunk_ms\":60000}}]}]}",
           NULL, NULL);
    open_ready(&h);
    if (!run_until(&h, big_audio, 10000))
        fail_with_stderr(&h, "large delta not delivered");
    assert_int_equal(h.r.audio_events, 1);
    assert_int_equal(h.r.audio_len, 640000);
    uint8_t *raw = malloc(480003);
    assert_int_equal(util_b64_decode(h.r.audio, h.r.audio_len, raw, 480003), 480000);
    free(raw);
    assert_int_equal(h.r.closed, 0);
    /* Truncate at the end is exactly the generated length. */
    prov_openai_ops.truncate(h.r.p, h.r.item, 70000);
    run_for(&h, 300);
    json_t *log = peer_log(&h);
    json_t *t = vt_oai_nth_in(log, "conversation.item.truncate", 0);
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "audio_end_ms")), 60000);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    h_done(&h);
}

static void test_openai_wrong_formats_rejected(void **state)
{
    (void)state;
    struct h h;
    /* A server that leaves the output at PCM 24 kHz: the caller would hear static. */
    h_init(&h,
           "{\"session_override\":{\"audio\":{\"output\":{\"format\":{\"type\":\"audio/pcm\","
           "\"rate\":24000}}}}}",
           NULL, NULL);
    h_open(&h);
    expect_close(&h, PROV_CLOSE_REJECTED, 8000);
    assert_int_equal(h.r.ready, 0);
    assert_non_null(strstr(h.r.detail, "audio/pcm"));
    h_done(&h);
}

static void test_openai_refused_session_update_rejected(void **state)
{
    (void)state;
    struct h h;
    voice_override = "OPENAI_VOICE=robot"; /* not a voice the API knows */
    h_init(&h, NULL, NULL, NULL);
    voice_override = NULL;
    h_open(&h);
    expect_close(&h, PROV_CLOSE_REJECTED, 8000);
    assert_int_equal(h.r.ready, 0);
    assert_non_null(strstr(h.r.detail, "session.update refused: invalid_value"));
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_errors(log, "invalid_value"), 1);
    assert_int_equal(vt_oai_count_out(log, "session.updated"), 0);
    json_decref(log);
    h_done(&h);
}

static void test_openai_no_session_updated_times_out(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"ignore_session_update\":true}", NULL, NULL);
    h_open(&h);
    prov_openai_ops.send_audio(h.r.p, "/////w==", 8);
    expect_close(&h, PROV_CLOSE_REJECTED, 9000);
    assert_int_equal(h.r.ready, 0);
    json_t *log = peer_log(&h);
    assert_int_equal(vt_oai_count_in(log, "input_audio_buffer.append"), 0);
    json_decref(log);
    h_done(&h);
}

/* ---- 9: lifetime: close() from inside events, close while connecting ---- */

static void test_openai_close_inside_tool_call_is_safe(void **state)
{
    (void)state;
    struct h h;
    h_init(&h,
           "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"response\":{\"audio_ms\":100,\"calls\":["
           "{\"name\":\"check_claim_details\",\"arguments\":{\"claim_reference\":\"RMC-1001\"}},"
           "{\"name\":\"check_requirements\",\"arguments\":{\"claim_reference\":\"RMC-1001\"}}"
           "]}},{\"response\":{\"audio_ms\":100}}]}]}",
           NULL, NULL);
    open_ready(&h);
    h.r.close_in = 1;
    if (!run_until(&h, has_call, 8000))
        fail_with_stderr(&h, "no tool_call");
    run_for(&h, 500);
    assert_int_equal(h.r.ncalls, 1); /* closed inside the first: the second never arrives */
    assert_int_equal(h.r.events_after_close, 0);
    assert_null(h.r.p);
    h_done(&h);
}

static void test_openai_close_inside_closed_and_while_connecting(void **state)
{
    (void)state;
    struct h h;
    h_init(&h, "{\"rules\":[{\"on\":\"ready\",\"do\":[{\"drop\":true}]}]}", NULL, NULL);
    h.r.close_in = 2;
    open_ready(&h);
    if (!run_until(&h, is_closed, 5000))
        fail_with_stderr(&h, "no closed");
    run_for(&h, 200);
    assert_int_equal(h.r.closed, 1);
    assert_int_equal(h.r.events_after_close, 0);
    h_done(&h);

    /* close() straight after open(): nothing is ever reported. */
    h_init(&h, NULL, NULL, NULL);
    h_open(&h);
    prov_openai_ops.close(h.r.p);
    h.r.p = NULL;
    run_for(&h, 800);
    assert_int_equal(h.r.ready + h.r.closed + h.r.audio_events, 0);
    h_done(&h);
}

/* The server may tear the loop down with calls still up (shutdown): the provider must
 * survive lws_context_destroy() and be freed afterwards without touching lws. */
static void test_openai_context_destroyed_before_close(void **state)
{
    /* Asserted by the sanitizers (use-after-free / leak) in the ASan run. */
    (void)state;
    struct h h;
    h_init(&h, NULL, NULL, NULL);
    open_ready(&h);
    lws_sul_cancel(&h.tick);
    lws_context_destroy(h.ctx);
    h.ctx = NULL;
    prov_openai_ops.close(h.r.p);
    h.r.p = NULL;
    vt_oai_stop(&h.peer);
    cfg_free(&h.cfg);
    free(h.instr);
    free(h.r.audio);
}

/* ---- 10: TLS: certificate and host name verified ---- */

static int handshakes(struct h *h)
{
    json_t *log = peer_log(h);
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        const char *k = json_string_value(json_object_get(r, "kind"));
        if (k && !strcmp(k, "handshake"))
            n++;
    }
    json_decref(log);
    return n;
}

static void test_openai_wss_verifies_certificate_and_host(void **state)
{
    (void)state;
    struct h h;
    char *dir = vt_tmpdir(), ca[256];
    assert_int_equal(vt_oai_make_certs(dir), 0);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);

    /* Trusted CA, right name: the whole session works over TLS. */
    h_init_tls(&h, dir, ca, NULL);
    open_ready(&h);
    assert_int_equal(handshakes(&h), 1);
    h_done(&h);

    /* Certificate from an unknown CA: refused before any HTTP (the key never leaves). */
    h_init_tls(&h, dir, NULL, NULL);
    h_open(&h);
    expect_close(&h, PROV_CLOSE_CONNECT_FAILED, 6000);
    assert_int_equal(handshakes(&h), 0);
    h_done(&h);

    /* Trusted CA but the URL names another host than the certificate. */
    h_init_tls(&h, dir, ca, "wrong.example");
    h_open(&h);
    expect_close(&h, PROV_CLOSE_CONNECT_FAILED, 6000);
    assert_int_equal(handshakes(&h), 0);
    h_done(&h);

    vt_rmdir(dir);
    free(dir);
}

/* ---- 11: configuration ---- */

static void test_openai_plain_ws_refused_off_loopback(void **state)
{
    (void)state;
    struct h h;
    struct err e = {0};
    struct prov *p = NULL;
    h_init(&h, NULL, NULL, "ws://api.example.com/v1/realtime");
    struct prov_open_args a = {.ctx = h.ctx,
                               .vhost = h.vh,
                               .cfg = &h.cfg,
                               .ev = &events,
                               .owner = &h.r,
                               .instructions = "x",
                               .call_sid = "CAx"};
    assert_int_not_equal(prov_openai_ops.open(&p, &a, &e), 0);
    assert_null(p);
    assert_non_null(strstr(e.detail, "loopback"));
    assert_true(prov_openai_ops.configured(&h.cfg));
    h_done(&h);

    struct cfg c;
    const char *kv[] = {"OPENAI_API_KEY=", NULL};
    vt_cfg(&c, kv);
    assert_false(prov_openai_ops.configured(&c));
    assert_string_equal(c.openai_model, "gpt-realtime-2");
    cfg_free(&c);
}

/* ---- 12: the stand-in itself rejects what the real API rejects ---- */

static void test_openai_standin_rejects_like_the_real_api(void **state)
{
    (void)state;
    struct vt_oai peer;
    struct vt_run r;
    char js[512], port[16];
    assert_int_equal(vt_oai_start(&peer, NULL, "sk-test"), 0);
    snprintf(js, sizeof js, "%s/tests/peers/openai_standin_check.js", vt_src());
    snprintf(port, sizeof port, "%d", peer.port);
    const char *argv[] = {"/usr/bin/env", "node", js, port, "sk-test", NULL};
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 60), 0);
    if (r.status != 0)
        fprintf(stderr, "stand-in check:\n%s%s\n", r.out, r.err);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "ok   beta session fields -> unknown_parameter"));
    assert_null(strstr(r.out, "FAIL"));
    vt_run_free(&r);
    vt_oai_stop(&peer);
}

/* The stand-in's HTTP side: POST /control/last runs steps on the live call, GET /log. */
static size_t curl_sink(char *ptr, size_t size, size_t n, void *ud)
{
    char **buf = ud;
    size_t old = *buf ? strlen(*buf) : 0, add = size * n;
    char *nb = realloc(*buf, old + add + 1);
    memcpy(nb + old, ptr, add);
    nb[old + add] = '\0';
    *buf = nb;
    return add;
}

static long http_req(int port, const char *path, const char *post_body, char **out)
{
    char url[128];
    long status = 0;
    CURL *c = curl_easy_init();
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (post_body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static void test_openai_standin_control_endpoint_drives_live_call(void **state)
{
    (void)state;
    struct h h;
    char *body = NULL;
    h_init(&h, NULL, NULL, NULL);
    open_ready(&h);
    assert_int_equal(h.r.audio_events, 0);
    assert_int_equal(http_req(h.peer.port, "/control/last",
                              "[{\"response\":{\"audio_ms\":200,\"calls\":[{\"name\":"
                              "\"check_requirements\",\"arguments\":{\"claim_reference\":"
                              "\"RMC-2001\"}}]}}]",
                              &body),
                     202);
    free(body);
    body = NULL;
    if (!run_until(&h, has_call, 5000))
        fail_with_stderr(&h, "control steps did not run");
    assert_true(h.r.audio_events > 0);
    assert_string_equal(h.r.calls[0].name, "check_requirements");
    assert_int_equal(http_req(h.peer.port, "/control/99", "[]", &body), 404);
    free(body);
    body = NULL;
    assert_int_equal(http_req(h.peer.port, "/control/last", "{not a list", &body), 400);
    free(body);
    body = NULL;
    assert_int_equal(http_req(h.peer.port, "/log", NULL, &body), 200);
    json_t *log = json_loads(body, 0, NULL);
    assert_non_null(log);
    assert_int_equal(vt_oai_count_in(log, "session.update"), 1);
    assert_int_equal(vt_oai_count_out(log, "response.done"), 1);
    json_decref(log);
    free(body);
    h_done(&h);
}

/* ---- 13: instructions ---- */

static void test_openai_instructions_default_and_file(void **state)
{
    (void)state;
    struct cfg c;
    char *dir = vt_tmpdir(), path[256], kvf[300];
    const char *kv1[] = {"COMPANY_NAME=Acme Claims Ltd", NULL};
    vt_cfg(&c, kv1);
    char *s = prov_instructions(&c);
    assert_non_null(strstr(s, "Acme Claims Ltd"));
    assert_non_null(strstr(s, "claim reference"));
    assert_non_null(strstr(s, "British English"));
    assert_null(strstr(s, "%s"));
    free(s);
    cfg_free(&c);

    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("You are Bob. Be brief.\n", f);
    fclose(f);
    snprintf(kvf, sizeof kvf, "INSTRUCTIONS_FILE=%s", path);
    const char *kv2[] = {kvf, NULL};
    vt_cfg(&c, kv2);
    s = prov_instructions(&c);
    assert_string_equal(s, "You are Bob. Be brief.\n");
    free(s);
    cfg_free(&c);

    /* Unreadable, too big, invalid UTF-8: the default, never a crash or a half prompt. */
    const char *bad[] = {"missing.txt", "big.txt", "latin1.txt", NULL};
    snprintf(path, sizeof path, "%s/big.txt", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 70000; i++)
        fputc('a', f);
    fclose(f);
    snprintf(path, sizeof path, "%s/latin1.txt", dir);
    f = fopen(path, "w");
    fputs("Caf\xe9\n", f);
    fclose(f);
    for (int i = 0; bad[i]; i++) {
        snprintf(kvf, sizeof kvf, "INSTRUCTIONS_FILE=%s/%s", dir, bad[i]);
        const char *kv3[] = {kvf, "COMPANY_NAME=Acme Claims Ltd", NULL};
        vt_cfg(&c, kv3);
        s = prov_instructions(&c);
        assert_non_null(strstr(s, "Acme Claims Ltd"));
        free(s);
        cfg_free(&c);
    }
    vt_rmdir(dir);
    free(dir);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *lv = getenv("VWS_TEST_LOG"); /* e.g. VWS_TEST_LOG=info to watch a call */
    int level = lv ? log_level_parse(lv) : LOG_WARN;
    log_setup(level < 0 ? LOG_WARN : (enum log_level)level, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_session_update_accepted_with_tools_and_instructions),
        cmocka_unit_test(test_openai_audio_passthrough_both_ways),
        cmocka_unit_test(test_openai_tool_call_after_response_done_then_one_response_create),
        cmocka_unit_test(test_openai_cancelled_response_calls_never_run),
        cmocka_unit_test(test_openai_two_calls_one_response_create_after_both_outputs),
        cmocka_unit_test(test_openai_duplicate_calls),
        cmocka_unit_test(test_openai_greet_waits_for_active_response),
        cmocka_unit_test(test_openai_active_response_error_keeps_create_queued),
        cmocka_unit_test(test_openai_truncate_clamped_to_generated_audio),
        cmocka_unit_test(test_openai_barge_in_reported_and_late_audio_dropped),
        cmocka_unit_test(test_openai_errors_logged_and_key_never_logged),
        cmocka_unit_test(test_openai_wrong_key_rejected),
        cmocka_unit_test(test_openai_forbidden_rejected),
        cmocka_unit_test(test_openai_handshake_429_is_connect_failed),
        cmocka_unit_test(test_openai_unreachable_port_connect_failed),
        cmocka_unit_test(test_openai_mid_call_drop_is_dropped),
        cmocka_unit_test(test_openai_mid_call_close_frame_is_dropped),
        cmocka_unit_test(test_openai_session_expired),
        cmocka_unit_test(test_openai_malformed_flood_is_protocol_error),
        cmocka_unit_test(test_openai_few_malformed_are_ignored),
        cmocka_unit_test(test_openai_oversized_message_is_protocol_error),
        cmocka_unit_test(test_openai_fragmented_large_message_reassembled),
        cmocka_unit_test(test_openai_wrong_formats_rejected),
        cmocka_unit_test(test_openai_refused_session_update_rejected),
        cmocka_unit_test(test_openai_no_session_updated_times_out),
        cmocka_unit_test(test_openai_close_inside_tool_call_is_safe),
        cmocka_unit_test(test_openai_close_inside_closed_and_while_connecting),
        cmocka_unit_test(test_openai_context_destroyed_before_close),
        cmocka_unit_test(test_openai_wss_verifies_certificate_and_host),
        cmocka_unit_test(test_openai_plain_ws_refused_off_loopback),
        cmocka_unit_test(test_openai_standin_rejects_like_the_real_api),
        cmocka_unit_test(test_openai_standin_control_endpoint_drives_live_call),
        cmocka_unit_test(test_openai_instructions_default_and_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
