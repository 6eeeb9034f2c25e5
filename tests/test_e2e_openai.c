/*
 * test_e2e_openai.c - whole calls through the real binary: the Twilio
 * stand-in (tests/peers/twilio_caller.js) calls `voice-ws serve`, which
 * bridges to the OpenAI Realtime stand-in (tests/peers/openai_standin.js,
 * scripted) and runs the actions on a demo SQLite database.
 *
 * Covers: greeting first (by first name), audio both ways, tool calls (own
 * claim, another person's claim refused, callback row), barge-in (clear +
 * truncate at the heard ms from marks), malformed and oversized messages from
 * either side, the provider closing mid-call (fallback + callback row),
 * failover, and a slow action (a hanging SMS API) not delaying another call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/cfg.h"
#include "db/db.h"
#include "net/twilio.h"
#include "oai_peer.h"
#include "srv_peer.h"
#include "vt_db.h"
#include "vwstest.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#define AUTH "0123456789abcdef0123456789abcdef"
#define PUB "https://voice.example.co.uk"
#define SARAH "+447700900001"

static bool use_localhost; /* provider URL by name: resolved on a worker */

struct e2e {
    struct vt_oai peer;
    struct vt_srv srv;
    char url_env[192];
};

static void e2e_start(struct e2e *t, const char *script, const char *const *extra)
{
    const char *env[32];
    int n = 0;
    assert_int_equal(vt_oai_start(&t->peer, script, "sk-test"), 0);
    vt_peers_track(t->peer.pid, NULL);
    if (use_localhost)
        snprintf(t->url_env, sizeof t->url_env, "OPENAI_REALTIME_URL=ws://localhost:%d/v1/realtime",
                 t->peer.port);
    else
        snprintf(t->url_env, sizeof t->url_env, "OPENAI_REALTIME_URL=%s", t->peer.url);
    env[n++] = "TWILIO_AUTH_TOKEN=" AUTH;
    env[n++] = "PUBLIC_URL=" PUB;
    env[n++] = "LINK_SECRET=e2e-secret";
    env[n++] = "OPENAI_API_KEY=sk-test";
    env[n++] = "LOG_LEVEL=debug";
    env[n++] = t->url_env;
    for (const char *const *p = extra; p && *p && n < 30; p++)
        env[n++] = *p;
    env[n] = NULL;
    assert_int_equal(vt_srv_start(&t->srv, env), 0);
}

static void e2e_stop(struct e2e *t)
{
    /* a clean, sanitizer-checked exit (LSan reports make the exit status non-zero) */
    int st = vt_srv_stop(&t->srv, SIGTERM, 15000);
    if (st != 0) {
        char *log = vt_srv_log(&t->srv);
        fprintf(stderr, "serve exit status %d; log tail:\n%s\n", st,
                strlen(log) > 4000 ? log + strlen(log) - 4000 : log);
        free(log);
    }
    assert_int_equal(st, 0);
    vt_srv_cleanup(&t->srv);
    vt_peers_untrack(t->peer.pid);
    vt_oai_stop(&t->peer);
}

/* A weekday 2-8 days ahead (Tue-Thu, away from the Christmas holidays) at 11:00 London:
 * always bookable, whatever day the test runs. */
static void bookable_time(char *out, size_t outsz)
{
    time_t now = time(NULL);
    for (int k = 2; k < 30; k++) {
        time_t t = now + (time_t)k * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        bool xmas = (tm.tm_mon == 11 && tm.tm_mday >= 20) || (tm.tm_mon == 0 && tm.tm_mday <= 3);
        if (tm.tm_wday >= 2 && tm.tm_wday <= 4 && !xmas) {
            strftime(out, outsz, "%Y-%m-%dT11:00:00", &tm);
            return;
        }
    }
}

static char *spec_for(struct e2e *t, const char *sid, const char *extra)
{
    char *spec = malloc(4096);
    snprintf(spec, 4096,
             "{\"http\":\"http://127.0.0.1:%d\",\"public_url\":\"" PUB
             "\",\"ws\":\"ws://127.0.0.1:%d\","
             "\"auth_token\":\"" AUTH "\",\"from\":\"" SARAH "\",\"call_sid\":\"%s\"%s%s}",
             t->srv.port, t->srv.port, sid, extra && *extra ? "," : "", extra ? extra : "");
    return spec;
}

static json_t *call(struct e2e *t, const char *sid, const char *extra, int timeout_s)
{
    char *spec = spec_for(t, sid, extra);
    json_t *r = vt_call_run(spec, timeout_s);
    free(spec);
    assert_non_null(r);
    return r;
}

static const char *closed_by(json_t *r)
{
    const char *s = json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by"));
    return s ? s : "";
}

static void assert_no_violations(json_t *r)
{
    json_t *v = json_object_get(r, "violations");
    if (json_array_size(v)) {
        char *d = json_dumps(v, 0);
        fprintf(stderr, "twilio violations: %s\n", d);
        free(d);
    }
    assert_int_equal(json_array_size(v), 0);
}

/* The output the server sent for a function call (borrowed from log), or NULL. */
static const char *fn_output(json_t *log, const char *call_id)
{
    size_t i;
    json_t *rec;
    json_array_foreach(log, i, rec)
    {
        json_t *ev = json_object_get(rec, "ev");
        json_t *item = json_object_get(ev, "item");
        const char *dir = json_string_value(json_object_get(rec, "dir"));
        if (dir && !strcmp(dir, "in") &&
            !strcmp(json_string_value(json_object_get(ev, "type")) ?: "",
                    "conversation.item.create") &&
            !strcmp(json_string_value(json_object_get(item, "type")) ?: "",
                    "function_call_output") &&
            !strcmp(json_string_value(json_object_get(item, "call_id")) ?: "", call_id))
            return json_string_value(json_object_get(item, "output"));
    }
    return NULL;
}

static long long sql_int(struct e2e *t, const char *fmt, const char *arg)
{
    char q[512];
    snprintf(q, sizeof q, fmt, arg);
    return vt_srv_sql_int(&t->srv, q);
}

/* ---- a whole call with tools ---- */

static const char SCRIPT_TOOLS[] =
    "{\"rules\":["
    " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":600,\"pace_ms\":"
    "20,"
    "   \"transcript\":\"Hello Sarah, how can I help?\"}}]},"
    " {\"on\":\"audio\",\"bytes\":4000,\"do\":[{\"speech\":200},{\"response\":{\"audio_ms\":200,"
    "   \"transcript\":\"Let me check.\",\"calls\":[{\"name\":\"check_claim_details\","
    "   \"arguments\":{\"claim_reference\":\"RMC-1001\"},\"call_id\":\"call_own\"}]}}]},"
    " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":300,"
    "   "
    "\"calls\":[{\"name\":\"check_claim_details\",\"arguments\":{\"claim_reference\":\"RMC-2001\"},"
    "   \"call_id\":\"call_other\"}]}}]},"
    " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":200,"
    "   \"calls\":[{\"name\":\"schedule_callback\",\"arguments\":{\"preferred_time\":\"%s\","
    "   \"reason\":\"talk about my claim\"},\"call_id\":\"call_cb\"}]}}]},"
    " {\"on\":\"response.create\",\"times\":-1,\"do\":[{\"response\":{\"audio_ms\":400,"
    "   \"transcript\":\"All done.\"}}]}"
    "]}";

static void test_e2e_call_greets_relays_audio_and_runs_tools(void **state)
{
    (void)state;
    struct e2e t;
    const char *sid = "CA00000000000000000000000000000e01";
    char when[64], script[sizeof SCRIPT_TOOLS + 64];
    bookable_time(when, sizeof when);
    snprintf(script, sizeof script, SCRIPT_TOOLS, when);
    e2e_start(&t, script, NULL);
    json_t *r = call(&t, sid, "\"duration_ms\":6000", 40);
    assert_no_violations(r);
    assert_int_equal(vt_jint(r, "webhook.status"), 200);
    assert_string_equal(closed_by(r), "client");
    /* greeting audio reaches the caller first, and fast (pre-warmed provider) */
    long long first = vt_jint(r, "received.first_media_ms");
    assert_true(first >= 0 && first < 1500);
    /* agent audio: 600+200+300+200+400 ms at least = 13600 bytes */
    assert_true(vt_jint(r, "received.media_bytes") >= 13600);
    /* one mark per ~100 ms of agent audio, echoed back */
    long long marks = vt_jint(r, "received.marks");
    assert_true(marks >= 12 && marks <= 30);
    assert_true(vt_jint(r, "sent.marks_echoed") >= marks - 2);
    json_decref(r);

    json_t *log = vt_oai_log(&t.peer);
    /* caller audio reached the provider (held only until ready) */
    assert_true(vt_oai_count_in(log, "input_audio_buffer.append") >= 200);
    /* greeted by first name */
    json_t *g = vt_oai_nth_in(log, "conversation.item.create", 0);
    char *gs = json_dumps(g, 0);
    assert_non_null(strstr(gs, "first name Sarah"));
    free(gs);
    /* own claim: status; another person's: refused like a missing one; callback booked */
    const char *own = fn_output(log, "call_own");
    const char *other = fn_output(log, "call_other");
    const char *cb = fn_output(log, "call_cb");
    assert_non_null(own);
    assert_non_null(other);
    assert_non_null(cb);
    assert_non_null(strstr(own, "\"success\":true"));
    assert_non_null(strstr(own, "in_progress"));
    assert_non_null(strstr(other, "\"success\":false"));
    assert_null(strstr(other, "submitted"));
    assert_non_null(strstr(cb, "\"success\":true"));
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);

    assert_true(vt_srv_log_wait(&t.srv, "ended (caller_hangup)", 3000));
    char *slog = vt_srv_log(&t.srv);
    assert_null(strstr(slog, SARAH)); /* phones are masked in every log line */
    assert_non_null(strstr(slog, "+44*******001"));
    free(slog);
    poll(NULL, 0, 300);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' "
                             "AND source <> 'voice_fallback'",
                             sid),
                     1);
    assert_int_equal(sql_int(&t,
                             "SELECT actions_count FROM voice_calls WHERE call_sid = '%s' "
                             "AND provider = 'openai' AND end_reason = 'caller_hangup' "
                             "AND user_id = 1 AND ended_at IS NOT NULL",
                             sid),
                     3);
    char *pm = vt_srv_sql_text(&t.srv, "SELECT phone_masked FROM voice_calls");
    assert_non_null(pm);
    assert_null(strstr(pm, "900001"));
    free(pm);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM voice_action_logs WHERE call_sid = '%s' "
                             "AND provider = 'openai'",
                             sid),
                     3);
    char *m = NULL;
    assert_int_equal(vt_http(t.srv.port, "GET", "/metrics", NULL, NULL, 0, &m), 200);
    assert_non_null(
        strstr(m, "voice_actions_total{action=\"check_claim_details\",outcome=\"success\"} 1"));
    assert_non_null(
        strstr(m, "voice_actions_total{action=\"check_claim_details\",outcome=\"failure\"} 1"));
    assert_non_null(
        strstr(m, "voice_actions_total{action=\"schedule_callback\",outcome=\"success\"} 1"));
    assert_non_null(strstr(m, "voice_calls_total 1"));
    free(m);
    e2e_stop(&t);
}

static void test_e2e_tool_call_budget_is_enforced_per_call(void **state)
{
    (void)state;
    struct e2e t;
    const char *sid = "CA00000000000000000000000000000e11";
    char when[64], script[sizeof SCRIPT_TOOLS + 64];
    bookable_time(when, sizeof when);
    snprintf(script, sizeof script, SCRIPT_TOOLS, when);
    const char *extra[] = {"MAX_TOOL_CALLS=2", NULL};
    e2e_start(&t, script, extra);
    json_t *r = call(&t, sid, "\"duration_ms\":6000", 40);
    assert_no_violations(r);
    json_decref(r);
    json_t *log = vt_oai_log(&t.peer);
    const char *cb = fn_output(log, "call_cb");
    assert_non_null(fn_output(log, "call_own"));
    assert_non_null(cb);
    /* the third call of the call is refused, and the agent is told so */
    assert_non_null(strstr(cb, "\"success\":false"));
    assert_non_null(strstr(cb, "budget_exceeded"));
    json_decref(log);
    assert_true(vt_srv_log_wait(&t.srv, "tool-call budget", 2000));
    assert_int_equal(sql_int(&t, "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s'", sid),
                     0);
    e2e_stop(&t);
}

static void test_e2e_withheld_caller_is_served_without_identity(void **state)
{
    (void)state;
    struct e2e t;
    const char *sid = "CA00000000000000000000000000000e14";
    const char *script =
        "{\"rules\":["
        " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":300}}]},"
        " {\"on\":\"audio\",\"bytes\":4000,\"do\":[{\"response\":{\"audio_ms\":100,"
        "   \"calls\":[{\"name\":\"check_claim_details\",\"arguments\":{\"claim_reference\":"
        "   \"RMC-1001\"},\"call_id\":\"call_anon\"}]}}]},"
        " {\"on\":\"response.create\",\"times\":-1,\"do\":[{\"response\":{\"audio_ms\":200}}]}"
        "]}";
    e2e_start(&t, script, NULL);
    json_t *r = call(&t, sid, "\"from\":\"\",\"duration_ms\":3000", 30);
    assert_no_violations(r);
    assert_string_equal(closed_by(r), "client");
    json_t *params = json_object_get(json_object_get(r, "webhook"), "params");
    assert_string_equal(json_string_value(json_object_get(params, "from")), "withheld");
    assert_true(vt_jint(r, "received.media_bytes") >= 2400);
    json_decref(r);
    json_t *log = vt_oai_log(&t.peer);
    /* greeted without a name; the model cannot act for nobody */
    char *g = json_dumps(vt_oai_nth_in(log, "conversation.item.create", 0), 0);
    assert_null(strstr(g, "first name"));
    free(g);
    const char *o = fn_output(log, "call_anon");
    assert_non_null(o);
    assert_non_null(strstr(o, "\"success\":false"));
    assert_null(strstr(o, "in_progress"));
    json_decref(log);
    assert_true(vt_srv_log_wait(&t.srv, "ended (caller_hangup)", 3000));
    poll(NULL, 0, 300);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM voice_calls WHERE call_sid = '%s' AND "
                             "phone_masked = 'withheld' AND user_id IS NULL",
                             sid),
                     1);
    e2e_stop(&t);
}

static void test_e2e_provider_sending_garbage_ends_the_call_with_fallback(void **state)
{
    (void)state;
    struct e2e t;
    const char *sid = "CA00000000000000000000000000000e15";
    e2e_start(
        &t,
        "{\"echo\":true,\"rules\":[{\"on\":\"audio\",\"bytes\":4000,\"do\":[{\"malformed\":12}]}]}",
        NULL);
    json_t *r = call(&t, sid, "\"duration_ms\":5000", 30);
    assert_no_violations(r);
    assert_string_equal(closed_by(r), "server");
    json_decref(r);
    assert_true(vt_srv_log_wait(&t.srv, "voice agent unavailable (openai protocol", 2000));
    poll(NULL, 0, 300);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' AND "
                             "source = 'voice_fallback'",
                             sid),
                     1);
    e2e_stop(&t);
}

static void test_e2e_provider_oversized_message_ends_only_that_call(void **state)
{
    (void)state;
    struct e2e t;
    struct vt_call other, victim;
    e2e_start(&t, "{\"echo\":true}", NULL);
    /* call A (older) keeps talking; call B (newest) gets a 3 MB event from its provider */
    char *sa = spec_for(&t, "CA00000000000000000000000000000e17",
                        "\"duration_ms\":5000,\"audio\":\"seq\",\"from\":\"+447700900002\"");
    char *sb = spec_for(&t, "CA00000000000000000000000000000e16", "\"duration_ms\":4000");
    assert_int_equal(vt_call_start(&other, sa), 0);
    assert_true(vt_srv_log_wait(
        &t.srv, "call=CA00000000000000000000000000000e17 provider openai ready", 5000));
    assert_int_equal(vt_call_start(&victim, sb), 0);
    free(sa);
    free(sb);
    assert_true(vt_srv_log_wait(
        &t.srv, "call=CA00000000000000000000000000000e16 provider openai ready", 5000));
    poll(NULL, 0, 300);
    const char *steps = "[{\"big\":3000000}]";
    int st = vt_http(t.peer.port, "POST", "/control/last", NULL, steps, strlen(steps), NULL);
    assert_true(st == 200 || st == 202);
    json_t *rb = vt_call_wait(&victim, 30);
    json_t *ra = vt_call_wait(&other, 30);
    assert_non_null(rb);
    assert_non_null(ra);
    assert_no_violations(rb);
    assert_string_equal(closed_by(rb), "server");
    assert_no_violations(ra);
    assert_string_equal(closed_by(ra), "client");
    assert_true(vt_jint(ra, "rtt.n") >= 150);
    /* generous for a loaded CI machine under ASan; a stalled loop shows seconds */
    assert_true(vt_jint(ra, "rtt.max") < 1000);
    json_decref(ra);
    json_decref(rb);
    assert_true(vt_srv_log_wait(&t.srv, "voice agent unavailable (openai protocol", 1000));
    poll(NULL, 0, 200);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' AND "
                             "source = 'voice_fallback'",
                             "CA00000000000000000000000000000e16"),
                     1);
    assert_int_equal(sql_int(&t, "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s'",
                             "CA00000000000000000000000000000e17"),
                     0);
    e2e_stop(&t);
}

/* ---- provider start-up ---- */

static void test_e2e_cold_stream_holds_caller_audio_until_ready(void **state)
{
    (void)state;
    struct e2e t;
    char tok[TW_TOKEN_MAX], extra[600];
    const char *sid = "CA00000000000000000000000000000e12";
    use_localhost = true; /* and the provider host is resolved off the loop */
    e2e_start(&t, "{}", NULL);
    use_localhost = false;
    /* no webhook: nothing pre-warmed, the provider connects when the stream starts */
    tw_stream_token("e2e-secret", 10, sid, SARAH, time(NULL) + 60, tok, sizeof tok);
    snprintf(extra, sizeof extra,
             "\"skip_webhook\":{\"params\":{\"from\":\"" SARAH "\",\"callSid\":\"%s\","
             "\"token\":\"%s\"}},\"duration_ms\":1500",
             sid, tok);
    json_t *r = call(&t, sid, extra, 30);
    assert_no_violations(r);
    assert_string_equal(closed_by(r), "client");
    long long sent = vt_jint(r, "sent.media");
    json_decref(r);
    assert_true(vt_srv_log_wait(&t.srv, "ended (caller_hangup)", 3000));
    /* every caller frame reached the provider: the ones sent while it connected were held */
    json_t *log = vt_oai_log(&t.peer);
    assert_int_equal(vt_oai_count_in(log, "input_audio_buffer.append"), sent);
    json_decref(log);
    char *slog = vt_srv_log(&t.srv);
    assert_non_null(strstr(slog, "resolved localhost -> 127.0.0.1"));
    assert_non_null(strstr(slog, "(cold)"));
    free(slog);
    e2e_stop(&t);
}

static void test_e2e_provider_not_ready_in_time_falls_back(void **state)
{
    (void)state;
    struct e2e t;
    const char *sid = "CA00000000000000000000000000000e13";
    const char *extra[] = {"PROVIDER_CONNECT_TIMEOUT_MS=800", NULL};
    e2e_start(&t, "{\"ignore_session_update\":true}", extra);
    json_t *r = call(&t, sid, "\"duration_ms\":5000", 30);
    assert_string_equal(closed_by(r), "server");
    assert_true(vt_jint(r, "ws.close_ms") < 1500);
    assert_int_equal(vt_jint(r, "received.media"), 0);
    json_decref(r);
    assert_true(vt_srv_log_wait(&t.srv, "not ready within PROVIDER_CONNECT_TIMEOUT_MS=800", 1000));
    poll(NULL, 0, 300);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' AND "
                             "source = 'voice_fallback'",
                             sid),
                     1);
    char *m = NULL;
    vt_http(t.srv.port, "GET", "/metrics", NULL, NULL, 0, &m);
    assert_non_null(
        strstr(m, "voice_provider_errors_total{provider=\"openai\",reason=\"timeout\"} 1"));
    free(m);
    e2e_stop(&t);
}

/* ---- barge-in ---- */

static void test_e2e_barge_in_clears_and_truncates_at_heard_ms(void **state)
{
    (void)state;
    struct e2e t;
    const char *script =
        "{\"rules\":["
        " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":4000,"
        "   \"chunk_ms\":100,\"pace_ms\":100,\"transcript\":\"A long "
        "greeting.\",\"wait\":false}}]},"
        " {\"on\":\"audio\",\"bytes\":12000,\"do\":[{\"speech_started\":true}]}"
        "]}";
    e2e_start(&t, script, NULL);
    json_t *r = call(&t, "CA00000000000000000000000000000e02", "\"duration_ms\":4000", 30);
    assert_no_violations(r);
    assert_int_equal(vt_jint(r, "received.clears"), 1);
    /* marks still queued at the clear came back at once and counted as flushed */
    assert_true(vt_jint(r, "sent.flushed_echoes") >= 1);
    json_decref(r);

    json_t *log = vt_oai_log(&t.peer);
    json_t *tr = vt_oai_nth_in(log, "conversation.item.truncate", 0);
    assert_non_null(tr);
    long long heard = json_integer_value(json_object_get(tr, "audio_end_ms"));
    /* speech started ~1.5 s after ready; the greeting began playing at about the same time */
    fprintf(stderr, "barge-in: truncate audio_end_ms=%lld\n", heard);
    assert_true(heard >= 1000 && heard <= 1900); /* ~1.5 s of the greeting had played */
    /* ... and it names the greeting's item */
    const char *greet_item = NULL;
    size_t i;
    json_t *rec;
    json_array_foreach(log, i, rec)
    {
        json_t *ev = json_object_get(rec, "ev");
        const char *dir = json_string_value(json_object_get(rec, "dir"));
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (dir && type && !strcmp(dir, "out") && !strcmp(type, "response.output_audio.delta")) {
            greet_item = json_string_value(json_object_get(ev, "item_id"));
            break;
        }
    }
    assert_non_null(greet_item);
    assert_string_equal(json_string_value(json_object_get(tr, "item_id")), greet_item);
    assert_int_equal(vt_oai_errors(log, ""), 0);
    json_decref(log);
    assert_true(vt_srv_log_wait(&t.srv, "barge-in: clear sent", 1000));
    e2e_stop(&t);
}

/* ---- malformed and oversized input ---- */

static void test_e2e_malformed_messages_are_ignored_and_oversize_closes_one_call(void **state)
{
    (void)state;
    struct e2e t;
    e2e_start(
        &t,
        "{\"echo\":true,\"rules\":[{\"on\":\"audio\",\"bytes\":3200,\"do\":[{\"malformed\":2},"
        "{\"send\":{\"type\":\"response.output_audio.delta\",\"response_id\":\"resp_x\","
        "\"item_id\":\"item_x\",\"output_index\":0,\"content_index\":0,"
        "\"delta\":\"AAAA\\\"},{\\\"event\\\":\\\"x\"}}]}]}",
        NULL);
    struct vt_call big;
    char *spec = spec_for(&t, "CA00000000000000000000000000000e04",
                          "\"duration_ms\":4000,\"events\":[{\"at\":1500,\"big\":70000}]");
    assert_int_equal(vt_call_start(&big, spec), 0);
    free(spec);
    json_t *r = call(&t, "CA00000000000000000000000000000e03",
                     "\"duration_ms\":4000,\"audio\":\"seq\",\"events\":["
                     "{\"at\":800,\"raw\":\"this is not json\"},{\"at\":900,\"raw\":\"[1,2,3]\"},"
                     "{\"at\":1000,\"raw\":\"{\\\"event\\\":\\\"bogus\\\"}\"},"
                     "{\"at\":1100,\"wrong_sid\":true},{\"at\":1200,\"binary\":true},"
                     "{\"at\":1300,\"dtmf\":\"5\"}]",
                     30);
    /* the call went on: the caller hung up, echoed audio kept flowing after the junk */
    assert_no_violations(r);
    assert_string_equal(closed_by(r), "client");
    assert_true(vt_jint(r, "rtt.n") >= 100);
    json_decref(r);
    json_t *rb = vt_call_wait(&big, 30);
    assert_non_null(rb);
    assert_string_equal(closed_by(rb), "server");
    long long cms = vt_jint(rb, "ws.close_ms");
    assert_true(cms >= 1400 && cms < 2500);
    json_decref(rb);
    char *log = vt_srv_log(&t.srv);
    assert_non_null(strstr(log, "ignored a malformed message from Twilio: invalid JSON"));
    assert_non_null(strstr(log, "ignored a malformed message from Twilio: unknown event"));
    assert_non_null(strstr(log, "media for another streamSid"));
    assert_non_null(strstr(log, "caller pressed 5"));
    /* provider audio that is not base64 never reaches Twilio's JSON (no violation above) */
    assert_non_null(strstr(log, "provider audio is not base64: dropped"));
    assert_non_null(strstr(log, "over 65536 bytes: closing this stream"));
    free(log);
    /* the oversized call gets the fallback promise kept: a callback row */
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' "
                             "AND source = 'voice_fallback'",
                             "CA00000000000000000000000000000e04"),
                     1);
    e2e_stop(&t);
}

/* ---- provider failures ---- */

static void test_e2e_provider_closing_mid_call_falls_back_with_callback(void **state)
{
    (void)state;
    struct e2e t;
    const char *sid = "CA00000000000000000000000000000e05";
    e2e_start(
        &t,
        "{\"echo\":true,\"rules\":[{\"on\":\"audio\",\"bytes\":8000,\"do\":[{\"drop\":true}]}]}",
        NULL);
    json_t *r = call(&t, sid, "\"duration_ms\":6000", 30);
    assert_no_violations(r);
    assert_string_equal(closed_by(r), "server");
    assert_true(vt_jint(r, "webhook.fallback_say") == 1); /* Twilio then says the fallback */
    json_decref(r);
    assert_true(vt_srv_log_wait(&t.srv, "voice agent unavailable", 2000));
    poll(NULL, 0, 300);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' AND "
                             "source = 'voice_fallback' AND user_id = 1 AND reason LIKE 'openai%%'",
                             sid),
                     1);
    char *reason = vt_srv_sql_text(&t.srv, "SELECT end_reason FROM voice_calls WHERE call_sid = "
                                           "'CA00000000000000000000000000000e05'");
    assert_non_null(reason);
    assert_non_null(strstr(reason, "openai"));
    free(reason);
    char *m = NULL;
    vt_http(t.srv.port, "GET", "/metrics", NULL, NULL, 0, &m);
    assert_non_null(
        strstr(m, "voice_provider_errors_total{provider=\"openai\",reason=\"dropped\"} 1"));
    free(m);
    e2e_stop(&t);
}

static void test_e2e_refused_key_falls_back_and_health_says_rejected(void **state)
{
    (void)state;
    struct e2e t;
    /* every handshake refused with 401: the key is wrong */
    e2e_start(&t, "{\"handshake_status\":401}", NULL);
    json_t *r = call(&t, "CA00000000000000000000000000000e07", "\"duration_ms\":3000", 30);
    assert_string_equal(closed_by(r), "server");
    assert_true(vt_jint(r, "ws.close_ms") < 2000);
    json_decref(r);
    assert_true(vt_srv_log_wait(&t.srv, "voice agent unavailable (openai rejected", 2000));
    char *h = NULL;
    assert_int_equal(vt_http(t.srv.port, "GET", "/health", NULL, NULL, 0, &h), 200);
    assert_non_null(strstr(h, "\"openai\":\"rejected\""));
    free(h);
    e2e_stop(&t);
}

static void test_e2e_failover_to_the_other_provider(void **state)
{
    (void)state;
    struct e2e t;
    char gem[128];
    /* gemini first, but its endpoint refuses connections: the call is served by openai */
    snprintf(gem, sizeof gem, "GEMINI_LIVE_URL=ws://127.0.0.1:%d/ws", vt_free_port());
    const char *extra[] = {"VOICE_PROVIDER=gemini", "GEMINI_API_KEY=g-test", gem, NULL};
    e2e_start(&t, "{\"echo\":true}", extra);
    const char *sid = "CA00000000000000000000000000000e08";
    json_t *r = call(&t, sid, "\"duration_ms\":3000,\"audio\":\"seq\"", 30);
    assert_no_violations(r);
    assert_string_equal(closed_by(r), "client");
    assert_true(vt_jint(r, "rtt.n") >= 50);
    json_decref(r);
    assert_true(vt_srv_log_wait(&t.srv, "failing over to openai", 1000));
    poll(NULL, 0, 300);
    assert_int_equal(sql_int(&t,
                             "SELECT COUNT(*) FROM voice_calls WHERE call_sid = '%s' AND "
                             "provider = 'openai'",
                             sid),
                     1);
    e2e_stop(&t);
}

/* ---- the call rows on both database backends ---- */

static void test_e2e_call_rows_on_every_backend(void **state)
{
    (void)state;
    const char *backends[4];
    int nb = vt_db_backends(backends, 4);
    const char *script =
        "{\"rules\":["
        " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":200}}]},"
        " {\"on\":\"audio\",\"bytes\":4000,\"do\":[{\"response\":{\"audio_ms\":100,"
        "   \"calls\":[{\"name\":\"check_claim_details\",\"arguments\":{\"claim_reference\":"
        "   \"RMC-1001\"},\"call_id\":\"call_b\"}]}}]},"
        " {\"on\":\"response.create\",\"times\":1,\"do\":[{\"response\":{\"audio_ms\":100}},"
        "   {\"wait\":300},{\"drop\":true}]}"
        "]}";
    for (int b = 0; b < nb; b++) {
        struct cfg c;
        struct vt_db h;
        struct e2e t;
        vt_db_fresh(backends[b], &c, &h, NULL);
        e2e_start(&t, script, h.env);
        char sid[48];
        snprintf(sid, sizeof sid, "CA0000000000000000000000000000b%d", b);
        json_t *r = call(&t, sid, "\"duration_ms\":6000", 40);
        /* one tool call, then the provider drops: fallback on this backend too */
        assert_string_equal(closed_by(r), "server");
        json_decref(r);
        assert_true(vt_srv_log_wait(&t.srv, "callback requested", 3000));
        poll(NULL, 0, 300);
        struct db *db = vt_db_open(&c, false);
        char q[400];
        snprintf(q, sizeof q,
                 "SELECT COUNT(*) FROM voice_calls WHERE call_sid = '%s' AND provider = 'openai' "
                 "AND actions_count = 1 AND user_id = 1 AND ended_at IS NOT NULL AND end_reason "
                 "LIKE 'openai dropped%%'",
                 sid);
        assert_int_equal(vt_db_int(db, q), 1);
        snprintf(q, sizeof q,
                 "SELECT COUNT(*) FROM missed_calls WHERE call_sid = '%s' AND source = "
                 "'voice_fallback' AND user_id = 1 AND status = 'pending'",
                 sid);
        assert_int_equal(vt_db_int(db, q), 1);
        snprintf(q, sizeof q,
                 "SELECT COUNT(*) FROM voice_action_logs WHERE call_sid = '%s' AND provider = "
                 "'openai' AND action = 'check_claim_details'",
                 sid);
        assert_int_equal(vt_db_int(db, q), 1);
        db_close(db);
        e2e_stop(&t);
        vt_db_cleanup(&h, &c);
    }
}

/* ---- a slow action does not delay other calls ---- */

static void test_e2e_slow_action_does_not_delay_other_calls(void **state)
{
    (void)state;
    struct e2e t;
    char js[512], portenv[64], out[128];
    int sport = vt_free_port();
    snprintf(js, sizeof js, "%s/tests/peers/twilio_faults.js", vt_src());
    snprintf(portenv, sizeof portenv, "%d", sport);
    snprintf(out, sizeof out, "/tmp/vws-faults-%d.txt", (int)getpid());
    const char *fargv[] = {"node", js, portenv, AUTH, NULL};
    pid_t faults = vt_proc_start(fargv, out);
    assert_true(faults > 0);
    char base[96];
    snprintf(base, sizeof base, "TWILIO_API_BASE=http://127.0.0.1:%d", sport);
    /* AccountSid ending 0408: the SMS API reads the request and never answers */
    const char *extra[] = {"ENABLE_REAL_SMS=true",
                           "TWILIO_ACCOUNT_SID=AC00000000000000000000000000000408",
                           "TWILIO_FROM_NUMBER=+442079460123",
                           "SMS_TEST_NUMBERS=" SARAH,
                           "SMS_TIMEOUT=3",
                           base,
                           NULL};
    poll(NULL, 0, 500);
    e2e_start(&t, "{\"echo\":true}", extra);

    /* call A: books a callback whose SMS confirmation hangs */
    struct vt_call a;
    char *spec = spec_for(&t, "CA00000000000000000000000000000e09", "\"duration_ms\":9000");
    assert_int_equal(vt_call_start(&a, spec), 0);
    free(spec);
    assert_true(vt_srv_log_wait(
        &t.srv, "call=CA00000000000000000000000000000e09 provider openai ready", 5000));
    poll(NULL, 0, 800);
    char when[64], steps[512];
    bookable_time(when, sizeof when);
    snprintf(steps, sizeof steps,
             "[{\"echo\":false},{\"wait\":800},{\"response\":{\"audio_ms\":100,\"calls\":[{"
             "\"name\":\"schedule_callback\","
             "\"arguments\":{\"preferred_time\":\"%s\",\"reason\":\"slow sms\"},"
             "\"call_id\":\"call_slow\"}],\"wait\":false}}]",
             when);
    char path[64];
    snprintf(path, sizeof path, "/control/last");
    int st = vt_http(t.peer.port, "POST", path, NULL, steps, strlen(steps), NULL);
    assert_true(st == 200 || st == 202);
    assert_true(vt_srv_log_wait(&t.srv, "tool call schedule_callback (call_slow) queued", 3000));

    /* call B meanwhile: its echoed audio must stay on time */
    json_t *rb = call(&t, "CA00000000000000000000000000000e10",
                      "\"duration_ms\":4000,\"audio\":\"seq\",\"from\":\"+447700900002\"", 30);
    assert_no_violations(rb);
    long long n = vt_jint(rb, "rtt.n"), mx = vt_jint(rb, "rtt.max");
    fprintf(stderr, "slow-action: other call echo rtt n=%lld max=%lld ms p50=%lld max_gap=%lld\n",
            n, mx, vt_jint(rb, "rtt.p50"), vt_jint(rb, "received.max_gap_ms"));
    assert_true(n >= 100);
    /* The hanging SMS holds its worker for SMS_TIMEOUT (3 s): a loop blocked by it would
     * show gaps of seconds. 1 s leaves room for a loaded CI machine under ASan. */
    assert_true(mx < 1000);
    assert_true(vt_jint(rb, "received.max_gap_ms") < 1000);
    json_decref(rb);

    json_t *ra = vt_call_wait(&a, 30);
    assert_non_null(ra);
    json_decref(ra);
    /* the slow action finished (the SMS failed, the callback stands) */
    json_t *log = vt_oai_log(&t.peer);
    const char *o = fn_output(log, "call_slow");
    if (o)
        fprintf(stderr, "slow action output: %.300s\n", o);
    assert_non_null(o);
    assert_non_null(strstr(o, "\"success\":true"));
    json_error_t je;
    json_t *env = json_loads(o, 0, &je);
    /* it really was slow: the hanging SMS API held it for SMS_TIMEOUT */
    assert_true(json_number_value(json_object_get(env, "execution_time_ms")) >= 2500);
    json_decref(env);
    json_decref(log);
    e2e_stop(&t);
    vt_proc_stop(faults);
    unlink(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_e2e_call_greets_relays_audio_and_runs_tools,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_tool_call_budget_is_enforced_per_call,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_withheld_caller_is_served_without_identity,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_provider_sending_garbage_ends_the_call_with_fallback,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_provider_oversized_message_ends_only_that_call,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_cold_stream_holds_caller_audio_until_ready,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_provider_not_ready_in_time_falls_back,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_barge_in_clears_and_truncates_at_heard_ms,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(
            test_e2e_malformed_messages_are_ignored_and_oversize_closes_one_call,
            vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_provider_closing_mid_call_falls_back_with_callback,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_refused_key_falls_back_and_health_says_rejected,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_failover_to_the_other_provider, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_call_rows_on_every_backend, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_e2e_slow_action_does_not_delay_other_calls,
                                  vt_peers_cleanup_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
