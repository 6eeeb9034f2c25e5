/*
 * test_bench_relay.c - smoke test of bench/bench_relay.c so the relay bench
 * cannot rot: 5 calls for ~2 s of audio against the built server, once with
 * the OpenAI stand-in and once with the Gemini one. Asserts the run
 * completed with every call bridged, no dropped frames, no protocol
 * violations on either side, and sane (finite, positive) measurements. No
 * timing thresholds: these machines are shared and noisy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "vwstest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value of "metric relay.<prov>.n5.<name> <value> <unit>" in out, NAN when absent or "nan". */
static double metric(const char *out, const char *prov, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "metric relay.%s.n5.%s ", prov, name);
    const char *p = strstr(out, key);
    if (!p)
        return NAN;
    p += strlen(key);
    if (!strncmp(p, "nan", 3))
        return NAN;
    return strtod(p, NULL);
}

static void run_bench(const char *prov)
{
    char bench[1024];
    snprintf(bench, sizeof bench, "%s/bench_relay", vt_build());
    const char *argv[] = {bench,    "--provider", prov,       "--calls", "5",      "--seconds", "2",
                          "--ramp", "0.5",        "--no-pin", "--bin",   vt_bin(), NULL};
    struct vt_run r;
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 120), 0);
    if (r.status != 0)
        fprintf(stderr, "bench_relay %s exit %d\nstdout:\n%s\nstderr:\n%s\n", prov, r.status, r.out,
                r.err);
    assert_int_equal(r.status, 0);
    const char *o = r.out;

    /* every call placed, bridged, identified through the greeting and finished with stop */
    assert_true(metric(o, prov, "calls") == 5);
    assert_true(metric(o, prov, "calls_failed") == 0);
    assert_true(metric(o, prov, "calls_without_echo") == 0);
    assert_true(metric(o, prov, "calls_without_greeting_id") == 0);

    /* ~2 s + 2.5 s of ramp and settling at 50 frames/s per call: at least 300 measured */
    double after = metric(o, prov, "frames_after_first_echo");
    assert_true(after >= 300);
    assert_true(metric(o, prov, "frames_dropped") == 0);
    assert_true(metric(o, prov, "frames_duplicated") == 0);
    assert_true(metric(o, prov, "twilio_protocol_violations") == 0);
    assert_true(metric(o, prov, "provider_protocol_violations") == 0);

    /* marks flowed both ways */
    assert_true(metric(o, prov, "marks_received") > 0);
    assert_true(metric(o, prov, "marks_echoed") > 0);

    /* measurements exist and are sane (no thresholds) */
    assert_true(metric(o, prov, "latency_samples") >= 100);
    double p50 = metric(o, prov, "added_latency_p50"), mx = metric(o, prov, "added_latency_max");
    assert_true(isfinite(p50) && p50 >= 0 && p50 <= mx && mx < 10000);
    double in = metric(o, prov, "inbound_leg_p50"), out = metric(o, prov, "outbound_leg_p50");
    assert_true(isfinite(in) && in >= 0 && isfinite(out) && out >= 0);
    double ttfa = metric(o, prov, "time_to_first_audio_p50");
    assert_true(isfinite(ttfa) && ttfa >= 0 && ttfa < 10000);
    double cpu = metric(o, prov, "server_cpu_total_per_call");
    assert_true(isfinite(cpu) && cpu >= 0);
    assert_true(metric(o, prov, "server_rss_median") > 0);

    /* the summary table row */
    char row[32];
    snprintf(row, sizeof row, "| 5 | %s | ", prov);
    assert_non_null(strstr(o, row));
    assert_null(strstr(o, "run incomplete"));
    vt_run_free(&r);
}

static void test_openai(void **state)
{
    (void)state;
    run_bench("openai");
}

static void test_gemini(void **state)
{
    (void)state;
    run_bench("gemini");
}

static void test_usage(void **state)
{
    (void)state;
    char bench[1024];
    snprintf(bench, sizeof bench, "%s/bench_relay", vt_build());
    const char *argv[] = {bench, "--provider", "hume", NULL};
    struct vt_run r;
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 30), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage"));
    vt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_openai),
        cmocka_unit_test(test_gemini),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
