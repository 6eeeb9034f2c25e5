/*
 * test_sms_actions.c - "the core action still completed" with a failing
 * SMS: schedule_callback runs through act_execute (the real registry, the
 * real database with the demo data) while Twilio is played by
 * tests/peers/twilio_faults.js answering 500, 503, 21610, 20003 or not at
 * all. The missed_calls row must exist, data.sms.sent must be false, the
 * spoken message must say the text didn't go, and sms_messages must hold
 * exactly one row with the failure. A healthy Twilio gives sent=true, so
 * the checks can tell the difference. Runs per database backend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions/action.h"
#include "core/app.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/util.h"
#include "core/when.h"
#include "db/db.h"
#include "vt_db.h"
#include "vt_sms.h"
#include "vwstest.h"

#define TOKEN "0123456789abcdef0123456789abcdef"
#define SARAH "+447700900001"
#define TESTNUM "+447700900555"

static struct vt_sms_peer faults;
static char *dir;
static const char *backend = "sqlite";
static int seq;

struct afx {
    struct vt_db h;
    struct cfg cfg;
    struct act_env env;
    struct act_session sess;
    char sid[40];
    char kvbuf[3][128];
};

static void afx_open_kv(struct afx *f, const char *scenario, int twilio_port, const char *extra1,
                        const char *extra2)
{
    memset(f, 0, sizeof *f);
    snprintf(f->sid, sizeof f->sid, "AC%028x%s", ++seq + 1000, scenario);
    snprintf(f->kvbuf[0], sizeof f->kvbuf[0], "TWILIO_ACCOUNT_SID=%s", f->sid);
    snprintf(f->kvbuf[1], sizeof f->kvbuf[1], "TWILIO_API_BASE=http://127.0.0.1:%d", twilio_port);
    const char *kv[] = {extra1 ? extra1 : "COMPANY_NAME=Resolve My Claim",
                        extra2 ? extra2 : "COMPANY_NAME=Resolve My Claim",
                        "MAIN_APP_URL=https://portal.example.co.uk",
                        f->kvbuf[0],
                        f->kvbuf[1],
                        "ENABLE_REAL_SMS=true",
                        "SMS_TEST_NUMBERS=" TESTNUM,
                        "SMS_TIMEOUT=2",
                        "TWILIO_AUTH_TOKEN=" TOKEN,
                        "TWILIO_FROM_NUMBER=+442079460123",
                        "COMPANY_NAME=Resolve My Claim",
                        "REQUIRE_VERIFICATION=false",
                        NULL};
    vt_db_fresh(backend, &f->cfg, &f->h, kv);
    db_close(vt_db_open(&f->cfg, true)); /* schema + demo data */
    struct err e = {0};
    assert_int_equal(app_env_open(&f->env, &f->cfg, &e), 0);
    act_session_init(&f->sess, SARAH, "CA11111111111111111111111111111111", "cli", 0);
    char first[32] = "";
    assert_int_equal(act_session_identify(&f->env, &f->sess, first, sizeof first, &e), 0);
    assert_string_equal(first, "Sarah");
}

static void afx_open(struct afx *f, const char *scenario, int twilio_port)
{
    afx_open_kv(f, scenario, twilio_port, NULL, NULL);
}

static void afx_close(struct afx *f)
{
    act_session_cleanup(&f->sess);
    app_env_close(&f->env);
    vt_db_cleanup(&f->h, &f->cfg);
}

/* A time two working days ahead at 15:00 UK, as ISO 8601. */
static void future_slot(const struct cfg *c, char *out, size_t n)
{
    struct when_hours h;
    when_hours_from_cfg(c, &h);
    long long t = when_next_slot(util_now() + 2 * 86400, &h);
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* Move to the afternoon of that business day (still inside 09:00-18:00 UK). */
    tm.tm_hour = 14;
    tm.tm_min = 0;
    tm.tm_sec = 0;
    tt = timegm(&tm);
    if (!when_in_hours((long long)tt, &h))
        tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static long long q_int(struct afx *f, const char *sql)
{
    struct db *db = vt_db_open(&f->cfg, false);
    long long n = vt_db_int(db, sql);
    db_close(db);
    return n;
}

static json_t *run_callback(struct afx *f)
{
    char when[40];
    future_slot(&f->cfg, when, sizeof when);
    json_t *args = json_pack("{s:s, s:s}", "preferred_time", when, "reason", "claim update");
    json_t *env = act_execute(&f->env, &f->sess, "schedule_callback", args);
    json_decref(args);
    assert_non_null(env);
    return env;
}

static int peer_requests(const struct afx *f)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"sid\":\"%s\"", f->sid);
    return vt_sms_count_in_file(faults.log, needle);
}

/* The callback is booked whatever the SMS did. */
static void assert_booked_but_not_texted(struct afx *f, json_t *env, const char *status,
                                         const char *error_code)
{
    assert_true(json_is_true(json_object_get(env, "success")));
    json_t *data = json_object_get(env, "data");
    assert_true(json_integer_value(json_object_get(data, "callback_id")) > 0);
    json_t *sms = json_object_get(data, "sms");
    assert_non_null(sms);
    assert_true(json_is_false(json_object_get(sms, "sent")));
    assert_string_equal(json_string_value(json_object_get(sms, "status")), status);
    const char *msg = json_string_value(json_object_get(env, "message"));
    if (!strcmp(status, "unknown")) {
        /* Twilio may have sent it: say so, never "couldn't send" */
        assert_null(strstr(msg, "couldn't"));
        assert_non_null(strstr(msg, "not sure whether that text went through"));
        assert_non_null(strstr(msg, "booked either way"));
    } else {
        assert_non_null(strstr(msg, "couldn't send the confirmation text"));
        assert_non_null(strstr(msg, "still booked"));
    }
    assert_int_equal(q_int(f, "SELECT COUNT(*) FROM missed_calls WHERE phone = '" SARAH
                              "' AND status = 'pending' AND source = 'voice'"),
                     1);
    assert_int_equal(q_int(f, "SELECT COUNT(*) FROM sms_messages"), 1);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM sms_messages WHERE status = '%s' AND error_code = '%s' AND "
             "mode = 'redirected' AND intended_to = '" SARAH "' AND to_number = '" TESTNUM "'",
             status, error_code);
    assert_int_equal(q_int(f, sql), 1);
}

static void test_sms_actions_callback_texted_when_twilio_is_healthy(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "0201", faults.port);
    json_t *env = run_callback(&f);
    assert_true(json_is_true(json_object_get(env, "success")));
    json_t *sms = json_object_get(json_object_get(env, "data"), "sms");
    assert_true(json_is_true(json_object_get(sms, "sent")));
    assert_string_equal(json_string_value(json_object_get(sms, "mode")), "redirected");
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "sent you a text"));
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM missed_calls"), 1);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM sms_messages WHERE status = 'queued'"), 1);
    assert_int_equal(peer_requests(&f), 1);
    json_decref(env);
    afx_close(&f);
}

static void test_sms_actions_callback_kept_when_twilio_500(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "0500", faults.port);
    json_t *env = run_callback(&f);
    assert_booked_but_not_texted(&f, env, "unknown", "20500");
    assert_int_equal(peer_requests(&f), 1);
    json_decref(env);
    afx_close(&f);
}

static void test_sms_actions_callback_kept_when_twilio_503(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "0503", faults.port);
    json_t *env = run_callback(&f);
    assert_booked_but_not_texted(&f, env, "failed", "http_503");
    assert_int_equal(peer_requests(&f), 3);
    json_decref(env);
    afx_close(&f);
}

static void test_sms_actions_callback_kept_when_twilio_hangs(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "0408", faults.port);
    json_t *env = run_callback(&f);
    assert_booked_but_not_texted(&f, env, "unknown", "timeout");
    assert_int_equal(peer_requests(&f), 1);
    json_decref(env);
    afx_close(&f);
}

static void test_sms_actions_callback_kept_when_opted_out(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "1610", faults.port);
    json_t *env = run_callback(&f);
    assert_booked_but_not_texted(&f, env, "failed", "21610");
    json_decref(env);
    afx_close(&f);
}

static void test_sms_actions_callback_kept_when_twilio_unreachable(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "0201", vt_free_port());
    json_t *env = run_callback(&f);
    assert_booked_but_not_texted(&f, env, "failed", "connect_failed");
    json_decref(env);
    afx_close(&f);
}

/* ---- secure links ---- */

static json_t *run_link(struct afx *f, const char *method)
{
    json_t *args = json_pack("{s:s}", "method", method);
    json_t *env = act_execute(&f->env, &f->sess, "send_portal_link", args);
    json_decref(args);
    assert_non_null(env);
    return env;
}

/* Quoted-printable body decode (soft breaks, =XX), in place. */
static void qp_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

/* An emailed link arrives at the address on file, and only its hash is stored. */
static void test_sms_actions_portal_link_by_email(void **state)
{
    (void)state;
    char *mdir = vt_tmpdir(), script[512], port[16], url[64], p[512];
    struct vt_sms_peer smtp = {0};
    snprintf(script, sizeof script, "%s/tests/peers/smtp_standin.js", vt_src());
    smtp.port = vt_free_port();
    snprintf(port, sizeof port, "%d", smtp.port);
    snprintf(smtp.log, sizeof smtp.log, "%s/smtp.log", mdir);
    const char *argv[] = {"node", script, port, mdir, NULL};
    assert_int_equal(vt_sms_peer_start(&smtp, argv, 20), 0);
    snprintf(url, sizeof url, "SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    struct afx f;
    afx_open_kv(&f, "0201", faults.port, url, "SMTP_FROM=claims@example.co.uk");
    json_t *env = run_link(&f, "email");
    assert_true(json_is_true(json_object_get(env, "success")));
    json_decref(env);
    snprintf(p, sizeof p, "%s/msg-1.json", mdir);
    char *envl = vt_sms_read_file(p);
    assert_non_null(envl);
    assert_non_null(strstr(envl, "\"rcpt\":[\"sarah@example.com\"]"));
    free(envl);
    snprintf(p, sizeof p, "%s/msg-1.eml", mdir);
    char *m = vt_sms_read_file(p);
    assert_non_null(m);
    char *bodyp = strstr(m, "\r\n\r\n");
    assert_non_null(bodyp);
    qp_decode(bodyp);
    char *t = strstr(m, "https://portal.example.co.uk/portal?token=");
    assert_non_null(t);
    t += strlen("https://portal.example.co.uk/portal?token=");
    char token[80];
    size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    assert_true(n >= 40 && n < sizeof token);
    memcpy(token, t, n);
    token[n] = '\0';
    free(m);
    char hex[65], sql[200];
    util_sha256_hex(token, n, hex);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM portal_links WHERE token_hash = '%s' AND method = 'email' "
             "AND user_id = 1",
             hex);
    assert_int_equal(q_int(&f, sql), 1);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM portal_links"), 1);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM sms_messages"), 0);
    afx_close(&f);
    vt_sms_peer_stop(&smtp);
    vt_rmdir(mdir);
    free(mdir);
}

/* A link whose text surely didn't go is withdrawn; one that may have gone is kept. */
static void test_sms_actions_portal_link_sms_failures(void **state)
{
    (void)state;
    struct afx f;
    afx_open(&f, "0503", faults.port);
    json_t *env = run_link(&f, "sms");
    assert_true(json_is_false(json_object_get(env, "success")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(env, "error"), "code")),
                        "sms_failed");
    assert_true(json_is_false(
        json_object_get(json_object_get(json_object_get(env, "data"), "sms"), "sent")));
    json_decref(env);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM portal_links"), 0);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM sms_messages WHERE status = 'failed'"), 1);
    afx_close(&f);

    afx_open(&f, "0500", faults.port);
    env = run_link(&f, "sms");
    assert_true(json_is_false(json_object_get(env, "success")));
    /* may or may not have gone: the agent says so, and the data says unknown */
    assert_null(strstr(json_string_value(json_object_get(env, "message")), "couldn't"));
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "not sure"));
    json_t *sms = json_object_get(json_object_get(env, "data"), "sms");
    assert_true(json_is_false(json_object_get(sms, "sent")));
    assert_string_equal(json_string_value(json_object_get(sms, "status")), "unknown");
    json_decref(env);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM portal_links"), 1);
    assert_int_equal(q_int(&f, "SELECT COUNT(*) FROM sms_messages WHERE status = 'unknown'"), 1);
    afx_close(&f);
}

static int group_setup(void **state)
{
    (void)state;
    char script[512], port[16];
    snprintf(script, sizeof script, "%s/tests/peers/twilio_faults.js", vt_src());
    faults.port = vt_free_port();
    snprintf(port, sizeof port, "%d", faults.port);
    snprintf(faults.log, sizeof faults.log, "%s/faults-%s.log", dir, backend);
    const char *argv[] = {"node", script, port, TOKEN, NULL};
    return vt_sms_peer_start(&faults, argv, 20);
}

static int group_teardown(void **state)
{
    (void)state;
    vt_sms_peer_stop(&faults);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sms_actions_callback_texted_when_twilio_is_healthy),
        cmocka_unit_test(test_sms_actions_callback_kept_when_twilio_500),
        cmocka_unit_test(test_sms_actions_callback_kept_when_twilio_503),
        cmocka_unit_test(test_sms_actions_callback_kept_when_twilio_hangs),
        cmocka_unit_test(test_sms_actions_callback_kept_when_opted_out),
        cmocka_unit_test(test_sms_actions_callback_kept_when_twilio_unreachable),
        cmocka_unit_test(test_sms_actions_portal_link_by_email),
        cmocka_unit_test(test_sms_actions_portal_link_sms_failures),
    };
    dir = vt_tmpdir();
    int failed = 0;
    const char *names[4];
    int nb = vt_db_backends(names, 4);
    for (int i = 0; i < nb; i++) {
        char name[40];
        backend = names[i];
        snprintf(name, sizeof name, "sms_actions_%s", backend);
        failed += _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], group_setup,
                                          group_teardown);
    }
    vt_rmdir(dir);
    free(dir);
    return failed;
}
