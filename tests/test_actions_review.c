/*
 * test_actions_review.c - regression tests from the production review of
 * src/actions, src/sms, src/db and src/core: each test here failed before
 * its fix. Runs per database backend (SQLite always, MySQL unless
 * VWS_SQLITE_ONLY=1), through act_execute on the real registry, with the
 * mock SMS transport recording real sms_messages rows.
 *
 * Covers: send_review_link's 30-day limit holding across processes that
 * share the database, schedule_callback booking the next opening slot for a
 * phrase without a clock time, audit rows masking numbers hidden by JSON
 * escapes or unicode spaces, the exactly-once cache keyed by the acting user.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actions/action.h"
#include "core/app.h"
#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "db/db.h"
#include "vt_act.h"
#include "vt_db.h"
#include "vt_sms.h"
#include "vwstest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SARAH "+447700900001"
#define JAMES "+447700900002"

static const char *g_backend;

/* The fixture (struct vt_act, vt_act_run, vt_act_code) is shared: tests/lib/vt_act.h. */
static void fx_open(struct vt_act *f, const char *const *extra, const char *caller)
{
    vt_act_open(f, g_backend, extra, caller, "CAreview0001", 0);
}

static long long count(struct vt_act *f, const char *sql)
{
    return vt_db_int(f->db, sql);
}

/* ---- send_review_link across processes ---- */

#define RACERS 4

/*
 * Four processes, each with its own pool and its own call of the same user,
 * ask for a review link at the same moment: exactly one link is sent, the
 * others hear too_soon. (A per-process mutex let each process send one.)
 */
static void test_review_link_once_across_processes(void **state)
{
    struct vt_act *f = *state;
    static const char *const kv[] = {"REVIEW_URL=https://reviews.example.com/rmc", NULL};
    fx_open(f, kv, SARAH);
    int go[2];
    pid_t kids[RACERS];
    assert_int_equal(pipe(go), 0);
    for (int k = 0; k < RACERS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            struct act_env env;
            struct act_session s;
            struct err e = {0};
            char sid[32], c;
            close(go[1]);
            snprintf(sid, sizeof sid, "CArace%d", k);
            if (app_env_open(&env, &f->c, &e))
                _exit(10);
            act_session_init(&s, SARAH, sid, "cli", 0);
            if (act_session_identify(&env, &s, NULL, 0, &e))
                _exit(11);
            if (read(go[0], &c, 1) < 0)
                _exit(12);
            json_t *r = act_execute_text(&env, &s, "send_review_link", "{\"method\":\"sms\"}");
            int code = json_is_true(json_object_get(r, "success")) ? 0
                       : !strcmp(vt_act_code(r), "too_soon")           ? 1
                                                                   : 20;
            json_decref(r);
            act_session_cleanup(&s);
            app_env_close(&env);
            _exit(code);
        }
    }
    close(go[0]);
    close(go[1]); /* every racer starts at once */
    int sent = 0, refused = 0;
    for (int k = 0; k < RACERS; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 0)
            sent++;
        else if (WEXITSTATUS(st) == 1)
            refused++;
        else
            fail_msg("racer %d exited %d on %s", k, WEXITSTATUS(st), g_backend);
    }
    assert_int_equal(sent, 1);
    assert_int_equal(refused, RACERS - 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE link_type = 'review'"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE action = "
                              "'send_review_link'"),
                     RACERS);
}

/* ---- schedule_callback without a clock time ---- */

/* 2026-10-23 (Friday) 12:00 UTC = 13:00 BST; clocks go back on Sunday 25 October. */
#define FRI_OCT_2026 1792756800LL

static const char *str_at(const json_t *env, const char *key)
{
    return json_string_value(json_object_get(json_object_get(env, "data"), key));
}

static json_t *callback(struct vt_act *f, const char *when)
{
    char args[256];
    snprintf(args, sizeof args, "{\"preferred_time\":\"%s\",\"reason\":\"my offer\"}", when);
    return vt_act_run(f, "schedule_callback", args);
}

/*
 * "tomorrow" said on a Friday, or "asap" at ten to six: any opening time fits
 * what the caller asked for, so the next opening is booked at once (it used
 * to be refused with outside_business_hours). A clock time the caller chose
 * ("Saturday at 10am") is still not moved without asking.
 */
static void test_callback_without_clock_time_books_next_opening(void **state)
{
    struct vt_act *f = *state;
    json_t *env;
    fx_open(f, NULL, SARAH);
    util_set_fake_now(FRI_OCT_2026);

    env = callback(f, "tomorrow"); /* Saturday, no time said */
    assert_string_equal(vt_act_code(env), "ok");
    assert_string_equal(str_at(env, "callback_time"), "2026-10-26 09:00:00"); /* 09:00 GMT */
    assert_true(json_is_true(json_object_get(json_object_get(env, "data"), "next_opening")));
    const char *msg = json_string_value(json_object_get(env, "message"));
    assert_non_null(strstr(msg, "the next time we're open, Monday 26 October"));
    assert_non_null(strstr(msg, "tell me a better time"));
    json_decref(env);

    env = callback(f, "Saturday at 10am"); /* a clock time: proposed, not booked */
    assert_string_equal(vt_act_code(env), "outside_business_hours");
    assert_string_equal(str_at(env, "proposed_time"), "2026-10-26 09:00:00");
    json_decref(env);

    util_set_fake_now(FRI_OCT_2026 + 4 * 3600 + 50 * 60); /* 17:50 BST: asap is 18:05 */
    env = callback(f, "asap");
    assert_string_equal(vt_act_code(env), "ok");
    assert_string_equal(str_at(env, "callback_time"), "2026-10-26 09:00:00");
    json_decref(env);

    env = callback(f, "Monday"); /* in hours already: 10:00 as before, not moved */
    assert_string_equal(vt_act_code(env), "ok");
    assert_string_equal(str_at(env, "callback_time"), "2026-10-26 10:00:00");
    assert_null(json_object_get(json_object_get(env, "data"), "next_opening"));
    assert_null(strstr(json_string_value(json_object_get(env, "message")), "next time"));
    json_decref(env);

    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls WHERE user_id = 1"), 3);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls WHERE callback_time = "
                              "'2026-10-26 09:00:00'"),
                     2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 3);
}

/* ---- audit rows: masked whatever the JSON looks like ---- */

/*
 * A number split by a tab (stored as the JSON escape "\t"), by a no-break
 * space or by a Unicode dash, inside nested unknown arguments, in the
 * reason's free text, as a bare integer, or in arguments that are not even
 * JSON: the audit row never holds the digits or the address.
 */
static void test_audit_rows_mask_escaped_and_unicode_numbers(void **state)
{
    struct vt_act *f = *state;
    static const char *const calls[][2] = {
        {"check_user_details",
         "{\"phone_number\":\"07700\\t900002\",\"claim_reference\":\"RMC-2001\"}"},
        {"check_user_details", "{\"phone_number\":\"07700\u00a0900002\"}"},
        {"check_user_details", "{\"phone_number\":\"07700\u2013900002\"}"},
        {"check_user_details", "{\"phone_number\":447700900002}"},
        {"send_portal_link", "{\"method\":\"sms\",\"to\":{\"a\":[\"07700\\n900002\","
                             "\"james.patel@example.com\"]}}"},
        {"schedule_callback", "{\"preferred_time\":\"2026-10-26T10:00\",\"reason\":\"ring "
                              "me on 07700\\t900002 or james.patel@example.com\"}"},
        {"check_user_details", "{\"phone_number\":\"07700\\t900002\",  "},
    };
    fx_open(f, NULL, SARAH);
    util_set_fake_now(FRI_OCT_2026);
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        json_decref(vt_act_run(f, calls[i][0], calls[i][1]));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"),
                     (long long)(sizeof calls / sizeof calls[0]));
    struct db_rows r = {0};
    struct err e = {0};
    assert_int_equal(
        db_exec(f->db, "SELECT arguments FROM voice_action_logs ORDER BY id", NULL, 0, &r, &e), 0);
    for (int i = 0; i < r.nrows; i++) {
        const char *a = db_cell(&r, i, "arguments");
        assert_non_null(a);
        if (strstr(a, "900002") || strstr(a, "7700") || strstr(a, "james.patel") ||
            !strstr(a, "002"))
            fail_msg("audit row %d not masked on %s: %s", i, g_backend, a);
    }
    db_rows_free(&r);
}

/* ---- exactly once, per acting user ---- */

/*
 * Sarah calls, gets her portal link, then verifies as her partner James
 * (his number and his claim reference) and asks for his link: James gets a
 * text of his own. The earlier envelope ("texted ... ending 001") used to be
 * replayed, so James got nothing and was told the wrong number.
 */
static void test_exactly_once_is_per_acting_user(void **state)
{
    struct vt_act *f = *state;
    json_t *env;
    fx_open(f, NULL, SARAH);
    env = vt_act_run(f, "send_portal_link", "{\"method\":\"sms\"}");
    assert_string_equal(vt_act_code(env), "ok");
    assert_string_equal(str_at(env, "sent_to"), "+44*******001");
    json_decref(env);
    env = vt_act_run(f, "check_user_details",
              "{\"phone_number\":\"07700 900002\",\"claim_reference\":\"RMC-2001\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    env = vt_act_run(f, "send_portal_link", "{\"method\":\"sms\"}");
    assert_string_equal(vt_act_code(env), "ok");
    assert_string_equal(str_at(env, "sent_to"), "+44*******002");
    json_decref(env);
    /* a repeat for James is still exactly once */
    env = vt_act_run(f, "send_portal_link", "{\"method\":\"sms\"}");
    assert_string_equal(str_at(env, "sent_to"), "+44*******002");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE to_number = '" SARAH "'"),
                     1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE to_number = '" JAMES "'"),
                     1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE user_id = 2"), 1);
}

/* ---- call SIDs longer than the columns ---- */

#define SID70                                                                                      \
    "CA"                                                                                           \
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"

/*
 * missed_calls/voice_action_logs/portal_links.call_sid are VARCHAR(64) on
 * MySQL (strict mode): a 65-71 character SID, which the CLI accepted, made
 * every action fail with database_unavailable and lose its audit row. The
 * session keeps at most 64 characters, and the CLI refuses longer ones.
 */
static void test_long_call_sid_is_bounded(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH);
    act_session_cleanup(&f->s);
    act_session_init(&f->s, SARAH, SID70, "cli", 0);
    json_t *env = vt_act_run(f, "send_portal_link", "{\"method\":\"sms\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE success = 1"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 1);

    struct vt_run r;
    const char *argv[] = {
        vt_bin(), "action", "search_knowledge_base", "{\"query\":\"fees\"}", "--call-sid",
        SID70,    NULL};
    assert_int_equal(vt_run(&r, NULL, f->h.env, argv, 30), 0);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    vt_run_free(&r);
}

/* ---- names longer than our buffers ---- */

/*
 * A company database may hold a first name longer than the 64 bytes we keep
 * ("Zoë-Éloïse ..." in accented letters). Cutting it mid-character made the
 * spoken message invalid UTF-8, so the envelope lost its "message" and the
 * confirmation text was refused as bad_encoding.
 */
static void test_long_multibyte_first_name_is_cut_on_a_character(void **state)
{
    struct vt_act *f = *state;
    char name[200] = "", buf[8];
    struct err e = {0};
    /* 'é' is two bytes: 63 bytes of the name end in the middle of one */
    snprintf(name, sizeof name, "A");
    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9");
    assert_int_equal(util_strlcpy(buf, "ab\xc3\xa9", 4), 4);
    assert_string_equal(buf, "ab"); /* never half a character */
    fx_open(f, NULL, "+447700900077");
    const char *np = name;
    const struct db_val a[] = {DB_S(np)};
    assert_int_equal(db_run(f->db,
                            "INSERT INTO users (first_name, last_name, phone, email) VALUES "
                            "(?, 'Long', '+447700900077', NULL)",
                            a, 1, &e),
                     0);
    json_t *env = vt_act_run(f, "check_user_details", "{\"phone_number\":\"caller\"}");
    assert_string_equal(vt_act_code(env), "ok");
    assert_non_null(json_string_value(json_object_get(env, "message")));
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "A\xc3\xa9"));
    assert_non_null(json_string_value(json_object_get(json_object_get(env, "data"), "first_name")));
    json_decref(env);
    env = vt_act_run(f, "send_portal_link", "{\"method\":\"sms\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE status = 'mock'"), 1);
}

/*
 * A help article with a long accented title: the spoken message (480 bytes)
 * was cut in the middle of a character and the envelope went out without
 * its "message".
 */
static void test_long_accented_article_keeps_the_message(void **state)
{
    struct vt_act *f = *state;
    char title[600] = "Zebras "; /* 23 + 7 bytes before the first two-byte letter: odd */
    struct err e = {0};
    for (int i = 0; i < 240; i++)
        strcat(title, "\xc3\xa9");
    fx_open(f, NULL, "");
    const char *tp = title;
    const struct db_val a[] = {DB_S(tp)};
    assert_int_equal(db_run(f->db,
                            "INSERT INTO knowledge_base (category, title, body) VALUES "
                            "('fees', ?, 'Zebra crossings and zebra fees explained.')",
                            a, 1, &e),
                     0);
    json_t *env = vt_act_run(f, "search_knowledge_base", "{\"query\":\"zebra\"}");
    assert_string_equal(vt_act_code(env), "ok");
    const char *msg = json_string_value(json_object_get(env, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Zebra"));
    json_decref(env);
}

/* ---- bounded logging of what the model sends ---- */

/*
 * A provider's arguments with thousands of unknown keys: each was logged on
 * its own line (a log flood one tool call could cause). Now a few are named
 * and the rest counted in one line.
 */
static void test_unknown_arguments_log_a_bounded_number_of_lines(void **state)
{
    struct vt_act *f = *state;
    size_t cap = 64 * 1024, n = 0;
    char *args = malloc(cap);
    assert_non_null(args);
    n += (size_t)snprintf(args + n, cap - n, "{\"query\":\"fees\"");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(args + n, cap - n, ",\"junk%d\":1", i);
    snprintf(args + n, cap - n, "}");
    fx_open(f, NULL, "");
    char *dir = vt_tmpdir();
    const char *log = vt_sms_log_capture(dir);
    log_setup(LOG_INFO, false);
    json_t *env = vt_act_run(f, "search_knowledge_base", args);
    log_setup(LOG_ERROR, false);
    vt_sms_log_release();
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    int lines = vt_sms_count_in_file(log, "ignoring unknown argument");
    assert_true(lines >= 1 && lines <= 4);
    assert_int_equal(vt_sms_count_in_file(log, "1997 more"), 1);
    vt_rmdir(dir);
    free(dir);
    free(args);
}

/* ---- lists from a company database are bounded ---- */

/*
 * A customer with 60 more claims and 60 outstanding requirements with long
 * accented descriptions: every row went into the envelope (and to the voice
 * model), and the spoken list was cut mid-word, which lost the end of the
 * message. Lists now stop at 20 rows, the counts stay exact, and the
 * sentence ends properly.
 */
static void test_long_lists_are_bounded(void **state)
{
    struct vt_act *f = *state;
    struct err e = {0};
    fx_open(f, NULL, JAMES);
    for (int i = 0; i < 60; i++) {
        char ref[16];
        snprintf(ref, sizeof ref, "RMC-%d", 3000 + i);
        const char *rp = ref;
        const struct db_val a[] = {DB_S(rp)};
        assert_int_equal(db_run(f->db,
                                "INSERT INTO user_claims (user_id, claim_reference, lender, "
                                "claim_type, status) VALUES (2, ?, 'Bank', 'loan', 'submitted')",
                                a, 1, &e),
                         0);
        assert_int_equal(
            db_run(f->db,
                   "INSERT INTO claim_requirements (claim_id, requirement_type, description, "
                   "status) VALUES (3, 'other', 'Relev\xc3\xa9"
                   " de compte d\xc3\xa9"
                   "taill\xc3\xa9"
                   " "
                   "pour la p\xc3\xa9"
                   "riode concern\xc3\xa9"
                   "e', 'outstanding')",
                   NULL, 0, &e),
            0);
    }
    json_t *env = vt_act_run(f, "check_user_details", "{\"phone_number\":\"caller\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_t *claims = json_object_get(json_object_get(env, "data"), "claims");
    assert_true(json_array_size(claims) >= 1 && json_array_size(claims) <= 20);
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "61 claims"));
    json_decref(env);

    env = vt_act_run(f, "check_requirements", "{\"claim_reference\":\"RMC-2001\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_t *data = json_object_get(env, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "count")), 61);
    assert_true(json_array_size(json_object_get(data, "outstanding")) <= 20);
    const char *msg = json_string_value(json_object_get(env, "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "61 things"));
    assert_non_null(strstr(msg, "upload them."));
    json_decref(env);
}

/* ---- check_user_details: "my number is 07700 900002" ---- */

/*
 * Sarah rings from her own phone about James's account and the model passes
 * "my number is 07700 900002": the words "my number" made it mean the signed
 * number of the call (Sarah), so Sarah's account was checked instead. With
 * digits present the words no longer count (the text is then not a number:
 * invalid_phone_number asks for the number alone); the words alone still
 * mean the caller's own number.
 */
static void test_phone_words_with_digits_mean_the_digits(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH);
    json_t *env = vt_act_run(f, "check_user_details",
                      "{\"phone_number\":\"my number is 07700 900002\","
                      "\"claim_reference\":\"RMC-2001\"}");
    /* never Sarah's account: the model is asked for the number alone */
    assert_string_equal(vt_act_code(env), "invalid_phone_number");
    assert_null(json_object_get(json_object_get(env, "data"), "first_name"));
    json_decref(env);
    env = vt_act_run(f, "check_user_details",
              "{\"phone_number\":\"07700 900002\",\"claim_reference\":\"RMC-2001\"}");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(env, "data"), "first_name")), "James");
    json_decref(env);
    env = vt_act_run(f, "check_user_details", "{\"phone_number\":\"the number I'm calling from\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
}

/* ---- contact details longer than our buffers ---- */

/*
 * An email on file longer than the bytes we keep (128, now 256) was cut, and the cut
 * text is another, valid-looking address ("...@bigcorp.com.au" becomes
 * "...@bigcorp.com"): a link would have gone to someone else. An over-long
 * contact is now treated as not on file.
 */
static void test_overlong_email_on_file_is_never_cut(void **state)
{
    struct vt_act *f = *state;
    char email[400], url[64], kv0[80];
    struct err e = {0};
    /* cut at 255 bytes it reads "aaa...@bigcorp.com.au", a valid, different address */
    memset(email, 'a', 240);
    snprintf(email + 240, sizeof email - 240, "@bigcorp.com.au.mail.example.net");
    snprintf(url, sizeof url, "SMTP_URL=smtp://127.0.0.1:%d", vt_free_port());
    snprintf(kv0, sizeof kv0, "%s", url);
    const char *kv[] = {kv0, "SMTP_FROM=claims@example.co.uk", NULL};
    fx_open(f, kv, "+447700900077");
    if (!strcmp(g_backend, "mysql")) /* a company table with a wider column than ours */
        assert_int_equal(
            db_run(f->db, "ALTER TABLE users MODIFY email VARCHAR(400) NULL", NULL, 0, &e), 0);
    const char *ep = email;
    const struct db_val a[] = {DB_S(ep)};
    assert_int_equal(db_run(f->db,
                            "INSERT INTO users (first_name, last_name, phone, email) VALUES "
                            "('Long', 'Mail', '+447700900077', ?)",
                            a, 1, &e),
                     0);
    json_t *env = vt_act_run(f, "send_portal_link", "{\"method\":\"email\"}");
    assert_string_equal(vt_act_code(env), "no_contact_on_file");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 0);
}

/* ---- email is rate limited like SMS ---- */

/*
 * Texts were limited per recipient (SMS_RATE_LIMIT) but emailed links had no
 * limit at all: repeated calls could fill a customer's inbox. Emails now
 * count against the same N per S seconds, per user, in portal_links.
 */
static void test_emails_are_rate_limited_like_texts(void **state)
{
    struct vt_act *f = *state;
    char *mdir = vt_tmpdir(), script[512], port[16], url[64], p[600];
    struct vt_sms_peer smtp = {0};
    snprintf(script, sizeof script, "%s/tests/peers/smtp_standin.js", vt_src());
    smtp.port = vt_free_port();
    snprintf(port, sizeof port, "%d", smtp.port);
    snprintf(smtp.log, sizeof smtp.log, "%s/smtp.log", mdir);
    const char *argv[] = {"node", script, port, mdir, NULL};
    assert_int_equal(vt_sms_peer_start(&smtp, argv, 20), 0);
    snprintf(url, sizeof url, "SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *kv[] = {url, "SMTP_FROM=claims@example.co.uk", "SMS_RATE_LIMIT=2/600", NULL};
    fx_open(f, kv, SARAH);

    json_t *env = vt_act_run(f, "send_portal_link", "{\"method\":\"email\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    env = vt_act_run(f, "send_portal_link", "{\"method\":\"email\",\"link_type\":\"claims\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    env = vt_act_run(f, "send_document_link", "{\"method\":\"email\"}");
    assert_string_equal(vt_act_code(env), "rate_limited");
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "emailed you"));
    json_decref(env);
    env = vt_act_run(f, "send_document_link", "{\"method\":\"sms\"}"); /* texts count apart */
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE method = 'email'"), 2);
    snprintf(p, sizeof p, "%s/msg-3.eml", mdir);
    assert_int_equal(access(p, F_OK), -1); /* the third email never reached the server */
    snprintf(p, sizeof p, "%s/msg-2.eml", mdir);
    assert_int_equal(access(p, F_OK), 0);

    util_set_fake_now(util_now() + 601); /* the window has passed */
    env = vt_act_run(f, "send_document_link", "{\"method\":\"email\"}");
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    vt_sms_peer_stop(&smtp);
    vt_rmdir(mdir);
    free(mdir);
}

/* ---- db init --demo from several processes at once ---- */

/*
 * Three instances starting together on an empty database each run the
 * migrations and load the demo data. On MySQL the DDL commits the version's
 * transaction, so the re-check inside it does not serialise them, and all
 * but one failed with a duplicate schema_migrations key; the demo load's
 * check-then-insert raced the same way. Every one must succeed.
 */
static void test_concurrent_db_init_all_succeed(void **state)
{
    (void)state;
    struct cfg c;
    struct vt_db h;
    const char *kv[] = {"LOG_LEVEL=error", NULL};
    int go[2];
    pid_t kids[3];
    vt_db_fresh(g_backend, &c, &h, kv);
    assert_int_equal(pipe(go), 0);
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            struct db *db = NULL;
            struct err e = {0};
            char ch;
            close(go[1]);
            if (db_open(db_backend_for(&c), &db, &c, &e))
                _exit(10);
            if (read(go[0], &ch, 1) < 0)
                _exit(11);
            int rc = db_migrate(db, &e);
            if (!rc)
                rc = db_load_demo(db, &e);
            if (rc)
                fprintf(stderr, "migrate in child %d: %s\n", k, e.detail);
            db_close(db);
            _exit(rc ? 20 : 0);
        }
    }
    close(go[0]);
    close(go[1]);
    int failed = 0;
    for (int k = 0; k < 3; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    struct db *db = vt_db_open(&c, false);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 1"), 1);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM users"), 2);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM user_claims"), 3);
    db_close(db);
    vt_db_cleanup(&h, &c);
    assert_int_equal(failed, 0);
}

/* ---- callbacks far ahead ---- */

/*
 * "2099-01-05T10:00" was booked and spoken as "Monday 5 January at 10am":
 * the spoken date has no year, so the caller heard next January. Callbacks
 * are booked at most 90 days ahead; further is refused in words.
 */
static void test_callback_far_ahead_is_refused(void **state)
{
    struct vt_act *f = *state;
    json_t *env;
    fx_open(f, NULL, SARAH);
    util_set_fake_now(FRI_OCT_2026);
    env = callback(f, "2099-01-05T10:00");
    assert_string_equal(vt_act_code(env), "invalid_time");
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "three months"));
    json_decref(env);
    env = callback(f, "2027-03-01T10:00"); /* 129 days ahead */
    assert_string_equal(vt_act_code(env), "invalid_time");
    json_decref(env);
    env = callback(f, "2027-01-15T10:00"); /* 84 days ahead */
    assert_string_equal(vt_act_code(env), "ok");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls"), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, vt_act_setup, vt_act_teardown)

static const struct CMUnitTest per_backend[] = {
    T(test_review_link_once_across_processes),
    T(test_callback_without_clock_time_books_next_opening),
    T(test_audit_rows_mask_escaped_and_unicode_numbers),
    T(test_exactly_once_is_per_acting_user),
    T(test_long_call_sid_is_bounded),
    T(test_long_multibyte_first_name_is_cut_on_a_character),
    T(test_long_accented_article_keeps_the_message),
    T(test_unknown_arguments_log_a_bounded_number_of_lines),
    T(test_long_lists_are_bounded),
    T(test_phone_words_with_digits_mean_the_digits),
    T(test_overlong_email_on_file_is_never_cut),
    T(test_emails_are_rate_limited_like_texts),
    T(test_concurrent_db_init_all_succeed),
    T(test_callback_far_ahead_is_refused),
};

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    log_setup(LOG_ERROR, false);
    int failed = vt_db_run_per_backend("actions_review", per_backend,
                                       sizeof per_backend / sizeof per_backend[0], NULL, NULL,
                                       &g_backend);
    return failed ? 1 : 0;
}
