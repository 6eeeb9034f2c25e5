/*
 * bench_audio.c - cost of the Gemini audio path (src/audio) per call: converts 60 s of
 * caller audio (Twilio u-law 8 kHz -> PCM16 16 kHz) and 60 s of model audio (PCM16 24 kHz
 * -> u-law 8 kHz frames) in the chunk sizes real calls use, and prints one line per metric:
 * name, value, unit. "x_realtime" is how many calls' worth of audio one core converts.
 *
 *   bench_audio [--seconds 60]
 */
#include "audio/audio.h"
#include "core/err.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_frame(void *arg, const char *b64, size_t len)
{
    (void)b64;
    *(size_t *)arg += len;
}

int main(int argc, char **argv)
{
    int secs = 60;
    struct err e = {0};
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--seconds"))
            secs = atoi(argv[i + 1]);
    if (secs < 1)
        secs = 1;

    /* inbound: 50 Twilio frames a second, each 160 u-law bytes as base64 */
    struct aud_in *in = NULL;
    if (aud_in_new(&in, 16000, &e))
        return 1;
    uint8_t ulaw[160], out[2048];
    char b64[AUD_FRAME_B64 + 4];
    for (int i = 0; i < 160; i++)
        ulaw[i] = aud_ulaw_from_pcm((int16_t)(8000 * sin(2 * M_PI * 440 * i / 8000.0)));
    size_t n = util_b64_encode(ulaw, 160, b64), bytes = 0;
    double t0 = util_mono_ms();
    for (int f = 0; f < secs * 50; f++) {
        long k = aud_in_convert(in, b64, n, out, sizeof out);
        bytes += k > 0 ? (size_t)k : 0;
    }
    double in_ms = util_mono_ms() - t0;
    aud_in_free(in);

    /* outbound: 40 ms chunks of 24 kHz PCM as base64 (what Gemini sends, roughly) */
    struct aud_out *o = NULL;
    if (aud_out_new(&o, 24000, &e))
        return 1;
    int16_t pcm[960];
    uint8_t le[1920];
    char *ob64 = malloc(2700);
    for (int i = 0; i < 960; i++)
        pcm[i] = (int16_t)(8000 * sin(2 * M_PI * 440 * i / 24000.0));
    aud_pcm_to_le(pcm, 960, le);
    size_t on = util_b64_encode(le, sizeof le, ob64), frames_b64 = 0;
    t0 = util_mono_ms();
    for (int c = 0; c < secs * 25; c++)
        aud_out_push(o, ob64, on, on_frame, &frames_b64);
    double out_ms = util_mono_ms() - t0;
    aud_out_free(o);
    free(ob64);

    printf("audio_in_convert_ms_per_call_second %.4f ms\n", in_ms / secs);
    printf("audio_in_x_realtime %.0f calls\n", secs * 1000.0 / in_ms);
    printf("audio_out_convert_ms_per_call_second %.4f ms\n", out_ms / secs);
    printf("audio_out_x_realtime %.0f calls\n", secs * 1000.0 / out_ms);
    printf("audio_both_x_realtime %.0f calls\n", secs * 1000.0 / (in_ms + out_ms));
    printf("audio_in_bytes %zu bytes\n", bytes);
    printf("audio_out_frames %zu frames\n", frames_b64 / AUD_FRAME_B64);
    return 0;
}
