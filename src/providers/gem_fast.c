/*
 * gem_fast.c - fast path for Gemini Live's model audio, the message that carries nearly
 * all of the provider's traffic (a few KB of base64 every 20-100 ms per call).
 *
 * Why: json_loadb of a 40 ms chunk (2 560 base64 chars) costs ~47 us on this machine
 * (jansson lexes the string one character at a time, copies it and builds a tree);
 * core/jpick (lws's LEJP) picks the strings in ~13 us without a tree or allocation.
 *
 * Exactness: the fast path must decide only what the general path (gemini_live.c's
 * handle_message with jansson) would decide the same way. It accepts one family of shapes:
 * the audio part, optionally a plain text part next to it (3.x sends audio and text parts
 * together) and the input/output transcription texts. The counts jpick_shape() reports
 * must be exactly those of the fields found (objects, arrays, keys and scalar values), and
 * every picked field must be a string. Given the picked paths exist, equal counts leave no
 * room for anything else (a thought flag, interrupted/turnComplete, usageMetadata, another
 * key in a transcription, a third part, ...). jpick itself refuses repeated keys (so two
 * audio parts), non-strings at picked paths, NULs, over-long values and trailing bytes.
 * Everything refused goes to jansson unchanged. (One shape is ambiguous to counts: a text
 * key inside the audio part plus an empty part; the two paths then differ only in a debug
 * log line, which is the only thing a text part causes.)
 *
 * Owns nothing; pure function of its input.
 */
#include "providers/gem_fast.h"

#include "core/jpick.h"

int prov__gem_audio_fast(const char *txt, size_t len, struct gem_audio_msg *m)
{
    char role[32];
    struct jpick f[] = {
        {"serverContent.modelTurn.parts[].inlineData.mimeType", m->mime, sizeof m->mime, 0, false},
        {"serverContent.modelTurn.parts[].inlineData.data", m->data, m->dcap, 0, false},
        {"serverContent.modelTurn.role", role, sizeof role, 0, false},
        {"serverContent.modelTurn.parts[].text", m->text, sizeof m->text, 0, false},
        {"serverContent.inputTranscription.text", m->in_text, sizeof m->in_text, 0, false},
        {"serverContent.outputTranscription.text", m->out_text, sizeof m->out_text, 0, false},
    };
    struct jpick_shape sh;
    /* root, serverContent, modelTurn, the audio part, inlineData / parts /
     * serverContent modelTurn parts inlineData mimeType data / mimeType data */
    int objects = 5, arrays = 1, keys = 6, scalars = 2;

    if (!txt || !m->data || len > m->dcap + 4 * GEM_FAST_TEXT_MAX || len < 2 || txt[0] != '{')
        return -1;
    if (jpick_shape(txt, len, f, 6, &sh) || !f[0].found || !f[1].found)
        return -1;
    m->dlen = f[1].len;
    m->has_text = f[3].found;
    m->has_in = f[4].found;
    m->has_out = f[5].found;
    if (f[2].found) { /* "role" */
        keys++;
        scalars++;
    }
    if (m->has_text) { /* {"text": ...}: its own part */
        objects++;
        keys++;
        scalars++;
    }
    if (m->has_in) { /* "inputTranscription": {"text": ...} */
        objects++;
        keys += 2;
        scalars++;
    }
    if (m->has_out) {
        objects++;
        keys += 2;
        scalars++;
    }
    if (sh.objects != objects || sh.arrays != arrays || sh.keys != keys || sh.scalars != scalars)
        return -1;
    return 0;
}
