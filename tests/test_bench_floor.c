/*
 * test_bench_floor.c - smoke test of bench/bench_floor.c (the kernel-only ruler for the relay's
 * CPU targets, docs/loadgen.md "The floor"), so it cannot rot: 5 calls for 1 s. Asserts every
 * frame made the round trip through the relay (50 per call-second) and the CPU figures are
 * present and sane. No timing thresholds: these machines are shared and noisy.
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

static double metric(const char *out, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "metric floor.n5.%s ", name);
    const char *p = strstr(out, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

static void test_bench_floor_relays_every_frame(void **state)
{
    (void)state;
    char bench[1024];
    snprintf(bench, sizeof bench, "%s/bench_floor", vt_build());
    const char *argv[] = {bench, "--calls", "5", "--seconds", "1", NULL};
    struct vt_run r;
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 60), 0);
    if (r.status != 0)
        fprintf(stderr, "bench_floor exit %d\n%s\n%s\n", r.status, r.out, r.err);
    assert_int_equal(r.status, 0);
    /* 50 frames per call-second come back through the relay (a frame in flight at the edges) */
    double fr = metric(r.out, "frames_echoed_per_call_second");
    assert_true(fr >= 45 && fr <= 55);
    double u = metric(r.out, "relay_cpu_user_per_call"), s = metric(r.out, "relay_cpu_system_per_call");
    double t = metric(r.out, "relay_cpu_total_per_call");
    assert_true(isfinite(u) && isfinite(s) && isfinite(t));
    assert_true(u >= 0 && s >= 0 && t > 0);
    assert_true(fabs(u + s - t) < 0.01);
    assert_non_null(strstr(r.out, "| 5 | "));
    vt_run_free(&r);
}

static void test_bench_floor_usage_error(void **state)
{
    (void)state;
    char bench[1024];
    snprintf(bench, sizeof bench, "%s/bench_floor", vt_build());
    const char *argv[] = {bench, "--bogus", NULL};
    struct vt_run r;
    assert_int_equal(vt_run(&r, NULL, NULL, argv, 10), 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage"));
    vt_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_floor_relays_every_frame),
        cmocka_unit_test(test_bench_floor_usage_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
