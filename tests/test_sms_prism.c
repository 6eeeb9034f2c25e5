/*
 * test_sms_prism.c - our Twilio client against Stoplight Prism serving
 * Twilio's own OpenAPI description (../shared/peers/twilio), so the shape
 * of every request is checked by a schema nobody on the team wrote.
 *
 * Every message must get 201 and Prism's log must hold no validator error
 * (a line with "✖"); the sms_messages row must say live/queued with the SID
 * from Prism's example body (which has an emoji, strings for numbers and
 * nulls). A last test sends a deliberately malformed request to prove that
 * the log check can fail. Runs per database backend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "sms/sms.h"
#include "vt_db.h"
#include "vt_sms.h"
#include "vwstest.h"

#define SID "AC00000000000000000000000000000000"
#define TOKEN "0123456789abcdef0123456789abcdef"
#define PRISM_SID "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static struct vt_sms_peer prism;
static char *dir;
static const char *backend = "sqlite";
static int sends; /* messages that must have reached Prism */

static void open_env(struct vt_db *h, struct cfg *c, struct db **db, struct sms **s,
                     const char *const *extra)
{
    static char base[64];
    const char *kv[16];
    int n = 0;
    for (const char *const *p = extra; p && *p; p++)
        kv[n++] = *p;
    snprintf(base, sizeof base, "TWILIO_API_BASE=http://127.0.0.1:%d", prism.port);
    kv[n++] = base;
    kv[n++] = "ENABLE_REAL_SMS=true";
    kv[n++] = "TWILIO_ACCOUNT_SID=" SID;
    kv[n++] = "TWILIO_AUTH_TOKEN=" TOKEN;
    kv[n++] = "TWILIO_FROM_NUMBER=+442079460123";
    kv[n++] = "LINK_SECRET=abcdefghijklmnopqrstuvwxyz0123456789";
    kv[n] = NULL;
    vt_db_fresh(backend, c, h, kv);
    *db = vt_db_open(c, false);
    struct err e = {0};
    assert_int_equal(sms_new(s, c, &e), 0);
    assert_true(sms_is_live(*s));
}

static void close_env(struct vt_db *h, struct cfg *c, struct db *db, struct sms *s)
{
    sms_free(s);
    db_close(db);
    vt_db_cleanup(h, c);
}

static void assert_row(struct db *db, long long id, const char *to, const char *intended,
                       const char *mode, int segments)
{
    struct err e = {0};
    struct db_rows r = {0};
    struct db_val a[] = {DB_I(id)};
    assert_int_equal(db_exec(db, "SELECT * FROM sms_messages WHERE id = ?", a, 1, &r, &e), 0);
    assert_int_equal(r.nrows, 1);
    assert_string_equal(db_cell(&r, 0, "to_number"), to);
    assert_string_equal(db_cell(&r, 0, "intended_to"), intended);
    assert_string_equal(db_cell(&r, 0, "mode"), mode);
    assert_string_equal(db_cell(&r, 0, "status"), "queued");
    assert_string_equal(db_cell(&r, 0, "provider_sid"), PRISM_SID);
    assert_null(db_cell(&r, 0, "error_code"));
    assert_int_equal(db_cell_int(&r, 0, "segments", -1), segments);
    db_rows_free(&r);
}

static void assert_prism_clean(void)
{
    assert_int_equal(vt_sms_count_in_file(prism.log, "✖"), 0);
    assert_int_equal(vt_sms_count_in_file(prism.log, "[VALIDATOR] ✔  success   The request passed"),
                     sends);
    assert_int_equal(vt_sms_count_in_file(prism.log, "Responding with \"201\""), sends);
}

static void test_sms_prism_production_send_is_valid_twilio(void **state)
{
    (void)state;
    struct vt_db h;
    struct cfg c;
    struct db *db;
    struct sms *s;
    const char *kv[] = {"APP_ENV=production", NULL};
    open_env(&h, &c, &db, &s, kv);
    struct sms_result r;
    struct err e = {0};
    assert_int_equal(sms_send(s, db, "+447700900001",
                              "Hi Sarah, Resolve My Claim will call you back on Tue 25 Nov at "
                              "3:00pm.",
                              &r, &e),
                     0);
    sends++;
    assert_true(r.sent);
    assert_string_equal(r.mode, "live");
    assert_string_equal(r.status, "queued");
    assert_string_equal(r.provider_sid, PRISM_SID);
    assert_row(db, r.row_id, "+447700900001", "+447700900001", "live", 1);
    assert_prism_clean();
    close_env(&h, &c, db, s);
}

static void test_sms_prism_redirect_and_unicode_bodies_are_valid(void **state)
{
    (void)state;
    struct vt_db h;
    struct cfg c;
    struct db *db;
    struct sms *s;
    const char *kv[] = {"SMS_TEST_NUMBERS=+447700900555", NULL};
    open_env(&h, &c, &db, &s, kv);
    struct sms_result r;
    struct err e = {0};
    const char *bodies[] = {
        "Hi Sarah, here is your secure portal link: https://portal.example.co.uk/l/"
        "Q2hLb3Z1R3VhcmQtVG9rZW4tMzItYnl0ZXMtaGVyZQ?x=1&y=2+3",
        "Don’t forget: £5 fee, café, 👍 & = + % # characters survive form encoding",
    };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(sms_send(s, db, "+447700900001", bodies[i], &r, &e), 0);
        sends++;
        assert_true(r.sent);
        assert_string_equal(r.mode, "redirected");
        assert_string_equal(r.to, "+447700900555");
        /* Prism's fixed example says num_segments "1"; that is what we record. */
        assert_row(db, r.row_id, "+447700900555", "+447700900001", "redirected", 1);
    }
    assert_prism_clean();
    close_env(&h, &c, db, s);
}

/* The log check is real: a request Twilio would reject shows up as "✖". */
static void test_sms_prism_log_check_catches_bad_requests(void **state)
{
    (void)state;
    char url[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/2010-04-01/Accounts/%s/Messages.json",
             prism.port, SID);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USERPWD, SID ":" TOKEN);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "to=%2B447700900001&from=%2B442079460123&body=hi");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fwrite);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    fclose(devnull);
    assert_int_equal(code, 422);
    assert_true(vt_sms_count_in_file(prism.log, "✖") > 0);
    assert_true(vt_sms_count_in_file(prism.log, "must have required property 'To'") > 0);
}

static int start_prism(void)
{
    char bin[512], spec[512], port[16];
    dir = vt_tmpdir();
    snprintf(bin, sizeof bin, "%s/tests/peers/node_modules/.bin/prism", vt_src());
    snprintf(spec, sizeof spec, "%s/../shared/peers/twilio/twilio_api_v2010.json", vt_src());
    if (access(bin, X_OK) || access(spec, R_OK)) {
        fprintf(stderr, "prism or the Twilio spec is missing: %s %s\n", bin, spec);
        return -1;
    }
    prism.port = vt_free_port();
    snprintf(port, sizeof port, "%d", prism.port);
    snprintf(prism.log, sizeof prism.log, "%s/prism.log", dir);
    const char *argv[] = {bin, "mock", "-h", "127.0.0.1", "-p", port, "--errors", spec, NULL};
    if (vt_sms_peer_start(&prism, argv, 30)) {
        fprintf(stderr, "prism did not start listening within 30 s\n");
        return -1;
    }
    /* The port opens slightly before the routes are loaded: wait for the banner. */
    for (int i = 0; i < 100 && !vt_sms_count_in_file(prism.log, "Prism is listening"); i++)
        usleep(100000);
    return vt_sms_count_in_file(prism.log, "Prism is listening") ? 0 : -1;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest per_backend[] = {
        cmocka_unit_test(test_sms_prism_production_send_is_valid_twilio),
        cmocka_unit_test(test_sms_prism_redirect_and_unicode_bodies_are_valid),
    };
    const struct CMUnitTest last[] = {
        cmocka_unit_test(test_sms_prism_log_check_catches_bad_requests),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (start_prism()) {
        vt_sms_peer_stop(&prism);
        fprintf(stderr, "FAIL: could not start Prism\n");
        return 1;
    }
    int failed = vt_db_run_per_backend("sms_prism", per_backend,
                                       sizeof per_backend / sizeof per_backend[0], NULL, NULL,
                                       &backend);
    failed += cmocka_run_group_tests_name("sms_prism_negative_control", last, NULL, NULL);
    vt_sms_peer_stop(&prism);
    vt_rmdir(dir);
    free(dir);
    curl_global_cleanup();
    return failed;
}
