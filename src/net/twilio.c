/*
 * twilio.c - form decoding, X-Twilio-Signature, stream tokens, TwiML.
 *
 * Owns: the byte-exact rules of twilio.md §2 (sorted params, name+value with
 * no separators, HMAC-SHA1, base64, with and without :443) and the stream
 * token of ARCHITECTURE.md "Decided details". Pure functions, any thread;
 * crypto through core/util (OpenSSL).
 */
#include "net/twilio.h"

#include "core/err.h"
#include "core/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- form decoding ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) in place into dst (dst <= s). Returns the end or NULL on a bad escape. */
static char *form_decode(char *dst, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *dst++ = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n)
                return NULL;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return NULL;
            *dst++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *dst++ = s[i];
        }
    }
    *dst = '\0';
    return dst;
}

int tw_form_parse(const char *body, size_t len, struct tw_form *f)
{
    memset(f, 0, sizeof *f);
    /* Decoding never grows; +2 per pair for the two NULs, bounded by len+1 pairs. */
    f->buf = malloc(2 * len + 2);
    if (!f->buf)
        return ERR_NOMEM;
    char *w = f->buf;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j > i) {
            size_t eq = i;
            while (eq < j && body[eq] != '=')
                eq++;
            if (f->n >= TW_FORM_MAX_PARAMS)
                return ERR_INVALID_ARGUMENTS;
            struct tw_param *p = &f->p[f->n];
            p->name = w;
            w = form_decode(w, body + i, eq - i);
            if (!w)
                return ERR_INVALID_ARGUMENTS;
            w++;
            p->value = w;
            w = form_decode(w, eq < j ? body + eq + 1 : "", eq < j ? j - eq - 1 : 0);
            if (!w)
                return ERR_INVALID_ARGUMENTS;
            w++;
            f->n++;
        }
        i = j + 1;
    }
    return 0;
}

void tw_form_free(struct tw_form *f)
{
    if (!f)
        return;
    free(f->buf);
    f->buf = NULL;
    f->n = 0;
}

const char *tw_form_get(const struct tw_form *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->p[i].name, name))
            return f->p[i].value;
    return NULL;
}

/* ---- signature ---- */

static int param_cmp(const void *a, const void *b)
{
    const struct tw_param *x = *(const struct tw_param *const *)a;
    const struct tw_param *y = *(const struct tw_param *const *)b;
    int c = strcmp(x->name, y->name); /* byte order, case-sensitive */
    return c ? c : strcmp(x->value, y->value);
}

void tw_signature(const char *auth_token, const char *url, const struct tw_form *f, char out[32])
{
    const struct tw_param *sorted[TW_FORM_MAX_PARAMS];
    size_t total = strlen(url) + 1;
    int n = f ? f->n : 0;
    for (int i = 0; i < n; i++) {
        sorted[i] = &f->p[i];
        total += strlen(f->p[i].name) + strlen(f->p[i].value);
    }
    qsort(sorted, (size_t)n, sizeof sorted[0], param_cmp);
    char *s = malloc(total);
    if (!s) {
        out[0] = '\0';
        return;
    }
    size_t len = strlen(url);
    memcpy(s, url, len);
    for (int i = 0; i < n; i++) {
        /* a repeated name=value pair is signed once (Twilio's libraries drop duplicates) */
        if (i > 0 && !param_cmp(&sorted[i - 1], &sorted[i]))
            continue;
        size_t nl = strlen(sorted[i]->name), vl = strlen(sorted[i]->value);
        memcpy(s + len, sorted[i]->name, nl);
        len += nl;
        memcpy(s + len, sorted[i]->value, vl);
        len += vl;
    }
    uint8_t mac[64];
    unsigned ml = util_hmac_sha1(auth_token, strlen(auth_token), s, len, mac);
    util_b64_encode(mac, ml, out);
    free(s);
}

/* url with ":443" added after an https host that has no port, or removed when present. */
static bool url_port_variant(const char *url, char *out, size_t outsz)
{
    if (strncmp(url, "https://", 8))
        return false;
    const char *host = url + 8;
    size_t hl = strcspn(host, "/?#");
    const char *colon = memchr(host, ':', hl);
    int n;
    if (!colon)
        n = snprintf(out, outsz, "%.*s:443%s", (int)(8 + hl), url, host + hl);
    else if (colon + 4 == host + hl && !strncmp(colon, ":443", 4))
        n = snprintf(out, outsz, "%.*s%s", (int)(colon - url), url, host + hl);
    else
        return false;
    return n > 0 && (size_t)n < outsz;
}

bool tw_signature_valid(const char *auth_token, const char *url, const struct tw_form *f,
                        const char *sig)
{
    if (!sig || strlen(sig) != 28)
        return false;
    char mine[32];
    tw_signature(auth_token, url, f, mine);
    bool ok = util_ct_equal(mine, sig, 28);
    char alt[1024];
    if (url_port_variant(url, alt, sizeof alt)) {
        tw_signature(auth_token, alt, f, mine);
        ok = util_ct_equal(mine, sig, 28) || ok;
    }
    return ok;
}

/* ---- stream token ---- */

static void token_mac(const void *secret, size_t slen, const char *call_sid, const char *from,
                      long long expiry, char *b64, size_t b64sz)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "%s\n%s\n%lld", call_sid, from, expiry);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1; /* callers bound the inputs; never reached */
    uint8_t mac[64];
    unsigned ml = util_hmac_sha256(secret, slen, msg, (size_t)n, mac);
    char tmp[96];
    util_b64url_encode(mac, ml, tmp);
    util_strlcpy(b64, tmp, b64sz);
}

int tw_stream_token(const void *secret, size_t slen, const char *call_sid, const char *from,
                    long long expiry, char *out, size_t outsz)
{
    if (strlen(call_sid) > 100 || strlen(from) > 100)
        return ERR_INVALID_ARGUMENTS;
    char mac[64];
    token_mac(secret, slen, call_sid, from, expiry, mac, sizeof mac);
    int n = snprintf(out, outsz, "%lld.%s", expiry, mac);
    return n > 0 && (size_t)n < outsz ? 0 : ERR_INVALID_ARGUMENTS;
}

enum tw_token_result tw_stream_token_check(const void *secret, size_t slen, const char *call_sid,
                                           const char *from, const char *token, long long now)
{
    if (!token || !call_sid || !from || strlen(call_sid) > 100 || strlen(from) > 100)
        return TW_TOKEN_MALFORMED;
    const char *dot = strchr(token, '.');
    if (!dot || dot == token || dot - token > 19 || strlen(dot + 1) != 43)
        return TW_TOKEN_MALFORMED;
    long long expiry = 0;
    for (const char *p = token; p < dot; p++) {
        if (*p < '0' || *p > '9')
            return TW_TOKEN_MALFORMED;
        expiry = expiry * 10 + (*p - '0');
    }
    char mac[64];
    token_mac(secret, slen, call_sid, from, expiry, mac, sizeof mac);
    if (!util_ct_equal(mac, dot + 1, 43))
        return TW_TOKEN_FORGED;
    if (now > expiry)
        return TW_TOKEN_EXPIRED;
    return TW_TOKEN_OK;
}

const char *tw_token_result_name(enum tw_token_result r)
{
    switch (r) {
    case TW_TOKEN_OK:
        return "ok";
    case TW_TOKEN_MALFORMED:
        return "malformed";
    case TW_TOKEN_FORGED:
        return "forged";
    case TW_TOKEN_EXPIRED:
        return "expired";
    }
    return "unknown";
}

/* ---- identity ---- */

void tw_caller_from(const char *from_raw, char *out, size_t outsz)
{
    out[0] = '\0';
    if (!from_raw || from_raw[0] != '+')
        return;
    size_t n = strlen(from_raw + 1);
    if (n < 7 || n > 15 || strspn(from_raw + 1, "0123456789") != n)
        return;
    util_strlcpy(out, from_raw, outsz);
}

bool tw_call_sid_ok(const char *sid)
{
    if (!sid)
        return false;
    size_t n = strlen(sid);
    return n >= 2 && n <= 64 &&
           strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* ---- TwiML ---- */

/* XML-escape s into out; returns bytes or -1 when it does not fit. */
static int xml_esc(char *out, size_t outsz, const char *s)
{
    size_t w = 0;
    for (; *s; s++) {
        const char *r = NULL;
        switch (*s) {
        case '&':
            r = "&amp;";
            break;
        case '<':
            r = "&lt;";
            break;
        case '>':
            r = "&gt;";
            break;
        case '"':
            r = "&quot;";
            break;
        case '\'':
            r = "&apos;";
            break;
        default:
            break;
        }
        size_t rl = r ? strlen(r) : 1;
        if (w + rl >= outsz)
            return -1;
        if (r)
            memcpy(out + w, r, rl);
        else
            out[w] = *s;
        w += rl;
    }
    out[w] = '\0';
    return (int)w;
}

#define TW_SAY_FALLBACK                                                                            \
    "<Say voice=\"Polly.Amy\" language=\"en-GB\">Sorry, our assistant can't take your call "       \
    "right now. We'll call you back as soon as we can. Goodbye.</Say>"

int tw_twiml_connect(char *out, size_t outsz, const char *host, const char *from,
                     const char *call_sid, const char *token)
{
    char h[256], f[128], c[160], t[160];
    if (xml_esc(h, sizeof h, host) < 0 || xml_esc(f, sizeof f, from) < 0 ||
        xml_esc(c, sizeof c, call_sid) < 0 || xml_esc(t, sizeof t, token) < 0)
        return -1;
    int n = snprintf(out, outsz,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<Response><Connect><Stream url=\"wss://%s/media-stream\">"
                     "<Parameter name=\"from\" value=\"%s\"/>"
                     "<Parameter name=\"callSid\" value=\"%s\"/>"
                     "<Parameter name=\"token\" value=\"%s\"/>"
                     "</Stream></Connect>" TW_SAY_FALLBACK "</Response>\n",
                     h, f, c, t);
    return n > 0 && (size_t)n < outsz ? n : -1;
}

int tw_twiml_fallback(char *out, size_t outsz)
{
    int n = snprintf(out, outsz,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>" TW_SAY_FALLBACK
                     "</Response>\n");
    return n > 0 && (size_t)n < outsz ? n : -1;
}

int tw_url_host(const char *url, char *out, size_t outsz)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    size_t hl = strcspn(p, "/?#");
    if (hl == 0 || hl >= outsz)
        return -1;
    memcpy(out, p, hl);
    out[hl] = '\0';
    return 0;
}
