/*
 * test_cfg.c - configuration: defaults, refusals naming the variable,
 * production safety, .env in the working directory (environment wins), and
 * AWS Secrets Manager overriding both, through the SigV4-checking stand-in
 * tests/peers/aws_secrets_standin.js. Secret values must never reach the
 * error detail, the log or the stand-in's own log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "vt_sms.h"
#include "vwstest.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AK "AKIDEXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN_SESSION "IQoJb3JpZ2luX2VjEXAMPLEsessiontoken//////////wEaCWV1LXdlc3QtMiJH"
#define SECRET_TWILIO "aws-token-Zq9xV3Lm7Np2"
#define SECRET_LINK "aws-link-secret-Qw8rT5yU1iO0pA2sD4fG6hJ8"
#define REGION "eu-west-2"

static char *group_dir;
static struct vt_sms_peer peer, peer_tok;
static char endpoint[64], endpoint_tok[64];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int start_peer(struct vt_sms_peer *p, const char *name, const char *session_token, char *url,
                      size_t urlsz)
{
    char script[PATH_MAX], conf[PATH_MAX], port[16], json[2048];
    snprintf(script, sizeof script, "%s/tests/peers/aws_secrets_standin.js", vt_src());
    snprintf(conf, sizeof conf, "%s/%s.json", group_dir, name);
    snprintf(json, sizeof json,
             "{\"accessKeyId\":\"" AK "\",\"secretAccessKey\":\"" SK "\",\"region\":\"" REGION
             "\",\"sessionToken\":\"%s\",\"secrets\":{"
             "\"voice-ws/test\":{\"TWILIO_AUTH_TOKEN\":\"" SECRET_TWILIO
             "\",\"LINK_SECRET\":\"" SECRET_LINK "\",\"PORT\":\"9090\","
             "\"COMPANY_NAME\":\"From AWS Ltd\",\"VOICE_PROVIDER\":\"gemini\"},"
             "\"raw\":\"not json at all " SECRET_TWILIO "\","
             "\"array\":[\"" SECRET_TWILIO "\"],"
             "\"nested\":{\"TWILIO_AUTH_TOKEN\":{\"v\":\"" SECRET_TWILIO "\"}},"
             "\"badvalue\":{\"PORT\":\"not-a-port\"}}}",
             session_token);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fputs(json, f);
    fclose(f);
    p->port = vt_free_port();
    snprintf(port, sizeof port, "%d", p->port);
    snprintf(p->log, sizeof p->log, "%s/%s.log", group_dir, name);
    snprintf(url, urlsz, "http://127.0.0.1:%d/", p->port);
    const char *argv[] = {"node", script, port, conf, NULL};
    return vt_sms_peer_start(p, argv, 20);
}

static int group_setup(void **state)
{
    (void)state;
    group_dir = vt_tmpdir();
    if (start_peer(&peer, "aws", "", endpoint, sizeof endpoint) ||
        start_peer(&peer_tok, "aws_tok", TOKEN_SESSION, endpoint_tok, sizeof endpoint_tok)) {
        fprintf(stderr, "could not start aws_secrets_standin.js\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    vt_sms_peer_stop(&peer);
    vt_sms_peer_stop(&peer_tok);
    vt_rmdir(group_dir);
    free(group_dir);
    return 0;
}

/* ---- defaults and refusals ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct cfg c;
    static const char *const none[] = {NULL};
    vt_cfg(&c, none);
    assert_int_equal(c.app_env, CFG_ENV_DEVELOPMENT);
    assert_int_equal(c.port, 8080);
    assert_false(c.log_json);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.queue_max, 256);
    assert_int_equal(c.drain_seconds, 30);
    assert_false(c.require_verification);
    assert_int_equal(c.max_tool_calls, 30);
    assert_string_equal(c.db_path, "data/voice-ws.db");
    assert_string_equal(c.db_host, "");
    assert_int_equal(c.db_port, 3306);
    assert_int_equal(c.db_ssl_mode, CFG_SSL_DISABLED);
    assert_string_equal(c.twilio_api_base, "https://api.twilio.com");
    assert_false(c.enable_real_sms);
    assert_int_equal(c.n_sms_test_numbers, 0);
    assert_null(c.sms_test_numbers[0]);
    assert_int_equal(c.sms_rate.count, 3);
    assert_int_equal(c.sms_rate.window_s, 600);
    assert_int_equal(c.sms_global_rate.count, 100);
    assert_int_equal(c.sms_global_rate.window_s, 60);
    assert_int_equal(c.bh_open_min, 540);
    assert_int_equal(c.bh_close_min, 1080);
    assert_int_equal(c.bh_days_mask, 0x3e);
    assert_int_equal(c.n_bank_holidays, 0);
    assert_int_equal(c.voice_provider, CFG_PROV_AUTO);
    assert_string_equal(c.openai_realtime_url, "wss://api.openai.com/v1/realtime");
    assert_non_null(strstr(c.gemini_live_url, "wss://generativelanguage.googleapis.com/"));
    assert_string_equal(c.company_name, "Resolve My Claim");
    assert_int_equal(c.link_ttl_s, 86400);
    /* unset strings are "", never NULL */
    assert_string_equal(c.public_url, "");
    assert_string_equal(c.twilio_auth_token, "");
    assert_string_equal(c.aws_secret_id, "");
    assert_string_equal(c.smtp_url, "");
    cfg_free(&c);
    assert_null(c.db_path);
}

static void test_values(void **state)
{
    (void)state;
    struct cfg c;
    static const char *const kv[] = {"PORT= 8081 ",
                                     "LOG_FORMAT=JSON",
                                     "LOG_LEVEL=debug",
                                     "APP_ENV=dev",
                                     "ENABLE_REAL_SMS=no",
                                     "SMS_RATE_LIMIT=off",
                                     "DB_SSL_MODE=verify",
                                     "VOICE_PROVIDER=gemini",
                                     "BUSINESS_HOURS=08:30-17:30",
                                     "BUSINESS_DAYS=Mon,Wed,Fri-Sat",
                                     "BANK_HOLIDAYS=2026-1-5, 2026-12-24",
                                     "SMS_TEST_NUMBERS=+447700900001,+447700900002",
                                     "PUBLIC_URL=https://voice.example.com//",
                                     "REQUIRE_VERIFICATION=yes",
                                     NULL};
    vt_cfg(&c, kv);
    assert_int_equal(c.port, 8081);
    assert_true(c.log_json);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.sms_rate.count, 0);
    assert_int_equal(c.db_ssl_mode, CFG_SSL_VERIFY);
    assert_int_equal(c.voice_provider, CFG_PROV_GEMINI);
    assert_int_equal(c.bh_open_min, 510);
    assert_int_equal(c.bh_close_min, 1050);
    assert_int_equal(c.bh_days_mask, (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6));
    assert_int_equal(c.n_bank_holidays, 2);
    assert_string_equal(c.bank_holidays[0], "2026-01-05"); /* normalised for when.c */
    assert_string_equal(c.bank_holidays[1], "2026-12-24");
    assert_null(c.bank_holidays[2]);
    assert_int_equal(c.n_sms_test_numbers, 2);
    assert_true(cfg_is_test_number(&c, "+447700900002"));
    assert_false(cfg_is_test_number(&c, "+447700900003"));
    assert_string_equal(c.public_url, "https://voice.example.com");
    assert_true(c.require_verification);
    assert_string_equal(cfg_provider_name(c.voice_provider), "gemini");
    cfg_free(&c);
}

struct bad_row {
    const char *kv;    /* one KEY=VALUE */
    const char *names; /* the variable the detail must name */
};

static const struct bad_row bad_rows[] = {
    {"PORT=abc", "PORT"},
    {"PORT=0", "PORT"},
    {"PORT=70000", "PORT"},
    {"PORT=80 80", "PORT"},
    {"PORT=8080x", "PORT"},
    {"PORT=99999999999999999999", "PORT"},
    {"WORKERS=-1", "WORKERS"},
    {"DRAIN_SECONDS=1e3", "DRAIN_SECONDS"},
    {"DB_POOL_SIZE=lots", "DB_POOL_SIZE"},
    {"LINK_TTL_SECONDS=5", "LINK_TTL_SECONDS"},
    {"ENABLE_REAL_SMS=maybe", "ENABLE_REAL_SMS"},
    {"GEMINI_AFFECTIVE_DIALOG=2", "GEMINI_AFFECTIVE_DIALOG"},
    {"REQUIRE_VERIFICATION=perhaps", "REQUIRE_VERIFICATION"},
    {"APP_ENV=staging", "APP_ENV"},
    {"VOICE_PROVIDER=hal9000", "VOICE_PROVIDER"},
    {"DB_SSL_MODE=sometimes", "DB_SSL_MODE"},
    {"SMS_RATE_LIMIT=3", "SMS_RATE_LIMIT"},
    {"SMS_RATE_LIMIT=3/0", "SMS_RATE_LIMIT"},
    {"SMS_RATE_LIMIT=3/600/2", "SMS_RATE_LIMIT"},
    {"SMS_GLOBAL_RATE_LIMIT=-1/60", "SMS_GLOBAL_RATE_LIMIT"},
    {"SMS_TEST_NUMBERS=07700900001", "SMS_TEST_NUMBERS"},
    {"SMS_TEST_NUMBERS=+447700900001,hello", "SMS_TEST_NUMBERS"},
    {"BUSINESS_HOURS=9-5", "BUSINESS_HOURS"},
    {"BUSINESS_HOURS=18:00-09:00", "BUSINESS_HOURS"},
    {"BUSINESS_HOURS=09:00-18:00junk", "BUSINESS_HOURS"},
    {"BUSINESS_HOURS=09:00-25:00", "BUSINESS_HOURS"},
    {"BUSINESS_DAYS=Funday", "BUSINESS_DAYS"},
    {"BUSINESS_DAYS=Mondayz", "BUSINESS_DAYS"},
    {"BUSINESS_DAYS=Mon-Fri;DROP", "BUSINESS_DAYS"},
    {"BUSINESS_DAYS=,", "BUSINESS_DAYS"},
    {"BANK_HOLIDAYS=2026-13-01", "BANK_HOLIDAYS"},
    {"BANK_HOLIDAYS=2026-02-30", "BANK_HOLIDAYS"},
    {"BANK_HOLIDAYS=2027-02-29", "BANK_HOLIDAYS"},
    {"BANK_HOLIDAYS=25/12/2026", "BANK_HOLIDAYS"},
    {"LOG_FORMAT=xml", "LOG_FORMAT"},
    {"LOG_LEVEL=loud", "LOG_LEVEL"},
    {"TWILIO_ACCOUNT_SID=XX123", "TWILIO_ACCOUNT_SID"},
    {"TWILIO_FROM_NUMBER=not a number at all", "TWILIO_FROM_NUMBER"},
    {"TWILIO_API_BASE=ftp://api.twilio.com", "TWILIO_API_BASE"},
    {"MAIN_APP_URL=portal.example.com", "MAIN_APP_URL"},
    {"REVIEW_URL=javascript:alert(1)", "REVIEW_URL"},
    {"PUBLIC_URL=voice.example.com", "PUBLIC_URL"},
    {"OPENAI_REALTIME_URL=https://api.openai.com/v1/realtime", "OPENAI_REALTIME_URL"},
    {"GEMINI_LIVE_URL=http://x", "GEMINI_LIVE_URL"},
    {"SMTP_URL=ftp://mail.example.com", "SMTP_URL"},
    {"SMTP_URL=smtp://mail.example.com:2525", "SMTP_FROM"}, /* without a sender */
    {"ENABLE_REAL_SMS=true", "ENABLE_REAL_SMS"}, /* without Twilio credentials */
};

static void test_invalid_values(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        struct cfg c;
        char detail[256] = "";
        const char *kv[] = {bad_rows[i].kv, NULL};
        int rc = vt_cfg_try(&c, kv, detail, sizeof detail);
        if (rc != ERR_CONFIG || !strstr(detail, bad_rows[i].names)) {
            fprintf(stderr, "%s: rc %d detail \"%s\"\n", bad_rows[i].kv, rc, detail);
            failures++;
        }
        if (rc == 0)
            cfg_free(&c);
    }
    assert_int_equal(failures, 0);

    /* a credential inside a URL is not repeated in the message */
    struct cfg c;
    char detail[256];
    static const char *const kv[] = {"SMTP_URL=ftp://mailer:Pa55w0rd-xyz@mail.example.com", NULL};
    assert_int_equal(vt_cfg_try(&c, kv, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "SMTP_URL"));
    assert_null(strstr(detail, "Pa55w0rd"));

    /* link bases that could not be sent whole (cut inside a 256-byte buffer) or with a space */
    char longurl[400] = "MAIN_APP_URL=https://portal.example.co.uk/";
    memset(longurl + strlen(longurl), 'p', 250);
    const char *kl[] = {longurl, NULL};
    assert_int_equal(vt_cfg_try(&c, kl, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "MAIN_APP_URL"));
    static const char *const ks[] = {"REVIEW_URL=https://reviews.example.com/a b", NULL};
    assert_int_equal(vt_cfg_try(&c, ks, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "REVIEW_URL"));

    /* nor a key in a URL's query string (Gemini's ?key=, any token= or sig=) */
    static const char *const q[][2] = {
        {"GEMINI_LIVE_URL=https://generativelanguage.example.com/ws?key=AIzaSyQ-s3cr3t",
         "GEMINI_LIVE_URL"},
        {"OPENAI_REALTIME_URL=https://rt.example.com/v1?token=sk-s3cr3t", "OPENAI_REALTIME_URL"},
        {"SMTP_URL=ftp://mail.example.com/?password=s3cr3t", "SMTP_URL"},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        const char *kq[] = {q[i][0], NULL};
        assert_int_equal(vt_cfg_try(&c, kq, detail, sizeof detail), ERR_CONFIG);
        assert_non_null(strstr(detail, q[i][1]));
        if (strstr(detail, "s3cr3t"))
            fail_msg("secret repeated: %s", detail);
    }
}

static void test_lists(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256], val[1024], kvs[1100];
    size_t o = 0;
    /* 15 test numbers fit and stay NULL-terminated; 16 are refused */
    o = (size_t)snprintf(val, sizeof val, "SMS_TEST_NUMBERS=");
    for (int i = 0; i < 16; i++)
        o += (size_t)snprintf(val + o, sizeof val - o, "%s+4477009001%02d", i ? "," : "", i);
    const char *kv16[] = {val, NULL};
    assert_int_equal(vt_cfg_try(&c, kv16, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "SMS_TEST_NUMBERS"));
    assert_non_null(strstr(detail, "at most 15"));
    snprintf(kvs, sizeof kvs, "%s", val);
    *strrchr(kvs, ',') = '\0';
    const char *kv15[] = {kvs, NULL};
    vt_cfg(&c, kv15);
    assert_int_equal(c.n_sms_test_numbers, 15);
    assert_null(c.sms_test_numbers[15]);
    assert_true(cfg_is_test_number(&c, "+447700900114"));
    cfg_free(&c);
    /* 2028 is a leap year */
    static const char *const leap[] = {"BANK_HOLIDAYS=2028-02-29", NULL};
    vt_cfg(&c, leap);
    assert_string_equal(c.bank_holidays[0], "2028-02-29");
    cfg_free(&c);
}

static void test_production(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256];
    static const char *const no_token[] = {"APP_ENV=production", "LINK_SECRET=" SECRET_LINK, NULL};
    assert_int_equal(vt_cfg_try(&c, no_token, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "TWILIO_AUTH_TOKEN"));
    assert_non_null(strstr(detail, "production"));

    static const char *const no_link[] = {"APP_ENV=production", "TWILIO_AUTH_TOKEN=abc", NULL};
    assert_int_equal(vt_cfg_try(&c, no_link, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "LINK_SECRET"));

    static const char *const short_link[] = {"APP_ENV=production", "TWILIO_AUTH_TOKEN=abc",
                                             "LINK_SECRET=short", NULL};
    assert_int_equal(vt_cfg_try(&c, short_link, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "LINK_SECRET"));
    assert_null(strstr(detail, "short")); /* the value itself is not repeated */

    static const char *const http_url[] = {"APP_ENV=production", "TWILIO_AUTH_TOKEN=abc",
                                           "LINK_SECRET=" SECRET_LINK,
                                           "PUBLIC_URL=http://voice.example.com", NULL};
    assert_int_equal(vt_cfg_try(&c, http_url, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "PUBLIC_URL"));

    static const char *const ok[] = {"APP_ENV=production", "TWILIO_AUTH_TOKEN=abc",
                                     "LINK_SECRET=" SECRET_LINK, NULL};
    assert_int_equal(vt_cfg_try(&c, ok, detail, sizeof detail), 0);
    assert_int_equal(c.app_env, CFG_ENV_PRODUCTION);
    assert_true(c.require_verification); /* on by default in production */
    cfg_free(&c);

    static const char *const off[] = {"APP_ENV=prod", "TWILIO_AUTH_TOKEN=abc",
                                      "LINK_SECRET=" SECRET_LINK, "REQUIRE_VERIFICATION=false",
                                      NULL};
    assert_int_equal(vt_cfg_try(&c, off, detail, sizeof detail), 0);
    assert_false(c.require_verification);
    cfg_free(&c);
}

static void test_hume_retired(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256];
    static const char *const kv[] = {"VOICE_PROVIDER=Hume", NULL};
    assert_int_equal(vt_cfg_try(&c, kv, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "VOICE_PROVIDER"));
    assert_non_null(strstr(detail, "Hume"));
    assert_non_null(strstr(detail, "retired"));
    assert_non_null(strstr(detail, "VOICE_PROVIDER=gemini"));
}

/* ---- .env ---- */

static const char *const touched[] = {
    "APP_ENV",        "PORT",          "WORKERS",       "COMPANY_NAME",   "LOG_LEVEL", "LOG_FORMAT",
    "SMS_RATE_LIMIT", "DRAIN_SECONDS", "AWS_SECRET_ID", "VOICE_PROVIDER", "LONG",      NULL};

static void test_dotenv(void **state)
{
    (void)state;
    char *dir = vt_tmpdir(), path[PATH_MAX], cwd[PATH_MAX];
    struct cfg c;
    struct err e = {0};
    static char text[12000];
    size_t o;

    o = (size_t)snprintf(text, sizeof text,
                         "# a comment\n"
                         "\n"
                         "export WORKERS=3\n"
                         "PORT=9001\n"
                         "COMPANY_NAME=\"Dot Env Ltd\"\n"
                         "LOG_LEVEL=debug # trailing comment\n"
                         "SMS_RATE_LIMIT='5/60'\n"
                         "LONG=");
    while (o < 10000)
        text[o++] = 'x';
    snprintf(text + o, sizeof text - o, "\nDRAIN_SECONDS=7\n  VOICE_PROVIDER = openai  \n");
    snprintf(path, sizeof path, "%s/.env", dir);
    write_file(path, text);
    assert_non_null(getcwd(cwd, sizeof cwd));
    for (const char *const *p = touched; *p; p++)
        unsetenv(*p);
    setenv("PORT", "9002", 1); /* the environment wins over .env */
    assert_int_equal(chdir(dir), 0);
    const char *logp = vt_sms_log_capture(dir);

    int rc = cfg_load(&c, &e);
    vt_sms_log_release();
    if (rc)
        fail_msg("cfg_load: %s", e.detail);
    assert_int_equal(c.port, 9002);
    assert_int_equal(c.workers, 3);
    assert_string_equal(c.company_name, "Dot Env Ltd");
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.sms_rate.count, 5);
    assert_int_equal(c.sms_rate.window_s, 60);
    assert_int_equal(c.drain_seconds, 7); /* read after the overlong line */
    assert_int_equal(c.voice_provider, CFG_PROV_OPENAI);
    cfg_free(&c);
    char *logtxt = vt_sms_read_file(logp);
    assert_non_null(logtxt);
    assert_non_null(strstr(logtxt, ".env line 8 is longer than"));
    assert_null(strstr(logtxt, "xxxx"));
    free(logtxt);

    /* the explicit lookup of the tests reads no .env */
    static const char *const none[] = {NULL};
    vt_cfg(&c, none);
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.workers, 4);
    cfg_free(&c);

    /* a bad value in .env is refused with its name */
    write_file(path, "WORKERS=lots\n");
    err_clear(&e);
    assert_int_equal(cfg_load(&c, &e), ERR_CONFIG);
    assert_non_null(strstr(e.detail, "WORKERS"));
    /* ... and the environment's good value wins over it */
    setenv("WORKERS", "5", 1);
    err_clear(&e);
    assert_int_equal(cfg_load(&c, &e), 0);
    assert_int_equal(c.workers, 5);
    cfg_free(&c);

    assert_int_equal(chdir(cwd), 0);
    unsetenv("PORT");
    unsetenv("WORKERS");
    vt_rmdir(dir);
    free(dir);
}

/* ---- AWS Secrets Manager ---- */

static void assert_no_secrets(const char *text)
{
    if (!text)
        return;
    if (strstr(text, SECRET_TWILIO) || strstr(text, SECRET_LINK) || strstr(text, SK) ||
        strstr(text, TOKEN_SESSION))
        fail_msg("a secret value leaked into: %s", text);
}

/* Load with kv; return rc, detail in detail; check no secret in detail or log. */
static int aws_try(const char *const *kv, struct cfg *c, char *detail, size_t detailsz)
{
    const char *logp = vt_sms_log_capture(group_dir);
    int rc = vt_cfg_try(c, kv, detail, detailsz);
    vt_sms_log_release();
    char *logtxt = vt_sms_read_file(logp);
    assert_no_secrets(logtxt);
    assert_no_secrets(detail);
    if (!rc)
        assert_non_null(strstr(logtxt, "values from AWS secret"));
    free(logtxt);
    char *peerlog = vt_sms_read_file(peer.log);
    assert_no_secrets(peerlog);
    free(peerlog);
    return rc;
}

#define AWS_KV(url) "AWS_REGION=" REGION, "AWS_ACCESS_KEY_ID=" AK, "AWS_SECRET_ACCESS_KEY=" SK, url

static void test_aws_overrides_env(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256] = "", ep[96];
    snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=%s", endpoint);
    /* production needs TWILIO_AUTH_TOKEN and LINK_SECRET: only the secret has them */
    const char *kv[] = {"AWS_SECRET_ID=voice-ws/test",
                        AWS_KV(ep),
                        "APP_ENV=production",
                        "PORT=8081",
                        "TWILIO_AUTH_TOKEN=from-env",
                        "WORKERS=6",
                        NULL};
    int rc = aws_try(kv, &c, detail, sizeof detail);
    if (rc)
        fail_msg("AWS load failed: %s", detail);
    assert_int_equal(c.port, 9090);                          /* secret > env */
    assert_string_equal(c.twilio_auth_token, SECRET_TWILIO); /* secret > env */
    assert_string_equal(c.link_secret, SECRET_LINK);
    assert_string_equal(c.company_name, "From AWS Ltd");
    assert_int_equal(c.workers, 6); /* env where the secret is silent */
    assert_true(c.require_verification);
    cfg_free(&c);
    assert_true(vt_sms_count_in_file(peer.log, "\"status\":200") >= 1);
    assert_true(vt_sms_count_in_file(peer.log, "content-type;host;x-amz-date;x-amz-target") >= 1);

    /* AWS_DEFAULT_REGION when AWS_REGION is unset */
    const char *kv2[] = {"AWS_SECRET_ID=voice-ws/test",
                         "AWS_DEFAULT_REGION=" REGION,
                         "AWS_ACCESS_KEY_ID=" AK,
                         "AWS_SECRET_ACCESS_KEY=" SK,
                         ep,
                         NULL};
    rc = aws_try(kv2, &c, detail, sizeof detail);
    if (rc)
        fail_msg("AWS load with AWS_DEFAULT_REGION failed: %s", detail);
    assert_int_equal(c.port, 9090);
    cfg_free(&c);

    /* an ARN carries its region (the stand-in maps the ARN back to the name) */
    const char *kv3[] = {"AWS_SECRET_ID=arn:aws:secretsmanager:" REGION
                         ":123456789012:secret:voice-ws/test-AbCdEf",
                         "AWS_ACCESS_KEY_ID=" AK, "AWS_SECRET_ACCESS_KEY=" SK, ep, NULL};
    rc = aws_try(kv3, &c, detail, sizeof detail);
    if (rc)
        fail_msg("AWS load by ARN failed: %s", detail);
    assert_string_equal(c.twilio_auth_token, SECRET_TWILIO);
    cfg_free(&c);
}

static void test_aws_refusals(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256], ep[96], bad_ep[96];
    snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=%s", endpoint);

    /* wrong secret key: the stand-in recomputes the signature and refuses */
    const char *wrong_key[] = {"AWS_SECRET_ID=voice-ws/test",
                               "AWS_REGION=" REGION,
                               "AWS_ACCESS_KEY_ID=" AK,
                               "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGKEY",
                               ep,
                               NULL};
    assert_int_equal(aws_try(wrong_key, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "AWS_SECRET_ID voice-ws/test"));
    assert_non_null(strstr(detail, "HTTP 400 InvalidSignatureException"));
    assert_null(strstr(detail, "WRONGKEY"));
    assert_null(strstr(detail, "Canonical")); /* AWS's long message is not copied */

    /* the region is part of what is signed */
    const char *wrong_region[] = {"AWS_SECRET_ID=voice-ws/test",
                                  "AWS_REGION=us-east-1",
                                  "AWS_ACCESS_KEY_ID=" AK,
                                  "AWS_SECRET_ACCESS_KEY=" SK,
                                  ep,
                                  NULL};
    assert_int_equal(aws_try(wrong_region, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "InvalidSignatureException"));

    const char *unknown_ak[] = {"AWS_SECRET_ID=voice-ws/test",
                                "AWS_REGION=" REGION,
                                "AWS_ACCESS_KEY_ID=AKIAUNKNOWN0000000",
                                "AWS_SECRET_ACCESS_KEY=" SK,
                                ep,
                                NULL};
    assert_int_equal(aws_try(unknown_ak, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "HTTP 400 UnrecognizedClientException"));

    const char *missing[] = {"AWS_SECRET_ID=voice-ws/missing", AWS_KV(ep), NULL};
    assert_int_equal(aws_try(missing, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "HTTP 400 ResourceNotFoundException"));
    assert_non_null(strstr(detail, "can't find the specified secret"));

    /* secrets of the wrong shape: named, never quoted */
    const char *raw[] = {"AWS_SECRET_ID=raw", AWS_KV(ep), NULL};
    assert_int_equal(aws_try(raw, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "not a JSON object"));
    const char *array[] = {"AWS_SECRET_ID=array", AWS_KV(ep), NULL};
    assert_int_equal(aws_try(array, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "not a JSON object"));
    const char *nested[] = {"AWS_SECRET_ID=nested", AWS_KV(ep), NULL};
    assert_int_equal(aws_try(nested, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "TWILIO_AUTH_TOKEN"));
    assert_non_null(strstr(detail, "not a string"));
    /* a secret value that fails validation is named like any other */
    const char *badvalue[] = {"AWS_SECRET_ID=badvalue", AWS_KV(ep), NULL};
    assert_int_equal(aws_try(badvalue, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "PORT"));

    /* an endpoint that accepts and never answers: bounded by the total timeout */
    const char *hang[] = {"AWS_SECRET_ID=hang", AWS_KV(ep), NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(aws_try(hang, &c, detail, sizeof detail), ERR_CONFIG);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(detail, "did not answer within 10 s"));
    assert_true(t1.tv_sec - t0.tv_sec >= 9 && t1.tv_sec - t0.tv_sec <= 13);

    /* nothing listening */
    snprintf(bad_ep, sizeof bad_ep, "AWS_ENDPOINT_URL=http://127.0.0.1:%d/", vt_free_port());
    const char *down[] = {"AWS_SECRET_ID=voice-ws/test", AWS_KV(bad_ep), NULL};
    assert_int_equal(aws_try(down, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "cannot reach Secrets Manager"));

    /* incomplete settings */
    const char *no_region[] = {"AWS_SECRET_ID=voice-ws/test", "AWS_ACCESS_KEY_ID=" AK,
                               "AWS_SECRET_ACCESS_KEY=" SK, ep, NULL};
    assert_int_equal(aws_try(no_region, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "AWS_REGION"));
    const char *bad_region[] = {"AWS_SECRET_ID=voice-ws/test",
                                "AWS_REGION=eu-west-2/../x",
                                "AWS_ACCESS_KEY_ID=" AK,
                                "AWS_SECRET_ACCESS_KEY=" SK,
                                ep,
                                NULL};
    assert_int_equal(aws_try(bad_region, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "AWS_REGION"));
    const char *no_keys[] = {"AWS_SECRET_ID=voice-ws/test", "AWS_REGION=" REGION, ep, NULL};
    assert_int_equal(aws_try(no_keys, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "AWS_ACCESS_KEY_ID"));
    const char *bad_url[] = {"AWS_SECRET_ID=voice-ws/test", AWS_KV("AWS_ENDPOINT_URL=ftp://x/"),
                             NULL};
    assert_int_equal(aws_try(bad_url, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "AWS_ENDPOINT_URL"));
}

static void test_aws_session_token(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256], ep[96];
    snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=%s", endpoint_tok);

    const char *with[] = {"AWS_SECRET_ID=voice-ws/test", AWS_KV(ep),
                          "AWS_SESSION_TOKEN=" TOKEN_SESSION, NULL};
    int rc = aws_try(with, &c, detail, sizeof detail);
    if (rc)
        fail_msg("AWS load with a session token failed: %s", detail);
    assert_string_equal(c.twilio_auth_token, SECRET_TWILIO);
    cfg_free(&c);
    /* the token header was sent and signed */
    assert_true(
        vt_sms_count_in_file(
            peer_tok.log, "content-type;host;x-amz-date;x-amz-security-token;x-amz-target") >= 1);

    const char *without[] = {"AWS_SECRET_ID=voice-ws/test", AWS_KV(ep), NULL};
    assert_int_equal(aws_try(without, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "UnrecognizedClientException"));

    const char *wrong[] = {"AWS_SECRET_ID=voice-ws/test", AWS_KV(ep),
                           "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEXAMPLEwrong", NULL};
    assert_int_equal(aws_try(wrong, &c, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "UnrecognizedClientException"));
    char *peerlog = vt_sms_read_file(peer_tok.log);
    assert_no_secrets(peerlog);
    free(peerlog);
}

/* ---- the real binary: ./.env, environment, AWS ---- */

static void test_standin_selftest(void **state)
{
    (void)state;
    char script[PATH_MAX];
    struct vt_run r;
    snprintf(script, sizeof script, "%s/tests/peers/aws_secrets_standin.js", vt_src());
    /* the stand-in's SigV4 reproduces AWS's published get-vanilla signature */
    const char *argv[] = {"/usr/bin/env", "node", script, "--selftest", NULL};
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 30), 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "SELFTEST OK"));
    vt_run_free(&r);
}

static json_t *run_health(const char *dir, const char *const *env, struct vt_run *r)
{
    const char *argv[] = {vt_bin(), "health", NULL};
    assert_int_equal(vt_run(r, dir, env, argv, 30), 0);
    if (r->status != 0)
        return NULL;
    json_t *j = json_loads(r->out, 0, NULL);
    if (!j)
        fail_msg("health stdout is not JSON: %s", r->out);
    return j;
}

static void test_binary(void **state)
{
    (void)state;
    char *dir = vt_tmpdir(), path[PATH_MAX], dbp[PATH_MAX + 16], ep[96];
    struct vt_run r;
    json_t *j;

    snprintf(path, sizeof path, "%s/.env", dir);
    snprintf(dbp, sizeof dbp, "DB_PATH=%s/voice-ws.db", dir);

    /* .env says hume: refused at start, naming the replacement */
    write_file(path, "VOICE_PROVIDER=hume\n");
    j = run_health(dir, NULL, &r);
    assert_null(j);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, "VOICE_PROVIDER"));
    assert_non_null(strstr(r.err, "gemini"));
    vt_run_free(&r);

    /* ... the environment wins over .env */
    const char *env1[] = {"VOICE_PROVIDER=openai", dbp, NULL};
    j = run_health(dir, env1, &r);
    if (!j)
        fail_msg("health failed: %s", r.err);
    assert_string_equal(json_string_value(json_object_get(j, "provider")), "openai");
    json_decref(j);
    vt_run_free(&r);

    /* JSON logs from .env: every stderr line parses */
    char dotenv[PATH_MAX + 64];
    snprintf(dotenv, sizeof dotenv, "LOG_FORMAT=json\nLOG_LEVEL=debug\n%s\n", dbp);
    write_file(path, dotenv);
    j = run_health(dir, NULL, &r);
    if (!j)
        fail_msg("health failed: %s", r.err);
    json_decref(j);
    int lines = 0;
    for (char *line = r.err, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        json_t *l = json_loadb(line, (size_t)(nl - line), 0, NULL);
        if (!l)
            fail_msg("stderr line is not JSON: %.*s", (int)(nl - line), line);
        assert_non_null(json_object_get(l, "msg"));
        json_decref(l);
        lines++;
    }
    assert_true(lines >= 1);
    vt_run_free(&r);

    /* AWS secret over the environment and .env, through the binary */
    snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=%s", endpoint);
    write_file(path, "VOICE_PROVIDER=openai\n");
    const char *env2[] = {"AWS_SECRET_ID=voice-ws/test", AWS_KV(ep), "VOICE_PROVIDER=auto",
                          "APP_ENV=production",          dbp,        NULL};
    j = run_health(dir, env2, &r);
    if (!j)
        fail_msg("health with AWS failed: %s", r.err);
    assert_string_equal(json_string_value(json_object_get(j, "provider")), "gemini");
    assert_no_secrets(r.out);
    assert_no_secrets(r.err);
    assert_non_null(strstr(r.err, "values from AWS secret voice-ws/test"));
    json_decref(j);
    vt_run_free(&r);

    /* a wrong key stops the start with a clear line, and no secret */
    const char *env3[] = {"AWS_SECRET_ID=voice-ws/test",
                          "AWS_REGION=" REGION,
                          "AWS_ACCESS_KEY_ID=" AK,
                          "AWS_SECRET_ACCESS_KEY=not-the-key",
                          ep,
                          dbp,
                          NULL};
    j = run_health(dir, env3, &r);
    assert_null(j);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, "InvalidSignatureException"));
    assert_null(strstr(r.err, "not-the-key"));
    assert_no_secrets(r.err);
    vt_run_free(&r);

    vt_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_values),
        cmocka_unit_test(test_invalid_values),   cmocka_unit_test(test_lists),
        cmocka_unit_test(test_production),       cmocka_unit_test(test_hume_retired),
        cmocka_unit_test(test_dotenv),           cmocka_unit_test(test_aws_overrides_env),
        cmocka_unit_test(test_aws_refusals),     cmocka_unit_test(test_aws_session_token),
        cmocka_unit_test(test_standin_selftest), cmocka_unit_test(test_binary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
