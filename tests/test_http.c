/*
 * test_http.c - the server's HTTP side and the Twilio security pieces:
 * signature vectors (twilio.md §2.2 and twilio-python's), the stream token
 * (accept / forged / expired / changed from), the webhook (403 on a bad
 * signature, TwiML shape, withheld caller), /health, /metrics, the action
 * endpoint's auth, 404/405/413, /links/verify, and the SIGTERM drain.
 * Runs the real binary (`voice-ws serve`) on a demo SQLite database.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "actions/links.h"
#include "core/cfg.h"
#include "core/err.h"
#include "db/db.h"
#include "net/twilio.h"
#include "oai_peer.h"
#include "srv_peer.h"
#include "vwstest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUTH "0123456789abcdef0123456789abcdef"
#define PUB "https://voice.example.co.uk"
#define SECRET "test-link-secret"

static const char BODY_11[] =
    "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&CallSid="
    "CA11111111111111111111111111111111&CallStatus=ringing&Called=%2B442079460123&Caller=%"
    "2B447700900123&Direction=inbound&From=%2B447700900123&FromCountry=GB&To=%2B442079460123&"
    "ToCountry=GB";

static double mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

/* ---- pure pieces ---- */

static void test_http_signature_matches_twilio_doc_vectors(void **state)
{
    (void)state;
    struct tw_form f;
    char sig[32];
    assert_int_equal(tw_form_parse(BODY_11, strlen(BODY_11), &f), 0);
    assert_int_equal(f.n, 11);
    assert_string_equal(tw_form_get(&f, "From"), "+447700900123");
    const char *url = "https://voice.example.co.uk/twilio/voice?site=claims";
    tw_signature(AUTH, url, &f, sig);
    assert_string_equal(sig, "VIrBB6cuX5Z70x+n0/KDZsyH+IM=");
    tw_signature(AUTH, "https://voice.example.co.uk:443/twilio/voice?site=claims", &f, sig);
    assert_string_equal(sig, "ZO7LMD6n+RiH6Q+KS/ZF2NDnuqo=");
    /* accepted with and without :443, whichever way the URL is configured */
    assert_true(tw_signature_valid(AUTH, url, &f, "VIrBB6cuX5Z70x+n0/KDZsyH+IM="));
    assert_true(tw_signature_valid(AUTH, url, &f, "ZO7LMD6n+RiH6Q+KS/ZF2NDnuqo="));
    assert_true(tw_signature_valid(AUTH, "https://voice.example.co.uk:443/twilio/voice?site=claims",
                                   &f, "VIrBB6cuX5Z70x+n0/KDZsyH+IM="));
    /* the doc's wrong variants never validate */
    assert_false(tw_signature_valid(AUTH, url, &f, "kKkRzfLOt1Loayytps6mctt+xEU="));
    assert_false(tw_signature_valid(AUTH, url, &f, "MF+40FpbmhkNyTLMlhpiGqPiyK0="));
    assert_false(tw_signature_valid(AUTH, url, &f, "8S2Os8wDlkeRICZGFyDiPCZCFxE="));
    assert_false(tw_signature_valid(AUTH, url, &f, ""));
    assert_false(tw_signature_valid(AUTH, url, &f, NULL));
    assert_false(tw_signature_valid("wrong-token", url, &f, "VIrBB6cuX5Z70x+n0/KDZsyH+IM="));
    tw_form_free(&f);
    /* no-body URL (a WebSocket upgrade) */
    tw_signature(AUTH, "wss://voice.example.co.uk/twilio/media", NULL, sig);
    assert_string_equal(sig, "D7WqpJ+mv7aayu65I+7a4/hhx8A=");
}

static void test_http_signature_matches_twilio_python_vector(void **state)
{
    (void)state;
    const char body[] = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%"
                        "2B14158675309&To=%2B18005551212";
    struct tw_form f;
    char sig[32];
    assert_int_equal(tw_form_parse(body, strlen(body), &f), 0);
    tw_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &f, sig);
    assert_string_equal(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    tw_form_free(&f);
}

static void test_http_form_decoding_follows_form_rules(void **state)
{
    (void)state;
    struct tw_form f;
    const char b[] = "A=a+b&B=%2B44&C=&D&&E=x%3Dy";
    assert_int_equal(tw_form_parse(b, strlen(b), &f), 0);
    assert_int_equal(f.n, 5);
    assert_string_equal(tw_form_get(&f, "A"), "a b");
    assert_string_equal(tw_form_get(&f, "B"), "+44");
    assert_string_equal(tw_form_get(&f, "C"), "");
    assert_string_equal(tw_form_get(&f, "D"), "");
    assert_string_equal(tw_form_get(&f, "E"), "x=y");
    tw_form_free(&f);
    assert_int_not_equal(tw_form_parse("A=%2", 4, &f), 0);
    tw_form_free(&f);
    assert_int_not_equal(tw_form_parse("A=%zz", 5, &f), 0);
    tw_form_free(&f);
}

static void test_http_stream_token_is_bound_to_call_from_and_expiry(void **state)
{
    (void)state;
    char tok[TW_TOKEN_MAX];
    const char *sid = "CA11111111111111111111111111111111";
    long long now = 1800000000;
    assert_int_equal(
        tw_stream_token(SECRET, strlen(SECRET), sid, "+447700900001", now + 60, tok, sizeof tok),
        0);
    assert_int_equal(tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900001", tok, now),
                     TW_TOKEN_OK);
    /* changed from, changed call, other key */
    assert_int_equal(tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900002", tok, now),
                     TW_TOKEN_FORGED);
    assert_int_equal(tw_stream_token_check(SECRET, strlen(SECRET),
                                           "CA22222222222222222222222222222222", "+447700900001",
                                           tok, now),
                     TW_TOKEN_FORGED);
    assert_int_equal(tw_stream_token_check("other", 5, sid, "+447700900001", tok, now),
                     TW_TOKEN_FORGED);
    /* a later expiry written into the token breaks the MAC */
    char tampered[TW_TOKEN_MAX];
    snprintf(tampered, sizeof tampered, "%lld%s", now + 9999, strchr(tok, '.'));
    assert_int_equal(
        tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900001", tampered, now),
        TW_TOKEN_FORGED);
    /* expired */
    assert_int_equal(
        tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900001", tok, now + 61),
        TW_TOKEN_EXPIRED);
    /* malformed */
    assert_int_equal(tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900001", "", now),
                     TW_TOKEN_MALFORMED);
    assert_int_equal(
        tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900001", "abc.def", now),
        TW_TOKEN_MALFORMED);
    assert_int_equal(tw_stream_token_check(SECRET, strlen(SECRET), sid, "+447700900001", NULL, now),
                     TW_TOKEN_MALFORMED);
}

static void test_http_caller_id_withheld_values(void **state)
{
    (void)state;
    char out[24];
    tw_caller_from("+447700900001", out, sizeof out);
    assert_string_equal(out, "+447700900001");
    const char *withheld[] = {"anonymous", "Restricted", "", "client:alice", "+44abc", "+1", NULL};
    for (int i = 0; withheld[i]; i++) {
        tw_caller_from(withheld[i], out, sizeof out);
        assert_string_equal(out, "");
    }
    tw_caller_from(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

/* ---- the running server ---- */

/* A provider is configured (so webhooks answer with a stream) but nothing listens there:
 * these tests are about the HTTP side, not the call. */
static const char *const base_env[] = {
    "TWILIO_AUTH_TOKEN=" AUTH,
    "PUBLIC_URL=" PUB,
    "LINK_SECRET=" SECRET,
    "ACTIONS_API_TOKEN=act-token-123",
    "LOG_LEVEL=debug",
    "OPENAI_API_KEY=sk-test",
    "OPENAI_REALTIME_URL=ws://127.0.0.1:9/v1/realtime",
    NULL,
};

static int post_webhook(struct vt_srv *s, const char *body, const char *sig, char **resp)
{
    char h[128];
    snprintf(h, sizeof h, "X-Twilio-Signature: %s", sig ? sig : "");
    const char *hdr[] = {"Content-Type: application/x-www-form-urlencoded", h, NULL};
    return vt_http(s->port, "POST", "/incoming-call", sig ? hdr : hdr + 1, body, strlen(body),
                   resp);
}

static void sign_body(const char *url, const char *body, char sig[32])
{
    struct tw_form f;
    assert_int_equal(tw_form_parse(body, strlen(body), &f), 0);
    tw_signature(AUTH, url, &f, sig);
    tw_form_free(&f);
}

static void test_http_webhook_checks_signature_and_answers_twiml(void **state)
{
    (void)state;
    struct vt_srv s;
    char sig[32], *resp = NULL;
    assert_int_equal(vt_srv_start(&s, base_env), 0);

    /* good signature over PUBLIC_URL/incoming-call */
    sign_body(PUB "/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, &resp), 200);
    assert_non_null(strstr(resp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert_non_null(
        strstr(resp, "<Connect><Stream url=\"wss://voice.example.co.uk/media-stream\">"));
    assert_non_null(strstr(resp, "<Parameter name=\"from\" value=\"+447700900123\"/>"));
    assert_non_null(
        strstr(resp, "<Parameter name=\"callSid\" value=\"CA11111111111111111111111111111111\"/>"));
    const char *tk = strstr(resp, "<Parameter name=\"token\" value=\"");
    assert_non_null(tk);
    /* the fallback verb comes after </Connect> */
    const char *conn_end = strstr(resp, "</Connect>");
    assert_non_null(conn_end);
    assert_non_null(strstr(conn_end, "<Say"));
    /* the token in the TwiML verifies for this call and caller */
    char tok[TW_TOKEN_MAX];
    tk += strlen("<Parameter name=\"token\" value=\"");
    snprintf(tok, sizeof tok, "%.*s", (int)strcspn(tk, "\""), tk);
    assert_int_equal(tw_stream_token_check(SECRET, strlen(SECRET),
                                           "CA11111111111111111111111111111111", "+447700900123",
                                           tok, time(NULL)),
                     TW_TOKEN_OK);
    free(resp);

    /* signed with :443 is accepted too */
    sign_body("https://voice.example.co.uk:443/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, NULL), 200);

    /* wrong signature, signature over the internal URL, and none at all: 403 */
    assert_int_equal(post_webhook(&s, BODY_11, "VIrBB6cuX5Z70x+n0/KDZsyH+IM=", NULL), 403);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/incoming-call", s.port);
    sign_body(url, BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, NULL), 403);
    assert_int_equal(post_webhook(&s, BODY_11, NULL, NULL), 403);
    /* a tampered body with the original signature */
    sign_body(PUB "/incoming-call", BODY_11, sig);
    char tampered[sizeof BODY_11 + 8];
    snprintf(tampered, sizeof tampered, "%s", BODY_11);
    memcpy(strstr(tampered, "From=%2B4477009001") + 16, "99", 2);
    assert_int_equal(post_webhook(&s, tampered, sig, NULL), 403);

    char *log = vt_srv_log(&s);
    assert_non_null(strstr(log, "X-Twilio-Signature does not match"));
    assert_null(strstr(log, "+447700900123")); /* phones masked in the log */
    free(log);
    vt_srv_cleanup(&s);
}

static void test_http_webhook_withheld_caller_gets_a_stream_without_identity(void **state)
{
    (void)state;
    struct vt_srv s;
    char sig[32], *resp = NULL;
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    const char body[] =
        "CallSid=CA33333333333333333333333333333333&From=anonymous&To=%2B442079460123";
    sign_body(PUB "/incoming-call", body, sig);
    assert_int_equal(post_webhook(&s, body, sig, &resp), 200);
    assert_non_null(strstr(resp, "<Parameter name=\"from\" value=\"withheld\"/>"));
    free(resp);
    /* no CallSid: 400 */
    const char nosid[] = "From=%2B447700900001";
    sign_body(PUB "/incoming-call", nosid, sig);
    assert_int_equal(post_webhook(&s, nosid, sig, NULL), 400);
    vt_srv_cleanup(&s);
}

static void test_http_webhook_without_any_provider_apologises_and_books_a_callback(void **state)
{
    (void)state;
    struct vt_srv s;
    char sig[32], *resp = NULL;
    const char *env[] = {"TWILIO_AUTH_TOKEN=" AUTH, "PUBLIC_URL=" PUB, "LINK_SECRET=" SECRET, NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    sign_body(PUB "/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, &resp), 200);
    assert_non_null(strstr(resp, "<Say"));
    assert_null(strstr(resp, "<Connect>"));
    free(resp);
    assert_true(vt_srv_log_wait(&s, "callback requested", 3000));
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM missed_calls WHERE source = "
                                        "'voice_fallback' AND call_sid = "
                                        "'CA11111111111111111111111111111111'"),
                     1);
    /* nothing left pending: SIGTERM exits at once */
    kill(s.pid, SIGTERM);
    assert_int_equal(vt_srv_wait(&s, 2000), 0);
    vt_srv_cleanup(&s);
}

static void test_http_without_public_url_the_host_header_is_signed(void **state)
{
    (void)state;
    struct vt_srv s;
    char sig[32], url[128];
    const char *env[] = {"TWILIO_AUTH_TOKEN=" AUTH, "LINK_SECRET=" SECRET, "OPENAI_API_KEY=sk-test",
                         "OPENAI_REALTIME_URL=ws://127.0.0.1:9/v1/realtime", NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    /* curl sends Host: 127.0.0.1:PORT; an ngrok-style http URL and the https one both pass */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/incoming-call", s.port);
    sign_body(url, BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, NULL), 200);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/incoming-call", s.port);
    sign_body(url, BODY_11, sig);
    char *resp = NULL;
    assert_int_equal(post_webhook(&s, BODY_11, sig, &resp), 200);
    char want[128];
    snprintf(want, sizeof want, "wss://127.0.0.1:%d/media-stream", s.port);
    assert_non_null(strstr(resp, want));
    free(resp);
    sign_body("https://elsewhere.example/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, NULL), 403);
    vt_srv_cleanup(&s);
}

static void test_http_public_url_with_a_path_prefix(void **state)
{
    (void)state;
    struct vt_srv s;
    char sig[32], *resp = NULL;
    const char *env[] = {"TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=https://edge.example.co.uk:8443/voice/",
                         "LINK_SECRET=" SECRET,
                         "OPENAI_API_KEY=sk-test",
                         "OPENAI_REALTIME_URL=ws://127.0.0.1:9/v1/realtime",
                         NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    sign_body("https://edge.example.co.uk:8443/voice/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, &resp), 200);
    assert_non_null(
        strstr(resp, "<Stream url=\"wss://edge.example.co.uk:8443/voice/media-stream\">"));
    free(resp);
    vt_srv_cleanup(&s);
}

static void test_http_routes_methods_and_limits(void **state)
{
    (void)state;
    struct vt_srv s;
    char *resp = NULL;
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    assert_int_equal(vt_http(s.port, "GET", "/nope", NULL, NULL, 0, NULL), 404);
    assert_int_equal(vt_http(s.port, "GET", "/incoming-call", NULL, NULL, 0, NULL), 405);
    assert_int_equal(vt_http(s.port, "POST", "/metrics", NULL, "x", 1, NULL), 405);
    assert_int_equal(vt_http(s.port, "DELETE", "/health", NULL, NULL, 0, NULL), 405);
    /* oversize body: 413 before anything is parsed */
    size_t big = 200 * 1024;
    char *b = malloc(big + 1);
    memset(b, 'a', big);
    b[big] = '\0';
    assert_int_equal(vt_http(s.port, "POST", "/incoming-call", NULL, b, big, NULL), 413);
    free(b);
    /* oversize request headers (over 4 KiB): lws drops the connection unanswered */
    char *hdr = malloc(9000);
    snprintf(hdr, 9000, "X-Big: %08990d", 0);
    const char *hl[] = {hdr, NULL};
    assert_int_equal(vt_http(s.port, "GET", "/health", hl, NULL, 0, NULL), 0);
    free(hdr);
    /* the server still answers */
    assert_int_equal(vt_http(s.port, "GET", "/health", NULL, NULL, 0, &resp), 200);
    free(resp);
    /* links: missing token 400, unknown token valid:false */
    assert_int_equal(vt_http(s.port, "GET", "/links/verify", NULL, NULL, 0, NULL), 400);
    assert_int_equal(
        vt_http(s.port, "GET", "/links/verify?token=nosuchtoken", NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp, "\"valid\":false"));
    free(resp);
    vt_srv_cleanup(&s);
}

static void test_http_health_and_metrics(void **state)
{
    (void)state;
    struct vt_srv s;
    char *resp = NULL;
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    assert_int_equal(vt_http(s.port, "GET", "/health", NULL, NULL, 0, &resp), 200);
    json_error_t e;
    json_t *h = json_loads(resp, 0, &e);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(h, "provider")), "auto");
    json_t *svc = json_object_get(h, "services");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(svc, "database"), "backend")), "sqlite");
    assert_true(json_is_true(json_object_get(json_object_get(svc, "database"), "reachable")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "sms"), "mode")),
                        "mock");
    assert_true(json_is_array(json_object_get(h, "actions")));
    assert_int_equal(vt_jint(h, "calls.active"), 0);
    json_decref(h);
    free(resp);
    assert_int_equal(vt_http(s.port, "POST", "/health", NULL, NULL, 0, NULL), 200);

    assert_int_equal(vt_http(s.port, "GET", "/metrics", NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp, "# TYPE voice_actions_total counter"));
    assert_non_null(
        strstr(resp, "voice_actions_total{action=\"check_claim_details\",outcome=\"success\"} 0"));
    assert_non_null(strstr(resp, "# TYPE voice_action_duration_ms histogram"));
    assert_non_null(strstr(resp, "voice_calls_active 0"));
    assert_non_null(strstr(resp, "voice_sms_total{outcome=\"sent\"} 0"));
    assert_non_null(strstr(
        resp, "voice_provider_errors_total{provider=\"openai\",reason=\"connect_failed\"} 0"));
    free(resp);
    vt_srv_cleanup(&s);
}

static void test_http_actions_endpoint_needs_the_bearer_token(void **state)
{
    (void)state;
    struct vt_srv s;
    char *resp = NULL;
    const char *body =
        "{\"caller\":\"+447700900001\",\"arguments\":{\"claim_reference\":\"RMC-1001\"}}";
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    const char *none[] = {"Content-Type: application/json", NULL};
    const char *bad[] = {"Authorization: Bearer wrong", NULL};
    const char *basic[] = {"Authorization: Basic YWN0LXRva2VuLTEyMw==", NULL};
    const char *good[] = {"Authorization: Bearer act-token-123", NULL};
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", none, body, strlen(body), NULL),
        401);
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", bad, body, strlen(body), NULL),
        401);
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", basic, body, strlen(body), NULL),
        401);
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", good, body, strlen(body), &resp),
        200);
    json_error_t e;
    json_t *env = json_loads(resp, 0, &e);
    assert_non_null(env);
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_non_null(strstr(resp, "in_progress"));
    assert_true(json_is_number(json_object_get(env, "execution_time_ms")));
    json_decref(env);
    free(resp);
    /* another person's claim: refused like a missing one */
    const char *other =
        "{\"caller\":\"+447700900001\",\"arguments\":{\"claim_reference\":\"RMC-2001\"}}";
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", good, other, strlen(other), &resp),
        200);
    assert_non_null(strstr(resp, "\"success\":false"));
    free(resp);
    /* a duplicated key is ambiguous (which caller?): refused */
    const char *dup = "{\"caller\":\"+447700900002\",\"caller\":\"+447700900001\","
                      "\"arguments\":{\"claim_reference\":\"RMC-1001\"}}";
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", good, dup, strlen(dup), NULL), 400);
    /* malformed body 400; audited with provider http */
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", good, "{nope", 5, NULL), 400);
    assert_true(
        vt_srv_sql_int(&s, "SELECT COUNT(*) FROM voice_action_logs WHERE provider = 'http'") >= 2);
    /* counted in /metrics */
    assert_int_equal(vt_http(s.port, "GET", "/metrics", NULL, NULL, 0, &resp), 200);
    assert_non_null(
        strstr(resp, "voice_actions_total{action=\"check_claim_details\",outcome=\"success\"} 1"));
    assert_non_null(
        strstr(resp, "voice_actions_total{action=\"check_claim_details\",outcome=\"failure\"} 1"));
    free(resp);
    vt_srv_cleanup(&s);

    /* without ACTIONS_API_TOKEN the endpoint does not exist */
    const char *env2[] = {"PUBLIC_URL=" PUB, NULL};
    assert_int_equal(vt_srv_start(&s, env2), 0);
    assert_int_equal(
        vt_http(s.port, "POST", "/actions/check_claim_details", good, body, strlen(body), NULL),
        404);
    vt_srv_cleanup(&s);
}

static void test_http_links_verify_accepts_a_link_once(void **state)
{
    (void)state;
    struct vt_srv s;
    char *resp = NULL, dbp[256], tok[LINK_TOKEN_MAX];
    const char *env[] = {"PUBLIC_URL=" PUB, NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    /* a link row made by the links module on the server's database (as an action would) */
    struct cfg c;
    struct db *db = NULL;
    struct err e = {0};
    snprintf(dbp, sizeof dbp, "DB_PATH=%s", s.db_path);
    const char *kv[] = {dbp, NULL};
    vt_cfg(&c, kv);
    assert_int_equal(db_open(&db_sqlite_ops, &db, &c, &e), 0);
    assert_int_equal(link_create(db, 1, "portal", "sms", 3600, "CAlinktest", tok, NULL, &e), 0);
    db_close(db);
    cfg_free(&c);
    char path[256];
    snprintf(path, sizeof path, "/links/verify?token=%s", tok);
    assert_int_equal(vt_http(s.port, "GET", path, NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp, "\"valid\":true"));
    assert_non_null(strstr(resp, "Sarah"));
    free(resp);
    /* single use */
    assert_int_equal(vt_http(s.port, "GET", path, NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp, "\"valid\":false"));
    assert_non_null(strstr(resp, "used"));
    free(resp);
    vt_srv_cleanup(&s);
}

/* A client that sends half a body and stalls is dropped; others are served meanwhile.
 * (Raw bytes on purpose: a well-behaved HTTP library cannot stall mid-body.) */
static void test_http_slow_client_is_dropped(void **state)
{
    (void)state;
    struct vt_srv s;
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char req[] = "POST /incoming-call HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: 100\r\n\r\nCallSid=CA";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    double t0 = mono_ms();
    /* the stalled client does not hold anyone else up */
    assert_int_equal(vt_http(s.port, "GET", "/metrics", NULL, NULL, 0, NULL), 200);
    assert_true(mono_ms() - t0 < 1000);
    char buf[512];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n = 1;
    while (n > 0 && mono_ms() - t0 < 20000) {
        if (poll(&p, 1, 500) > 0)
            n = read(fd, buf, sizeof buf);
    }
    double ms = mono_ms() - t0;
    close(fd);
    assert_true(n <= 0);                  /* closed by the server */
    assert_true(ms > 5000 && ms < 16000); /* after the body timeout (10 s) */
    vt_srv_cleanup(&s);
}

/* ---- stream token at the socket ---- */

static char *caller_spec(struct vt_srv *s, const char *extra)
{
    char *spec = malloc(2048);
    snprintf(spec, 2048,
             "{\"http\":\"http://127.0.0.1:%d\",\"public_url\":\"" PUB
             "\",\"ws\":\"ws://127.0.0.1:%d\","
             "\"auth_token\":\"" AUTH "\",\"from\":\"+447700900001\"%s%s}",
             s->port, s->port, extra && *extra ? "," : "", extra ? extra : "");
    return spec;
}

static void test_http_stream_refuses_forged_missing_expired_and_changed_tokens(void **state)
{
    (void)state;
    struct vt_srv s;
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    const char *cases[] = {
        "\"token\":\"forge\",\"duration_ms\":3000",
        "\"token\":\"omit\",\"duration_ms\":3000",
        "\"from_param\":\"+447700900002\",\"duration_ms\":3000",
        NULL,
    };
    for (int i = 0; cases[i]; i++) {
        char *spec = caller_spec(&s, cases[i]);
        json_t *r = vt_call_run(spec, 20);
        free(spec);
        assert_non_null(r);
        assert_int_equal(vt_jint(r, "webhook.status"), 200);
        assert_int_equal(vt_jint(r, "ws.opened"), 1);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by")), "server");
        assert_true(vt_jint(r, "ws.close_ms") < 1500);
        assert_int_equal(vt_jint(r, "received.media"), 0);
        json_decref(r);
    }
    /* an expired token (well formed, right key, expiry in the past) */
    char tok[TW_TOKEN_MAX], extra[512];
    const char *sid = "CA44444444444444444444444444444444";
    tw_stream_token(SECRET, strlen(SECRET), sid, "+447700900001", time(NULL) - 5, tok, sizeof tok);
    snprintf(extra, sizeof extra,
             "\"skip_webhook\":{\"params\":{\"from\":\"+447700900001\",\"callSid\":\"%s\","
             "\"token\":\"%s\"}},"
             "\"duration_ms\":3000",
             sid, tok);
    char *spec = caller_spec(&s, extra);
    json_t *r = vt_call_run(spec, 20);
    free(spec);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by")),
                        "server");
    json_decref(r);
    char *log = vt_srv_log(&s);
    assert_non_null(strstr(log, "media-stream refused: forged stream token"));
    assert_non_null(strstr(log, "media-stream refused: missing stream token"));
    assert_non_null(strstr(log, "media-stream refused: expired stream token"));
    free(log);
    /* a non-/media-stream path is refused at the upgrade */
    vt_srv_cleanup(&s);
}

/* ---- pre-warm ---- */

static void test_http_prewarmed_provider_is_dropped_without_a_stream(void **state)
{
    (void)state;
    struct vt_oai peer;
    struct vt_srv s;
    char url[192], sig[32];
    assert_int_equal(vt_oai_start(&peer, "{}", "sk-test"), 0);
    vt_peers_track(peer.pid, NULL);
    snprintf(url, sizeof url, "OPENAI_REALTIME_URL=%s", peer.url);
    const char *env[] = {"TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=" PUB,
                         "LINK_SECRET=" SECRET,
                         "OPENAI_API_KEY=sk-test",
                         url,
                         NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);
    /* the webhook opens the provider session at once (first words fast) ... */
    sign_body(PUB "/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, NULL), 200);
    assert_true(vt_srv_log_wait(&s, "provider openai ready", 3000));
    json_t *log = vt_oai_log(&peer);
    assert_int_equal(vt_oai_count_in(log, "session.update"), 1);
    json_decref(log);
    /* ... a Twilio retry of the same webhook does not open a second one ... */
    assert_int_equal(post_webhook(&s, BODY_11, sig, NULL), 200);
    /* ... and with no stream it is dropped after 20 s */
    assert_true(vt_srv_log_wait(&s, "no media stream within 20 s", 25000));
    poll(NULL, 0, 500);
    log = vt_oai_log(&peer);
    assert_int_equal(vt_oai_count_in(log, "session.update"), 1);
    int closed = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(log, i, rec)
    {
        const char *k = json_string_value(json_object_get(rec, "kind"));
        closed += k && !strcmp(k, "closed");
    }
    assert_int_equal(closed, 1);
    json_decref(log);
    /* no call happened: no voice_calls row, no callback */
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM voice_calls"), 0);
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM missed_calls"), 0);
    vt_srv_cleanup(&s);
    vt_peers_untrack(peer.pid);
    vt_oai_stop(&peer);
}

/* ---- SIGTERM ---- */

static void test_http_sigterm_without_calls_exits_at_once(void **state)
{
    (void)state;
    struct vt_srv s;
    assert_int_equal(vt_srv_start(&s, base_env), 0);
    double t0 = mono_ms();
    kill(s.pid, SIGTERM);
    assert_int_equal(vt_srv_wait(&s, 5000), 0);
    assert_true(mono_ms() - t0 < 1500);
    vt_srv_cleanup(&s);
}

static void test_http_sigterm_drains_active_calls(void **state)
{
    (void)state;
    struct vt_oai peer;
    struct vt_srv s;
    char envs[4][256];
    assert_int_equal(vt_oai_start(&peer, "{\"echo\":true}", "sk-test"), 0);
    vt_peers_track(peer.pid, NULL);
    snprintf(envs[0], sizeof envs[0], "OPENAI_REALTIME_URL=%s", peer.url);
    const char *env[] = {"TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=" PUB,
                         "LINK_SECRET=" SECRET,
                         "OPENAI_API_KEY=sk-test",
                         envs[0],
                         "DRAIN_SECONDS=20",
                         NULL};
    assert_int_equal(vt_srv_start(&s, env), 0);

    /* a 3 s call; SIGTERM after 1 s: the call finishes normally, then the server exits */
    struct vt_call c;
    char *spec = caller_spec(&s, "\"duration_ms\":3000");
    assert_int_equal(vt_call_start(&c, spec), 0);
    free(spec);
    assert_true(vt_srv_log_wait(&s, "started from=", 5000));
    poll(NULL, 0, 700);
    double t0 = mono_ms();
    kill(s.pid, SIGTERM);
    assert_true(vt_srv_log_wait(&s, "shutdown requested", 3000));
    /* new calls are refused with 503 + fallback TwiML while draining */
    char sig[32], *resp = NULL;
    sign_body(PUB "/incoming-call", BODY_11, sig);
    assert_int_equal(post_webhook(&s, BODY_11, sig, &resp), 503);
    assert_non_null(strstr(resp, "<Say"));
    assert_null(strstr(resp, "<Connect>"));
    free(resp);
    json_t *r = vt_call_wait(&c, 20);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by")),
                        "client"); /* the caller hung up; we did not cut the call */
    assert_int_equal(json_array_size(json_object_get(r, "violations")), 0);
    json_decref(r);
    assert_int_equal(vt_srv_wait(&s, 5000), 0);
    double ms = mono_ms() - t0;
    assert_true(ms > 1000 && ms < 8000);
    vt_srv_cleanup(&s);

    /* DRAIN_SECONDS=1 with a long call: the server ends it and exits */
    snprintf(envs[1], sizeof envs[1], "%s", "DRAIN_SECONDS=1");
    env[5] = envs[1];
    assert_int_equal(vt_srv_start(&s, env), 0);
    spec = caller_spec(&s, "\"duration_ms\":15000");
    assert_int_equal(vt_call_start(&c, spec), 0);
    free(spec);
    assert_true(vt_srv_log_wait(&s, "started from=", 5000));
    t0 = mono_ms();
    kill(s.pid, SIGTERM);
    assert_int_equal(vt_srv_wait(&s, 8000), 0);
    ms = mono_ms() - t0;
    assert_true(ms > 900 && ms < 4000);
    r = vt_call_wait(&c, 20);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "ws"), "closed_by")),
                        "server");
    json_decref(r);
    assert_int_equal(
        vt_srv_sql_int(&s, "SELECT COUNT(*) FROM voice_calls WHERE end_reason = 'shutdown'"), 1);
    vt_srv_cleanup(&s);
    vt_peers_untrack(peer.pid);
    vt_oai_stop(&peer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_signature_matches_twilio_doc_vectors),
        cmocka_unit_test(test_http_signature_matches_twilio_python_vector),
        cmocka_unit_test(test_http_form_decoding_follows_form_rules),
        cmocka_unit_test_teardown(test_http_stream_token_is_bound_to_call_from_and_expiry,
                                  vt_peers_cleanup_all),
        cmocka_unit_test(test_http_caller_id_withheld_values),
        cmocka_unit_test_teardown(test_http_webhook_checks_signature_and_answers_twiml,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_webhook_withheld_caller_gets_a_stream_without_identity,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(
            test_http_webhook_without_any_provider_apologises_and_books_a_callback,
            vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_without_public_url_the_host_header_is_signed,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_public_url_with_a_path_prefix, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_routes_methods_and_limits, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_health_and_metrics, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_actions_endpoint_needs_the_bearer_token,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_slow_client_is_dropped, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_links_verify_accepts_a_link_once, vt_peers_cleanup_all),
        cmocka_unit_test_teardown(
            test_http_stream_refuses_forged_missing_expired_and_changed_tokens,
            vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_prewarmed_provider_is_dropped_without_a_stream,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_sigterm_without_calls_exits_at_once,
                                  vt_peers_cleanup_all),
        cmocka_unit_test_teardown(test_http_sigterm_drains_active_calls, vt_peers_cleanup_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
