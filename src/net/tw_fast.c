/*
 * tw_fast.c - fast path for the Twilio `media` message, the one that arrives 50 times a
 * second per call: core/jpick (lws's LEJP streaming parser) picks out the four fields the
 * call needs without building a jansson tree or allocating: 1.3-1.7 us per message
 * instead of 4.8-7.8 us for json_loadb (docs/loadgen.md). It only accepts the plain
 * shape; every other message, and any media message with something unusual about it,
 * returns -1 and is parsed by jansson exactly as before, so error handling stays in one
 * place (call.c).
 *
 * Owns nothing; pure function of its input.
 */
#include "net/tw_fast.h"

#include "core/jpick.h"

#include <string.h>

int net__media_fast(const char *txt, size_t len, struct net_media *m)
{
    char event[16];
    struct jpick f[] = {
        {"event", event, sizeof event, 0, false},
        {"streamSid", m->sid, sizeof m->sid, 0, false},
        {"media.track", m->track, sizeof m->track, 0, false},
        {"media.payload", m->payload, sizeof m->payload, 0, false},
    };
    m->sid[0] = m->track[0] = m->payload[0] = '\0';
    m->plen = 0;
    m->has_track = false;
    if (!txt || len > NET_MEDIA_PAYLOAD_MAX + 1024 || jpick(txt, len, f, 4) || !f[0].found ||
        strcmp(event, "media") || !f[1].found || !f[3].found)
        return -1;
    m->has_track = f[2].found;
    m->plen = f[3].len;
    return 0;
}
