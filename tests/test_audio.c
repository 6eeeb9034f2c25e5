/*
 * test_audio.c - G.711 u-law, the speexdsp resamplers and the inbound /
 * outbound telephone pipelines (src/audio). Tones are measured (Goertzel
 * and zero crossings), not just counted; random and truncated input must
 * never read or write out of bounds (run under ASan in `make test`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "audtest.h"
#include "core/err.h"
#include "core/util.h"

/* ---- G.711 ---- */

static void test_audio_ulaw_known_values(void **state)
{
    (void)state;
    assert_int_equal(aud_ulaw_from_pcm(0), 0xFF);
    assert_int_equal(aud_ulaw_from_pcm(-1), 0x7F);
    assert_int_equal(aud_ulaw_from_pcm(32767), 0x80);
    assert_int_equal(aud_ulaw_from_pcm(-32768), 0x00);
    assert_int_equal(aud_ulaw_from_pcm(32635), 0x80); /* the clip level */
    assert_int_equal(aud_ulaw_from_pcm(1000), 0xCE);  /* Sun g711.c reference */
    assert_int_equal(aud_ulaw_from_pcm(-1000), 0x4E);
    assert_int_equal(aud_ulaw_to_pcm(0xFF), 0);
    assert_int_equal(aud_ulaw_to_pcm(0x7F), 0);
    assert_int_equal(aud_ulaw_to_pcm(0x80), 32124);
    assert_int_equal(aud_ulaw_to_pcm(0x00), -32124);
    assert_int_equal(aud_ulaw_to_pcm(0xCE), 988);
    assert_int_equal(aud_ulaw_to_pcm(0x4E), -988);
    assert_int_equal(aud_ulaw_to_pcm(0xF0), 120);
    assert_int_equal(aud_ulaw_to_pcm(0x8F), 16764);
}

/* The decode table equals the textbook formula for all 256 codes, and encode inverts it. */
static void test_audio_ulaw_table_matches_formula(void **state)
{
    (void)state;
    for (int u = 0; u < 256; u++) {
        int v = (~u) & 0xFF, e = (v >> 4) & 7, m = v & 15;
        int s = (((m << 3) + 0x84) << e) - 0x84;
        if (v & 0x80)
            s = -s;
        assert_int_equal(aud_ulaw_to_pcm((uint8_t)u), s);
        if (u != 0x7F) /* negative zero decodes to 0, which encodes as 0xFF */
            assert_int_equal(aud_ulaw_from_pcm(aud_ulaw_to_pcm((uint8_t)u)), u);
    }
}

/* Every 16-bit input comes back within its segment's quantisation step. */
static void test_audio_ulaw_roundtrip_all_inputs(void **state)
{
    (void)state;
    int prev = -1;
    for (int x = -32768; x <= 32767; x++) {
        uint8_t u = aud_ulaw_from_pcm((int16_t)x);
        int y = aud_ulaw_to_pcm(u);
        int seg = ((~u) >> 4) & 7;
        int step = 1 << (seg + 3);
        int ax = x < 0 ? -x : x;
        if (ax > 32635)
            assert_true(abs(x - y) <= 32768 - 32124);
        else
            assert_true(abs(x - y) <= step);
        /* monotonic: decoded value never decreases as x increases */
        assert_true(y >= prev || prev == -1 || x == -32768);
        prev = y;
    }
}

static void test_audio_pcm_le_packing(void **state)
{
    (void)state;
    const int16_t in[4] = {0, 1, -2, 0x1234};
    uint8_t b[8];
    int16_t back[4];
    aud_pcm_to_le(in, 4, b);
    const uint8_t want[8] = {0, 0, 1, 0, 0xFE, 0xFF, 0x34, 0x12};
    assert_memory_equal(b, want, 8);
    aud_pcm_from_le(b, 4, back);
    assert_memory_equal(back, in, sizeof in);
}

/* ---- resampler ---- */

/* Feed a tone in chunks of `chunk` samples through in->out; check frequency and amplitude. */
static void check_tone(int in_rate, int out_rate, double hz, size_t chunk)
{
    const size_t n_in = (size_t)in_rate; /* 1 s */
    int16_t *x = malloc(n_in * sizeof *x);
    struct aud_rs *rs = NULL;
    struct err e = {0};
    assert_int_equal(aud_rs_new(&rs, in_rate, out_rate, &e), 0);
    size_t cap = aud_rs_out_max(rs, n_in) + 64;
    int16_t *y = malloc(cap * sizeof *y);
    size_t ny = 0;

    audt_tone(x, n_in, hz, in_rate, 10000.0, 0);
    for (size_t off = 0; off < n_in; off += chunk) {
        size_t k = n_in - off < chunk ? n_in - off : chunk;
        size_t room = cap - ny;
        assert_true(aud_rs_out_max(rs, k) <= room);
        ny += aud_rs_process(rs, x + off, k, y + ny, room);
    }
    /* latency accounted: all but the held-back samples came out */
    double expect = (double)n_in * out_rate / in_rate;
    int held = aud_rs_latency(rs);
    assert_true(held >= 0 && held < out_rate / 50);
    assert_true(fabs((double)ny - (expect - held)) <= 2.0);

    /* steady state: skip the first and last 10 ms */
    size_t skip = (size_t)out_rate / 100;
    const int16_t *mid = y + skip;
    size_t nm = ny - 2 * skip;
    double dom = audt_dominant_hz(mid, nm, out_rate, 100, out_rate / 2.0 - 100, 5);
    assert_true(fabs(dom - hz) <= 5.0);
    assert_true(fabs(audt_zc_hz(mid, nm, out_rate) - hz) <= hz * 0.02);
    double rms = audt_rms(mid, nm);
    assert_true(fabs(rms - 10000.0 / sqrt(2.0)) < 0.05 * 10000.0 / sqrt(2.0));

    aud_rs_free(rs);
    free(x);
    free(y);
}

static void test_audio_resample_8k_to_16k_keeps_tones(void **state)
{
    (void)state;
    check_tone(8000, 16000, 440, 160);
    check_tone(8000, 16000, 1000, 160);
    check_tone(8000, 16000, 1000, 37); /* odd chunk sizes too */
}

static void test_audio_resample_24k_to_8k_keeps_tones(void **state)
{
    (void)state;
    check_tone(24000, 8000, 440, 480);
    check_tone(24000, 8000, 1000, 480);
    check_tone(24000, 8000, 1000, 997); /* not a multiple of 3 */
    check_tone(24000, 8000, 440, 1);
}

/* A 6 kHz tone at 24 kHz would alias to 2 kHz without the low-pass: it must vanish. */
static void test_audio_resample_24k_to_8k_filters_alias(void **state)
{
    (void)state;
    int16_t x[24000], y[8100];
    struct aud_rs *rs = NULL;
    struct err e = {0};
    assert_int_equal(aud_rs_new(&rs, 24000, 8000, &e), 0);
    audt_tone(x, 24000, 6000, 24000, 10000.0, 0);
    size_t ny = aud_rs_process(rs, x, 24000, y, 8100);
    assert_true(ny > 7900);
    double rms = audt_rms(y + 80, ny - 160);
    assert_true(rms < 0.02 * 10000.0 / sqrt(2.0)); /* at least -34 dB */
    aud_rs_free(rs);
}

static void test_audio_resample_rejects_bad_rates(void **state)
{
    (void)state;
    struct aud_rs *rs = NULL;
    struct err e = {0};
    assert_true(aud_rs_new(&rs, 0, 8000, &e) < 0);
    assert_null(rs);
    struct aud_in *in = NULL;
    err_clear(&e);
    assert_int_equal(aud_in_new(&in, 22050, &e), ERR_CONFIG);
    assert_null(in);
}

/* ---- inbound pipeline ---- */

static size_t ulaw_tone_b64(char *b64, double hz, size_t start, size_t n)
{
    int16_t pcm[4096];
    uint8_t u[4096];
    audt_tone(pcm, n, hz, 8000, 8000.0, start);
    aud_ulaw_encode(pcm, n, u);
    return util_b64_encode(u, n, b64);
}

static void run_inbound(int rate, double hz)
{
    struct aud_in *in = NULL;
    struct err e = {0};
    assert_int_equal(aud_in_new(&in, rate, &e), 0);
    assert_int_equal(aud_in_rate(in), rate);
    size_t total = 0, cap = (size_t)rate * 2 + 4096;
    uint8_t *out = malloc(cap);
    char b64[400];

    for (size_t f = 0; f < 50; f++) { /* 50 Twilio frames = 1 s */
        size_t len = ulaw_tone_b64(b64, hz, f * 160, 160);
        assert_int_equal(len, AUD_FRAME_B64);
        assert_true(aud_in_out_max(in, len) <= cap - total);
        long n = aud_in_convert(in, b64, len, out + total, cap - total);
        assert_true(n > 0 && n % 2 == 0);
        total += (size_t)n;
    }
    size_t ns = total / 2;
    assert_true(ns > (size_t)rate * 98 / 100 && ns <= (size_t)rate);
    int16_t *pcm = malloc(ns * sizeof *pcm);
    aud_pcm_from_le(out, ns, pcm);
    size_t skip = (size_t)rate / 100;
    double dom = audt_dominant_hz(pcm + skip, ns - 2 * skip, rate, 100, 3900, 5);
    assert_true(fabs(dom - hz) <= 5.0);
    double rms = audt_rms(pcm + skip, ns - 2 * skip);
    assert_true(fabs(rms - 8000.0 / sqrt(2.0)) < 0.06 * 8000.0 / sqrt(2.0));
    free(pcm);
    free(out);
    aud_in_free(in);
}

static void test_audio_inbound_16k_keeps_tone(void **state)
{
    (void)state;
    run_inbound(16000, 440);
    run_inbound(16000, 1000);
}

static void test_audio_inbound_8k_passthrough(void **state)
{
    (void)state;
    run_inbound(8000, 1000);
    /* exact: at 8 kHz the bytes are just the decoded table values */
    struct aud_in *in = NULL;
    struct err e = {0};
    assert_int_equal(aud_in_new(&in, 8000, &e), 0);
    uint8_t out[16];
    long n = aud_in_convert(in, "/wCA", 4, out, sizeof out); /* FF 00 80 */
    assert_int_equal(n, 6);
    const uint8_t want[6] = {0, 0, 0x84, 0x82, 0x7C, 0x7D}; /* 0, -32124, 32124 LE */
    assert_memory_equal(out, want, 6);
    aud_in_free(in);
}

static void test_audio_inbound_rejects_small_buffer_and_garbage(void **state)
{
    (void)state;
    struct aud_in *in = NULL;
    struct err e = {0};
    char b64[400];
    uint8_t out[2000];
    assert_int_equal(aud_in_new(&in, 16000, &e), 0);
    size_t len = ulaw_tone_b64(b64, 440, 0, 160);
    memset(out, 0xAB, sizeof out);
    assert_int_equal(aud_in_convert(in, b64, len, out, 100), -1);
    assert_int_equal(out[0], 0xAB); /* nothing written */
    assert_int_equal(aud_in_convert(in, "!!!!", 4, out, sizeof out), -1);
    assert_int_equal(aud_in_convert(in, "", 0, out, sizeof out), 0);
    assert_int_equal(aud_in_convert(in, NULL, 0, out, sizeof out), -1);
    assert_int_equal(aud_in_convert(in, b64, (size_t)AUD_MAX_B64 + 1, out, sizeof out), -1);
    aud_in_free(in);
}

/* ---- outbound pipeline ---- */

struct frames {
    uint8_t *ulaw; /* concatenated frames */
    size_t n, cap; /* bytes */
    int calls;
    int bad_len;
};

static void collect(void *arg, const char *b64, size_t len)
{
    struct frames *f = arg;
    uint8_t buf[AUD_FRAME_BYTES + 8];
    f->calls++;
    if (len != AUD_FRAME_B64 || strlen(b64) != len) {
        f->bad_len++;
        return;
    }
    long n = util_b64_decode(b64, len, buf, sizeof buf);
    if (n != AUD_FRAME_BYTES) {
        f->bad_len++;
        return;
    }
    if (f->n + AUD_FRAME_BYTES > f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16384;
        f->ulaw = realloc(f->ulaw, f->cap);
    }
    memcpy(f->ulaw + f->n, buf, AUD_FRAME_BYTES);
    f->n += AUD_FRAME_BYTES;
}

/* 1 s of a 24 kHz tone as PCM16LE bytes (caller frees). */
static uint8_t *tone24_bytes(double hz, size_t *nbytes)
{
    int16_t *pcm = malloc(24000 * sizeof *pcm);
    uint8_t *b = malloc(48000);
    audt_tone(pcm, 24000, hz, 24000, 12000.0, 0);
    aud_pcm_to_le(pcm, 24000, b);
    free(pcm);
    *nbytes = 48000;
    return b;
}

static void decode_frames(const struct frames *f, int16_t **pcm, size_t *n)
{
    *n = f->n;
    *pcm = malloc(f->n * sizeof **pcm + 2);
    aud_ulaw_decode(f->ulaw, f->n, *pcm);
}

/* Chunks of awkward sizes (odd bytes, not multiples of 3 samples) give the same frames
 * as one big push, and the tone survives 24k -> 8k -> u-law. */
static void test_audio_outbound_chunking_is_invisible(void **state)
{
    (void)state;
    size_t nb;
    uint8_t *b = tone24_bytes(1000, &nb);
    struct aud_out *o1 = NULL, *o2 = NULL;
    struct err e = {0};
    struct frames f1 = {0}, f2 = {0};
    assert_int_equal(aud_out_new(&o1, 24000, &e), 0);
    assert_int_equal(aud_out_new(&o2, 24000, &e), 0);

    assert_true(aud_out_push_bytes(o1, b, nb, collect, &f1) > 0);
    static const size_t sizes[] = {1, 7, 480, 999, 2, 3, 4097, 641, 13};
    size_t off = 0;
    for (int i = 0; off < nb; i = (i + 1) % 9) {
        size_t k = nb - off < sizes[i] ? nb - off : sizes[i];
        assert_true(aud_out_push_bytes(o2, b + off, k, collect, &f2) >= 0);
        off += k;
    }
    assert_int_equal(f1.bad_len + f2.bad_len, 0);
    assert_int_equal(f1.n, f2.n);
    assert_memory_equal(f1.ulaw, f2.ulaw, f1.n);
    assert_true(f1.n >= 7800 && f1.n <= 8000); /* ~1 s at 8 kHz, in whole frames */
    assert_int_equal(f1.n % AUD_FRAME_BYTES, 0);

    int16_t *pcm;
    size_t n;
    decode_frames(&f1, &pcm, &n);
    double dom = audt_dominant_hz(pcm + 80, n - 160, 8000, 100, 3900, 5);
    assert_true(fabs(dom - 1000) <= 5.0);
    double rms = audt_rms(pcm + 80, n - 160);
    assert_true(fabs(rms - 12000.0 / sqrt(2.0)) < 0.06 * 12000.0 / sqrt(2.0));
    free(pcm);
    free(f1.ulaw);
    free(f2.ulaw);
    free(b);
    aud_out_free(o1);
    aud_out_free(o2);
}

static void test_audio_outbound_base64_and_flush(void **state)
{
    (void)state;
    struct aud_out *o = NULL;
    struct err e = {0};
    struct frames f = {0};
    assert_int_equal(aud_out_new(&o, 24000, &e), 0);
    /* 300 samples at 24 kHz -> 100 at 8 kHz: no full frame yet */
    int16_t pcm[300];
    uint8_t bytes[600];
    char b64[1000];
    audt_tone(pcm, 300, 440, 24000, 5000, 0);
    aud_pcm_to_le(pcm, 300, bytes);
    size_t len = util_b64_encode(bytes, 600, b64);
    assert_int_equal(aud_out_push(o, b64, len, collect, &f), 0);
    /* 100 out minus what the filter holds back */
    size_t held = (size_t)aud_out_latency(o);
    assert_true(aud_out_pending(o) + held >= 98 && aud_out_pending(o) + held <= 102);
    size_t pend = aud_out_pending(o);
    assert_int_equal(aud_out_flush(o, collect, &f), 1);
    assert_int_equal(f.n, AUD_FRAME_BYTES);
    for (size_t i = pend; i < AUD_FRAME_BYTES; i++)
        assert_int_equal(f.ulaw[i], AUD_ULAW_SILENCE);
    assert_int_equal(aud_out_pending(o), 0);
    assert_int_equal(aud_out_flush(o, collect, &f), 0);
    free(f.ulaw);
    aud_out_free(o);
}

/* Reset drops the partial frame and the odd byte: the next audio starts clean. */
static void test_audio_outbound_reset_drops_stale(void **state)
{
    (void)state;
    struct aud_out *o = NULL, *fresh = NULL;
    struct err e = {0};
    struct frames f = {0}, g = {0};
    size_t nb;
    uint8_t *b = tone24_bytes(440, &nb);
    assert_int_equal(aud_out_new(&o, 24000, &e), 0);
    assert_int_equal(aud_out_new(&fresh, 24000, &e), 0);
    assert_true(aud_out_push_bytes(o, b, 1001, collect, &f) >= 0); /* odd: carry held */
    assert_true(aud_out_pending(o) > 0);
    aud_out_reset(o);
    assert_int_equal(aud_out_pending(o), 0);
    free(f.ulaw);
    memset(&f, 0, sizeof f);
    /* after reset, identical to a brand-new stream */
    size_t nb2;
    uint8_t *b2 = tone24_bytes(1000, &nb2);
    aud_out_push_bytes(o, b2, nb2, collect, &f);
    aud_out_push_bytes(fresh, b2, nb2, collect, &g);
    assert_int_equal(f.n, g.n);
    assert_memory_equal(f.ulaw, g.ulaw, f.n);
    free(f.ulaw);
    free(g.ulaw);
    free(b);
    free(b2);
    aud_out_free(o);
    aud_out_free(fresh);
}

static uint32_t rng = 0x12345678u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Random strings (valid alphabet and not), every truncation of valid base64, odd
 * lengths: never out of bounds (ASan), frames always whole, -1 only for bad input. */
/* util_b64_plain guards every audio payload we put between JSON quotes unescaped. */
static void test_audio_b64_plain_alphabet(void **state)
{
    (void)state;
    int ok = 0;
    for (int ch = 0; ch < 256; ch++) {
        char c = (char)ch;
        bool want = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '=';
        assert_int_equal(util_b64_plain(&c, 1), want);
        ok += want;
    }
    assert_int_equal(ok, 65);
    static const char good[] = "fn9+/w==";
    assert_true(util_b64_plain(good, strlen(good)));
    assert_true(util_b64_plain("", 0));
    /* a quote, a backslash or a NUL anywhere in the length is refused */
    assert_false(util_b64_plain("ab\"cd", 5));
    assert_false(util_b64_plain("ab\\cd", 5));
    assert_false(util_b64_plain("ab\0cd", 5));
    assert_false(util_b64_plain("abcd\n", 5));
}

static void test_audio_decoders_survive_garbage(void **state)
{
    (void)state;
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n !-_";
    struct aud_out *o = NULL;
    struct aud_in *in = NULL;
    struct err e = {0};
    struct frames f = {0};
    assert_int_equal(aud_out_new(&o, 24000, &e), 0);
    assert_int_equal(aud_in_new(&in, 16000, &e), 0);
    uint8_t *out = malloc(1 << 16);

    for (int iter = 0; iter < 4000; iter++) {
        size_t len = rnd() % 3000;
        char *s = malloc(len ? len : 1); /* exact size, no NUL: reads past would trip ASan */
        int mode = iter % 3;
        for (size_t i = 0; i < len; i++)
            s[i] = mode == 0 ? (char)rnd() : alpha[rnd() % (mode == 1 ? 64 : sizeof alpha - 1)];
        int r = aud_out_push(o, s, len, collect, &f);
        assert_true(r >= -1);
        long n = aud_in_convert(in, s, len, out, 1 << 16);
        assert_true(n == -1 || (n >= 0 && n % 2 == 0));
        if (mode == 1 && len % 4 == 0)
            assert_true(r >= 0 && n >= 0); /* well-formed base64 must be accepted */
        free(s);
    }
    /* every prefix of a valid chunk */
    char b64[2000];
    uint8_t raw[1200];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)rnd();
    size_t len = util_b64_encode(raw, sizeof raw, b64);
    for (size_t k = 0; k <= len; k++) {
        char *s = malloc(k ? k : 1);
        memcpy(s, b64, k);
        assert_true(aud_out_push(o, s, k, collect, &f) >= -1);
        assert_true(aud_in_convert(in, s, k, out, 1 << 16) >= -1);
        free(s);
    }
    assert_int_equal(f.bad_len, 0);
    aud_out_flush(o, collect, &f);
    assert_int_equal(f.n % AUD_FRAME_BYTES, 0);
    free(f.ulaw);
    free(out);
    aud_out_free(o);
    aud_in_free(in);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audio_ulaw_known_values),
        cmocka_unit_test(test_audio_b64_plain_alphabet),
        cmocka_unit_test(test_audio_ulaw_table_matches_formula),
        cmocka_unit_test(test_audio_ulaw_roundtrip_all_inputs),
        cmocka_unit_test(test_audio_pcm_le_packing),
        cmocka_unit_test(test_audio_resample_8k_to_16k_keeps_tones),
        cmocka_unit_test(test_audio_resample_24k_to_8k_keeps_tones),
        cmocka_unit_test(test_audio_resample_24k_to_8k_filters_alias),
        cmocka_unit_test(test_audio_resample_rejects_bad_rates),
        cmocka_unit_test(test_audio_inbound_16k_keeps_tone),
        cmocka_unit_test(test_audio_inbound_8k_passthrough),
        cmocka_unit_test(test_audio_inbound_rejects_small_buffer_and_garbage),
        cmocka_unit_test(test_audio_outbound_chunking_is_invisible),
        cmocka_unit_test(test_audio_outbound_base64_and_flush),
        cmocka_unit_test(test_audio_outbound_reset_drops_stale),
        cmocka_unit_test(test_audio_decoders_survive_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
