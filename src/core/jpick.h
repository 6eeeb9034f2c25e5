/*
 * jpick.h - pick a few string fields out of one JSON object without building a tree, for
 * the per-frame audio messages (Twilio media, provider audio deltas) where json_loadb is
 * the largest CPU cost (docs/loadgen.md). Uses lws's LEJP streaming parser (a library,
 * no hand-written JSON). Everything else keeps using jansson.
 */
#ifndef VWS_JPICK_H
#define VWS_JPICK_H

#include <stdbool.h>
#include <stddef.h>

#define JPICK_MAX 8

struct jpick {
    const char *path; /* LEJP path, e.g. "media.payload" (dot-separated keys) */
    char *buf;        /* caller's buffer, value copied NUL-terminated */
    size_t cap;       /* its size */
    size_t len;       /* out: value length */
    bool found;       /* out: the path held a string */
};

/*
 * Parse txt (len bytes) and fill the n (<= JPICK_MAX) fields. Returns 0 when txt is
 * exactly one well-formed JSON object with at most 32 keys, none repeated at the same
 * path, and every field that occurs is a string that fits and holds no NUL; -1 otherwise
 * (then parse it the general way). Absent fields are not an error: check found. Pure;
 * any thread.
 */
int jpick(const char *txt, size_t len, struct jpick *f, int n);

/* What jpick saw, for callers that accept one exact message shape (nothing besides the
 * fields they pick): counts of objects, arrays, keys and scalar values (strings, numbers,
 * true/false/null) anywhere in the message, the top-level object included. */
struct jpick_shape {
    int objects, arrays, keys, scalars;
};

/* jpick() that also fills *sh (when 0 is returned). */
int jpick_shape(const char *txt, size_t len, struct jpick *f, int n, struct jpick_shape *sh);

#endif
