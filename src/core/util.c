/*
 * util.c - clock, crypto and string helpers (OpenSSL underneath). Any thread.
 */
#include "core/util.h"

#include "core/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static atomic_llong fake_now;

double util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

long long util_now(void)
{
    long long f = atomic_load(&fake_now);
    return f ? f : (long long)time(NULL);
}

void util_set_fake_now(long long unix_s)
{
    atomic_store(&fake_now, unix_s);
}

size_t util_strlcpy(char *dst, const char *src, size_t dstsz)
{
    size_t n = strlen(src);
    if (dstsz) {
        size_t c = n < dstsz - 1 ? n : dstsz - 1;
        /* cut before a UTF-8 character, never inside one (names, messages stay valid) */
        while (c < n && c > 0 && ((unsigned char)src[c] & 0xC0) == 0x80)
            c--;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

int util_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : ERR_INTERNAL;
}

int util_random_token(char *out, size_t outsz, size_t nbytes)
{
    uint8_t raw[64];
    if (nbytes > sizeof raw || outsz < (nbytes * 4 + 2) / 3 + 1)
        return ERR_INTERNAL;
    if (util_random(raw, nbytes))
        return ERR_INTERNAL;
    util_b64url_encode(raw, nbytes, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

void util_sha256_hex(const void *data, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * mdlen] = '\0';
}

unsigned util_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t *mac)
{
    unsigned len = 0;
    HMAC(EVP_sha1(), key, (int)klen, msg, mlen, mac, &len);
    return len;
}

unsigned util_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                          uint8_t *mac)
{
    unsigned len = 0;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, mac, &len);
    return len;
}

size_t util_b64_encode(const void *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

size_t util_b64url_encode(const void *in, size_t n, char *out)
{
    size_t len = util_b64_encode(in, n, out);
    while (len && out[len - 1] == '=')
        out[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return len;
}

long util_b64_decode(const char *in, size_t n, uint8_t *out, size_t outsz)
{
    EVP_ENCODE_CTX *ctx;
    int len1 = 0, len2 = 0;

    while (n && (in[n - 1] == '\n' || in[n - 1] == '\r'))
        n--;
    if (n > 0x7fffffff || (n / 4 + 1) * 3 > outsz)
        return -1;
    ctx = EVP_ENCODE_CTX_new();
    if (!ctx)
        return -1;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, out, &len1, (const unsigned char *)in, (int)n) < 0 ||
        EVP_DecodeFinal(ctx, out + len1, &len2) < 0) {
        EVP_ENCODE_CTX_free(ctx);
        return -1;
    }
    EVP_ENCODE_CTX_free(ctx);
    return (long)len1 + len2;
}

long util_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outsz)
{
    char buf[512];
    size_t m = 0;
    if (n + 4 > sizeof buf)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '+' || c == '/' || c == '=')
            return -1;
        buf[m++] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (m % 4)
        buf[m++] = '=';
    return util_b64_decode(buf, m, out, outsz);
}

bool util_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* 1 for A-Z a-z 0-9 + / = */
static const unsigned char b64_plain_tab[256] = {
    ['+'] = 1, ['/'] = 1, ['='] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,
    ['z'] = 1,
};

bool util_b64_plain(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= b64_plain_tab[p[i]];
    return ok;
}
