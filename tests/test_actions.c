/*
 * test_actions.c - every voice action through act_execute, in process, on
 * real databases (SQLite always, MySQL unless VWS_SQLITE_ONLY=1), with the
 * mock SMS transport recording real sms_messages rows.
 *
 * Covers: each action's success, refusals for another person's data (same
 * code as "doesn't exist"), bad input (missing/ill-typed/enum/length/
 * non-object/malformed, strange claim references, unparseable times),
 * identity levels and REQUIRE_VERIFICATION, exactly-once for side effects,
 * the per-call budget, audit rows (one per execution, masked), links stored
 * only as SHA-256 and single use, review links once per 30 days, callbacks
 * across clock changes and outside business hours, the database down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actions/action.h"
#include "actions/links.h"
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

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SARAH "+447700900001"
#define JAMES "+447700900002"
#define NOBODY "+447700900099"

static const char *g_backend;

/* The fixture (struct vt_act, vt_act_run, vt_act_code) is shared: tests/lib/vt_act.h. */
static void fx_open(struct vt_act *f, const char *const *extra, const char *caller, int max_actions)
{
    vt_act_open(f, g_backend, extra, caller, "CAtest0001", max_actions);
}

static void expect_ok(struct vt_act *f, const char *name, const char *args)
{
    json_t *env = vt_act_run(f, name, args);
    if (!json_is_true(json_object_get(env, "success"))) {
        char *s = json_dumps(env, 0);
        fail_msg("%s %s failed on %s: %s", name, args, g_backend, s);
        free(s);
    }
    json_decref(env);
}

static void expect_code(struct vt_act *f, const char *name, const char *args, const char *code)
{
    json_t *env = vt_act_run(f, name, args);
    if (strcmp(vt_act_code(env), code)) {
        char *s = json_dumps(env, 0);
        fail_msg("%s %s: want %s on %s, got %s", name, args, code, g_backend, s);
        free(s);
    }
    json_decref(env);
}

static long long count(struct vt_act *f, const char *sql)
{
    return vt_db_int(f->db, sql);
}

static const char *str_at(const json_t *env, const char *a, const char *b)
{
    const json_t *o = json_object_get(env, "data");
    o = json_object_get(o, a);
    return json_string_value(b ? json_object_get(o, b) : o);
}

/* ---- registry ---- */

static void test_act_registry_is_sorted_and_complete(void **state)
{
    (void)state;
    static const char *const names[] = {
        "check_claim_details",   "check_requirements", "check_user_details", "schedule_callback",
        "search_knowledge_base", "send_document_link", "send_portal_link",   "send_review_link"};
    struct err e = {0};
    assert_int_equal(act_registry_check(&e), 0);
    assert_int_equal(act_count(), 8);
    for (int i = 0; i < 8; i++) {
        assert_string_equal(act_at(i)->name, names[i]);
        assert_ptr_equal(act_find(names[i]), act_at(i));
    }
    assert_null(act_find("drop_tables"));
    assert_null(act_find(NULL));
}

static bool has_key_anywhere(const json_t *j, const char *key)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k,
                            v) if (!strcmp(k, key) || has_key_anywhere(v, key)) return true;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (has_key_anywhere(v, key)) return true;
    }
    return false;
}

static void test_act_tools_openai_and_gemini_formats(void **state)
{
    (void)state;
    json_t *o = act_tools_openai(), *g = act_tools_gemini(), *t;
    size_t i;

    assert_int_equal(json_array_size(o), 8);
    assert_int_equal(json_array_size(g), 8);
    json_array_foreach(o, i, t)
    {
        assert_string_equal(json_string_value(json_object_get(t, "type")), "function");
        assert_string_equal(json_string_value(json_object_get(t, "name")), act_at((int)i)->name);
        assert_true(strlen(json_string_value(json_object_get(t, "description"))) > 20);
        json_t *p = json_object_get(t, "parameters");
        assert_string_equal(json_string_value(json_object_get(p, "type")), "object");
        assert_true(json_is_false(json_object_get(p, "additionalProperties")));
    }
    json_array_foreach(g, i, t)
    {
        json_t *p = json_object_get(t, "parameters");
        assert_null(json_object_get(t, "type"));
        assert_string_equal(json_string_value(json_object_get(t, "behavior")), "BLOCKING");
        assert_string_equal(json_string_value(json_object_get(p, "type")), "OBJECT");
        assert_false(has_key_anywhere(p, "additionalProperties"));
        const char *k;
        json_t *ps;
        json_object_foreach(json_object_get(p, "properties"), k, ps)
            assert_string_equal(json_string_value(json_object_get(ps, "type")), "STRING");
    }
    /* the same schema feeds both: required lists match */
    assert_true(json_equal(
        json_object_get(json_object_get(json_array_get(o, 3), "parameters"), "required"),
        json_object_get(json_object_get(json_array_get(g, 3), "parameters"), "required")));
    json_decref(o);
    json_decref(g);
}

/* ---- claims ---- */

static void test_act_claim_details_for_own_claim(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *env = vt_act_run(f, "check_claim_details", "{\"claim_reference\":\"rmc 1001\"}");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_string_equal(str_at(env, "claim", "status"), "in_progress");
    assert_string_equal(str_at(env, "claim", "claim_reference"), "RMC-1001");
    assert_string_equal(str_at(env, "claim", "lender"), "Northway Motor Finance");
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "in progress"));
    json_decref(env);
    expect_ok(f, "check_claim_details", "{\"claim_reference\":\"R M C one zero zero two\"}");
}

static void test_act_other_persons_claim_is_not_found(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *theirs = vt_act_run(f, "check_claim_details", "{\"claim_reference\":\"RMC-2001\"}");
    json_t *none = vt_act_run(f, "check_claim_details", "{\"claim_reference\":\"RMC-9999\"}");
    assert_string_equal(vt_act_code(theirs), "not_found");
    assert_string_equal(vt_act_code(none), "not_found");
    /* no existence oracle: the very same words */
    assert_true(json_equal(json_object_get(theirs, "message"), json_object_get(none, "message")));
    assert_true(json_equal(json_object_get(theirs, "data"), json_object_get(none, "data")));
    json_decref(theirs);
    json_decref(none);
    expect_code(f, "check_requirements", "{\"claim_reference\":\"RMC-2001\"}", "not_found");
    expect_code(f, "check_requirements", "{\"claim_reference\":\"RMC-9999\"}", "not_found");
}

static void test_act_requirements_lists_outstanding(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *env = vt_act_run(f, "check_requirements", "{\"claim_reference\":\"RMC-1001\"}");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(env, "data"), "count")), 2);
    json_t *arr = json_object_get(json_object_get(env, "data"), "outstanding");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, 0), "requirement_type")), "id_proof");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(arr, 1), "requirement_type")),
        "bank_statement");
    json_decref(env);
    env = vt_act_run(f, "check_requirements", "{\"claim_reference\":\"RMC-1002\"}");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(env, "data"), "count")), 0);
    json_decref(env);
}

/* ---- bad input ---- */

static void test_act_bad_arguments_are_refused_and_audited(void **state)
{
    struct vt_act *f = *state;
    static const char *const cases[][3] = {
        {"check_claim_details", "{}", "invalid_arguments"},
        {"check_claim_details", "{\"claim_reference\":null}", "invalid_arguments"},
        {"check_claim_details", "{\"claim_reference\":1001}", "invalid_arguments"},
        {"check_claim_details", "{\"claim_reference\":[\"RMC-1001\"]}", "invalid_arguments"},
        {"check_claim_details", "[\"RMC-1001\"]", "invalid_arguments"},
        {"check_claim_details", "{\"claim_reference\":", "invalid_arguments"},
        {"check_claim_details", "\"RMC-1001\"", "invalid_arguments"},
        {"send_portal_link", "{\"method\":\"carrier pigeon\"}", "invalid_arguments"},
        {"send_portal_link", "{\"method\":\"sms\",\"link_type\":\"admin\"}", "invalid_arguments"},
        {"search_knowledge_base", "{\"query\":\"\"}", "invalid_arguments"},
        {"schedule_callback", "{\"preferred_time\":\"tomorrow at 3pm\"}", "invalid_arguments"},
        {"check_claim_details", "{\"claim_reference\":\"'; DROP TABLE users; --\"}",
         "invalid_claim_reference"},
        {"check_claim_details", "{\"claim_reference\":\"RMC-10O1\"}", "invalid_claim_reference"},
        {"check_claim_details", "{\"claim_reference\":\"\\u00e9\\u00e9\\u00e9\"}",
         "invalid_claim_reference"},
        {"check_user_details", "{\"phone_number\":\"not a number\"}", "invalid_phone_number"},
        {"schedule_callback", "{\"preferred_time\":\"when pigs fly\",\"reason\":\"x\"}",
         "invalid_time"},
    };
    char longq[400];
    memset(longq, 0, sizeof longq);
    fx_open(f, NULL, SARAH, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long before = count(f, "SELECT COUNT(*) FROM voice_action_logs");
        expect_code(f, cases[i][0], cases[i][1], cases[i][2]);
        assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"), before + 1);
    }
    /* too long */
    snprintf(longq, sizeof longq, "{\"query\":\"%0250d\"}", 7);
    expect_code(f, "search_knowledge_base", longq, "invalid_arguments");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE success = 0 AND "
                              "error_code = 'invalid_arguments'"),
                     12);
    /* the users table survived the strange reference */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM users"), 2);
    /* unknown extra arguments are ignored, never used */
    expect_ok(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\",\"user_id\":2}");
    /* providers send "" for no arguments: the same as {} */
    expect_code(f, "search_knowledge_base", "", "invalid_arguments");
    /* optional arguments are type-checked too; null means absent */
    expect_code(f, "send_portal_link", "{\"method\":\"sms\",\"link_type\":5}", "invalid_arguments");
    expect_ok(f, "send_portal_link", "{\"method\":\"sms\",\"link_type\":null}");
    /* duplicate keys are not guessed between */
    expect_code(f, "check_claim_details",
                "{\"claim_reference\":\"RMC-1001\",\"claim_reference\":\"RMC-2001\"}",
                "invalid_arguments");
    /* invalid_arguments tells the agent which field */
    json_t *env = vt_act_run(f, "check_claim_details", "{}");
    assert_string_equal(str_at(env, "field", NULL), "claim_reference");
    json_decref(env);
}

static void test_act_unknown_action_has_no_audit_row(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *env = vt_act_run(f, "transfer_funds", "{}");
    assert_string_equal(vt_act_code(env), "unknown_action");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"), 0);
}

/* ---- identity ---- */

static void test_act_user_details_identity_levels(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *env = vt_act_run(f, "check_user_details", "{\"phone_number\":\"07700 900001\"}");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_string_equal(str_at(env, "identity", NULL), "caller_id");
    assert_string_equal(str_at(env, "first_name", NULL), "Sarah");
    json_decref(env);
    assert_int_equal(f->s.level, ACT_ID_CALLER);
    env = vt_act_run(f, "check_user_details",
              "{\"phone_number\":\"+447700900001\",\"claim_reference\":\"rmc1002\"}");
    assert_string_equal(str_at(env, "identity", NULL), "verified");
    json_decref(env);
    assert_int_equal(f->s.level, ACT_ID_VERIFIED);
    assert_int_equal(f->s.user_id, 1);

    /* someone else's number: without a reference, with a wrong one, or unknown: one answer */
    json_t *a = vt_act_run(f, "check_user_details", "{\"phone_number\":\"07700900002\"}");
    json_t *b = vt_act_run(f, "check_user_details",
                    "{\"phone_number\":\"07700900002\",\"claim_reference\":\"RMC-1001\"}");
    json_t *c = vt_act_run(f, "check_user_details", "{\"phone_number\":\"07700900099\"}");
    json_t *d = vt_act_run(f, "check_user_details",
                    "{\"phone_number\":\"07700900099\",\"claim_reference\":\"RMC-2001\"}");
    assert_string_equal(vt_act_code(a), "user_not_found");
    assert_true(json_equal(a, b) ||
                (json_equal(json_object_get(a, "message"), json_object_get(b, "message")) &&
                 json_equal(json_object_get(a, "data"), json_object_get(b, "data"))));
    assert_true(json_equal(json_object_get(a, "message"), json_object_get(c, "message")));
    assert_true(json_equal(json_object_get(a, "message"), json_object_get(d, "message")));
    assert_true(json_equal(json_object_get(a, "error"), json_object_get(d, "error")));
    json_decref(a), json_decref(b), json_decref(c), json_decref(d);
    /* the refusals did not change who the call is */
    assert_int_equal(f->s.user_id, 1);
    assert_int_equal(f->s.level, ACT_ID_VERIFIED);
}

static void test_act_other_number_with_its_claim_verifies_that_user(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, NOBODY, 0);
    expect_code(f, "check_claim_details", "{\"claim_reference\":\"RMC-2001\"}", "caller_unknown");
    expect_ok(f, "check_user_details",
              "{\"phone_number\":\"07700 900 002\",\"claim_reference\":\"RMC 2001\"}");
    assert_int_equal(f->s.user_id, 2);
    assert_int_equal(f->s.level, ACT_ID_VERIFIED);
    expect_ok(f, "check_claim_details", "{\"claim_reference\":\"RMC-2001\"}");
    expect_code(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}", "not_found");
}

static void test_act_user_details_caller_word_means_the_signed_number(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, JAMES, 0);
    expect_ok(
        f, "check_user_details",
        "{\"phone_number\":\"the number I'm calling from\",\"claim_reference\":\"RMC-2001\"}");
    assert_int_equal(f->s.user_id, 2);
    assert_int_equal(f->s.level, ACT_ID_VERIFIED);
    act_session_cleanup(&f->s);
    act_session_init(&f->s, "", "CAwithheld", "cli", 0); /* withheld: nothing to resolve to */
    expect_code(f, "check_user_details", "{\"phone_number\":\"caller\"}", "invalid_phone_number");
}

static void test_act_withheld_caller_cannot_see_claims(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, "", 0);
    expect_code(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}", "caller_unknown");
    expect_code(f, "send_portal_link", "{\"method\":\"sms\"}", "caller_unknown");
    expect_code(f, "schedule_callback",
                "{\"preferred_time\":\"tomorrow at 10am\",\"reason\":\"x\"}", "caller_unknown");
    expect_ok(f, "search_knowledge_base", "{\"query\":\"fees\"}");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 0);
}

static void test_act_require_verification_asks_for_claim_reference(void **state)
{
    struct vt_act *f = *state;
    static const char *const kv[] = {"REQUIRE_VERIFICATION=true", NULL};
    fx_open(f, kv, SARAH, 0);
    json_t *env = vt_act_run(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}");
    assert_string_equal(vt_act_code(env), "verification_required");
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "claim reference"));
    json_decref(env);
    expect_code(f, "check_requirements", "{\"claim_reference\":\"RMC-1001\"}",
                "verification_required");
    expect_code(f, "send_portal_link", "{\"method\":\"sms\"}", "verification_required");
    expect_code(f, "send_document_link", "{\"method\":\"sms\"}", "verification_required");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 0);
    /* caller ID alone: no claims disclosed */
    env = vt_act_run(f, "check_user_details", "{\"phone_number\":\"" SARAH "\"}");
    assert_string_equal(str_at(env, "identity", NULL), "caller_id");
    assert_null(json_object_get(json_object_get(env, "data"), "claims"));
    json_decref(env);
    expect_code(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}",
                "verification_required");
    expect_ok(f, "check_user_details",
              "{\"phone_number\":\"" SARAH "\",\"claim_reference\":\"RMC-1001\"}");
    expect_ok(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}");
    expect_ok(f, "send_portal_link", "{\"method\":\"sms\"}");
    /* callbacks and the knowledge base never need verification */
    expect_ok(f, "search_knowledge_base", "{\"query\":\"complaint\"}");
}

/* ---- exactly once, budget ---- */

static void test_act_side_effects_happen_exactly_once(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *a = vt_act_run(f, "send_portal_link", "{\"method\":\"sms\"}");
    json_t *b = vt_act_run(f, "send_portal_link", "{ \"method\" : \"sms\" }");
    assert_true(json_is_true(json_object_get(a, "success")));
    assert_true(json_equal(a, b));
    json_decref(a), json_decref(b);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 1);

    /* Friday 23 October 2026: 8 January 2027 is a Friday within the 90-day horizon */
    util_set_fake_now(1792756800LL);
    const char *cb = "{\"preferred_time\":\"2027-01-08T10:00\",\"reason\":\"offer\"}";
    const char *cb2 = "{\"reason\":\"offer\",\"preferred_time\":\"2027-01-08T10:00\"}";
    a = vt_act_run(f, "schedule_callback", cb);
    b = vt_act_run(f, "schedule_callback", cb2); /* same arguments, other key order */
    assert_true(json_is_true(json_object_get(a, "success")));
    assert_true(json_equal(a, b));
    json_decref(a), json_decref(b);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 2);
    /* each execution is audited, repeats included */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"), 4);
    /* different arguments are a new action */
    expect_ok(f, "schedule_callback",
              "{\"preferred_time\":\"2027-01-08T11:00\",\"reason\":\"offer\"}");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls"), 2);
    /* reads are not cached */
    expect_ok(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}");
}

struct par {
    struct vt_act *f;
    json_t *env;
};

static void *par_run(void *arg)
{
    struct par *p = arg;
    p->env = act_execute_text(&p->f->env, &p->f->s, "send_document_link",
                              "{\"method\":\"sms\",\"document_type\":\"id_proof\"}");
    return NULL;
}

static void test_act_concurrent_repeats_send_once(void **state)
{
    struct vt_act *f = *state;
    pthread_t t[4];
    struct par p[4];
    fx_open(f, NULL, SARAH, 0);
    for (int i = 0; i < 4; i++) {
        p[i].f = f, p[i].env = NULL;
        assert_int_equal(pthread_create(&t[i], NULL, par_run, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_true(json_is_true(json_object_get(p[i].env, "success")));
        assert_true(json_equal(p[0].env, p[i].env));
    }
    for (int i = 0; i < 4; i++)
        json_decref(p[i].env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"), 4);
}

static void test_act_budget_stops_runaway_calls(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 3);
    for (int i = 0; i < 3; i++)
        expect_ok(f, "search_knowledge_base", "{\"query\":\"fees\"}");
    json_t *env = vt_act_run(f, "search_knowledge_base", "{\"query\":\"fees\"}");
    assert_string_equal(vt_act_code(env), "budget_exceeded");
    json_decref(env);
    expect_code(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}", "budget_exceeded");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE error_code = "
                              "'budget_exceeded'"),
                     2);
}

/* ---- audit ---- */

static void test_act_audit_rows_are_masked(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    expect_code(f, "check_user_details", "{\"phone_number\":\"07700 900002\"}", "user_not_found");
    expect_ok(f, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"), 2);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM voice_action_logs WHERE arguments LIKE "
                           "'%900002%' OR arguments LIKE '%7700%' OR phone_masked LIKE '%900001%'"),
                     0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE phone_masked = "
                              "'+44*******001' AND call_sid = 'CAtest0001' AND provider = 'cli'"),
                     2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE action = "
                              "'check_user_details' AND success = 0 AND error_code = "
                              "'user_not_found' AND arguments LIKE '%002%'"),
                     1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs WHERE action = "
                              "'check_claim_details' AND success = 1 AND error_code IS NULL AND "
                              "user_id = 1 AND execution_time_ms > 0"),
                     1);
}

static void db_down_check(const char *const *kv)
{
    struct cfg c;
    struct act_env env;
    struct act_session s;
    struct err e = {0};

    vt_cfg(&c, kv);
    assert_int_equal(app_env_open(&env, &c, &e), 0);
    act_session_init(&s, SARAH, "CAdown", "cli", 0);
    double t0 = util_mono_ms();
    json_t *r =
        act_execute_text(&env, &s, "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}");
    assert_true(util_mono_ms() - t0 < 15000);
    assert_false(json_is_true(json_object_get(r, "success")));
    assert_string_equal(vt_act_code(r), "database_unavailable");
    json_decref(r);
    r = act_execute_text(&env, &s, "search_knowledge_base", "{\"query\":\"fees\"}");
    assert_string_equal(vt_act_code(r), "database_unavailable");
    json_decref(r);
    /* bad arguments still get their own answer */
    r = act_execute_text(&env, &s, "check_claim_details", "{}");
    assert_string_equal(vt_act_code(r), "invalid_arguments");
    json_decref(r);
    json_t *h = app_health_json(&env, NULL);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
    assert_true(json_is_false(
        json_object_get(json_object_get(json_object_get(h, "services"), "database"), "reachable")));
    json_decref(h);
    act_session_cleanup(&s);
    app_env_close(&env);
    cfg_free(&c);
}

static void test_act_database_down_gives_an_envelope(void **state)
{
    (void)state;
    char *dir = vt_tmpdir(), path[512], kv0[600], kv1[32];
    /* SQLite: the parent "directory" is a regular file, so nothing can be created */
    snprintf(path, sizeof path, "%s/afile", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(kv0, sizeof kv0, "DB_PATH=%s/afile/sub/voice-ws.db", dir);
    const char *const kv_sqlite[] = {kv0, "LOG_LEVEL=off", NULL};
    db_down_check(kv_sqlite);
    /* MySQL: nothing listens on the port */
    snprintf(kv1, sizeof kv1, "DB_PORT=%d", vt_free_port());
    const char *const kv_mysql[] = {"DB_HOST=127.0.0.1", kv1, "DB_USER=x", "DB_CONNECT_TIMEOUT=2",
                                    "LOG_LEVEL=off",     NULL};
    db_down_check(kv_mysql);
    vt_rmdir(dir);
    free(dir);
}

static void test_act_health_json_fields(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *h = app_health_json(&f->env, NULL), *svc = json_object_get(h, "services");
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(svc, "database"), "backend")), g_backend);
    assert_true(json_is_true(json_object_get(json_object_get(svc, "database"), "reachable")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "sms"), "mode")),
                        "mock");
    assert_true(json_is_boolean(json_object_get(json_object_get(svc, "sms"), "configured")));
    assert_true(json_is_false(json_object_get(json_object_get(svc, "openai"), "configured")));
    assert_true(json_is_false(json_object_get(json_object_get(svc, "gemini"), "configured")));
    assert_int_equal(json_array_size(json_object_get(h, "actions")), 8);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "calls"), "active")), 0);
    json_decref(h);
    struct app_health_extra x = {.calls_active = 2,
                                 .provider_next = "gemini",
                                 .openai_state = "unreachable",
                                 .gemini_state = "ok",
                                 .draining = 1};
    h = app_health_json(&f->env, &x);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "degraded");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "calls"), "active")), 2);
    json_t *pr = json_object_get(json_object_get(h, "services"), "providers");
    assert_string_equal(json_string_value(json_object_get(pr, "next")), "gemini");
    assert_string_equal(json_string_value(json_object_get(pr, "openai")), "unreachable");
    json_decref(h);
    struct app_health_extra ok = {.calls_active = 1, .provider_next = "openai"};
    h = app_health_json(&f->env, &ok);
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    assert_true(json_is_false(json_object_get(h, "draining")));
    json_decref(h);
    struct app_health_extra none = {.provider_next = "none"};
    h = app_health_json(&f->env, &none); /* same status as `voice-ws health` */
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    json_decref(h);
}

/* ---- links ---- */

static void test_act_links_store_only_hash_and_are_single_use(void **state)
{
    struct vt_act *f = *state;
    char tok[LINK_TOKEN_MAX], hash[65], sql[256];
    struct err e = {0};
    long long row = 0;
    json_t *out = NULL;

    fx_open(f, NULL, SARAH, 0);
    assert_int_equal(link_create(f->db, 1, "portal", "sms", 3600, "CA1", tok, &row, &e), 0);
    assert_true(strlen(tok) >= 43);
    assert_true(row > 0);
    util_sha256_hex(tok, strlen(tok), hash);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM portal_links WHERE token_hash = '%s'", hash);
    assert_int_equal(count(f, sql), 1);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM portal_links WHERE token_hash LIKE '%%%.20s%%'",
             tok);
    assert_int_equal(count(f, sql), 0);

    assert_int_equal(link_verify(f->db, tok, &out, &e), 0);
    assert_true(json_is_true(json_object_get(out, "valid")));
    assert_int_equal(json_integer_value(json_object_get(out, "user_id")), 1);
    assert_string_equal(json_string_value(json_object_get(out, "first_name")), "Sarah");
    json_decref(out);
    assert_int_equal(link_verify(f->db, tok, &out, &e), 0);
    assert_false(json_is_true(json_object_get(out, "valid")));
    assert_string_equal(json_string_value(json_object_get(out, "reason")), "used");
    json_decref(out);
    assert_int_equal(link_verify(f->db, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &out, &e),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "reason")), "unknown");
    json_decref(out);
    assert_int_equal(link_verify(f->db, "' OR 1=1 --", &out, &e), 0);
    assert_string_equal(json_string_value(json_object_get(out, "reason")), "unknown");
    json_decref(out);

    /* expiry */
    assert_int_equal(link_create(f->db, 1, "documents", "sms", 600, NULL, tok, &row, &e), 0);
    util_set_fake_now(util_now() + 601);
    assert_int_equal(link_verify(f->db, tok, &out, &e), 0);
    assert_string_equal(json_string_value(json_object_get(out, "reason")), "expired");
    json_decref(out);
}

static void test_act_portal_and_document_links_go_to_the_number_on_file(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    json_t *env = vt_act_run(f, "send_portal_link",
                      "{\"method\":\"sms\",\"link_type\":\"claims\",\"phone\":\"+447700900666\"}");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_string_equal(str_at(env, "sent_to", NULL), "+44*******001");
    char *txt = json_dumps(env, 0);
    assert_null(strstr(txt, "token=")); /* the link never goes back to the model */
    free(txt);
    json_decref(env);
    expect_ok(f, "send_document_link", "{\"method\":\"sms\",\"document_type\":\"bank_statement\"}");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE to_number = '" SARAH "'"),
                     2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE to_number <> '" SARAH "'"),
                     0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE body LIKE "
                              "'%portal.example.co.uk/portal?token=%' AND body LIKE '%Sarah%'"),
                     1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE body LIKE "
                              "'%/documents/upload?token=%'"),
                     1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE user_id = 1 AND link_type = "
                              "'portal' AND method = 'sms' AND used_at IS NULL"),
                     1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE link_type = 'documents'"),
                     1);
    /* email is not configured here */
    expect_code(f, "send_portal_link", "{\"method\":\"email\"}", "not_configured");
}

static void test_act_email_link_goes_to_the_address_on_file(void **state)
{
    struct vt_act *f = *state;
    struct vt_sms_peer peer = {0};
    char script[600], port[16], url[64], msg[600], *dir = vt_tmpdir();
    struct err e = {0};

    snprintf(script, sizeof script, "%s/tests/peers/smtp_standin.js", vt_src());
    peer.port = vt_free_port();
    snprintf(port, sizeof port, "%d", peer.port);
    snprintf(peer.log, sizeof peer.log, "%s/smtp.log", dir);
    const char *argv[] = {"node", script, port, dir, NULL};
    assert_int_equal(vt_sms_peer_start(&peer, argv, 20), 0);
    snprintf(url, sizeof url, "SMTP_URL=smtp://127.0.0.1:%d", peer.port);
    const char *const kv[] = {url, "SMTP_FROM=claims@example.co.uk", NULL};
    fx_open(f, kv, SARAH, 0);

    json_t *env =
        vt_act_run(f, "send_portal_link", "{\"method\":\"email\",\"email\":\"evil@example.net\"}");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_string_equal(str_at(env, "sent_to", NULL), "s***@example.com");
    json_decref(env);
    snprintf(msg, sizeof msg, "%s/msg-1.json", dir);
    assert_int_equal(vt_sms_count_in_file(msg, "sarah@example.com"), 1);
    assert_int_equal(vt_sms_count_in_file(msg, "evil@example.net"), 0);
    snprintf(msg, sizeof msg, "%s/msg-1.eml", dir);
    assert_int_equal(vt_sms_count_in_file(msg, "/portal?token="), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE method = 'email'"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 0);

    /* no address on file: nothing sent, no link left behind */
    assert_int_equal(db_run(f->db, "UPDATE users SET email = NULL WHERE id = 2", NULL, 0, &e), 0);
    act_session_cleanup(&f->s);
    act_session_init(&f->s, JAMES, "CAtest0002", "cli", 0);
    expect_code(f, "send_document_link", "{\"method\":\"email\"}", "no_contact_on_file");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 1);
    vt_sms_peer_stop(&peer);
    vt_rmdir(dir);
    free(dir);
}

static void test_act_failed_send_leaves_no_link(void **state)
{
    struct vt_act *f = *state;
    static const char *const kv[] = {"SMS_RATE_LIMIT=1/600", NULL};
    fx_open(f, kv, SARAH, 0);
    expect_ok(f, "send_portal_link", "{\"method\":\"sms\"}");
    expect_code(f, "send_document_link", "{\"method\":\"sms\"}", "rate_limited");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 1);
    /* a failure is not cached: the retry runs again (and is still limited) */
    expect_code(f, "send_document_link", "{\"method\":\"sms\"}", "rate_limited");
}

static void test_act_review_link_once_per_30_days(void **state)
{
    struct vt_act *f = *state;
    static const char *const kv[] = {"REVIEW_URL=https://reviews.example.com/rmc", NULL};
    fx_open(f, kv, SARAH, 0);
    expect_ok(f, "send_review_link", "{\"method\":\"sms\"}");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE body LIKE "
                              "'%https://reviews.example.com/rmc%'"),
                     1);
    /* a new call, the same user */
    act_session_cleanup(&f->s);
    act_session_init(&f->s, SARAH, "CAtest0002", "cli", 0);
    expect_code(f, "send_review_link", "{\"method\":\"sms\"}", "too_soon");
    util_set_fake_now(util_now() + 29 * 86400);
    act_session_cleanup(&f->s);
    act_session_init(&f->s, SARAH, "CAtest0003", "cli", 0);
    expect_code(f, "send_review_link", "{\"method\":\"sms\"}", "too_soon");
    util_set_fake_now(util_now() + 2 * 86400);
    expect_ok(f, "send_review_link", "{\"method\":\"sms\"}");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links WHERE link_type = 'review'"), 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 2);
}

static void test_act_review_link_not_configured(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, SARAH, 0);
    expect_code(f, "send_review_link", "{\"method\":\"sms\"}", "not_configured");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM portal_links"), 0);
}

/* ---- callbacks ---- */

/* 2026-10-23 (Friday) 12:00 UTC = 13:00 BST; clocks go back on Sunday 25 October. */
#define FRI_OCT_2026 1792756800LL
/* 2027-03-26 (Friday) 12:00 UTC = 12:00 GMT; clocks go forward on Sunday 28 March. */
#define FRI_MAR_2027 1806062400LL

static json_t *callback(struct vt_act *f, const char *when)
{
    char args[256];
    snprintf(args, sizeof args, "{\"preferred_time\":\"%s\",\"reason\":\"talk about my offer\"}",
             when);
    return vt_act_run(f, "schedule_callback", args);
}

static void test_act_callback_in_hours_across_clock_changes(void **state)
{
    struct vt_act *f = *state;
    json_t *env;
    fx_open(f, NULL, SARAH, 0);

    util_set_fake_now(FRI_OCT_2026);
    env = callback(f, "2026-10-23T15:00"); /* BST: 14:00 UTC */
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_string_equal(str_at(env, "callback_time", NULL), "2026-10-23 14:00:00");
    assert_true(json_is_true(
        json_object_get(json_object_get(json_object_get(env, "data"), "sms"), "sent")));
    json_decref(env);
    env = callback(f, "2026-10-26T15:00"); /* GMT after the change: 15:00 UTC */
    assert_string_equal(str_at(env, "callback_time", NULL), "2026-10-26 15:00:00");
    json_decref(env);
    util_set_fake_now(FRI_MAR_2027);
    env = callback(f, "2027-03-30T10:00"); /* BST again (Tuesday after Easter): 09:00 UTC */
    assert_string_equal(str_at(env, "callback_time", NULL), "2027-03-30 09:00:00");
    json_decref(env);
    assert_int_equal(count(f,
                           "SELECT COUNT(*) FROM missed_calls WHERE user_id = 1 AND phone = '" SARAH
                           "' AND source = 'voice' AND status = 'pending' AND call_sid = "
                           "'CAtest0001' AND reason = 'talk about my offer'"),
                     3);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE to_number = '" SARAH
                              "' AND body LIKE '%Sarah%'"),
                     3);
}

static void test_act_callback_outside_hours_proposes_next_slot(void **state)
{
    struct vt_act *f = *state;
    json_t *env;
    fx_open(f, NULL, SARAH, 0);

    util_set_fake_now(FRI_OCT_2026);
    env = callback(f, "tomorrow at 3pm"); /* Saturday */
    assert_string_equal(vt_act_code(env), "outside_business_hours");
    /* Monday 26 October 09:00 GMT (the clocks went back on Sunday): 09:00 UTC */
    assert_string_equal(str_at(env, "proposed_time", NULL), "2026-10-26 09:00:00");
    assert_non_null(
        strstr(json_string_value(json_object_get(env, "message")), "Monday 26 October"));
    json_decref(env);
    env = callback(f, "2026-10-23T19:30"); /* after closing on Friday */
    assert_string_equal(vt_act_code(env), "outside_business_hours");
    assert_string_equal(str_at(env, "proposed_time", NULL), "2026-10-26 09:00:00");
    json_decref(env);
    /* Good Friday 2027 (26 March) is a bank holiday, so is Easter Monday (29 March);
     * the clocks go forward in between: Tuesday 30 March 09:00 BST = 08:00 UTC */
    util_set_fake_now(FRI_MAR_2027);
    env = callback(f, "2027-03-26T15:00");
    assert_string_equal(vt_act_code(env), "outside_business_hours");
    assert_string_equal(str_at(env, "proposed_time", NULL), "2027-03-30 08:00:00");
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls"), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages"), 0);
    /* in the past */
    expect_code(f, "schedule_callback",
                "{\"preferred_time\":\"2027-03-25T10:00\",\"reason\":\"x\"}", "time_in_past");
    expect_code(f, "schedule_callback",
                "{\"preferred_time\":\"2027-02-30T10:00\",\"reason\":\"x\"}", "invalid_time");
}

static void test_act_callback_sms_failure_keeps_the_callback(void **state)
{
    struct vt_act *f = *state;
    static const char *const kv[] = {"SMS_RATE_LIMIT=1/600", NULL};
    fx_open(f, kv, SARAH, 0);
    util_set_fake_now(FRI_OCT_2026);
    expect_ok(f, "send_portal_link", "{\"method\":\"sms\"}");
    json_t *env = callback(f, "2026-10-23T16:00");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_true(json_is_false(
        json_object_get(json_object_get(json_object_get(env, "data"), "sms"), "sent")));
    assert_non_null(strstr(json_string_value(json_object_get(env, "message")), "couldn't send"));
    json_decref(env);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM missed_calls"), 1);
}

static void test_act_callback_for_unknown_caller_uses_their_number(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, NOBODY, 0);
    util_set_fake_now(FRI_OCT_2026);
    json_t *env = callback(f, "2026-10-23T16:00");
    assert_true(json_is_true(json_object_get(env, "success")));
    json_decref(env);
    assert_int_equal(
        count(f,
              "SELECT COUNT(*) FROM missed_calls WHERE user_id IS NULL AND phone = '" NOBODY "'"),
        1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sms_messages WHERE to_number = '" NOBODY "'"),
                     1);
}

/* ---- knowledge base ---- */

static void test_act_knowledge_base_top_three(void **state)
{
    struct vt_act *f = *state;
    fx_open(f, NULL, "", 0);
    json_t *env = vt_act_run(f, "search_knowledge_base", "{\"query\":\"fees\"}");
    json_t *res = json_object_get(json_object_get(env, "data"), "results");
    assert_true(json_is_true(json_object_get(env, "success")));
    assert_true(json_array_size(res) >= 1 && json_array_size(res) <= 3);
    assert_non_null(json_string_value(json_object_get(json_array_get(res, 0), "title")));
    assert_non_null(json_string_value(json_object_get(json_array_get(res, 0), "snippet")));
    json_decref(env);
    env = vt_act_run(f, "search_knowledge_base", "{\"query\":\"complain\",\"category\":\"complaints\"}");
    res = json_object_get(json_object_get(env, "data"), "results");
    assert_true(json_array_size(res) >= 1);
    for (size_t i = 0; i < json_array_size(res); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(res, i), "category")),
                            "complaints");
    json_decref(env);
    expect_ok(f, "search_knowledge_base", "{\"query\":\"\\\"*) OR 1=1 --\"}");
}

/* Every action x odd inputs: always an envelope, never a crash, one audit row each. */
static void test_act_garbage_arguments_never_crash(void **state)
{
    struct vt_act *f = *state;
    static const char *const junk[] = {
        "{\"claim_reference\":\"RMC-1001\",\"method\":\"sms\",\"query\":\"\\u0000\"}",
        "{\"phone_number\":{\"a\":[1,2,{\"b\":null}]}}",
        "{\"preferred_time\":\"\\ud83d\\ude00 tomorrow\",\"reason\":\"\\u2028\"}",
        "{\"query\":\"\\\"\\\"\\\"*:()^-NEAR\",\"category\":\"fees\"}",
        "{\"method\":\"SMS\"}",
        "{\"phone_number\":\"+44 (0) 7700 900 001 ext 5\",\"claim_reference\":\"RMC-1001 and "
        "RMC-1002\"}",
        "{\"preferred_time\":\"2026-13-45T25:61\",\"reason\":\"x\"}",
        "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
        "1e999",
        "{\"claim_reference\":true,\"phone_number\":-1,\"method\":1.5,\"query\":[]}",
        "not json at all",
    };
    char big[2400];
    long long n = 0;

    memset(big, 0, sizeof big);
    snprintf(big, sizeof big, "{\"query\":\"%02000d\",\"reason\":\"%0300d\"}", 1, 2);
    fx_open(f, NULL, SARAH, 0);
    for (int a = 0; a < act_count(); a++) {
        for (size_t j = 0; j < sizeof junk / sizeof junk[0]; j++) {
            json_decref(vt_act_run(f, act_at(a)->name, junk[j]));
            n++;
        }
        json_decref(vt_act_run(f, act_at(a)->name, big));
        n++;
    }
    assert_int_equal(count(f, "SELECT COUNT(*) FROM voice_action_logs"), n);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM users"), 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, vt_act_setup, vt_act_teardown)

static const struct CMUnitTest per_backend[] = {
    T(test_act_claim_details_for_own_claim),
    T(test_act_other_persons_claim_is_not_found),
    T(test_act_requirements_lists_outstanding),
    T(test_act_bad_arguments_are_refused_and_audited),
    T(test_act_unknown_action_has_no_audit_row),
    T(test_act_user_details_identity_levels),
    T(test_act_other_number_with_its_claim_verifies_that_user),
    T(test_act_user_details_caller_word_means_the_signed_number),
    T(test_act_withheld_caller_cannot_see_claims),
    T(test_act_require_verification_asks_for_claim_reference),
    T(test_act_side_effects_happen_exactly_once),
    T(test_act_concurrent_repeats_send_once),
    T(test_act_budget_stops_runaway_calls),
    T(test_act_audit_rows_are_masked),
    T(test_act_health_json_fields),
    T(test_act_links_store_only_hash_and_are_single_use),
    T(test_act_portal_and_document_links_go_to_the_number_on_file),
    T(test_act_email_link_goes_to_the_address_on_file),
    T(test_act_failed_send_leaves_no_link),
    T(test_act_review_link_once_per_30_days),
    T(test_act_review_link_not_configured),
    T(test_act_callback_in_hours_across_clock_changes),
    T(test_act_callback_outside_hours_proposes_next_slot),
    T(test_act_callback_sms_failure_keeps_the_callback),
    T(test_act_callback_for_unknown_caller_uses_their_number),
    T(test_act_knowledge_base_top_three),
    T(test_act_garbage_arguments_never_crash),
};

static const struct CMUnitTest once_only[] = {
    cmocka_unit_test(test_act_registry_is_sorted_and_complete),
    cmocka_unit_test(test_act_tools_openai_and_gemini_formats),
    cmocka_unit_test(test_act_database_down_gives_an_envelope),
};

int main(void)
{
    int failed = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    log_setup(LOG_ERROR, false);
    failed += cmocka_run_group_tests_name("actions", once_only, NULL, NULL);
    failed += vt_db_run_per_backend("actions", per_backend,
                                    sizeof per_backend / sizeof per_backend[0], NULL, NULL,
                                    &g_backend);
    return failed ? 1 : 0;
}
