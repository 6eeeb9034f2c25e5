/*
 * test_tw_fast.c - the Twilio media fast path (src/net/tw_fast.c) accepts exactly the
 * plain media shape with the same field values jansson reads, and hands everything
 * unusual back to the general (jansson) path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "net/tw_fast.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fast(const char *s, struct net_media *m)
{
    return net__media_fast(s, strlen(s), m);
}

/* When the fast path accepts, jansson must read the same fields. */
static void same_as_jansson(const char *s, const struct net_media *m)
{
    json_t *root = json_loads(s, 0, NULL);
    assert_non_null(root);
    json_t *media = json_object_get(root, "media");
    assert_string_equal(json_string_value(json_object_get(root, "event")), "media");
    assert_string_equal(json_string_value(json_object_get(root, "streamSid")), m->sid);
    json_t *pl = json_object_get(media, "payload");
    assert_int_equal(json_string_length(pl), m->plen);
    assert_memory_equal(json_string_value(pl), m->payload, m->plen);
    json_t *tr = json_object_get(media, "track");
    assert_int_equal(tr != NULL, m->has_track);
    if (tr)
        assert_string_equal(json_string_value(tr), m->track);
    json_decref(root);
}

static void test_plain(void **state)
{
    (void)state;
    struct net_media m;
    const char *s = "{\"event\":\"media\",\"sequenceNumber\":\"2\",\"streamSid\":\"MZ22\","
                    "\"media\":{\"track\":\"inbound\",\"chunk\":\"1\",\"timestamp\":\"52\","
                    "\"payload\":\"//79/w==\"}}";
    assert_int_equal(fast(s, &m), 0);
    assert_string_equal(m.sid, "MZ22");
    assert_true(m.has_track);
    assert_string_equal(m.track, "inbound");
    assert_string_equal(m.payload, "//79/w==");
    assert_int_equal(m.plen, 8);
    same_as_jansson(s, &m);

    /* key order, no track, whitespace, escaped slash */
    s = " {\"media\": {\"payload\": \"ab\\/cd\"}, \"streamSid\": \"MZ1\", \"event\": \"media\"} ";
    assert_int_equal(fast(s, &m), -1); /* leading blank: general path */
    s = "{\"media\": {\"payload\": \"ab\\/cd\"}, \"streamSid\": \"MZ1\", \"event\": \"media\"}";
    assert_int_equal(fast(s, &m), 0);
    assert_false(m.has_track);
    assert_string_equal(m.payload, "ab/cd");
    same_as_jansson(s, &m);
}

static void test_long_payload(void **state)
{
    (void)state;
    struct net_media m;
    char *s = malloc(NET_MEDIA_PAYLOAD_MAX + 200), *pl = malloc(NET_MEDIA_PAYLOAD_MAX + 2);
    assert_non_null(s);
    assert_non_null(pl);
    /* 1280 chars: delivered by LEJP in several chunks */
    memset(pl, 'A', 1280);
    pl[1280] = '\0';
    snprintf(s, NET_MEDIA_PAYLOAD_MAX + 200,
             "{\"event\":\"media\",\"streamSid\":\"MZ9\",\"media\":{\"payload\":\"%s\"}}", pl);
    assert_int_equal(fast(s, &m), 0);
    assert_int_equal(m.plen, 1280);
    same_as_jansson(s, &m);
    /* too long for the fast path */
    memset(pl, 'A', NET_MEDIA_PAYLOAD_MAX + 1);
    pl[NET_MEDIA_PAYLOAD_MAX + 1] = '\0';
    char *big = malloc(NET_MEDIA_PAYLOAD_MAX + 200);
    snprintf(big, NET_MEDIA_PAYLOAD_MAX + 200,
             "{\"event\":\"media\",\"streamSid\":\"MZ9\",\"media\":{\"payload\":\"%s\"}}", pl);
    assert_int_equal(fast(big, &m), -1);
    free(big);
    free(s);
    free(pl);
}

static void test_general_path(void **state)
{
    (void)state;
    struct net_media m;
    const char *const cases[] = {
        "{\"event\":\"mark\",\"streamSid\":\"MZ1\",\"mark\":{\"name\":\"1:100\"}}",
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{}}",              /* no payload */
        "{\"event\":\"media\",\"media\":{\"payload\":\"AA==\"}}",                /* no sid */
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":7}}", /* number */
        "{\"event\":\"media\",\"streamSid\":null,\"media\":{\"payload\":\"AA==\"}}",
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"track\":1,\"payload\":\"AA==\"}}",
        "{\"event\":\"media\",\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":"
        "\"AA==\"}}",
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"AA==\",\"payload\":"
        "\"BB==\"}}",
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"AA==\"}", /* truncated
                                                                                        */
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"AA==\"}}x", /* trailing
                                                                                          */
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"A\\u0000A\"}}",
        "{\"x\":{\"event\":\"media\"},\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"AA==\"}}",
        "{\"event\":\"mediaX\",\"streamSid\":\"MZ1\",\"media\":{\"payload\":\"AA==\"}}",
        /* duplicated keys anywhere: call.c's jansson path refuses them (JSON_REJECT_DUPLICATES) */
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"sequenceNumber\":\"1\",\"sequenceNumber\":"
        "\"2\","
        "\"media\":{\"payload\":\"AA==\"}}",
        "{\"event\":\"media\",\"streamSid\":\"MZ1\",\"media\":{\"chunk\":\"1\",\"chunk\":\"1\","
        "\"payload\":\"AA==\"}}",
        "[\"event\",\"media\"]",
        "not json",
        "",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (fast(cases[i], &m) != -1)
            fail_msg("fast path accepted case %zu: %s", i, cases[i]);
    }
    assert_int_equal(net__media_fast(NULL, 0, &m), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_long_payload),
        cmocka_unit_test(test_general_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
