/*
 * test_gem_fast.c - providers/gem_fast: the Gemini model-audio fast path accepts exactly
 * the audio serverContent message (optionally with a text part and the transcriptions),
 * with the same fields jansson reads, and refuses (-1: general path) every other message
 * and anything unusual.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/gem_fast.h"

static char data[GEM_FAST_DATA_MAX];
static struct gem_audio_msg m;

static int fast(const char *s)
{
    memset(&m, 0, sizeof m);
    m.data = data;
    m.dcap = sizeof data;
    return prov__gem_audio_fast(s, strlen(s), &m);
}

/* The string at o.k1.k2 (NULL when absent or not a string). */
static const char *jstr2(json_t *o, const char *k1, const char *k2)
{
    return json_string_value(json_object_get(json_object_get(o, k1), k2));
}

/* Accepted: the fast path's fields equal what jansson finds at the same place. */
static void same_as_jansson(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    json_t *sc = json_object_get(j, "serverContent");
    json_t *parts = json_object_get(json_object_get(sc, "modelTurn"), "parts");
    json_t *inl = NULL, *p;
    const char *text = NULL;
    size_t i;
    json_array_foreach(parts, i, p)
    {
        if (json_object_get(p, "inlineData"))
            inl = json_object_get(p, "inlineData");
        else
            text = json_string_value(json_object_get(p, "text"));
    }
    assert_non_null(inl);
    assert_int_equal(fast(s), 0);
    assert_string_equal(m.mime, json_string_value(json_object_get(inl, "mimeType")));
    assert_int_equal(m.dlen, json_string_length(json_object_get(inl, "data")));
    assert_memory_equal(data, json_string_value(json_object_get(inl, "data")), m.dlen);
    assert_int_equal(m.has_text, text != NULL);
    if (text)
        assert_string_equal(m.text, text);
    const char *it = jstr2(sc, "inputTranscription", "text");
    const char *ot = jstr2(sc, "outputTranscription", "text");
    assert_int_equal(m.has_in, it != NULL);
    assert_int_equal(m.has_out, ot != NULL);
    if (it)
        assert_string_equal(m.in_text, it);
    if (ot)
        assert_string_equal(m.out_text, ot);
    json_decref(j);
}

static void test_accepts_audio_text_transcripts(void **state)
{
    (void)state;
    same_as_jansson("{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":"
                    "\"audio/pcm;rate=24000\",\"data\":\"AAECAwQF\"}}]}}}");
    /* role, other key order, whitespace, escapes */
    same_as_jansson("{ \"serverContent\" : { \"modelTurn\" : { \"parts\" : [ { \"inlineData\" : "
                    "{ \"data\" : \"AAEC\\/w==\" , \"mimeType\" : \"audio\\/pcm;rate=24000\" } } "
                    "] , \"role\" : \"model\" } } }");
    /* a long value: LEJP hands it over in 254-byte pieces */
    size_t n = 12000;
    char *s = malloc(n + 200);
    int k = snprintf(s, 200,
                     "{\"serverContent\":{\"modelTurn\":{\"role\":\"model\",\"parts\":[{"
                     "\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"");
    for (size_t i = 0; i < n; i++)
        s[k + i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i * 7 % 64];
    strcpy(s + k + n, "\"}}]}}}");
    same_as_jansson(s);
    assert_int_equal(m.dlen, n);
    free(s);
    /* 3.x: audio with a text part and the transcriptions in the same message */
    same_as_jansson(
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"text\":\"Hello \\\"there\\\"\"},"
        "{\"inlineData\":{\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"AAEC\"}}]},"
        "\"outputTranscription\":{\"text\":\"Hello th\\u00e9re\"},"
        "\"inputTranscription\":{\"text\":\"hi\"}}}");
    same_as_jansson("{\"serverContent\":{\"outputTranscription\":{\"text\":\"\"},\"modelTurn\":{"
                    "\"role\":\"model\",\"parts\":[{\"inlineData\":{\"mimeType\":\"audio/pcm\","
                    "\"data\":\"AAEC\"}}]}}}");
}

static void test_refuses_everything_else(void **state)
{
    (void)state;
    static const char *const refused[] = {
        /* other content next to or instead of the audio */
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]},\"turnComplete\":true}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]},\"interrupted\":true}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]}},\"usageMetadata\":{\"totalTokenCount\":3}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"},\"thought\":true}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}},1]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}},{}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\",\"x\":null}}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}],\"x\":[]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]},\"outputTranscription\":{\"text\":\"hi\",\"finished\":true}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]},\"outputTranscription\":{\"text\":5}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]},\"outputTranscription\":{\"x\":\"hi\"}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}},{\"text\":\"x\",\"thought\":true}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}},{\"text\":\"x\"},{\"text\":\"y\"}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"},\"text\":\"x\"}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"text\":\"x\"}]}}}",
        /* two audio parts (jpick refuses the repeated path; jansson plays both) */
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}},{\"inlineData\":{\"mimeType\":\"a\",\"data\":\"AA==\"}}]}}}",
        /* wrong types, missing fields, repeated keys */
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":5}}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\"}}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"data\":\"AA==\"}}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"role\":5,\"parts\":[{\"inlineData\":{\"mimeType\":"
        "\"a\",\"data\":\"AA==\"}}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\",\"data\":\"AA==\"}}]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]]}}}",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"A\\u0000A\"}}]}}}",
        /* not one well-formed object */
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]}}} ",
        "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"a\","
        "\"data\":\"AA==\"}}]}}",
        "[1]",
        "{\"setupComplete\":{}}",
        "{\"toolCall\":{\"functionCalls\":[{\"id\":\"x\",\"name\":\"y\"}]}}",
        "",
        NULL,
    };
    for (int i = 0; refused[i]; i++) {
        if (fast(refused[i]) != -1)
            fprintf(stderr, "accepted: %s\n", refused[i]);
        assert_int_equal(fast(refused[i]), -1);
    }
    /* a value longer than the buffer */
    size_t n = GEM_FAST_DATA_MAX + 10;
    char *s = malloc(n + 200);
    int k = snprintf(s, 200,
                     "{\"serverContent\":{\"modelTurn\":{\"parts\":[{\"inlineData\":{"
                     "\"mimeType\":\"audio/pcm;rate=24000\",\"data\":\"");
    memset(s + k, 'A', n);
    strcpy(s + k + n, "\"}}]}}}");
    assert_int_equal(fast(s), -1);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_audio_text_transcripts),
        cmocka_unit_test(test_refuses_everything_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
