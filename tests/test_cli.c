/*
 * test_cli.c - the built `voice-ws` binary as a user runs it: db init, the
 * tool list, actions with their exit codes (0 / 3 / 2), audit rows, the
 * database down, health, link verify, configuration errors, and the output
 * contract (stdout only JSON, logs on stderr, numbers masked).
 *
 * Each test works in a fresh temporary directory with the default DB_PATH
 * (data/voice-ws.db under it), so `db init` also proves it creates data/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "actions/links.h"
#include "core/cfg.h"
#include "core/err.h"
#include "db/db.h"
#include "vt_db.h"
#include "vwstest.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fx {
    char *dir;
    char dbpath[600];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = vt_tmpdir();
    snprintf(f->dbpath, sizeof f->dbpath, "%s/data/voice-ws.db", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    vt_rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Run voice-ws with args (NULL-terminated) and extra env; stdout must be JSON or empty. */
static void cli(struct fx *f, struct vt_run *r, const char *const *env, const char *const *args)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = vt_bin();
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    memset(r, 0, sizeof *r);
    assert_int_equal(vt_run(r, f->dir, env, argv, 30), 0);
}

static json_t *stdout_json(const struct vt_run *r)
{
    json_error_t je;
    /* the whole of stdout is one JSON document: nothing else is printed there */
    json_t *j = json_loads(r->out, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("stdout is not pure JSON (%s): [%s]\nstderr: %s", je.text, r->out, r->err);
    return j;
}

static const char *code_of(const json_t *env)
{
    const char *c = json_string_value(json_object_get(json_object_get(env, "error"), "code"));
    return c ? c : "ok";
}

static void db_init(struct fx *f)
{
    struct vt_run r;
    cli(f, &r, NULL, (const char *const[]){"db", "init", "--demo", NULL});
    assert_int_equal(r.status, 0);
    vt_run_free(&r);
}

/* In-process view of the CLI's database, for checking rows. */
static struct db *open_db(struct fx *f, struct cfg *c)
{
    char kv0[700];
    snprintf(kv0, sizeof kv0, "DB_PATH=%s", f->dbpath);
    const char *const kv[] = {kv0, "LOG_LEVEL=off", NULL};
    struct db *db = NULL;
    struct err e = {0};
    vt_cfg(c, kv);
    assert_int_equal(db_open(&db_sqlite_ops, &db, c, &e), 0);
    return db;
}

/* ---- tests ---- */

static void test_cli_db_init_demo_twice(void **state)
{
    struct fx *f = *state;
    struct vt_run r;
    struct cfg c;

    for (int i = 0; i < 2; i++) {
        cli(f, &r, NULL, (const char *const[]){"db", "init", "--demo", NULL});
        assert_int_equal(r.status, 0);
        json_t *j = stdout_json(&r);
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_string_equal(json_string_value(json_object_get(j, "backend")), "sqlite");
        json_decref(j);
        vt_run_free(&r);
    }
    struct db *db = open_db(f, &c);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM users"), 2);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM user_claims"), 3);
    assert_true(vt_db_int(db, "SELECT COUNT(*) FROM knowledge_base") >= 8);
    db_close(db);
    cfg_free(&c);
}

static void test_cli_actions_prints_eight_openai_tools(void **state)
{
    struct fx *f = *state;
    struct vt_run r;
    json_t *t;
    size_t i;

    cli(f, &r, NULL, (const char *const[]){"actions", NULL});
    assert_int_equal(r.status, 0);
    json_t *j = stdout_json(&r);
    assert_int_equal(json_array_size(j), 8);
    json_array_foreach(j, i, t)
    {
        assert_string_equal(json_string_value(json_object_get(t, "type")), "function");
        assert_non_null(json_string_value(json_object_get(t, "name")));
        assert_non_null(json_string_value(json_object_get(t, "description")));
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(t, "parameters"), "type")), "object");
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")),
                        "check_claim_details");
    json_decref(j);
    vt_run_free(&r);
}

static void test_cli_action_own_claim_exit_0(void **state)
{
    struct fx *f = *state;
    struct vt_run r;

    db_init(f);
    cli(f, &r, NULL,
        (const char *const[]){"action", "check_claim_details", "{\"claim_reference\":\"rmc 1001\"}",
                              "--caller", "+447700900001", NULL});
    assert_int_equal(r.status, 0);
    json_t *j = stdout_json(&r);
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(j, "data"), "claim"), "status")),
                        "in_progress");
    assert_true(json_is_number(json_object_get(j, "execution_time_ms")));
    json_decref(j);
    /* the markers are on stderr, and nothing unmasked */
    assert_non_null(strstr(r.err, "🔧 [VOICE-ACTION] Executing check_claim_details"));
    assert_non_null(strstr(r.err, "✅ [VOICE-ACTION] Completed check_claim_details ("));
    assert_null(strstr(r.out, "VOICE-ACTION"));
    vt_run_free(&r);
}

static void test_cli_action_other_persons_claim_exit_3(void **state)
{
    struct fx *f = *state;
    struct vt_run r;

    db_init(f);
    cli(f, &r, NULL,
        (const char *const[]){"action", "check_claim_details", "{\"claim_reference\":\"RMC-2001\"}",
                              "--caller", "07700 900001", "--call-sid", "CA123", NULL});
    assert_int_equal(r.status, 3);
    json_t *j = stdout_json(&r);
    assert_false(json_is_true(json_object_get(j, "success")));
    assert_string_equal(code_of(j), "not_found");
    json_decref(j);
    assert_non_null(strstr(r.err, "❌ [VOICE-ACTION] Failed check_claim_details: not_found"));
    vt_run_free(&r);
}

static void test_cli_usage_errors_exit_2_without_audit(void **state)
{
    struct fx *f = *state;
    static const char *const cases[][6] = {
        {"action", "check_claim_details", "{\"claim_reference\":", "--caller", "+447700900001",
         NULL},
        {"action", "transfer_money", "{}", "--caller", "+447700900001", NULL},
        {"action", "check_claim_details", "{}", "--caller", "not-a-phone", NULL},
        {"action", "check_claim_details", "{}", "--frobnicate", NULL, NULL},
        {"action", "check_claim_details", "{}", "--call-sid", "bad sid!", NULL},
        {"action", NULL, NULL, NULL, NULL, NULL},
        {"db", "drop", NULL, NULL, NULL, NULL},
        {"serve", "--provider", "hume", NULL, NULL, NULL},
        {"serve", "--port", "99999", NULL, NULL, NULL},
        {"teleport", NULL, NULL, NULL, NULL, NULL},
    };
    struct vt_run r;
    struct cfg c;

    db_init(f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli(f, &r, NULL, cases[i]);
        if (r.status != 2)
            fail_msg("case %zu (%s %s): exit %d, stderr %s", i, cases[i][0],
                     cases[i][1] ? cases[i][1] : "", r.status, r.err);
        assert_string_equal(r.out, ""); /* no envelope for usage errors */
        assert_true(strlen(r.err) > 0);
        vt_run_free(&r);
    }
    struct db *db = open_db(f, &c);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM voice_action_logs"), 0);
    db_close(db);
    cfg_free(&c);
}

static void test_cli_missing_argument_exit_3_with_audit_row(void **state)
{
    struct fx *f = *state;
    struct vt_run r;
    struct cfg c;

    db_init(f);
    cli(f, &r, NULL,
        (const char *const[]){"action", "check_claim_details", "{}", "--caller", "+447700900001",
                              "--call-sid", "CAmissing", NULL});
    assert_int_equal(r.status, 3);
    json_t *j = stdout_json(&r);
    assert_string_equal(code_of(j), "invalid_arguments");
    json_decref(j);
    vt_run_free(&r);
    struct db *db = open_db(f, &c);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM voice_action_logs WHERE call_sid = "
                                   "'CAmissing' AND success = 0 AND error_code = "
                                   "'invalid_arguments' AND action = 'check_claim_details' AND "
                                   "phone_masked = '+44*******001'"),
                     1);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM voice_action_logs"), 1);
    db_close(db);
    cfg_free(&c);
}

static void test_cli_database_down_exit_3_quickly(void **state)
{
    struct fx *f = *state;
    struct vt_run r;
    char path[700], kv[800];

    snprintf(path, sizeof path, "%s/afile", f->dir); /* a file where a directory should be */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(kv, sizeof kv, "DB_PATH=%s/afile/sub/voice-ws.db", f->dir);
    time_t t0 = time(NULL);
    cli(f, &r, (const char *const[]){kv, NULL},
        (const char *const[]){"action", "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}",
                              "--caller", "+447700900001", NULL});
    assert_true(time(NULL) - t0 < 15);
    assert_int_equal(r.status, 3);
    json_t *j = stdout_json(&r);
    assert_false(json_is_true(json_object_get(j, "success")));
    assert_string_equal(code_of(j), "database_unavailable");
    assert_true(strlen(json_string_value(json_object_get(j, "message"))) > 10);
    json_decref(j);
    assert_non_null(strstr(r.err, "👤 [VOICE-DB] Error finding user"));
    assert_non_null(strstr(r.err, "❌ [VOICE-ACTION] Failed check_claim_details: database_unavailable"));
    vt_run_free(&r);

    /* health says so too, and still exits 0 with JSON */
    cli(f, &r, (const char *const[]){kv, NULL}, (const char *const[]){"health", NULL});
    assert_int_equal(r.status, 0);
    j = stdout_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
    json_decref(j);
    vt_run_free(&r);
}

static void test_cli_health_fields(void **state)
{
    struct fx *f = *state;
    struct vt_run r;

    db_init(f);
    cli(f, &r, (const char *const[]){"OPENAI_API_KEY=sk-test", NULL},
        (const char *const[]){"health", NULL});
    assert_int_equal(r.status, 0);
    json_t *j = stdout_json(&r), *svc = json_object_get(j, "services");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(j, "provider")), "auto");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(svc, "database"), "backend")), "sqlite");
    assert_true(json_is_true(json_object_get(json_object_get(svc, "database"), "reachable")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "sms"), "mode")),
                        "mock");
    assert_true(json_is_false(json_object_get(json_object_get(svc, "sms"), "configured")));
    assert_true(json_is_true(json_object_get(json_object_get(svc, "openai"), "configured")));
    assert_true(json_is_false(json_object_get(json_object_get(svc, "gemini"), "configured")));
    assert_int_equal(json_array_size(json_object_get(j, "actions")), 8);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "calls"), "active")), 0);
    assert_null(strstr(r.err, "sk-test"));
    json_decref(j);
    vt_run_free(&r);
}

static void test_cli_logs_are_masked_on_stderr(void **state)
{
    struct fx *f = *state;
    struct vt_run r;

    db_init(f);
    cli(f, &r, (const char *const[]){"LOG_LEVEL=debug", NULL},
        (const char *const[]){"action", "check_user_details",
                              "{\"phone_number\":\"07700 900002\",\"note\":\"sarah@example.com\"}",
                              "--caller", "+447700900001", NULL});
    assert_int_equal(r.status, 3);
    json_t *j = stdout_json(&r);
    assert_string_equal(code_of(j), "user_not_found");
    json_decref(j);
    assert_non_null(strstr(r.err, "[VOICE-ACTION] Executing check_user_details"));
    assert_null(strstr(r.err, "447700900001"));
    assert_null(strstr(r.err, "900002"));
    assert_null(strstr(r.err, "sarah@example.com"));
    vt_run_free(&r);
}

static void test_cli_send_link_then_verify_single_use(void **state)
{
    struct fx *f = *state;
    struct vt_run r;
    struct cfg c;
    struct err e = {0};
    char tok[LINK_TOKEN_MAX];
    long long row = 0;

    db_init(f);
    cli(f, &r, NULL,
        (const char *const[]){"action", "send_portal_link", "{\"method\":\"sms\"}", "--caller",
                              "+447700900001", NULL});
    assert_int_equal(r.status, 0);
    vt_run_free(&r);
    struct db *db = open_db(f, &c);
    assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM sms_messages WHERE to_number = "
                                   "'+447700900001' AND mode = 'mock'"),
                     1);
    assert_int_equal(
        vt_db_int(db, "SELECT COUNT(*) FROM portal_links WHERE LENGTH(token_hash) = 64"), 1);
    assert_int_equal(link_create(db, 2, "documents", "sms", 3600, NULL, tok, &row, &e), 0);
    db_close(db);
    cfg_free(&c);

    cli(f, &r, NULL, (const char *const[]){"link", "verify", tok, NULL});
    assert_int_equal(r.status, 0);
    json_t *j = stdout_json(&r);
    assert_true(json_is_true(json_object_get(j, "valid")));
    assert_string_equal(json_string_value(json_object_get(j, "first_name")), "James");
    json_decref(j);
    vt_run_free(&r);
    cli(f, &r, NULL, (const char *const[]){"link", "verify", tok, NULL});
    assert_int_equal(r.status, 3);
    j = stdout_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "used");
    json_decref(j);
    vt_run_free(&r);
}

static void test_cli_config_error_names_the_variable(void **state)
{
    struct fx *f = *state;
    struct vt_run r;

    cli(f, &r, (const char *const[]){"DB_POOL_SIZE=lots", NULL},
        (const char *const[]){"health", NULL});
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "DB_POOL_SIZE"));
    vt_run_free(&r);
    cli(f, &r, (const char *const[]){"APP_ENV=production", NULL},
        (const char *const[]){"action", "search_knowledge_base", "{\"query\":\"fees\"}", NULL});
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "TWILIO_AUTH_TOKEN"));
    vt_run_free(&r);
}

static void test_cli_require_verification(void **state)
{
    struct fx *f = *state;
    struct vt_run r;

    db_init(f);
    cli(f, &r, (const char *const[]){"REQUIRE_VERIFICATION=true", NULL},
        (const char *const[]){"action", "check_claim_details", "{\"claim_reference\":\"RMC-1001\"}",
                              "--caller", "+447700900001", NULL});
    assert_int_equal(r.status, 3);
    json_t *j = stdout_json(&r);
    assert_string_equal(code_of(j), "verification_required");
    json_decref(j);
    vt_run_free(&r);
}

/* The same commands on every backend (MySQL through DB_HOST...). */
static void test_cli_every_backend_init_action_audit(void **state)
{
    struct fx *f = *state;
    const char *backends[4];
    int n = vt_db_backends(backends, 4);

    for (int b = 0; b < n; b++) {
        struct cfg c;
        struct vt_db h;
        struct vt_run r;
        vt_db_fresh(backends[b], &c, &h, NULL);
        for (int i = 0; i < 2; i++) {
            cli(f, &r, h.env, (const char *const[]){"db", "init", "--demo", NULL});
            assert_int_equal(r.status, 0);
            json_t *j = stdout_json(&r);
            assert_string_equal(json_string_value(json_object_get(j, "backend")), backends[b]);
            json_decref(j);
            vt_run_free(&r);
        }
        cli(f, &r, h.env,
            (const char *const[]){"action", "check_requirements",
                                  "{\"claim_reference\":\"RMC 2001\"}", "--caller", "+447700900002",
                                  "--call-sid", "CAbackend", NULL});
        assert_int_equal(r.status, 0);
        json_t *j = stdout_json(&r);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "count")),
                         1);
        json_decref(j);
        vt_run_free(&r);
        cli(f, &r, h.env,
            (const char *const[]){"action", "check_requirements", "{\"claim_reference\":7}",
                                  "--caller", "+447700900002", "--call-sid", "CAbackend", NULL});
        assert_int_equal(r.status, 3);
        vt_run_free(&r);
        cli(f, &r, h.env, (const char *const[]){"health", NULL});
        j = stdout_json(&r);
        assert_string_equal(
            json_string_value(json_object_get(
                json_object_get(json_object_get(j, "services"), "database"), "backend")),
            backends[b]);
        json_decref(j);
        vt_run_free(&r);
        struct db *db = vt_db_open(&c, false);
        assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM users"), 2);
        assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM voice_action_logs WHERE call_sid = "
                                       "'CAbackend'"),
                         2);
        assert_int_equal(vt_db_int(db, "SELECT COUNT(*) FROM voice_action_logs WHERE call_sid = "
                                       "'CAbackend' AND success = 0 AND error_code = "
                                       "'invalid_arguments'"),
                         1);
        db_close(db);
        vt_db_cleanup(&h, &c);
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    static const struct CMUnitTest tests[] = {
        T(test_cli_db_init_demo_twice),
        T(test_cli_actions_prints_eight_openai_tools),
        T(test_cli_action_own_claim_exit_0),
        T(test_cli_action_other_persons_claim_exit_3),
        T(test_cli_usage_errors_exit_2_without_audit),
        T(test_cli_missing_argument_exit_3_with_audit_row),
        T(test_cli_database_down_exit_3_quickly),
        T(test_cli_health_fields),
        T(test_cli_logs_are_masked_on_stderr),
        T(test_cli_send_link_then_verify_single_use),
        T(test_cli_config_error_names_the_variable),
        T(test_cli_require_verification),
        T(test_cli_every_backend_init_action_audit),
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
