/*
 * gem_fast.h - fast path for Gemini Live's model audio message (see gem_fast.c).
 */
#ifndef VWS_PROVIDERS_GEM_FAST_H
#define VWS_PROVIDERS_GEM_FAST_H

#include <stddef.h>

#define GEM_FAST_DATA_MAX 16384 /* longer audio takes the jansson path */

/*
 * Parse txt as exactly
 *   {"serverContent":{"modelTurn":{["role":"...",]"parts":[{"inlineData":
 *     {"mimeType":"...","data":"..."}}]}}}
 * (any key order and whitespace, JSON escapes decoded) and nothing else: no other key,
 * value, part or array element anywhere. 0: mime (NUL-terminated, < mcap) and data
 * (NUL-terminated, *dlen chars, < dcap) are filled. -1: anything else or anything unusual
 * (other content, repeated or non-string fields, values too long, malformed or trailing
 * input): handle it the general way (jansson), which then decides exactly as before.
 * Pure; any thread.
 */
int prov__gem_audio_fast(const char *txt, size_t len, char *mime, size_t mcap, char *data,
                         size_t dcap, size_t *dlen);

#endif
