/*
 * g711.c - G.711 u-law codec and little-endian PCM16 packing.
 *
 * Owns: the classic CCITT u-law algorithm (bias 0x84, clip 32635), as in
 * Sun's g711.c and spandsp; decode is a 256-entry table. Pure functions, no
 * state, any thread. Must not touch: sockets, base64, resamplers.
 */
#include "audio/audio.h"

#define ULAW_BIAS 0x84
#define ULAW_CLIP 32635

/* aud_ulaw_to_pcm(u) for every u: ((((~u & 0x0F) << 3) + 0x84) << seg) - 0x84, signed. */
static const int16_t ulaw_dec[256] = {
    -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884, -20860,
    -19836, -18812, -17788, -16764, -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412,
    -11900, -11388, -10876, -10364, -9852,  -9340,  -8828,  -8316,  -7932,  -7676,  -7420,  -7164,
    -6908,  -6652,  -6396,  -6140,  -5884,  -5628,  -5372,  -5116,  -4860,  -4604,  -4348,  -4092,
    -3900,  -3772,  -3644,  -3516,  -3388,  -3260,  -3132,  -3004,  -2876,  -2748,  -2620,  -2492,
    -2364,  -2236,  -2108,  -1980,  -1884,  -1820,  -1756,  -1692,  -1628,  -1564,  -1500,  -1436,
    -1372,  -1308,  -1244,  -1180,  -1116,  -1052,  -988,   -924,   -876,   -844,   -812,   -780,
    -748,   -716,   -684,   -652,   -620,   -588,   -556,   -524,   -492,   -460,   -428,   -396,
    -372,   -356,   -340,   -324,   -308,   -292,   -276,   -260,   -244,   -228,   -212,   -196,
    -180,   -164,   -148,   -132,   -120,   -112,   -104,   -96,    -88,    -80,    -72,    -64,
    -56,    -48,    -40,    -32,    -24,    -16,    -8,     0,      32124,  31100,  30076,  29052,
    28028,  27004,  25980,  24956,  23932,  22908,  21884,  20860,  19836,  18812,  17788,  16764,
    15996,  15484,  14972,  14460,  13948,  13436,  12924,  12412,  11900,  11388,  10876,  10364,
    9852,   9340,   8828,   8316,   7932,   7676,   7420,   7164,   6908,   6652,   6396,   6140,
    5884,   5628,   5372,   5116,   4860,   4604,   4348,   4092,   3900,   3772,   3644,   3516,
    3388,   3260,   3132,   3004,   2876,   2748,   2620,   2492,   2364,   2236,   2108,   1980,
    1884,   1820,   1756,   1692,   1628,   1564,   1500,   1436,   1372,   1308,   1244,   1180,
    1116,   1052,   988,    924,    876,    844,    812,    780,    748,    716,    684,    652,
    620,    588,    556,    524,    492,    460,    428,    396,    372,    356,    340,    324,
    308,    292,    276,    260,    244,    228,    212,    196,    180,    164,    148,    132,
    120,    112,    104,    96,     88,     80,     72,     64,     56,     48,     40,     32,
    24,     16,     8,      0,
};

uint8_t aud_ulaw_from_pcm(int16_t s)
{
    int v = s;
    int sign = 0;
    int exponent = 7;

    if (v < 0) {
        v = -v;
        sign = 0x80;
    }
    if (v > ULAW_CLIP)
        v = ULAW_CLIP;
    v += ULAW_BIAS;
    /* segment = position of the highest set bit above bit 7 */
    for (int mask = 0x4000; exponent > 0 && !(v & mask); mask >>= 1)
        exponent--;
    int mantissa = (v >> (exponent + 3)) & 0x0F;
    return (uint8_t) ~(sign | (exponent << 4) | mantissa);
}

int16_t aud_ulaw_to_pcm(uint8_t u)
{
    return ulaw_dec[u];
}

void aud_ulaw_encode(const int16_t *pcm, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = aud_ulaw_from_pcm(pcm[i]);
}

void aud_ulaw_decode(const uint8_t *ulaw, size_t n, int16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ulaw_dec[ulaw[i]];
}

void aud_pcm_from_le(const uint8_t *bytes, size_t n, int16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (int16_t)(uint16_t)(bytes[2 * i] | (bytes[2 * i + 1] << 8));
}

void aud_pcm_to_le(const int16_t *pcm, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t v = (uint16_t)pcm[i];
        out[2 * i] = (uint8_t)(v & 0xFF);
        out[2 * i + 1] = (uint8_t)(v >> 8);
    }
}
