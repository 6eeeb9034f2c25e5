/*
 * util.h - small helpers: monotonic clock, crypto (random tokens, SHA-256,
 * HMAC, base64) over OpenSSL, bounded string copy. Any thread.
 */
#ifndef VWS_UTIL_H
#define VWS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds (with fraction) since an arbitrary start. */
double util_mono_ms(void);
/* Wall clock: Unix seconds. Tests may pin it with util_set_fake_now (0 = real). */
long long util_now(void);
void util_set_fake_now(long long unix_s);

/* Copy at most dstsz-1 bytes, cut before a UTF-8 character (never inside one), always
 * NUL-terminate. Returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t dstsz);

/* n random bytes from the OS CSPRNG (RAND_bytes). 0 or ERR_INTERNAL. */
int util_random(void *buf, size_t n);
/* URL-safe random token of nbytes entropy, base64url without padding. out >= 4*nbytes/3+2. */
int util_random_token(char *out, size_t outsz, size_t nbytes);
/* Lowercase hex SHA-256 of data. out >= 65. */
void util_sha256_hex(const void *data, size_t n, char *out);
/* HMAC (SHA-1 or SHA-256) into mac; returns mac length. */
unsigned util_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t *mac);
unsigned util_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                          uint8_t *mac);
/* Standard base64 with padding; returns length written (out >= 4*ceil(n/3)+1). */
size_t util_b64_encode(const void *in, size_t n, char *out);
/* base64url without padding. */
size_t util_b64url_encode(const void *in, size_t n, char *out);
/* True when each of the n chars is in the standard base64 alphabet or '=' (so it can be put
 * between JSON quotes as is). Table-driven: this runs on every audio message. */
bool util_b64_plain(const char *s, size_t n);
/* Decode standard base64 (padding optional); returns bytes or -1 on bad input / overflow. */
long util_b64_decode(const char *in, size_t n, uint8_t *out, size_t outsz);
/* Decode base64url (no padding). */
long util_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outsz);
/* Constant-time equality. */
bool util_ct_equal(const void *a, const void *b, size_t n);

#endif
