/*
 * test_sms.c - messaging: segments, development safety, rate limits (also
 * across two processes sharing one database), every Twilio failure path's
 * final sms_messages row (against tests/peers/twilio_faults.js), email
 * through a loopback SMTP stand-in (tests/peers/smtp_standin.js), and the
 * message texts. Real SQLite database per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "db/db.h"
#include "sms/sms.h"
#include "sms/texts.h"
#include "vt_db.h"
#include "vt_sms.h"
#include "vwstest.h"

#define TOKEN "0123456789abcdef0123456789abcdef"
#define FROM "+442079460123"
#define CUSTOMER "+447700900001"
#define TESTNUM "+447700900555"

static struct vt_sms_peer faults; /* shared by the group */
static char *group_dir;
static int sid_seq;
static const char *backend = "sqlite"; /* the group being run */

/* ---- fixture: cfg + fresh SQLite database + sms ---- */

struct fx {
    char *dir;
    struct vt_db vdb;
    struct cfg cfg;
    struct db *db;
    struct sms *sms;
    const char *logp;
    char sid[40];
    char kvbuf[16][160];
    const char *kv[24];
};

/* scenario: last 4 hex digits of the AccountSid (see twilio_faults.js). */
static void fx_open(struct fx *f, const char *scenario, const char *const *extra)
{
    int n = 0, b = 0;
    memset(f, 0, sizeof *f);
    f->dir = vt_tmpdir();
    snprintf(f->sid, sizeof f->sid, "AC%028x%s", ++sid_seq, scenario ? scenario : "0201");
    for (const char *const *p = extra; p && *p; p++)
        f->kv[n++] = *p;
    snprintf(f->kvbuf[b], sizeof f->kvbuf[b], "TWILIO_ACCOUNT_SID=%s", f->sid);
    f->kv[n++] = f->kvbuf[b++];
    snprintf(f->kvbuf[b], sizeof f->kvbuf[b], "TWILIO_API_BASE=http://127.0.0.1:%d", faults.port);
    f->kv[n++] = f->kvbuf[b++];
    f->kv[n++] = "TWILIO_AUTH_TOKEN=" TOKEN;
    f->kv[n++] = "TWILIO_FROM_NUMBER=" FROM;
    f->kv[n++] = "LINK_SECRET=abcdefghijklmnopqrstuvwxyz0123456789";
    f->kv[n++] = "COMPANY_NAME=Resolve My Claim";
    f->kv[n] = NULL;
    vt_db_fresh(backend, &f->cfg, &f->vdb, f->kv);
    f->db = vt_db_open(&f->cfg, false);
    struct err e = {0};
    f->logp = vt_sms_log_capture(f->dir);
    assert_int_equal(sms_new(&f->sms, &f->cfg, &e), 0);
}

static void fx_close(struct fx *f)
{
    vt_sms_log_release();
    sms_free(f->sms);
    db_close(f->db);
    vt_db_cleanup(&f->vdb, &f->cfg);
    vt_rmdir(f->dir);
    free(f->dir);
    util_set_fake_now(0);
}

/* One sms_messages row as text; caller frees with db_rows_free. */
static void row(struct fx *f, long long id, struct db_rows *r)
{
    struct err e = {0};
    struct db_val a[] = {DB_I(id)};
    assert_int_equal(db_exec(f->db, "SELECT * FROM sms_messages WHERE id = ?", a, 1, r, &e), 0);
    assert_int_equal(r->nrows, 1);
}

static long long count_sql(struct db *db, const char *sql)
{
    struct err e = {0};
    struct db_rows r = {0};
    assert_int_equal(db_exec(db, sql, NULL, 0, &r, &e), 0);
    long long n = db_cell_int(&r, 0, "n", -1);
    db_rows_free(&r);
    return n;
}

static void assert_row(struct fx *f, long long id, const char *to, const char *intended,
                       const char *mode, const char *status, const char *error_code)
{
    struct db_rows r = {0};
    row(f, id, &r);
    assert_string_equal(db_cell(&r, 0, "to_number"), to);
    assert_string_equal(db_cell(&r, 0, "intended_to"), intended);
    assert_string_equal(db_cell(&r, 0, "mode"), mode);
    assert_string_equal(db_cell(&r, 0, "status"), status);
    if (error_code)
        assert_string_equal(db_cell(&r, 0, "error_code") ? db_cell(&r, 0, "error_code") : "(null)",
                            error_code);
    else
        assert_null(db_cell(&r, 0, "error_code"));
    db_rows_free(&r);
}

/* Requests the faults peer saw for this fixture's AccountSid. */
static int peer_requests(struct fx *f)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"sid\":\"%s\"", f->sid);
    return vt_sms_count_in_file(faults.log, needle);
}

static int send_one(struct fx *f, const char *to, const char *body, struct sms_result *r)
{
    struct err e = {0};
    return sms_send(f->sms, f->db, to, body, r, &e);
}

/* ---- group: the faults peer ---- */

static int group_setup(void **state)
{
    (void)state;
    char script[512];
    group_dir = vt_tmpdir();
    snprintf(script, sizeof script, "%s/tests/peers/twilio_faults.js", vt_src());
    faults.port = vt_free_port();
    snprintf(faults.log, sizeof faults.log, "%s/faults.log", group_dir);
    char port[16];
    snprintf(port, sizeof port, "%d", faults.port);
    const char *argv[] = {"node", script, port, TOKEN, NULL};
    if (vt_sms_peer_start(&faults, argv, 20)) {
        fprintf(stderr, "could not start twilio_faults.js\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    vt_sms_peer_stop(&faults);
    vt_rmdir(group_dir);
    free(group_dir);
    return 0;
}

/* ---- segments ---- */

static char *rep(const char *unit, int n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + u * (size_t)i, unit, u);
    s[u * (size_t)n] = '\0';
    return s;
}

static int segs_of(const char *a, const char *b, const char *c, bool *ucs2)
{
    char *s = malloc(strlen(a) + strlen(b) + strlen(c) + 1);
    strcpy(s, a);
    strcat(s, b);
    strcat(s, c);
    int n = sms_segments(s, ucs2);
    free(s);
    return n;
}

static void test_sms_segments_gsm7(void **state)
{
    (void)state;
    bool u = true;
    assert_int_equal(sms_segments("Hello Sarah, your callback is booked.", &u), 1);
    assert_false(u);
    assert_int_equal(sms_segments("", &u), 0);
    assert_int_equal(sms_segments("£5 fee, café, Ñ, ¿, @ and é are GSM-7", &u), 1);
    assert_false(u);
    char *a160 = rep("a", 160), *a161 = rep("a", 161), *a306 = rep("a", 306), *a307 = rep("a", 307);
    assert_int_equal(sms_segments(a160, &u), 1);
    assert_int_equal(sms_segments(a161, &u), 2);
    assert_int_equal(sms_segments(a306, &u), 2);
    assert_int_equal(sms_segments(a307, &u), 3);
    assert_false(u);
    char *a1600 = rep("a", 1600);
    assert_int_equal(sms_segments(a1600, &u), 11);
    free(a160), free(a161), free(a306), free(a307), free(a1600);
}

static void test_sms_segments_extension_chars(void **state)
{
    (void)state;
    bool u = true;
    char *e80 = rep("€", 80), *e81 = rep("€", 81);
    assert_int_equal(sms_segments(e80, &u), 1); /* 160 septets */
    assert_false(u);
    assert_int_equal(sms_segments(e81, &u), 2); /* 162 septets */
    assert_false(u);
    /* An escape pair never straddles segments: 152 + {2} + 152 = 306 septets, yet 3 parts. */
    char *a152 = rep("a", 152);
    assert_int_equal(segs_of(a152, "{", a152, &u), 3);
    assert_false(u);
    assert_int_equal(sms_segments("[x] ^ {y} | ~ \\ €", &u), 1);
    assert_false(u);
    free(e80), free(e81), free(a152);
}

static void test_sms_segments_ucs2(void **state)
{
    (void)state;
    bool u = false;
    assert_int_equal(sms_segments("Hello! 👍", &u), 1);
    assert_true(u);
    u = false;
    assert_int_equal(sms_segments("Don’t worry", &u), 1); /* curly apostrophe */
    assert_true(u);
    u = false;
    assert_int_equal(sms_segments("back`tick", &u), 1);
    assert_true(u);
    char *q69 = rep("a", 69), *q70 = rep("a", 70), *q133 = rep("a", 133), *q134 = rep("a", 134);
    assert_int_equal(segs_of("’", q69, "", &u), 1);  /* 70 units */
    assert_int_equal(segs_of("’", q70, "", &u), 2);  /* 71 */
    assert_int_equal(segs_of("’", q133, "", &u), 2); /* 134 */
    assert_int_equal(segs_of("’", q134, "", &u), 3); /* 135 */
    /* A surrogate pair never straddles: 66 + 👍(2) + 66 = 134 units, yet 3 parts. */
    char *a65 = rep("a", 65), *a66 = rep("a", 66);
    char *head = malloc(strlen(a65) + 8);
    strcpy(head, "’");
    strcat(head, a65);
    assert_int_equal(segs_of(head, "👍", a66, &u), 3);
    assert_true(u);
    free(q69), free(q70), free(q133), free(q134), free(a65), free(a66), free(head);
}

/* ---- mock and development safety ---- */

static void test_sms_mock_records_row_and_logs_masked(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "0201", NULL);
    struct sms_result r;
    assert_false(sms_is_live(f.sms));
    assert_int_equal(send_one(&f, CUSTOMER, "Hi Sarah, your callback is booked.", &r), 0);
    assert_true(r.sent);
    assert_string_equal(r.mode, "mock");
    assert_string_equal(r.status, "mock");
    assert_string_equal(r.to, CUSTOMER);
    assert_int_equal(r.segments, 1);
    assert_true(r.row_id > 0);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "mock", "mock", NULL);
    struct db_rows rw = {0};
    row(&f, r.row_id, &rw);
    assert_string_equal(db_cell(&rw, 0, "body"), "Hi Sarah, your callback is booked.");
    assert_int_equal(db_cell_int(&rw, 0, "segments", 0), 1);
    db_rows_free(&rw);
    assert_int_equal(vt_sms_count_in_file(f.logp, "📱 [VOICE-SMS] SMS sent successfully"), 1);
    assert_int_equal(vt_sms_count_in_file(f.logp, CUSTOMER), 0); /* masked */
    assert_int_equal(vt_sms_count_in_file(f.logp, "+44*******001"), 1);
    assert_int_equal(peer_requests(&f), 0);
    fx_close(&f);
}

static void test_sms_stored_body_redacts_link_token(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "0201", NULL);
    struct sms_result r;
    const char *body = "Hi Sarah, your portal link: https://portal.example.co.uk/l/"
                       "Q2hLb3Z1R3VhcmQtVG9rZW4tMzItYnl0ZXMtaGVyZQ";
    assert_int_equal(send_one(&f, CUSTOMER, body, &r), 0);
    struct db_rows rw = {0};
    row(&f, r.row_id, &rw);
    assert_null(strstr(db_cell(&rw, 0, "body"), "Q2hLb3Z1R3VhcmQtVG9rZW4tMzItYnl0ZXMtaGVyZQ"));
    assert_non_null(strstr(db_cell(&rw, 0, "body"), "https://portal.example.co.uk/l/Q2hL..."));
    db_rows_free(&rw);
    fx_close(&f);
}

static void test_sms_dev_redirects_to_first_test_number(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"ENABLE_REAL_SMS=true", "SMS_TEST_NUMBERS=" TESTNUM ",+447700900556", NULL};
    fx_open(&f, "0201", kv);
    struct sms_result r;
    assert_true(sms_is_live(f.sms));
    assert_int_equal(send_one(&f, CUSTOMER, "Hi Sarah, test.", &r), 0);
    assert_true(r.sent);
    assert_string_equal(r.mode, "redirected");
    assert_string_equal(r.status, "queued");
    assert_string_equal(r.to, TESTNUM);
    assert_int_equal(strncmp(r.provider_sid, "SM", 2), 0);
    assert_row(&f, r.row_id, TESTNUM, CUSTOMER, "redirected", "queued", NULL);
    /* The stand-in got exactly one request, and it went to the test number. */
    assert_int_equal(peer_requests(&f), 1);
    char needle[128];
    snprintf(needle, sizeof needle,
             "\"sid\":\"%s\",\"scenario\":\"0201\",\"attempt\":1,\"to\":\"%s\"", f.sid, TESTNUM);
    assert_int_equal(vt_sms_count_in_file(faults.log, needle), 1);
    /* A listed test number itself goes live, unredirected. */
    assert_int_equal(send_one(&f, "+447700900556", "Hi, test.", &r), 0);
    assert_string_equal(r.mode, "live");
    assert_row(&f, r.row_id, "+447700900556", "+447700900556", "live", "queued", NULL);
    assert_int_equal(peer_requests(&f), 2);
    fx_close(&f);
}

static void test_sms_dev_without_test_numbers_stays_mock(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"ENABLE_REAL_SMS=true", NULL};
    fx_open(&f, "0201", kv);
    struct sms_result r;
    assert_true(sms_is_live(f.sms));
    assert_int_equal(send_one(&f, CUSTOMER, "Hi Sarah.", &r), 0);
    assert_true(r.sent);
    assert_string_equal(r.mode, "mock");
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "mock", "mock", NULL);
    assert_int_equal(peer_requests(&f), 0); /* nothing left the machine */
    fx_close(&f);
}

static void test_sms_production_sends_to_real_recipient(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"APP_ENV=production", "ENABLE_REAL_SMS=true", "SMS_TEST_NUMBERS=" TESTNUM,
                        NULL};
    fx_open(&f, "0201", kv);
    struct sms_result r;
    assert_int_equal(send_one(&f, CUSTOMER, "Hi Sarah.", &r), 0);
    assert_true(r.sent);
    assert_string_equal(r.mode, "live");
    assert_string_equal(r.to, CUSTOMER);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "queued", NULL);
    char needle[128];
    snprintf(needle, sizeof needle,
             "\"sid\":\"%s\",\"scenario\":\"0201\",\"attempt\":1,\"to\":\"%s\"", f.sid, CUSTOMER);
    assert_int_equal(vt_sms_count_in_file(faults.log, needle), 1);
    fx_close(&f);
}

static void test_sms_production_refuses_plain_http_twilio(void **state)
{
    (void)state;
    struct cfg c;
    const char *kv[] = {"APP_ENV=production",
                        "ENABLE_REAL_SMS=true",
                        "TWILIO_API_BASE=http://twilio.example.com",
                        "TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000",
                        "TWILIO_AUTH_TOKEN=" TOKEN,
                        "TWILIO_FROM_NUMBER=" FROM,
                        "LINK_SECRET=abcdefghijklmnopqrstuvwxyz0123456789",
                        NULL};
    vt_cfg(&c, kv);
    struct sms *s = NULL;
    struct err e = {0};
    assert_int_equal(sms_new(&s, &c, &e), ERR_CONFIG);
    assert_null(s);
    assert_non_null(strstr(e.detail, "TWILIO_API_BASE"));
    cfg_free(&c);
}

/* ---- destination checks ---- */

static void test_sms_refuses_landline_and_bad_numbers_with_a_row(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"APP_ENV=production", "ENABLE_REAL_SMS=true", NULL};
    fx_open(&f, "0201", kv);
    struct {
        const char *to, *code;
    } cases[] = {
        {"+442079460123", "landline"},   /* London */
        {"+441632960001", "landline"},   /* 01632 fictional area */
        {"+447000900123", "not_mobile"}, /* 070 personal number */
        {"+447600900123", "not_mobile"}, /* 076 pager */
        {"+448001111111", "not_mobile"}, /* freephone */
        {"07700900123", "invalid_number"},
        {"+4407700900123", "invalid_number"},
        {"+44770090012", "invalid_number"},
        {"anonymous", "invalid_number"},
        {"", "invalid_number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sms_result r;
        assert_int_equal(send_one(&f, cases[i].to, "Hi.", &r), 0);
        assert_false(r.sent);
        assert_string_equal(r.status, "refused");
        assert_string_equal(r.error_code, cases[i].code);
        assert_true(strlen(r.say) > 20);
        assert_row(&f, r.row_id, cases[i].to, cases[i].to, "live", "refused", cases[i].code);
    }
    struct sms_result r;
    assert_int_equal(send_one(&f, "+447624123456", "Isle of Man mobile", &r), 0);
    assert_true(r.sent);
    assert_int_equal(send_one(&f, "+33612345678", "French mobile", &r), 0);
    assert_true(r.sent);
    assert_int_equal(send_one(&f, CUSTOMER, "", &r), 0);
    assert_false(r.sent);
    assert_string_equal(r.error_code, "empty_body");
    char *big = rep("a", 1601);
    assert_int_equal(send_one(&f, CUSTOMER, big, &r), 0);
    free(big);
    assert_string_equal(r.error_code, "body_too_long");
    assert_int_equal(peer_requests(&f), 2); /* only the two valid mobiles reached Twilio */
    assert_int_equal(count_sql(f.db, "SELECT COUNT(*) AS n FROM sms_messages"), 14);
    fx_close(&f);
}

/* If the message cannot be recorded, it is not sent: no row, no request, an error. */
static void test_sms_unrecordable_message_is_not_sent(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"APP_ENV=production", "ENABLE_REAL_SMS=true", NULL};
    fx_open(&f, "0201", kv);
    struct err e = {0};
    assert_int_equal(db_run(f.db, "DROP TABLE sms_messages", NULL, 0, &e), 0);
    struct sms_result r;
    err_clear(&e);
    assert_true(sms_send(f.sms, f.db, CUSTOMER, "Hi.", &r, &e) < 0);
    assert_false(r.sent);
    assert_true(strlen(r.say) > 10);
    assert_int_equal(peer_requests(&f), 0);
    fx_close(&f);
}

/* NULL or absurd input: a refused row, never a crash. */
static void test_sms_bad_input_is_refused_not_crashed(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, "0201", NULL);
    struct sms_result r;
    assert_int_equal(send_one(&f, NULL, "Hi.", &r), 0);
    assert_string_equal(r.error_code, "invalid_number");
    assert_int_equal(send_one(&f, CUSTOMER, NULL, &r), 0);
    assert_string_equal(r.error_code, "empty_body");
    char *huge = rep("9", 5000);
    huge[0] = '+';
    assert_int_equal(send_one(&f, huge, "Hi.", &r), 0);
    free(huge);
    assert_string_equal(r.status, "refused");
    assert_string_equal(r.error_code, "invalid_number");
    assert_int_equal(send_one(&f, CUSTOMER, "bad utf-8 \xff\xfe here", &r), 0);
    assert_false(r.sent);
    assert_string_equal(r.error_code, "bad_encoding");
    struct db_rows rw = {0};
    row(&f, r.row_id, &rw);
    assert_string_equal(db_cell(&rw, 0, "body"), "bad utf-8 ?? here");
    db_rows_free(&rw);
    /* Overlong and surrogate encodings are not UTF-8 either. */
    assert_int_equal(send_one(&f, CUSTOMER, "x\xc0\xafy\xed\xa0\x80z", &r), 0);
    assert_string_equal(r.error_code, "bad_encoding");
    row(&f, r.row_id, &rw);
    assert_string_equal(db_cell(&rw, 0, "body"), "x??y???z");
    db_rows_free(&rw);
    struct err e = {0};
    assert_true(sms_send(f.sms, NULL, CUSTOMER, "Hi.", &r, &e) < 0);
    assert_int_equal(count_sql(f.db, "SELECT COUNT(*) AS n FROM sms_messages"), 5);
    fx_close(&f);
}

/* ---- rate limits ---- */

static void test_sms_rate_limit_per_recipient(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"SMS_RATE_LIMIT=3/600", NULL};
    fx_open(&f, "0201", kv);
    struct sms_result r;
    util_set_fake_now(1800000000LL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
        assert_true(r.sent);
    }
    assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
    assert_false(r.sent);
    assert_string_equal(r.status, "refused");
    assert_string_equal(r.error_code, "rate_limited");
    assert_non_null(strstr(r.say, "few texts"));
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "mock", "refused", "rate_limited");
    /* Another customer is not affected. */
    assert_int_equal(send_one(&f, "+447700900002", "Hi.", &r), 0);
    assert_true(r.sent);
    /* The refused one did not use up the window: 599 s later still refused, 601 s later fine. */
    util_set_fake_now(1800000000LL + 599);
    assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
    assert_false(r.sent);
    util_set_fake_now(1800000000LL + 601);
    assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
    assert_true(r.sent);
    assert_int_equal(
        count_sql(f.db, "SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'refused'"), 2);
    fx_close(&f);
}

static void test_sms_redirected_counts_against_intended_recipient(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"ENABLE_REAL_SMS=true", "SMS_TEST_NUMBERS=" TESTNUM, "SMS_RATE_LIMIT=2/600",
                        NULL};
    fx_open(&f, "0201", kv);
    struct sms_result r;
    assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
    assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
    assert_true(r.sent);
    assert_int_equal(send_one(&f, CUSTOMER, "Hi.", &r), 0);
    assert_false(r.sent);
    assert_row(&f, r.row_id, TESTNUM, CUSTOMER, "redirected", "refused", "rate_limited");
    /* A different intended customer, same test phone: its own budget. */
    assert_int_equal(send_one(&f, "+447700900002", "Hi.", &r), 0);
    assert_true(r.sent);
    assert_int_equal(peer_requests(&f), 3);
    fx_close(&f);
}

static void test_sms_global_rate_limit(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"SMS_GLOBAL_RATE_LIMIT=4/60", NULL};
    fx_open(&f, "0201", kv);
    struct sms_result r;
    char to[20];
    for (int i = 0; i < 4; i++) {
        snprintf(to, sizeof to, "+4477009001%02d", i);
        assert_int_equal(send_one(&f, to, "Hi.", &r), 0);
        assert_true(r.sent);
    }
    assert_int_equal(send_one(&f, "+447700900199", "Hi.", &r), 0);
    assert_false(r.sent);
    assert_string_equal(r.error_code, "rate_limited");
    assert_non_null(strstr(r.say, "very busy"));
    assert_row(&f, r.row_id, "+447700900199", "+447700900199", "mock", "refused", "rate_limited");
    fx_close(&f);
}

/*
 * Two processes, each with its own connection to one database file, race
 * to text the same customer: together they get exactly SMS_RATE_LIMIT.
 */
static void test_sms_rate_limit_across_two_processes(void **state)
{
    (void)state;
    struct fx f;
    const char *kv[] = {"SMS_RATE_LIMIT=3/600", NULL};
    fx_open(&f, "0201", kv);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            struct db *db = NULL;
            struct sms *s = NULL;
            struct err e = {0};
            char c;
            close(go[1]);
            if (db_open(db_backend_for(&f.cfg), &db, &f.cfg, &e) || sms_new(&s, &f.cfg, &e))
                _exit(10);
            if (read(go[0], &c, 1) < 0)
                _exit(11);
            int bad = 0;
            for (int i = 0; i < 8; i++) {
                struct sms_result r;
                struct err se = {0};
                if (sms_send(s, db, CUSTOMER, "Race.", &r, &se))
                    bad++;
            }
            sms_free(s);
            db_close(db);
            _exit(bad ? 20 + bad : 0);
        }
    }
    close(go[0]);
    close(go[1]); /* both children start at once */
    for (int k = 0; k < 2; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(count_sql(f.db, "SELECT COUNT(*) AS n FROM sms_messages"), 16);
    assert_int_equal(
        count_sql(f.db, "SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'mock'"), 3);
    assert_int_equal(count_sql(f.db,
                               "SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'refused' "
                               "AND error_code = 'rate_limited'"),
                     13);
    fx_close(&f);
}

/* ---- Twilio failure paths (twilio_faults.js) ---- */

static void live_send(struct fx *f, const char *scenario, const char *const *extra,
                      struct sms_result *r, double *ms)
{
    const char *kv[8] = {"APP_ENV=production", "ENABLE_REAL_SMS=true"};
    int n = 2;
    for (const char *const *p = extra; p && *p && n < 7; p++)
        kv[n++] = *p;
    kv[n] = NULL;
    fx_open(f, scenario, kv);
    double t0 = util_mono_ms();
    assert_int_equal(send_one(f, CUSTOMER, "Hi Sarah, your callback is booked.", r), 0);
    if (ms)
        *ms = util_mono_ms() - t0;
}

static void test_sms_twilio_429_then_201_is_retried_after_retry_after(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    double ms;
    live_send(&f, "0429", NULL, &r, &ms);
    assert_true(r.sent);
    assert_string_equal(r.status, "queued");
    assert_int_equal(peer_requests(&f), 2);
    assert_true(ms >= 950); /* Retry-After: 1 honoured */
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "queued", NULL);
    fx_close(&f);
}

static void test_sms_twilio_429_three_times_gives_up(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "4290", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 3);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "20429");
    assert_non_null(strstr(r.say, "busy"));
    fx_close(&f);
}

static void test_sms_twilio_retry_after_too_long_is_not_waited(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    double ms;
    live_send(&f, "4299", NULL, &r, &ms);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_true(ms < 5000);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "20429");
    fx_close(&f);
}

/* Retry-After 9300000000000000 s: in milliseconds it overflowed a long and read as
 * negative, so we retried at once (and UBSan stopped the process). Give up at once. */
static void test_sms_twilio_absurd_retry_after_gives_up_at_once(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    double ms;
    live_send(&f, "4298", NULL, &r, &ms);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_true(ms < 5000);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "20429");
    fx_close(&f);
}

static void test_sms_twilio_503_three_attempts_then_failed(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "0503", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 3);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "http_503");
    fx_close(&f);
}

static void test_sms_twilio_500_not_retried_unknown(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "0500", NULL, &r, NULL);
    assert_false(r.sent);
    assert_string_equal(r.status, "unknown");
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "unknown", "20500");
    assert_non_null(strstr(r.say, "not sure whether"));
    fx_close(&f);
}

static void test_sms_twilio_502_not_json_unknown(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "0502", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "unknown", "http_502");
    fx_close(&f);
}

static void test_sms_twilio_timeout_not_retried_unknown(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    double ms;
    const char *kv[] = {"SMS_TIMEOUT=1", NULL};
    live_send(&f, "0408", kv, &r, &ms);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_true(ms < 3000);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "unknown", "timeout");
    assert_non_null(strstr(r.say, "not sure whether"));
    fx_close(&f);
}

static void test_sms_twilio_connection_drop_not_retried_unknown(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "0409", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "unknown", "connection_lost");
    fx_close(&f);
}

static void test_sms_twilio_unreachable_is_failed(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    char base[64];
    snprintf(base, sizeof base, "TWILIO_API_BASE=http://127.0.0.1:%d", vt_free_port());
    const char *kv[] = {base, NULL};
    live_send(&f, "0201", kv, &r, NULL);
    assert_false(r.sent);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "connect_failed");
    fx_close(&f);
}

static void test_sms_twilio_21211_invalid_number(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "1211", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "21211");
    assert_non_null(strstr(r.say, "can't receive texts"));
    fx_close(&f);
}

static void test_sms_twilio_problem_json_is_understood(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "9457", NULL, &r, NULL);
    assert_false(r.sent);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "21211");
    fx_close(&f);
}

static void test_sms_twilio_21610_opted_out_is_remembered(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "1610", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "21610");
    assert_non_null(strstr(r.say, "STOP"));
    /* The next message to that number is refused here, without asking Twilio. */
    assert_int_equal(send_one(&f, CUSTOMER, "Hi again.", &r), 0);
    assert_false(r.sent);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "refused", "opted_out");
    assert_int_equal(peer_requests(&f), 1);
    fx_close(&f);
}

static void test_sms_twilio_21408_config_alerts_operator(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    live_send(&f, "1408", NULL, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "21408");
    assert_int_equal(vt_sms_count_in_file(
                         f.logp, "OPERATOR: Twilio refused our sending configuration code=21408"),
                     1);
    assert_non_null(strstr(r.say, "problem on our side"));
    fx_close(&f);
}

static void test_sms_twilio_20003_auth_failure_alerts_without_token(void **state)
{
    (void)state;
    struct fx f;
    struct sms_result r;
    const char *kv[] = {"TWILIO_AUTH_TOKEN=ffffffffffffffffffffffffffffffff", NULL};
    live_send(&f, "0201", kv, &r, NULL);
    assert_false(r.sent);
    assert_int_equal(peer_requests(&f), 1);
    assert_row(&f, r.row_id, CUSTOMER, CUSTOMER, "live", "failed", "20003");
    assert_int_equal(vt_sms_count_in_file(f.logp, "OPERATOR ALERT: Twilio authentication failed"),
                     1);
    assert_int_equal(
        vt_sms_count_in_file(f.logp, "error [sms_twilio] 📱 [VOICE-SMS] OPERATOR ALERT"), 1);
    assert_int_equal(vt_sms_count_in_file(f.logp, "ffffffffffffffffffffffffffffffff"), 0);
    fx_close(&f);
}

/* ---- the stand-in itself rejects what Twilio rejects ---- */

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

static long raw_post(const char *path_sid, const char *userpwd, const char *ctype, const char *body)
{
    char url[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/2010-04-01/Accounts/%s/Messages.json",
             faults.port, path_sid);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    char ct[96];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hd = curl_slist_append(NULL, ct);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (userpwd)
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return code;
}

static void test_sms_faults_peer_rejects_what_twilio_rejects(void **state)
{
    (void)state;
    const char *sid = "AC00000000000000000000000000990201";
    const char *up = "AC00000000000000000000000000990201:" TOKEN;
    const char *good = "To=%2B447700900001&From=%2B442079460123&Body=Hi";
    assert_int_equal(raw_post(sid, up, NULL, good), 201);
    assert_int_equal(raw_post(sid, NULL, NULL, good), 401);
    assert_int_equal(raw_post(sid, "AC00000000000000000000000000990201:wrong", NULL, good), 401);
    assert_int_equal(
        raw_post(sid, up, "application/json",
                 "{\"To\":\"+447700900001\",\"From\":\"+442079460123\",\"Body\":\"Hi\"}"),
        415);
    assert_int_equal(raw_post(sid, up, NULL, "to=%2B447700900001&from=%2B442079460123&body=Hi"),
                     400);
    assert_int_equal(raw_post(sid, up, NULL, "To=%2B447700900001&From=%2B442079460123"), 400);
    /* A raw '+' decodes to a space: Twilio sees " 447700900001", not E.164. */
    assert_int_equal(raw_post(sid, up, NULL, "To=+447700900001&From=%2B442079460123&Body=Hi"), 400);
    assert_int_equal(raw_post(sid, up, NULL, "To=07700900001&From=%2B442079460123&Body=Hi"), 400);
    assert_int_equal(raw_post("XX123", "XX123:" TOKEN, NULL, good), 404);
    assert_true(vt_sms_count_in_file(faults.log, "\"bad\":\"21211\"") >= 2);
    assert_true(vt_sms_count_in_file(faults.log, "\"bad\":\"20003\"") >= 2);
}

/* ---- email ---- */

struct smtp_fx {
    struct vt_sms_peer peer;
    char dir[256];
};

static void smtp_start(struct smtp_fx *s, const char *dir, const char *creds)
{
    char script[512], port[16];
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(script, sizeof script, "%s/tests/peers/smtp_standin.js", vt_src());
    s->peer.port = vt_free_port();
    snprintf(port, sizeof port, "%d", s->peer.port);
    snprintf(s->peer.log, sizeof s->peer.log, "%s/smtp.log", dir);
    const char *argv[] = {"node", script, port, dir, creds, NULL};
    assert_int_equal(vt_sms_peer_start(&s->peer, argv, 20), 0);
}

static void mail_cfg(struct cfg *c, const struct smtp_fx *s, const char *const *extra)
{
    static char url[64];
    const char *kv[12];
    int n = 0;
    for (const char *const *p = extra; p && *p; p++)
        kv[n++] = *p;
    snprintf(url, sizeof url, "SMTP_URL=smtp://127.0.0.1:%d", s->peer.port);
    kv[n++] = url;
    kv[n++] = "SMTP_FROM=claims@example.co.uk";
    kv[n++] = "COMPANY_NAME=Resolve My Claim";
    kv[n++] = "LINK_SECRET=abcdefghijklmnopqrstuvwxyz0123456789";
    kv[n++] = "TWILIO_AUTH_TOKEN=" TOKEN;
    kv[n] = NULL;
    vt_cfg(c, kv);
}

static void test_mail_not_configured(void **state)
{
    (void)state;
    struct cfg c;
    char detail[256];
    /* SMTP_URL without a sender is refused at start, naming the variable */
    const char *kv[] = {"SMTP_URL=smtp://127.0.0.1:25", NULL};
    assert_int_equal(vt_cfg_try(&c, kv, detail, sizeof detail), ERR_CONFIG);
    assert_non_null(strstr(detail, "SMTP_FROM"));
    /* no SMTP at all: email is off and says so in words the agent can use */
    const char *kv2[] = {NULL};
    vt_cfg(&c, kv2);
    assert_false(mail_configured(&c));
    struct err e = {0};
    assert_int_equal(mail_send(&c, "sarah@example.com", "Hi", "Body", &e), ERR_NOT_CONFIGURED);
    assert_true(strlen(e.say) > 10);
    cfg_free(&c);
}

static void test_mail_sends_rfc5322_message(void **state)
{
    (void)state;
    char *dir = vt_tmpdir();
    struct smtp_fx s;
    smtp_start(&s, dir, NULL);
    struct cfg c;
    mail_cfg(&c, &s, NULL);
    assert_true(mail_configured(&c));
    struct err e = {0};
    const char *body = "Hi Sarah,\n\nHere is your link:\n\nhttps://portal.example.co.uk/l/abc=def\n"
                       ".a line starting with a dot\nCafé £5\n";
    assert_int_equal(mail_send(&c, "sarah@example.com", "Your secure portal link", body, &e), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/msg-1.json", dir);
    char *env = vt_sms_read_file(p);
    assert_non_null(env);
    assert_non_null(strstr(env, "\"from\":\"claims@example.co.uk\""));
    assert_non_null(strstr(env, "\"rcpt\":[\"sarah@example.com\"]"));
    free(env);
    snprintf(p, sizeof p, "%s/msg-1.eml", dir);
    char *m = vt_sms_read_file(p);
    assert_non_null(m);
    assert_non_null(strstr(m, "\r\nFrom: Resolve My Claim <claims@example.co.uk>\r\n"));
    assert_non_null(strstr(m, "\r\nTo: <sarah@example.com>\r\n"));
    assert_non_null(strstr(m, "\r\nSubject: Your secure portal link\r\n"));
    assert_non_null(strstr(m, "\r\nMessage-ID: <"));
    assert_non_null(strstr(m, "@example.co.uk>\r\n"));
    assert_non_null(strstr(m, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(m, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(m, "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"));
    assert_int_equal(strncmp(m, "Date: ", 6), 0);
    assert_non_null(strstr(m, " +0000\r\n"));
    assert_non_null(strstr(m, "https://portal.example.co.uk/l/abc=3Ddef\r\n"));
    assert_non_null(strstr(m, "\r\n=2Ea line starting with a dot\r\n"));
    assert_non_null(strstr(m, "Caf=C3=A9 =C2=A35\r\n"));
    free(m);
    cfg_free(&c);
    vt_sms_peer_stop(&s.peer);
    vt_rmdir(dir);
    free(dir);
}

static void test_mail_refuses_header_injection(void **state)
{
    (void)state;
    char *dir = vt_tmpdir();
    struct smtp_fx s;
    smtp_start(&s, dir, NULL);
    struct cfg c;
    mail_cfg(&c, &s, NULL);
    struct err e = {0};
    assert_int_equal(mail_send(&c, "sarah@example.com\r\nBcc: eve@example.net", "Hi", "x", &e),
                     ERR_NO_CONTACT);
    err_clear(&e);
    assert_int_equal(mail_send(&c, "sarah@example.com, eve@example.net", "Hi", "x", &e),
                     ERR_NO_CONTACT);
    err_clear(&e);
    /* A newline in the subject cannot start a header. */
    assert_int_equal(mail_send(&c, "sarah@example.com", "Hi\r\nBcc: eve@example.net", "x", &e), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/msg-1.eml", dir);
    char *m = vt_sms_read_file(p);
    assert_non_null(m);
    assert_null(strstr(m, "\r\nBcc:"));
    free(m);
    snprintf(p, sizeof p, "%s/msg-2.eml", dir);
    assert_null(vt_sms_read_file(p));
    cfg_free(&c);
    vt_sms_peer_stop(&s.peer);
    vt_rmdir(dir);
    free(dir);
}

static void test_mail_auth_and_production_requires_tls(void **state)
{
    (void)state;
    char *dir = vt_tmpdir();
    struct smtp_fx s;
    smtp_start(&s, dir, "mailer:s3cret");
    struct cfg c;
    const char *auth[] = {"SMTP_USER=mailer", "SMTP_PASSWORD=s3cret", NULL};
    mail_cfg(&c, &s, auth);
    struct err e = {0};
    assert_int_equal(mail_send(&c, "sarah@example.com", "Hi", "Body", &e), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/msg-1.json", dir);
    char *env = vt_sms_read_file(p);
    assert_non_null(env);
    assert_non_null(strstr(env, "\"auth\":\"mailer\""));
    free(env);
    cfg_free(&c);
    /* Wrong password: refused by the server, reported as email_failed. */
    const char *bad[] = {"SMTP_USER=mailer", "SMTP_PASSWORD=nope", NULL};
    mail_cfg(&c, &s, bad);
    err_clear(&e);
    assert_int_equal(mail_send(&c, "sarah@example.com", "Hi", "Body", &e), ERR_EMAIL_FAILED);
    cfg_free(&c);
    /* Production insists on TLS; the stand-in offers no STARTTLS, so nothing is sent. */
    const char *prod[] = {"APP_ENV=production", "SMTP_USER=mailer", "SMTP_PASSWORD=s3cret", NULL};
    mail_cfg(&c, &s, prod);
    err_clear(&e);
    assert_int_equal(mail_send(&c, "sarah@example.com", "Hi", "Body", &e), ERR_EMAIL_FAILED);
    snprintf(p, sizeof p, "%s/msg-2.eml", dir);
    assert_null(vt_sms_read_file(p));
    cfg_free(&c);
    vt_sms_peer_stop(&s.peer);
    vt_rmdir(dir);
    free(dir);
}

static void test_mail_server_down_is_email_failed(void **state)
{
    (void)state;
    struct cfg c;
    char url[64];
    snprintf(url, sizeof url, "SMTP_URL=smtp://127.0.0.1:%d", vt_free_port());
    const char *kv[] = {url, "SMTP_FROM=claims@example.co.uk", NULL};
    vt_cfg(&c, kv);
    struct err e = {0};
    assert_int_equal(mail_send(&c, "sarah@example.com", "Hi", "Body", &e), ERR_EMAIL_FAILED);
    assert_true(strlen(e.detail) > 0);
    cfg_free(&c);
}

/* ---- texts ---- */

static void test_sms_texts_are_short_and_personal(void **state)
{
    (void)state;
    char out[SMS_TEXT_MAX];
    int n = sms_text_callback(out, sizeof out, "Resolve My Claim", "Sarah Jane",
                              "Tue 25 Nov at 3:00pm");
    assert_int_equal(n, 1);
    assert_non_null(strstr(out, "Hi Sarah, "));
    assert_null(strstr(out, "Jane"));
    assert_non_null(strstr(out, "Resolve My Claim"));
    assert_non_null(strstr(out, "Tue 25 Nov at 3:00pm"));
    n = sms_text_link(out, sizeof out, "Resolve My Claim", "Sarah", "portal",
                      "https://portal.example.co.uk/l/Q2hLb3Z1R3VhcmQtVG9rZW4tMzItYnl0ZXMtaGVyZQ",
                      24);
    assert_int_equal(n, 1);
    assert_non_null(
        strstr(out, "https://portal.example.co.uk/l/Q2hLb3Z1R3VhcmQtVG9rZW4tMzItYnl0ZXMtaGVyZQ"));
    assert_non_null(strstr(out, "Hi Sarah"));
    n = sms_text_link(
        out, sizeof out, "Resolve My Claim", NULL, "documents",
        "https://portal.example.co.uk/upload/Q2hLb3Z1R3VhcmQtVG9rZW4tMzItYnl0ZXMtaGVyZQ", 24);
    assert_int_equal(n, 1);
    assert_non_null(strstr(out, "document upload"));
    assert_non_null(strstr(out, "Hi, "));
    n = sms_text_link(out, sizeof out, "Resolve My Claim", "Sarah", "review",
                      "https://g.page/r/resolve-my-claim/review", 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(out, "review"));
    char subj[128], body[1024];
    sms_text_link_email(subj, sizeof subj, body, sizeof body, "Resolve My Claim", "Sarah", "portal",
                        "https://portal.example.co.uk/l/x", 24);
    assert_non_null(strstr(subj, "Resolve My Claim"));
    assert_non_null(strstr(body, "Hi Sarah,"));
    assert_non_null(strstr(body, "https://portal.example.co.uk/l/x"));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_sms_segments_gsm7),
        cmocka_unit_test(test_sms_segments_extension_chars),
        cmocka_unit_test(test_sms_segments_ucs2),
        cmocka_unit_test(test_sms_production_refuses_plain_http_twilio),
        cmocka_unit_test(test_sms_texts_are_short_and_personal),
        cmocka_unit_test(test_mail_not_configured),
        cmocka_unit_test(test_mail_sends_rfc5322_message),
        cmocka_unit_test(test_mail_refuses_header_injection),
        cmocka_unit_test(test_mail_auth_and_production_requires_tls),
        cmocka_unit_test(test_mail_server_down_is_email_failed),
    };
    const struct CMUnitTest per_backend[] = {
        cmocka_unit_test(test_sms_mock_records_row_and_logs_masked),
        cmocka_unit_test(test_sms_stored_body_redacts_link_token),
        cmocka_unit_test(test_sms_dev_redirects_to_first_test_number),
        cmocka_unit_test(test_sms_dev_without_test_numbers_stays_mock),
        cmocka_unit_test(test_sms_production_sends_to_real_recipient),
        cmocka_unit_test(test_sms_refuses_landline_and_bad_numbers_with_a_row),
        cmocka_unit_test(test_sms_unrecordable_message_is_not_sent),
        cmocka_unit_test(test_sms_bad_input_is_refused_not_crashed),
        cmocka_unit_test(test_sms_rate_limit_per_recipient),
        cmocka_unit_test(test_sms_redirected_counts_against_intended_recipient),
        cmocka_unit_test(test_sms_global_rate_limit),
        cmocka_unit_test(test_sms_rate_limit_across_two_processes),
        cmocka_unit_test(test_sms_twilio_429_then_201_is_retried_after_retry_after),
        cmocka_unit_test(test_sms_twilio_429_three_times_gives_up),
        cmocka_unit_test(test_sms_twilio_retry_after_too_long_is_not_waited),
        cmocka_unit_test(test_sms_twilio_absurd_retry_after_gives_up_at_once),
        cmocka_unit_test(test_sms_twilio_503_three_attempts_then_failed),
        cmocka_unit_test(test_sms_twilio_500_not_retried_unknown),
        cmocka_unit_test(test_sms_twilio_502_not_json_unknown),
        cmocka_unit_test(test_sms_twilio_timeout_not_retried_unknown),
        cmocka_unit_test(test_sms_twilio_connection_drop_not_retried_unknown),
        cmocka_unit_test(test_sms_twilio_unreachable_is_failed),
        cmocka_unit_test(test_sms_twilio_21211_invalid_number),
        cmocka_unit_test(test_sms_twilio_problem_json_is_understood),
        cmocka_unit_test(test_sms_twilio_21610_opted_out_is_remembered),
        cmocka_unit_test(test_sms_twilio_21408_config_alerts_operator),
        cmocka_unit_test(test_sms_twilio_20003_auth_failure_alerts_without_token),
        cmocka_unit_test(test_sms_faults_peer_rejects_what_twilio_rejects),
    };
    int failed = cmocka_run_group_tests_name("sms_pure", pure, NULL, NULL);
    failed += vt_db_run_per_backend("sms", per_backend, sizeof per_backend / sizeof per_backend[0],
                                    group_setup, group_teardown, &backend);
    return failed;
}
