/*
 * audio.h - telephone audio for providers that don't speak G.711: u-law
 * codec, speexdsp resamplers with state kept per stream and direction, and
 * the two conversion pipelines the Gemini provider needs.
 *
 *   inbound  (caller -> model): base64 u-law 8 kHz -> PCM16 -> resample
 *            (8 kHz -> 16 kHz, or none at 8 kHz) -> PCM16LE bytes
 *   outbound (model -> caller): base64 PCM16LE 24 kHz (any chunk length,
 *            odd byte counts carried over) -> resample to 8 kHz with the
 *            filter state kept across chunks -> u-law -> 160-byte (20 ms)
 *            frames -> base64
 *
 * Every entry point bounds its input (AUD_MAX_B64) and never reads or
 * writes past a buffer whatever the remote side sends: garbage base64 is an
 * error with nothing emitted, odd byte counts are carried, sizes are capped.
 *
 * Threads: the objects are per call and are used from one thread (the
 * loop thread); the plain codec functions are pure and may run anywhere.
 */
#ifndef VWS_AUDIO_H
#define VWS_AUDIO_H

#include <stddef.h>
#include <stdint.h>

struct err;

#define AUD_TWILIO_RATE 8000
#define AUD_FRAME_BYTES 160 /* one 20 ms u-law frame at 8 kHz */
#define AUD_FRAME_B64 216   /* its base64 length (no NUL) */
#define AUD_ULAW_SILENCE 0xFF
#define AUD_MAX_B64 (2u << 20) /* largest base64 chunk accepted (chars), ~30 s at 24 kHz */
#define AUD_RS_QUALITY 4       /* speexdsp quality 0..10 (3 = VOIP, 4 = default) */

/* ---- G.711 u-law (classic bias 0x84 / clip 32635) ---- */

uint8_t aud_ulaw_from_pcm(int16_t s);
int16_t aud_ulaw_to_pcm(uint8_t u);
/* n samples <-> n bytes; in and out must not overlap. */
void aud_ulaw_encode(const int16_t *pcm, size_t n, uint8_t *out);
void aud_ulaw_decode(const uint8_t *ulaw, size_t n, int16_t *out);

/* Little-endian PCM16 bytes <-> samples (n samples; 2n bytes), whatever the host order. */
void aud_pcm_from_le(const uint8_t *bytes, size_t n, int16_t *out);
void aud_pcm_to_le(const int16_t *pcm, size_t n, uint8_t *out);

/* ---- resampler (speexdsp), one per stream and direction ---- */

struct aud_rs;

/* New mono resampler in_rate -> out_rate (both 8000..48000). *out set on success.
 * Returns 0 or ERR_INTERNAL with e set. */
int aud_rs_new(struct aud_rs **out, int in_rate, int out_rate, struct err *e);
void aud_rs_free(struct aud_rs *r); /* accepts NULL */
/* Forget the filter history (barge-in): the next sample starts a fresh stream. */
void aud_rs_reset(struct aud_rs *r);
/* Largest output n_in input samples can produce (size the out buffer with it). */
size_t aud_rs_out_max(const struct aud_rs *r, size_t n_in);
/* Resample n samples; writes at most outcap samples and returns how many were
 * written. All input is consumed when outcap >= aud_rs_out_max(r, n). */
size_t aud_rs_process(struct aud_rs *r, const int16_t *in, size_t n, int16_t *out, size_t outcap);
/* Output samples the filter still holds back (released by later input); with
 * skip_zeros there is no leading delay, so n_in input samples give about
 * n_in*out/in - aud_rs_latency() outputs. */
int aud_rs_latency(const struct aud_rs *r);
int aud_rs_in_rate(const struct aud_rs *r);
int aud_rs_out_rate(const struct aud_rs *r);

/* ---- inbound pipeline: Twilio u-law -> PCM16LE at the model's input rate ---- */

struct aud_in;

/* rate: 16000 (resampled) or 8000 (decoded only). Returns 0 or ERR_CONFIG/ERR_INTERNAL. */
int aud_in_new(struct aud_in **out, int rate, struct err *e);
void aud_in_free(struct aud_in *s); /* accepts NULL */
void aud_in_reset(struct aud_in *s);
int aud_in_rate(const struct aud_in *s);
/* Bytes of PCM16LE that len base64 characters of u-law can produce (for sizing). */
size_t aud_in_out_max(const struct aud_in *s, size_t b64_len);
/* Convert one base64 u-law chunk; writes PCM16LE bytes (always even) into out.
 * Returns bytes written, or -1 (bad base64, too large, out too small: nothing written). */
long aud_in_convert(struct aud_in *s, const char *b64, size_t len, uint8_t *out, size_t outcap);

/* ---- outbound pipeline: model PCM16LE (24 kHz) -> 20 ms u-law frames ---- */

struct aud_out;

/* One finished frame: base64 of AUD_FRAME_BYTES u-law bytes, NUL-terminated, len chars.
 * Borrowed for the duration of the call. */
typedef void aud_frame_fn(void *arg, const char *ulaw_b64, size_t len);

/* in_rate: the model's output rate (24000). Returns 0 or ERR_INTERNAL. */
int aud_out_new(struct aud_out **out, int in_rate, struct err *e);
void aud_out_free(struct aud_out *o); /* accepts NULL */
/* Barge-in: drop the carried odd byte, the partial frame and the filter history. */
void aud_out_reset(struct aud_out *o);
/* Push one base64 PCM16LE chunk; emits every completed frame through fn.
 * Returns frames emitted, or -1 on bad base64 / too large (nothing emitted, state kept). */
int aud_out_push(struct aud_out *o, const char *b64, size_t len, aud_frame_fn *fn, void *arg);
/* Same with raw PCM16LE bytes (any length; an odd trailing byte is carried). */
int aud_out_push_bytes(struct aud_out *o, const uint8_t *bytes, size_t n, aud_frame_fn *fn,
                       void *arg);
/* End of a turn: pad the partial frame with u-law silence and emit it (0 or 1 frames). */
int aud_out_flush(struct aud_out *o, aud_frame_fn *fn, void *arg);
/* Emit the partial frame as it is, shorter than AUD_FRAME_BYTES and unpadded (0 or 1
 * frames), for a caller that would rather not wait for more input; the next frame starts
 * empty. No audio is added or lost, so the stream stays continuous (no click). */
int aud_out_flush_partial(struct aud_out *o, aud_frame_fn *fn, void *arg);
/* u-law bytes waiting in the partial frame (0..159). */
size_t aud_out_pending(const struct aud_out *o);
/* 8 kHz samples the resampler still holds back (arrive with later input). */
int aud_out_latency(const struct aud_out *o);

#endif
