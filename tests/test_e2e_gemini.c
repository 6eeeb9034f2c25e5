/*
 * test_e2e_gemini.c - whole calls on Gemini: the built `voice-ws serve`, the Twilio
 * stand-in placing a call (tests/peers/twilio_caller.js), the Gemini Live stand-in
 * (tests/peers/gemini_standin.js) playing the model, the demo SQLite database.
 *
 *   - the model asks check_requirements for the caller's own claim: the two outstanding
 *     documents come back in the function response; another person's claim is refused
 *     with the same code as a missing one; audit rows and voice_calls say 'gemini';
 *     the caller hears the model's audio (u-law frames) and the model hears the caller
 *     (16 kHz PCM);
 *   - failover: OpenAI refuses the key (OpenAI stand-in, 401), the call completes on
 *     Gemini and voice_calls.provider = 'gemini'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gem_peer.h"
#include "oai_peer.h"
#include "srv_peer.h"
#include "vwstest.h"

#define AUTH "e2e-auth-token-0123456789"
#define PUB "https://voice.example.co.uk"
#define SECRET "e2e-link-secret-0123456789abcdef0123"

/* The model: after 400 ms of caller audio it asks for the caller's requirements, then for
 * someone else's claim, then speaks (a tone) and completes its turn. */
static const char SCRIPT[] =
    "{\"rules\":["
    "{\"on\":\"client_content\",\"do\":[{\"tone\":{\"hz\":500,\"ms\":300,\"turn_complete\":true}}]}"
    ","
    "{\"on\":\"audio\",\"ms\":400,\"do\":[{\"tool_call\":{\"id\":\"fc_req\",\"name\":"
    "\"check_requirements\",\"args\":{\"claim_reference\":\"RMC-1001\"}}}]},"
    "{\"on\":\"tool_response\",\"id\":\"fc_req\",\"do\":[{\"tool_call\":{\"id\":\"fc_other\","
    "\"name\":\"check_claim_details\",\"args\":{\"claim_reference\":\"RMC-2001\"}}}]},"
    "{\"on\":\"tool_response\",\"id\":\"fc_other\",\"do\":[{\"tone\":{\"hz\":800,\"ms\":600,"
    "\"turn_complete\":true}}]}]}";

static char *caller_spec(const struct vt_srv *s, int duration_ms)
{
    char *spec = malloc(1024);
    snprintf(spec, 1024,
             "{\"http\":\"http://127.0.0.1:%d\",\"public_url\":\"" PUB
             "\",\"ws\":\"ws://127.0.0.1:%d\",\"auth_token\":\"" AUTH
             "\",\"from\":\"+447700900001\",\"call_sid\":\"CAe2egemini0000000000000000000001\","
             "\"duration_ms\":%d}",
             s->port, s->port, duration_ms);
    return spec;
}

static json_t *function_output(json_t *log, const char *id)
{
    for (int n = 0;; n++) {
        json_t *m = gem_peer_nth_in(log, "toolResponse", n);
        if (!m)
            return NULL;
        json_t *fr = json_array_get(
            json_object_get(json_object_get(m, "toolResponse"), "functionResponses"), 0);
        const char *fid = json_string_value(json_object_get(fr, "id"));
        if (fid && !strcmp(fid, id))
            return json_object_get(json_object_get(fr, "response"), "output");
    }
}

static void dump(const struct vt_srv *s, const struct gem_peer *g)
{
    char *l = vt_srv_log(s);
    fprintf(stderr, "---- server log ----\n%s\n", l);
    free(l);
    char *e = gem_peer_stderr(g);
    if (*e)
        fprintf(stderr, "---- gemini stand-in stderr ----\n%s\n", e);
    free(e);
}

static void check_call_on_gemini(struct vt_srv *s, struct gem_peer *g, json_t *report)
{
    assert_non_null(report);
    json_t *viol = json_object_get(report, "violations");
    if (json_array_size(viol)) {
        char *v = json_dumps(viol, 0);
        fprintf(stderr, "twilio violations: %s\n", v);
        free(v);
    }
    assert_int_equal(json_array_size(viol), 0);
    assert_int_equal(vt_jint(report, "webhook.status"), 200);
    /* the caller heard the model: greeting (300 ms) + answer (600 ms) as 20 ms u-law frames */
    assert_true(vt_jint(report, "received.media") >= 30);

    json_t *log = gem_peer_log(g);
    assert_null(gem_peer_kind(log, "reject", 0));
    /* the greeting for a caller on file names her */
    json_t *cc = gem_peer_nth_in(log, "clientContent", 0);
    char *cct = json_dumps(cc, 0);
    assert_non_null(strstr(cct, "Sarah"));
    free(cct);

    json_t *out = function_output(log, "fc_req");
    if (!out)
        dump(s, g);
    assert_non_null(out);
    assert_true(json_is_true(json_object_get(out, "success")));
    json_t *data = json_object_get(out, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "count")), 2);
    char *dt = json_dumps(data, 0);
    assert_non_null(strstr(dt, "id_proof"));
    assert_non_null(strstr(dt, "bank_statement"));
    free(dt);
    assert_true(json_is_number(json_object_get(out, "execution_time_ms")));

    json_t *other = function_output(log, "fc_other");
    assert_non_null(other);
    assert_true(json_is_false(json_object_get(other, "success")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(other, "error"), "code")),
                        "not_found");
    char *ot = json_dumps(other, 0);
    assert_null(strstr(ot, "Patel")); /* nothing about the other person leaks */
    assert_null(strstr(ot, "signed_loa"));
    free(ot);

    /* the model heard the caller: 16 kHz PCM */
    size_t n;
    int rate = 0;
    int16_t *pcm = gem_peer_audio(log, 0, &n, &rate);
    assert_int_equal(rate, 16000);
    assert_true(n > 16000);
    free(pcm);
    json_decref(log);

    assert_int_equal(vt_srv_sql_int(s,
                                    "SELECT COUNT(*) FROM voice_action_logs WHERE provider = "
                                    "'gemini' AND action = 'check_requirements' AND success = 1"),
                     1);
    assert_int_equal(vt_srv_sql_int(s,
                                    "SELECT COUNT(*) FROM voice_action_logs WHERE provider = "
                                    "'gemini' AND action = 'check_claim_details' AND success = 0"),
                     1);
}

static bool wait_call_row(struct vt_srv *s)
{
    for (int i = 0; i < 100; i++) {
        if (vt_srv_sql_int(s, "SELECT COUNT(*) FROM voice_calls WHERE ended_at IS NOT NULL") >= 1)
            return true;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_e2e_gemini_call_runs_actions(void **state)
{
    (void)state;
    struct gem_peer g;
    struct vt_srv s;
    char url[320];
    assert_int_equal(gem_peer_start(&g, SCRIPT, "test-key"), 0);
    snprintf(url, sizeof url, "GEMINI_LIVE_URL=%s", g.url);
    const char *env[] = {"VOICE_PROVIDER=gemini",
                         "GEMINI_API_KEY=test-key",
                         url,
                         "TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=" PUB,
                         "LINK_SECRET=" SECRET,
                         "LOG_LEVEL=info",
                         NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    char *spec = caller_spec(&s, 4000);
    json_t *r = vt_call_run(spec, 30);
    free(spec);
    check_call_on_gemini(&s, &g, r);
    json_decref(r);
    assert_true(wait_call_row(&s));
    char *prov = vt_srv_sql_text(&s, "SELECT provider FROM voice_calls");
    assert_non_null(prov);
    assert_string_equal(prov, "gemini");
    free(prov);
    assert_int_equal(vt_srv_stop(&s, 15, 8000), 0); /* clean exit, no sanitizer report */
    gem_peer_stop(&g);
}

static void test_e2e_gemini_failover_from_openai(void **state)
{
    (void)state;
    struct gem_peer g;
    struct vt_oai o;
    struct vt_srv s;
    char gurl[320], ourl[200];
    assert_int_equal(gem_peer_start(&g, SCRIPT, "test-key"), 0);
    assert_int_equal(vt_oai_start(&o, NULL, "sk-right"), 0);
    snprintf(gurl, sizeof gurl, "GEMINI_LIVE_URL=%s", g.url);
    snprintf(ourl, sizeof ourl, "OPENAI_REALTIME_URL=%s", o.url);
    const char *env[] = {"VOICE_PROVIDER=auto",
                         "OPENAI_API_KEY=sk-wrong",
                         ourl,
                         "GEMINI_API_KEY=test-key",
                         gurl,
                         "TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=" PUB,
                         "LINK_SECRET=" SECRET,
                         "LOG_LEVEL=info",
                         NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    char *spec = caller_spec(&s, 4000);
    json_t *r = vt_call_run(spec, 30);
    free(spec);
    check_call_on_gemini(&s, &g, r);
    json_decref(r);
    /* OpenAI was tried first and refused the key */
    json_t *olog = vt_oai_log(&o);
    int handshakes = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(olog, i, rec)
    {
        const char *k = json_string_value(json_object_get(rec, "kind"));
        handshakes += k && !strcmp(k, "handshake");
    }
    assert_true(handshakes >= 1);
    json_decref(olog);
    char *slog = vt_srv_log(&s);
    assert_non_null(strstr(slog, "failing over to gemini"));
    assert_null(strstr(slog, "sk-wrong")); /* keys never logged */
    assert_null(strstr(slog, "test-key"));
    free(slog);
    assert_true(wait_call_row(&s));
    char *prov = vt_srv_sql_text(&s, "SELECT provider FROM voice_calls");
    assert_non_null(prov);
    assert_string_equal(prov, "gemini");
    free(prov);
    assert_int_equal(vt_srv_stop(&s, 15, 8000), 0); /* clean exit, no sanitizer report */
    vt_oai_stop(&o);
    gem_peer_stop(&g);
}

/* GEMINI_AFFECTIVE_DIALOG=true on gemini-3.8-live: serve refuses to start, saying why. */
static void test_e2e_gemini_serve_refuses_affective_dialog_on_38(void **state)
{
    (void)state;
    char *dir = vt_tmpdir();
    char port[32];
    snprintf(port, sizeof port, "PORT=%d", vt_free_port());
    const char *env[] = {"VOICE_PROVIDER=gemini", "GEMINI_API_KEY=test-key",
                         "GEMINI_AFFECTIVE_DIALOG=true", port, NULL};
    const char *argv[] = {vt_bin(), "serve", NULL};
    struct vt_run r;
    assert_int_equal(vt_run(&r, dir, env, argv, 20), 0);
    assert_int_equal(r.status, 1);
    assert_non_null(
        strstr(r.err, "GEMINI_AFFECTIVE_DIALOG=true is not available on gemini-3.8-live"));
    assert_non_null(strstr(r.err, "2.5 native-audio"));
    assert_null(strstr(r.err, "test-key"));
    vt_run_free(&r);
    vt_rmdir(dir);
    free(dir);
}

/* Serve on Gemini with a script; returns the started server (env extras may be NULL). */
static void start_gemini(struct vt_srv *s, struct gem_peer *g, const char *script)
{
    static char url[320];
    assert_int_equal(gem_peer_start(g, script, "test-key"), 0);
    snprintf(url, sizeof url, "GEMINI_LIVE_URL=%s", g->url);
    const char *env[] = {"VOICE_PROVIDER=gemini",
                         "GEMINI_API_KEY=test-key",
                         url,
                         "TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=" PUB,
                         "LINK_SECRET=" SECRET,
                         "LOG_LEVEL=info",
                         NULL};
    assert_int_equal(vt_srv_start(s, env), 0);
}

static void no_violations(json_t *r)
{
    assert_non_null(r);
    json_t *viol = json_object_get(r, "violations");
    if (json_array_size(viol)) {
        char *v = json_dumps(viol, 0);
        fprintf(stderr, "twilio violations: %s\n", v);
        free(v);
    }
    assert_int_equal(json_array_size(viol), 0);
}

/* Gemini's interrupted reaches Twilio as a clear: the rest of a long answer is not played. */
static void test_e2e_gemini_barge_in_clears_twilio(void **state)
{
    (void)state;
    struct gem_peer g;
    struct vt_srv s;
    start_gemini(
        &s, &g,
        "{\"rules\":[{\"on\":\"client_content\",\"do\":[{\"tone\":{\"hz\":500,"
        "\"ms\":4000}}]},{\"on\":\"audio\",\"ms\":1500,\"do\":[{\"interrupted\":true}]}]}");
    char *spec = caller_spec(&s, 4000);
    json_t *r = vt_call_run(spec, 30);
    free(spec);
    no_violations(r);
    assert_true(vt_jint(r, "received.clears") >= 1);
    long long media = vt_jint(r, "received.media");
    assert_true(media > 10);  /* some of the answer played ... */
    assert_true(media < 170); /* ... not all 200 frames: the rest was dropped */
    json_decref(r);
    json_t *log = gem_peer_log(&g);
    assert_null(gem_peer_kind(log, "reject", 0));
    json_decref(log);
    assert_int_equal(vt_srv_stop(&s, 15, 8000), 0);
    gem_peer_stop(&g);
}

/* goAway mid-call: the server's call carries on over a resumed Gemini session; a tool call
 * on the new socket works; the caller sees one uninterrupted stream. */
static void test_e2e_gemini_resumption_mid_call(void **state)
{
    (void)state;
    struct gem_peer g;
    struct vt_srv s;
    start_gemini(&s, &g,
                 "{\"rules\":[{\"on\":\"audio\",\"conn\":1,\"ms\":800,\"do\":[{\"go_away\":"
                 "{\"time_left_ms\":5000}}]},"
                 "{\"on\":\"setup\",\"resumed\":true,\"do\":[{\"wait\":200,\"tool_call\":{\"id\":"
                 "\"fc_req\",\"name\":\"check_requirements\",\"args\":{\"claim_reference\":"
                 "\"RMC-1001\"}}}]},"
                 "{\"on\":\"tool_response\",\"id\":\"fc_req\",\"do\":[{\"tone\":{\"hz\":800,"
                 "\"ms\":400,\"turn_complete\":true}}]}]}");
    char *spec = caller_spec(&s, 4500);
    json_t *r = vt_call_run(spec, 30);
    free(spec);
    no_violations(r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by")),
                        "client"); /* the caller hung up; the server never dropped the call */
    assert_true(vt_jint(r, "received.media") >= 20);
    json_decref(r);
    json_t *log = gem_peer_log(&g);
    assert_null(gem_peer_kind(log, "reject", 0));
    json_t *s2 = json_object_get(gem_peer_nth_in(log, "setup", 1), "setup");
    assert_non_null(
        json_string_value(json_object_get(json_object_get(s2, "sessionResumption"), "handle")));
    json_t *out = function_output(log, "fc_req");
    assert_non_null(out);
    assert_true(json_is_true(json_object_get(out, "success")));
    assert_true(gem_peer_count_in(log, "realtimeInput", 2) > 10); /* caller audio went on */
    json_decref(log);
    assert_true(wait_call_row(&s));
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM voice_calls WHERE provider = "
                                        "'gemini'"),
                     1);
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM missed_calls"), 0);
    assert_true(vt_srv_log_wait(&s, "Gemini session resumed", 1000));
    assert_int_equal(vt_srv_stop(&s, 15, 8000), 0);
    gem_peer_stop(&g);
}

/* Gemini drops the call with no resumption handle: the caller gets the fallback and a
 * callback row, as with any provider failure. */
static void test_e2e_gemini_drop_without_handle_falls_back(void **state)
{
    (void)state;
    struct gem_peer g;
    struct vt_srv s;
    start_gemini(&s, &g,
                 "{\"no_handles\":true,\"rules\":[{\"on\":\"audio\",\"ms\":600,\"do\":[{\"close\":"
                 "{\"code\":1011,\"reason\":\"Internal error occurred.\"}}]}]}");
    char *spec = caller_spec(&s, 5000);
    json_t *r = vt_call_run(spec, 30);
    free(spec);
    no_violations(r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by")),
                        "server");
    json_decref(r);
    assert_true(vt_srv_log_wait(&s, "voice agent unavailable", 3000));
    assert_true(wait_call_row(&s));
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM missed_calls WHERE user_id = 1 AND "
                                        "source = 'voice_fallback' AND reason LIKE 'gemini%'"),
                     1);
    char *reason = vt_srv_sql_text(&s, "SELECT end_reason FROM voice_calls");
    assert_non_null(reason);
    assert_non_null(strstr(reason, "gemini"));
    free(reason);
    assert_int_equal(vt_srv_stop(&s, 15, 8000), 0);
    gem_peer_stop(&g);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2e_gemini_call_runs_actions),
        cmocka_unit_test(test_e2e_gemini_failover_from_openai),
        cmocka_unit_test(test_e2e_gemini_serve_refuses_affective_dialog_on_38),
        cmocka_unit_test(test_e2e_gemini_barge_in_clears_twilio),
        cmocka_unit_test(test_e2e_gemini_resumption_mid_call),
        cmocka_unit_test(test_e2e_gemini_drop_without_handle_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
