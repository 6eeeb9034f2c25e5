/*
 * gem_fast.c - fast path for Gemini Live's model audio, the message that carries nearly
 * all of the provider's traffic (a few KB of base64 every 20-100 ms per call).
 *
 * Why: json_loadb of a 40 ms chunk (2 560 base64 chars) costs ~47 us on this machine
 * (jansson lexes the string one character at a time, copies it and builds a tree);
 * core/jpick (lws's LEJP) picks the two strings in ~13 us without a tree or allocation.
 *
 * Exactness: the fast path must decide only what the general path (gemini_live.c's
 * handle_message with jansson) would decide the same way. It accepts one shape only: the
 * counts jpick_shape() reports must be exactly those of the audio-only message (5 objects,
 * 1 array, 6 keys and 2 strings, or 7 and 3 with a string "role"), and both picked fields
 * must be strings. Given the picked paths exist, equal counts leave no room for anything
 * else (another part, a thought flag, interrupted/turnComplete, usageMetadata, ...).
 * jpick itself refuses repeated keys, non-strings at picked paths, NULs, over-long values
 * and trailing bytes. Everything refused goes to jansson unchanged.
 *
 * Owns nothing; pure function of its input.
 */
#include "providers/gem_fast.h"

#include "core/jpick.h"

int prov__gem_audio_fast(const char *txt, size_t len, char *mime, size_t mcap, char *data,
                         size_t dcap, size_t *dlen)
{
    char role[32];
    struct jpick f[] = {
        {"serverContent.modelTurn.parts[].inlineData.mimeType", mime, mcap, 0, false},
        {"serverContent.modelTurn.parts[].inlineData.data", data, dcap, 0, false},
        {"serverContent.modelTurn.role", role, sizeof role, 0, false},
    };
    struct jpick_shape sh;
    int extra;

    if (!txt || len > dcap + 1024 || len < 2 || txt[0] != '{')
        return -1;
    if (jpick_shape(txt, len, f, 3, &sh) || !f[0].found || !f[1].found)
        return -1;
    extra = f[2].found ? 1 : 0;
    if (sh.objects != 5 || sh.arrays != 1 || sh.keys != 6 + extra || sh.scalars != 2 + extra)
        return -1;
    *dlen = f[1].len;
    return 0;
}
