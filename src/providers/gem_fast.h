/*
 * gem_fast.h - fast path for Gemini Live's model audio message (see gem_fast.c).
 */
#ifndef VWS_PROVIDERS_GEM_FAST_H
#define VWS_PROVIDERS_GEM_FAST_H

#include <stdbool.h>
#include <stddef.h>

#define GEM_FAST_DATA_MAX 16384 /* longer audio takes the jansson path */
#define GEM_FAST_TEXT_MAX 1024  /* longer texts take the jansson path */

/* What the fast path found. data is the caller's buffer (dcap bytes). */
struct gem_audio_msg {
    char mime[64];
    char *data; /* base64, NUL-terminated */
    size_t dcap, dlen;
    bool has_text; /* a second part {"text": ...} (no "thought") */
    char text[GEM_FAST_TEXT_MAX];
    bool has_in; /* serverContent.inputTranscription.text */
    char in_text[GEM_FAST_TEXT_MAX];
    bool has_out; /* serverContent.outputTranscription.text */
    char out_text[GEM_FAST_TEXT_MAX];
};

/*
 * Parse txt as exactly
 *   {"serverContent":{"modelTurn":{["role":"...",]"parts":[{"inlineData":
 *     {"mimeType":"...","data":"..."}}[,{"text":"..."}]]}
 *     [,"inputTranscription":{"text":"..."}][,"outputTranscription":{"text":"..."}]}}
 * (any key and part order, any whitespace, JSON escapes decoded) and nothing else: no other
 * key, value, part or array element anywhere. 0: m is filled. -1: anything else or anything
 * unusual (other content, repeated or non-string fields, values too long, NUL, malformed or
 * trailing input): handle it the general way (jansson), which then decides exactly as
 * before. Pure; any thread.
 */
int prov__gem_audio_fast(const char *txt, size_t len, struct gem_audio_msg *m);

#endif
