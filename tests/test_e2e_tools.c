/*
 * test_e2e_tools.c - how the server schedules a call's tool calls on the
 * worker pool, through the real binary: a withdrawn call (Gemini
 * toolCallCancellation) that has not started is never run, and a full work
 * queue answers the model with a `busy` envelope instead of waiting.
 *
 * To make "not started yet" deterministic the pool has one worker, held by
 * a slow action: schedule_callback whose SMS confirmation goes to a Twilio
 * stand-in that never answers (tests/peers/twilio_faults.js, scenario 0408),
 * so the action takes SMS_TIMEOUT seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gem_peer.h"
#include "srv_peer.h"
#include "vwstest.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUTH "0123456789abcdef0123456789abcdef"
#define PUB "https://voice.example.co.uk"

/* A weekday 2-8 days ahead (Tue-Thu, away from Christmas) at 11:00: always bookable. */
static void bookable_time(char *out, size_t outsz)
{
    time_t now = time(NULL);
    for (int k = 2; k < 30; k++) {
        time_t t = now + (time_t)k * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        int xmas = (tm.tm_mon == 11 && tm.tm_mday >= 20) || (tm.tm_mon == 0 && tm.tm_mday <= 3);
        if (tm.tm_wday >= 2 && tm.tm_wday <= 4 && !xmas) {
            strftime(out, outsz, "%Y-%m-%dT11:00:00", &tm);
            return;
        }
    }
}

/* The functionResponses[0].response of the toolResponse for id, as JSON text (malloc'd). */
static char *tool_response(json_t *log, const char *id)
{
    for (int i = 0;; i++) {
        json_t *m = gem_peer_nth_in(log, "toolResponse", i);
        if (!m)
            return NULL;
        json_t *fr = json_array_get(
            json_object_get(json_object_get(m, "toolResponse"), "functionResponses"), 0);
        const char *fid = json_string_value(json_object_get(fr, "id"));
        if (fid && !strcmp(fid, id))
            return json_dumps(json_object_get(fr, "response"), JSON_COMPACT);
    }
}

static void test_e2e_tools_withdrawn_call_is_not_run_and_full_queue_answers_busy(void **state)
{
    (void)state;
    char js[512], sport[16], fout[128], base[96], gurl[320], when[64], script[2048];
    int port = vt_free_port();
    snprintf(js, sizeof js, "%s/tests/peers/twilio_faults.js", vt_src());
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(fout, sizeof fout, "/tmp/vws-faults-tools-%d.txt", (int)getpid());
    const char *fargv[] = {"node", js, sport, AUTH, NULL};
    pid_t faults = vt_proc_start(fargv, fout);
    assert_true(faults > 0);
    snprintf(base, sizeof base, "TWILIO_API_BASE=http://127.0.0.1:%d", port);

    /* fc_slow holds the only worker; fc_queued waits in the queue (size 1) and is then
     * withdrawn; fc_busy finds the queue full. */
    bookable_time(when, sizeof when);
    snprintf(script, sizeof script,
             "{\"rules\":[{\"on\":\"audio\",\"ms\":600,\"do\":["
             "{\"tool_call\":{\"id\":\"fc_slow\",\"name\":\"schedule_callback\","
             "\"args\":{\"preferred_time\":\"%s\",\"reason\":\"slow sms\"}}},"
             "{\"wait\":400,\"tool_call\":{\"id\":\"fc_queued\",\"name\":\"check_requirements\","
             "\"args\":{\"claim_reference\":\"RMC-1001\"}}},"
             "{\"wait\":300,\"tool_call\":{\"id\":\"fc_busy\",\"name\":\"check_claim_details\","
             "\"args\":{\"claim_reference\":\"RMC-1001\"}}},"
             "{\"wait\":300,\"cancel\":[\"fc_queued\"]}]}]}",
             when);
    struct gem_peer g;
    assert_int_equal(gem_peer_start(&g, script, "g-test"), 0);
    vt_peers_track(g.pid, NULL);
    snprintf(gurl, sizeof gurl, "GEMINI_LIVE_URL=%s", g.url);
    const char *env[] = {"TWILIO_AUTH_TOKEN=" AUTH,
                         "PUBLIC_URL=" PUB,
                         "LINK_SECRET=tools-secret",
                         "VOICE_PROVIDER=gemini",
                         "GEMINI_API_KEY=g-test",
                         gurl,
                         "WORKERS=1",
                         "WORK_QUEUE_MAX=1",
                         "ENABLE_REAL_SMS=true",
                         "TWILIO_ACCOUNT_SID=AC00000000000000000000000000000408",
                         "TWILIO_FROM_NUMBER=+442079460123",
                         "SMS_TEST_NUMBERS=+447700900001",
                         "SMS_TIMEOUT=3",
                         base,
                         NULL};
    struct vt_srv s;
    assert_int_equal(vt_srv_start(&s, env), 0);

    char spec[1024];
    snprintf(spec, sizeof spec,
             "{\"http\":\"http://127.0.0.1:%d\",\"public_url\":\"" PUB "\","
             "\"ws\":\"ws://127.0.0.1:%d\",\"auth_token\":\"" AUTH "\",\"from\":\"+447700900001\","
             "\"call_sid\":\"CA000000000000000000000000000000t1\",\"duration_ms\":6000}",
             s.port, s.port);
    json_t *r = vt_call_run(spec, 40);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(r, "violations")), 0);
    json_decref(r);

    /* the withdrawn call never ran: no audit row, no response; the full queue said busy */
    assert_true(vt_srv_log_wait(&s, "(fc_queued) was withdrawn by the provider: not run", 5000));
    json_t *log = gem_peer_log(&g);
    char *busy = tool_response(log, "fc_busy");
    char *slow = tool_response(log, "fc_slow");
    char *queued = tool_response(log, "fc_queued");
    assert_non_null(busy);
    assert_non_null(strstr(busy, "\"busy\""));
    assert_non_null(slow);
    assert_non_null(strstr(slow, "\"success\":true"));
    assert_null(queued);
    free(busy);
    free(slow);
    json_decref(log);
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM voice_action_logs WHERE action = "
                                        "'check_requirements'"),
                     0);
    assert_int_equal(vt_srv_sql_int(&s, "SELECT COUNT(*) FROM voice_action_logs WHERE action = "
                                        "'schedule_callback'"),
                     1);
    assert_int_equal(vt_srv_stop(&s, SIGTERM, 15000), 0);
    vt_srv_cleanup(&s);
    vt_peers_untrack(g.pid);
    gem_peer_stop(&g);
    vt_proc_stop(faults);
    unlink(fout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_e2e_tools_withdrawn_call_is_not_run_and_full_queue_answers_busy,
            vt_peers_cleanup_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
