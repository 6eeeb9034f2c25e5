/*
 * twilio.h - the pure Twilio pieces of the server: form decoding, the
 * X-Twilio-Signature check, the signed stream token, caller-ID handling and
 * the TwiML answer. No sockets, no state: any thread.
 */
#ifndef VWS_NET_TWILIO_H
#define VWS_NET_TWILIO_H

#include <stdbool.h>
#include <stddef.h>

#define TW_FORM_MAX_PARAMS 128 /* a Twilio voice webhook sends ~20 */
#define TW_TOKEN_MAX 96        /* "<expiry>.<43 chars base64url>" */

struct tw_param {
    char *name; /* decoded, NUL-terminated, points into tw_form.buf */
    char *value;
};

struct tw_form { /* an application/x-www-form-urlencoded body, decoded */
    struct tw_param p[TW_FORM_MAX_PARAMS];
    int n;
    char *buf; /* owned; freed by tw_form_free */
};

/* Decode body (len bytes, not NUL-terminated) with form rules ('+' is a space, %XX).
 * 0, or ERR_INVALID_ARGUMENTS (bad escape, too many params). f is always freeable. */
int tw_form_parse(const char *body, size_t len, struct tw_form *f);
void tw_form_free(struct tw_form *f);
/* First value of name, or NULL. */
const char *tw_form_get(const struct tw_form *f, const char *name);

/* The signature Twilio computes for url + sorted params (base64, 28 chars + NUL). */
void tw_signature(const char *auth_token, const char *url, const struct tw_form *f, char out[32]);
/* Constant-time check of sig against url with and without the default :443 port. */
bool tw_signature_valid(const char *auth_token, const char *url, const struct tw_form *f,
                        const char *sig);

/* Stream token: "<expiry>.<base64url HMAC-SHA256(secret, call_sid \n from \n expiry)>". */
int tw_stream_token(const void *secret, size_t slen, const char *call_sid, const char *from,
                    long long expiry, char *out, size_t outsz);
enum tw_token_result { TW_TOKEN_OK = 0, TW_TOKEN_MALFORMED, TW_TOKEN_FORGED, TW_TOKEN_EXPIRED };
/* Stateless check against the start message's own callSid and from, at time now. */
enum tw_token_result tw_stream_token_check(const void *secret, size_t slen, const char *call_sid,
                                           const char *from, const char *token, long long now);
const char *tw_token_result_name(enum tw_token_result r);

/* The caller ID to act for: E.164 ("+" and 7..15 digits) or "" when withheld/odd. */
void tw_caller_from(const char *from_raw, char *out, size_t outsz);

/* Plausible CallSid: 2..64 chars of [A-Za-z0-9_-]. */
bool tw_call_sid_ok(const char *sid);

/*
 * TwiML: <Connect><Stream url="wss://host/media-stream"> with Parameters
 * from, callSid, token, then the fallback <Say>. host is "example.com" or
 * "example.com:8443". Returns bytes written (< outsz) or -1 when it doesn't fit.
 */
int tw_twiml_connect(char *out, size_t outsz, const char *host, const char *from,
                     const char *call_sid, const char *token);
/* TwiML that only apologises (used while draining or when no provider is available). */
int tw_twiml_fallback(char *out, size_t outsz);

/* Host[:port] of an http(s) URL ("https://a.b:8443/x" -> "a.b:8443"). 0 or -1. */
int tw_url_host(const char *url, char *out, size_t outsz);

#endif
