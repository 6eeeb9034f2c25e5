/*
 * tw_fast.c - fast path for the Twilio `media` message, the one that arrives 50 times a
 * second per call. lws's LEJP streaming parser (part of libwebsockets, LWS_WITH_LEJP)
 * picks out the four fields the call needs without building a jansson tree or
 * allocating: 1.3-1.7 us per message instead of 4.8-7.8 us for json_loadb
 * (docs/loadgen.md). It only accepts the plain shape; every other message, and any
 * media message with something unusual about it, returns -1 and is parsed by jansson
 * exactly as before, so error handling stays in one place (call.c).
 *
 * Owns nothing; pure function of its input.
 */
#include "net/tw_fast.h"

#include <libwebsockets.h>
#include <string.h>

enum { F_EVENT, F_SID, F_TRACK, F_PAYLOAD, F_N };

static const char *const paths[F_N] = {"event", "streamSid", "media.track", "media.payload"};

struct fast {
    struct net_media *m;
    char event[16];
    size_t elen, slen, tlen;
    unsigned done; /* fields completed (bit per F_*) */
    bool bad;
};

static void add(char *dst, size_t *n, size_t cap, const char *src, size_t len, bool *bad)
{
    if (*n + len >= cap) {
        *bad = true;
        return;
    }
    memcpy(dst + *n, src, len);
    *n += len;
    dst[*n] = '\0';
}

static signed char cb(struct lejp_ctx *ctx, char reason)
{
    struct fast *f = ctx->user;
    if (!ctx->path_match || !(reason & LEJP_FLAG_CB_IS_VALUE))
        return 0;
    int k = ctx->path_match - 1;
    if (reason != LEJPCB_VAL_STR_CHUNK && reason != LEJPCB_VAL_STR_END) {
        f->bad = true; /* a number, bool or null where a string belongs */
        return 0;
    }
    if (f->done & (1u << k)) {
        f->bad = true; /* repeated key: leave it to jansson */
        return 0;
    }
    struct net_media *m = f->m;
    switch (k) {
    case F_EVENT:
        add(f->event, &f->elen, sizeof f->event, ctx->buf, ctx->npos, &f->bad);
        break;
    case F_SID:
        add(m->sid, &f->slen, sizeof m->sid, ctx->buf, ctx->npos, &f->bad);
        break;
    case F_TRACK:
        add(m->track, &f->tlen, sizeof m->track, ctx->buf, ctx->npos, &f->bad);
        break;
    case F_PAYLOAD:
        add(m->payload, &m->plen, sizeof m->payload, ctx->buf, ctx->npos, &f->bad);
        break;
    }
    if (reason == LEJPCB_VAL_STR_END)
        f->done |= 1u << k;
    return 0;
}

int net__media_fast(const char *txt, size_t len, struct net_media *m)
{
    struct fast f;
    memset(&f, 0, sizeof f);
    m->sid[0] = m->track[0] = m->payload[0] = '\0';
    m->plen = 0;
    m->has_track = false;
    f.m = m;
    if (!txt || !len || len > NET_MEDIA_PAYLOAD_MAX + 1024 || txt[0] != '{')
        return -1;
    struct lejp_ctx ctx;
    lejp_construct(&ctx, cb, &f, paths, F_N);
    int r = lejp_parse(&ctx, (const unsigned char *)txt, (int)len);
    lejp_destruct(&ctx);
    if (r != 0 || f.bad || strcmp(f.event, "media") || !(f.done & (1u << F_SID)) ||
        !(f.done & (1u << F_PAYLOAD)) || strlen(m->payload) != m->plen ||
        strlen(m->sid) != f.slen || strlen(m->track) != f.tlen)
        return -1; /* (embedded NULs also go the general way) */
    m->has_track = (f.done & (1u << F_TRACK)) != 0;
    return 0;
}
