/*
 * test_jpick.c - core/jpick: string fields out of a JSON object with LEJP, same values
 * as jansson, and -1 for everything the fast paths must leave to jansson.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/jpick.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pick3(const char *s, char *a, char *b, char *c, size_t cap, struct jpick *f)
{
    f[0] = (struct jpick){"type", a, cap, 0, false};
    f[1] = (struct jpick){"item_id", b, cap, 0, false};
    f[2] = (struct jpick){"delta", c, cap, 0, false};
    return jpick(s, strlen(s), f, 3);
}

static void test_values(void **state)
{
    (void)state;
    char a[64], b[64], c[64];
    struct jpick f[3];
    const char *s = "{\"type\":\"response.output_audio.delta\",\"event_id\":\"e1\",\"response_id\":"
                    "\"r\",\"item_id\":\"item_1\",\"output_index\":0,\"content_index\":0,"
                    "\"delta\":\"AAEC\\/w==\",\"x\":{\"type\":\"nested\"},\"y\":[1,\"two\",null]}";
    assert_int_equal(pick3(s, a, b, c, sizeof a, f), 0);
    assert_true(f[0].found && f[1].found && f[2].found);
    assert_string_equal(a, "response.output_audio.delta"); /* not the nested "type" */
    assert_string_equal(b, "item_1");
    assert_string_equal(c, "AAEC/w==");
    assert_int_equal(f[2].len, 8);
    json_t *j = json_loads(s, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "delta")), c);
    json_decref(j);

    /* absent field: found=false, still 0 */
    s = "{\"type\":\"session.updated\",\"session\":{\"type\":\"realtime\"}}";
    assert_int_equal(pick3(s, a, b, c, sizeof a, f), 0);
    assert_true(f[0].found);
    assert_false(f[1].found);
    assert_false(f[2].found);
    assert_string_equal(b, "");
}

static void test_long_string_chunks(void **state)
{
    (void)state;
    size_t n = 5000; /* LEJP delivers it in 254-byte chunks */
    char *v = malloc(n + 1), *s = malloc(n + 64), *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
    v[n] = '\0';
    snprintf(s, n + 64, "{\"delta\":\"%s\"}", v);
    struct jpick f = {"delta", out, n + 1, 0, false};
    assert_int_equal(jpick(s, strlen(s), &f, 1), 0);
    assert_int_equal(f.len, n);
    assert_string_equal(out, v);
    f.cap = n; /* one byte short: refused */
    assert_int_equal(jpick(s, strlen(s), &f, 1), -1);
    free(v);
    free(s);
    free(out);
}

static void test_refused(void **state)
{
    (void)state;
    char a[64], b[64], c[64];
    struct jpick f[3];
    const char *const cases[] = {
        "{\"type\":1}", /* non-string at a picked path */
        "{\"type\":null}",
        "{\"type\":\"a\",\"type\":\"b\"}", /* repeated */
        "{\"type\":\"a\\u0000b\"}",        /* NUL inside */
        "{\"type\":\"a\"",                 /* incomplete */
        "{\"type\":\"a\"} {}",             /* trailing input */
        "[\"type\"]",                      /* not an object */
        "{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{type:\"a\"}",
        "{\"type\":\"a\",\"x\":1,\"x\":2}",                 /* any repeated key */
        "{\"type\":\"a\",\"m\":{\"c\":\"1\",\"c\":\"2\"}}", /* nested repeat */
        "",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (pick3(cases[i], a, b, c, sizeof a, f) != -1)
            fail_msg("accepted case %zu: %s", i, cases[i]);
    assert_int_equal(jpick(NULL, 0, f, 3), -1);
    assert_int_equal(jpick("{}", 2, f, 0), -1);
    assert_int_equal(jpick("{}", 2, f, JPICK_MAX + 1), -1);
}

/* jpick_shape counts everything in the message, picked or not, the root object included. */
static void test_shape_counts(void **state)
{
    (void)state;
    char a[64];
    struct jpick f[] = {{"a.b[].c", a, sizeof a, 0, false}};
    struct jpick_shape sh;
    const char *s = "{\"a\":{\"b\":[{\"c\":\"x\"},1,[true,null],{}],\"d\":2.5},\"e\":\"y\"}";
    assert_int_equal(jpick_shape(s, strlen(s), f, 1, &sh), 0);
    assert_true(f[0].found);
    assert_string_equal(a, "x");
    assert_int_equal(sh.objects, 4); /* root, a, {c}, {} */
    assert_int_equal(sh.arrays, 2);
    assert_int_equal(sh.keys, 5);    /* a b c d e */
    assert_int_equal(sh.scalars, 6); /* "x" 1 true null 2.5 "y" */
    s = "{\"q\":null}";
    assert_int_equal(jpick_shape(s, strlen(s), f, 1, &sh), 0);
    assert_int_equal(sh.objects, 1);
    assert_int_equal(sh.keys, 1);
    assert_int_equal(sh.scalars, 1);
    assert_int_equal(sh.arrays, 0);
    assert_false(f[0].found);
    /* LEJP refuses an empty top-level object: the general path takes it */
    s = "{}";
    assert_int_equal(jpick_shape(s, strlen(s), f, 1, &sh), -1);
    /* refused input is refused here too */
    s = "{\"a\":1} x";
    assert_int_equal(jpick_shape(s, strlen(s), f, 1, &sh), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_long_string_chunks),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_shape_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
