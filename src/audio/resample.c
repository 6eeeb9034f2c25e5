/*
 * resample.c - speexdsp resampler wrappers and the inbound/outbound
 * telephone audio pipelines (see audio.h for the data flow).
 *
 * Owns: one SpeexResamplerState per stream and direction, the carried odd
 * byte and the partial u-law frame of the outbound stream, and per-stream
 * scratch buffers (grown on demand, capped by AUD_MAX_B64).
 * Must not touch: sockets, JSON, provider state. Loop thread (one object is
 * never shared between threads).
 *
 * The resamplers start with speex_resampler_skip_zeros(), so output sample k
 * lines up with input time k (no leading filter delay); the filter keeps the
 * newest few input samples back until more input arrives (aud_rs_latency).
 */
#include "audio/audio.h"

#include "core/err.h"
#include "core/util.h"

#include <speex/speex_resampler.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- resampler ---- */

struct aud_rs {
    SpeexResamplerState *st;
    int in_rate, out_rate; /* Hz */
};

int aud_rs_new(struct aud_rs **out, int in_rate, int out_rate, struct err *e)
{
    struct aud_rs *r;
    int serr = 0;

    if (in_rate < 8000 || in_rate > 48000 || out_rate < 8000 || out_rate > 48000)
        return err_set(e, ERR_CONFIG, NULL, "unsupported resampling %d -> %d Hz", in_rate,
                       out_rate);
    r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, NULL, "resampler");
    r->st = speex_resampler_init(1, (spx_uint32_t)in_rate, (spx_uint32_t)out_rate, AUD_RS_QUALITY,
                                 &serr);
    if (!r->st) {
        free(r);
        return err_set(e, ERR_INTERNAL, NULL, "speex_resampler_init %d->%d: %s", in_rate, out_rate,
                       speex_resampler_strerror(serr));
    }
    speex_resampler_skip_zeros(r->st);
    r->in_rate = in_rate;
    r->out_rate = out_rate;
    *out = r;
    return 0;
}

void aud_rs_free(struct aud_rs *r)
{
    if (!r)
        return;
    speex_resampler_destroy(r->st);
    free(r);
}

void aud_rs_reset(struct aud_rs *r)
{
    speex_resampler_reset_mem(r->st);
    speex_resampler_skip_zeros(r->st);
}

size_t aud_rs_out_max(const struct aud_rs *r, size_t n_in)
{
    /* ceil(n*out/in) plus the samples the filter may release from earlier input */
    size_t in = (size_t)r->in_rate, out = (size_t)r->out_rate;
    return (n_in * out + in - 1) / in + 8;
}

size_t aud_rs_process(struct aud_rs *r, const int16_t *in, size_t n, int16_t *out, size_t outcap)
{
    size_t done_in = 0, done_out = 0;

    while (done_in < n && done_out < outcap) {
        spx_uint32_t il = (spx_uint32_t)(n - done_in > 65536 ? 65536 : n - done_in);
        spx_uint32_t ol = (spx_uint32_t)(outcap - done_out > 65536 ? 65536 : outcap - done_out);
        speex_resampler_process_int(r->st, 0, in + done_in, &il, out + done_out, &ol);
        done_in += il;
        done_out += ol;
        if (il == 0 && ol == 0)
            break;
    }
    return done_out;
}

int aud_rs_latency(const struct aud_rs *r)
{
    return speex_resampler_get_output_latency(r->st);
}

int aud_rs_in_rate(const struct aud_rs *r)
{
    return r->in_rate;
}

int aud_rs_out_rate(const struct aud_rs *r)
{
    return r->out_rate;
}

/* ---- scratch buffers ---- */

struct scratch {
    void *p;
    size_t cap; /* bytes */
};

static void *scratch_get(struct scratch *s, size_t need)
{
    if (need > s->cap) {
        void *np = realloc(s->p, need);
        if (!np)
            return NULL;
        s->p = np;
        s->cap = need;
    }
    return s->p;
}

/* Decode base64 into s (sized for it). Returns bytes or -1. */
static long b64_into(struct scratch *s, const char *b64, size_t len)
{
    size_t need = (len / 4 + 1) * 3;
    uint8_t *buf;

    if (!b64 || len > AUD_MAX_B64)
        return -1;
    if (len == 0)
        return 0;
    buf = scratch_get(s, need);
    if (!buf)
        return -1;
    return util_b64_decode(b64, len, buf, need);
}

/* ---- inbound ---- */

struct aud_in {
    int rate;            /* output rate: 8000 or 16000 */
    struct aud_rs *rs;   /* 8k -> rate, NULL when rate == 8000 */
    struct scratch raw;  /* decoded u-law */
    struct scratch pcm8; /* int16 at 8 kHz */
    struct scratch pcmo; /* int16 at rate */
};

int aud_in_new(struct aud_in **out, int rate, struct err *e)
{
    struct aud_in *s;

    if (rate != 8000 && rate != 16000)
        return err_set(e, ERR_CONFIG, NULL, "input rate must be 8000 or 16000, not %d", rate);
    s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, NULL, "aud_in");
    s->rate = rate;
    if (rate != AUD_TWILIO_RATE) {
        int rc = aud_rs_new(&s->rs, AUD_TWILIO_RATE, rate, e);
        if (rc) {
            free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void aud_in_free(struct aud_in *s)
{
    if (!s)
        return;
    aud_rs_free(s->rs);
    free(s->raw.p);
    free(s->pcm8.p);
    free(s->pcmo.p);
    free(s);
}

void aud_in_reset(struct aud_in *s)
{
    if (s->rs)
        aud_rs_reset(s->rs);
}

int aud_in_rate(const struct aud_in *s)
{
    return s->rate;
}

size_t aud_in_out_max(const struct aud_in *s, size_t b64_len)
{
    size_t n8 = (b64_len / 4 + 1) * 3;
    return 2 * (s->rs ? aud_rs_out_max(s->rs, n8) : n8);
}

long aud_in_convert(struct aud_in *s, const char *b64, size_t len, uint8_t *out, size_t outcap)
{
    long n = b64_into(&s->raw, b64, len);
    int16_t *p8, *po;
    size_t no;

    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    if ((size_t)n * 2 > outcap && !s->rs)
        return -1;
    if (s->rs && aud_rs_out_max(s->rs, (size_t)n) * 2 > outcap)
        return -1;
    p8 = scratch_get(&s->pcm8, (size_t)n * sizeof(int16_t));
    if (!p8)
        return -1;
    aud_ulaw_decode(s->raw.p, (size_t)n, p8);
    if (!s->rs) {
        aud_pcm_to_le(p8, (size_t)n, out);
        return n * 2;
    }
    no = aud_rs_out_max(s->rs, (size_t)n);
    po = scratch_get(&s->pcmo, no * sizeof(int16_t));
    if (!po)
        return -1;
    no = aud_rs_process(s->rs, p8, (size_t)n, po, no);
    aud_pcm_to_le(po, no, out);
    return (long)(no * 2);
}

/* ---- outbound ---- */

#define OUT_BLOCK 1024 /* input samples resampled per step */

struct aud_out {
    struct aud_rs *rs; /* in_rate -> 8 kHz, NULL when in_rate == 8000 */
    bool has_carry;    /* an odd byte waits for its high byte */
    uint8_t carry;
    uint8_t frame[AUD_FRAME_BYTES];
    size_t frame_len; /* u-law bytes in frame */
};

int aud_out_new(struct aud_out **out, int in_rate, struct err *e)
{
    struct aud_out *o;

    if (in_rate < AUD_TWILIO_RATE || in_rate > 48000)
        return err_set(e, ERR_CONFIG, NULL, "unsupported output rate %d", in_rate);
    o = calloc(1, sizeof *o);
    if (!o)
        return err_set(e, ERR_NOMEM, NULL, "aud_out");
    if (in_rate != AUD_TWILIO_RATE) {
        int rc = aud_rs_new(&o->rs, in_rate, AUD_TWILIO_RATE, e);
        if (rc) {
            free(o);
            return rc;
        }
    }
    *out = o;
    return 0;
}

void aud_out_free(struct aud_out *o)
{
    if (!o)
        return;
    aud_rs_free(o->rs);
    free(o);
}

void aud_out_reset(struct aud_out *o)
{
    if (o->rs)
        aud_rs_reset(o->rs);
    o->has_carry = false;
    o->frame_len = 0;
}

size_t aud_out_pending(const struct aud_out *o)
{
    return o->frame_len;
}

int aud_out_latency(const struct aud_out *o)
{
    return o->rs ? aud_rs_latency(o->rs) : 0;
}

/* Hand the frame built so far (a whole one, or a short one for flush_partial) to fn. */
static void emit_frame(struct aud_out *o, aud_frame_fn *fn, void *arg)
{
    char b64[AUD_FRAME_B64 + 4];
    size_t n = util_b64_encode(o->frame, o->frame_len, b64);

    o->frame_len = 0;
    fn(arg, b64, n);
}

/* Resample one block of samples and cut it into frames. Returns frames emitted. */
static int out_block(struct aud_out *o, const int16_t *blk, size_t nb, aud_frame_fn *fn, void *arg)
{
    int16_t res[OUT_BLOCK + 16];
    const int16_t *p = blk;
    size_t n = nb;
    int frames = 0;

    if (o->rs) {
        n = aud_rs_process(o->rs, blk, nb, res, sizeof res / sizeof res[0]);
        p = res;
    }
    for (size_t i = 0; i < n; i++) {
        o->frame[o->frame_len++] = aud_ulaw_from_pcm(p[i]);
        if (o->frame_len == AUD_FRAME_BYTES) {
            emit_frame(o, fn, arg);
            frames++;
        }
    }
    return frames;
}

int aud_out_push_bytes(struct aud_out *o, const uint8_t *bytes, size_t n, aud_frame_fn *fn,
                       void *arg)
{
    int16_t blk[OUT_BLOCK];
    size_t nb = 0, i = 0;
    int frames = 0;

    if (n == 0)
        return 0;
    if (o->has_carry) {
        blk[nb++] = (int16_t)(uint16_t)(o->carry | (bytes[0] << 8));
        o->has_carry = false;
        i = 1;
    }
    while (n - i >= 2) {
        blk[nb++] = (int16_t)(uint16_t)(bytes[i] | (bytes[i + 1] << 8));
        i += 2;
        if (nb == OUT_BLOCK) {
            frames += out_block(o, blk, nb, fn, arg);
            nb = 0;
        }
    }
    if (i < n) {
        o->carry = bytes[i];
        o->has_carry = true;
    }
    if (nb)
        frames += out_block(o, blk, nb, fn, arg);
    return frames;
}

/* Decoded on the stack when it fits (a model chunk of up to ~256 ms at 24 kHz), else in a
 * temporary buffer: no per-call scratch the size of the largest chunk ever seen. */
int aud_out_push(struct aud_out *o, const char *b64, size_t len, aud_frame_fn *fn, void *arg)
{
    uint8_t stack[(16384 / 4 + 1) * 3]; /* 16 KiB of base64 */
    size_t need = (len / 4 + 1) * 3;

    if (!b64 || len > AUD_MAX_B64)
        return -1;
    if (len == 0)
        return 0;
    uint8_t *p = need <= sizeof stack ? stack : malloc(need);
    if (!p)
        return -1;
    long n = util_b64_decode(b64, len, p, need);
    int rc = n < 0 ? -1 : aud_out_push_bytes(o, p, (size_t)n, fn, arg);
    if (p != stack)
        free(p);
    return rc;
}

int aud_out_flush(struct aud_out *o, aud_frame_fn *fn, void *arg)
{
    if (o->frame_len == 0)
        return 0;
    memset(o->frame + o->frame_len, AUD_ULAW_SILENCE, AUD_FRAME_BYTES - o->frame_len);
    o->frame_len = AUD_FRAME_BYTES;
    emit_frame(o, fn, arg);
    return 1;
}

int aud_out_flush_partial(struct aud_out *o, aud_frame_fn *fn, void *arg)
{
    if (o->frame_len == 0)
        return 0;
    emit_frame(o, fn, arg); /* short and unpadded: nothing added, nothing repeated */
    return 1;
}
