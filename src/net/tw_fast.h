/*
 * tw_fast.h - fast path for the Twilio Media Streams `media` message (see tw_fast.c).
 */
#ifndef VWS_NET_TW_FAST_H
#define VWS_NET_TW_FAST_H

#include <stdbool.h>
#include <stddef.h>

#define NET_MEDIA_PAYLOAD_MAX 4096 /* longer payloads take the jansson path */

struct net_media {
    char sid[80];   /* streamSid */
    char track[24]; /* media.track, when has_track */
    bool has_track;
    char payload[NET_MEDIA_PAYLOAD_MAX + 1]; /* media.payload, NUL-terminated */
    size_t plen;
};

/* Parse txt as a `media` event. 0: m is filled (event "media", string streamSid and
 * media.payload, optional string media.track). -1: anything else or anything unusual
 * (other event, missing/repeated/non-string/too long fields, malformed or trailing
 * input): parse it the general way. Pure, any thread. */
int net__media_fast(const char *txt, size_t len, struct net_media *m);

#endif
