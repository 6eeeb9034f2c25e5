/*
 * jpick.c - string fields out of a JSON object with lws's LEJP (see jpick.h).
 *
 * LEJP calls back per value with the matched path index; long strings come in chunks
 * of LEJP_STRING_CHUNK bytes (STR_CHUNK ... STR_END), appended here. Anything the fast
 * path should not decide (non-string value at a picked path, repeated key, value too
 * long, NUL inside, not one complete object, any key repeated anywhere, more than 32 keys)
 * makes the whole parse fail, so callers fall back to jansson and its error handling.
 * Owns nothing; pure function of its input.
 */
#include "core/jpick.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <string.h>

#define KEYS_MAX 32 /* keys tracked for duplicates; more: general path */

struct st {
    struct jpick *f;
    struct jpick_shape sh;
    const char *paths[JPICK_MAX];
    unsigned done;
    bool bad;
    int nkeys;
    uint32_t keys[KEYS_MAX]; /* hashes of the full paths of every key seen */
};

/* A key seen twice at the same path (also: the same key in two objects of an array) makes
 * the parse fail, so callers that refuse duplicated keys (jansson JSON_REJECT_DUPLICATES)
 * decide those messages themselves. A hash collision only sends a message the general way. */
static void key_seen(struct st *s, const char *path)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = path; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (int i = 0; i < s->nkeys; i++)
        if (s->keys[i] == h) {
            s->bad = true;
            return;
        }
    if (s->nkeys == KEYS_MAX) {
        s->bad = true;
        return;
    }
    s->keys[s->nkeys++] = h;
}

static signed char cb(struct lejp_ctx *ctx, char reason)
{
    struct st *s = ctx->user;
    switch (reason) {
    case LEJPCB_PAIR_NAME:
        s->sh.keys++;
        key_seen(s, ctx->path);
        return 0;
    case LEJPCB_OBJECT_START:
        s->sh.objects++;
        return 0;
    case LEJPCB_ARRAY_START:
        s->sh.arrays++;
        return 0;
    case LEJPCB_VAL_TRUE:
    case LEJPCB_VAL_FALSE:
    case LEJPCB_VAL_NULL:
    case LEJPCB_VAL_NUM_INT:
    case LEJPCB_VAL_NUM_FLOAT:
    case LEJPCB_VAL_STR_END:
        s->sh.scalars++;
        break;
    default:
        break;
    }
    if (!ctx->path_match || !(reason & LEJP_FLAG_CB_IS_VALUE))
        return 0;
    int k = ctx->path_match - 1;
    struct jpick *f = &s->f[k];
    if (reason != LEJPCB_VAL_STR_CHUNK && reason != LEJPCB_VAL_STR_END) {
        s->bad = true; /* a number, bool or null where a string belongs */
        return 0;
    }
    if (s->done & (1u << k)) {
        s->bad = true; /* repeated key */
        return 0;
    }
    if (f->len + ctx->npos >= f->cap || memchr(ctx->buf, '\0', ctx->npos)) {
        s->bad = true;
        return 0;
    }
    memcpy(f->buf + f->len, ctx->buf, ctx->npos);
    f->len += ctx->npos;
    f->buf[f->len] = '\0';
    if (reason == LEJPCB_VAL_STR_END) {
        s->done |= 1u << k;
        f->found = true;
    }
    return 0;
}

int jpick(const char *txt, size_t len, struct jpick *f, int n)
{
    return jpick_shape(txt, len, f, n, NULL);
}

int jpick_shape(const char *txt, size_t len, struct jpick *f, int n, struct jpick_shape *sh)
{
    struct st s;
    memset(&s, 0, sizeof s);
    if (!txt || !len || len > 0x7fffffff || n < 1 || n > JPICK_MAX || txt[0] != '{')
        return -1;
    for (int i = 0; i < n; i++) {
        if (!f[i].buf || !f[i].cap)
            return -1;
        f[i].len = 0;
        f[i].found = false;
        f[i].buf[0] = '\0';
        s.paths[i] = f[i].path;
    }
    s.f = f;
    struct lejp_ctx ctx;
    lejp_construct(&ctx, cb, &s, s.paths, (unsigned char)n);
    int r = lejp_parse(&ctx, (const unsigned char *)txt, (int)len);
    lejp_destruct(&ctx);
    if (r != 0 || s.bad)
        return -1; /* r > 0: bytes after the object */
    if (sh)
        *sh = s.sh;
    return 0;
}
