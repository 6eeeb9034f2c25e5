/*
 * mail.c - plain-text email through libcurl's SMTP client.
 *
 * Owns: building one RFC 5322 message (Date, From, To, Subject, Message-ID,
 * MIME-Version, text/plain; charset=UTF-8 in quoted-printable, CRLF lines)
 * and handing it to SMTP_URL (smtp:// with opportunistic STARTTLS, required
 * TLS in production; smtps:// is TLS from the start). Only the address on
 * file reaches here (the actions guarantee it); we still refuse anything
 * that could inject a header or a second recipient.
 * Worker thread (blocks on SMTP); no state.
 */
#define LOG_MODULE "mail"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "sms/sms.h"

#define MAIL_MAX (64 * 1024) /* whole message, headers included */
#define MAIL_CONNECT_TIMEOUT_S 5
#define MAIL_TIMEOUT_S 20

struct mbuf {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void put(struct mbuf *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n + 1 > b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct mbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

bool mail_configured(const struct cfg *cfg)
{
    return cfg && *cfg->smtp_url && *cfg->smtp_from;
}

/* The bare address of SMTP_FROM ("Name <a@b>" or "a@b"). */
static void from_addr(const char *from, char *out, size_t outsz)
{
    const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt && gt > lt + 1) {
        size_t n = (size_t)(gt - lt - 1);
        if (n >= outsz)
            n = outsz - 1;
        memcpy(out, lt + 1, n);
        out[n] = '\0';
    } else {
        util_strlcpy(out, from, outsz);
    }
}

/* One mailbox, no display name, nothing that could start a header or a second address. */
static bool plausible_address(const char *a)
{
    const char *at = a ? strchr(a, '@') : NULL;
    if (!at || at == a || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.') || strlen(a) > 254)
        return false;
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p <= ' ' || strchr("<>,;:\"()[]\\", *p))
            return false;
    return true;
}

/* RFC 2047 B-encoding for a header value that is not plain ASCII; CR/LF never pass. */
static void put_header_text(struct mbuf *b, const char *s)
{
    bool ascii = true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80 || *p < 0x20)
            ascii = false;
    if (ascii) {
        puts_(b, s);
        return;
    }
    size_t n = strlen(s);
    char *clean = malloc(n + 1), *enc = malloc(4 * (n / 3 + 1) + 1);
    if (clean && enc) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            clean[o++] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
        util_b64_encode(clean, o, enc);
        puts_(b, "=?UTF-8?B?");
        puts_(b, enc);
        puts_(b, "?=");
    } else {
        b->overflow = true;
    }
    free(clean);
    free(enc);
}

/* Quoted-printable (RFC 2045 6.7), CRLF line ends, soft breaks before 76 columns. */
static void put_qp(struct mbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int col = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\r')
            continue;
        if (*p == '\n') {
            puts_(b, "\r\n");
            col = 0;
            continue;
        }
        bool trailing_ws = (*p == ' ' || *p == '\t') && (p[1] == '\n' || p[1] == '\r' || !p[1]);
        bool lit = (*p >= 33 && *p <= 126 && *p != '=' && !(col == 0 && *p == '.')) ||
                   ((*p == ' ' || *p == '\t') && !trailing_ws);
        int w = lit ? 1 : 3;
        if (col + w > 75) {
            puts_(b, "=\r\n");
            col = 0;
        }
        if (lit) {
            put(b, (const char *)p, 1);
        } else {
            char e[3] = {'=', hex[*p >> 4], hex[*p & 15]};
            put(b, e, 3);
        }
        col += w;
    }
    puts_(b, "\r\n");
}

static void build_message(struct mbuf *b, const struct cfg *cfg, const char *to,
                          const char *subject, const char *body)
{
    char date[64], addr[256], mid[96], tok[32];
    time_t now = (time_t)util_now();
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    from_addr(cfg->smtp_from, addr, sizeof addr);
    const char *dom = strchr(addr, '@');
    if (util_random_token(tok, sizeof tok, 16))
        snprintf(tok, sizeof tok, "%lld", (long long)now);
    snprintf(mid, sizeof mid, "<%s@%s>", tok, dom ? dom + 1 : "voice-ws.local");

    puts_(b, "Date: ");
    puts_(b, date);
    puts_(b, "\r\nFrom: ");
    if (strchr(cfg->smtp_from, '<')) {
        put_header_text(b, cfg->smtp_from);
    } else {
        put_header_text(b, *cfg->company_name ? cfg->company_name : "voice-ws");
        puts_(b, " <");
        puts_(b, addr);
        puts_(b, ">");
    }
    puts_(b, "\r\nTo: <");
    puts_(b, to);
    puts_(b, ">\r\nSubject: ");
    put_header_text(b, subject);
    puts_(b, "\r\nMessage-ID: ");
    puts_(b, mid);
    puts_(b, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    put_qp(b, body);
}

struct reader {
    const char *p;
    size_t left;
};

static size_t on_read(char *dst, size_t size, size_t n, void *arg)
{
    struct reader *r = arg;
    size_t k = size * n < r->left ? size * n : r->left;
    memcpy(dst, r->p, k);
    r->p += k;
    r->left -= k;
    return k;
}

static CURLcode smtp_send(const struct cfg *cfg, const char *to, const struct mbuf *m, char *errbuf)
{
    char from[256], from_env[260];
    from_addr(cfg->smtp_from, from, sizeof from);
    snprintf(from_env, sizeof from_env, "<%s>", from);
    CURL *h = curl_easy_init();
    if (!h)
        return CURLE_FAILED_INIT;
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    struct reader rd = {m->p, m->len};
    bool tls_required = cfg->app_env == CFG_ENV_PRODUCTION;
    curl_easy_setopt(h, CURLOPT_URL, cfg->smtp_url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     tls_required ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (*cfg->smtp_user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, cfg->smtp_user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->smtp_password);
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from_env);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &rd);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)MAIL_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)MAIL_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = rcpt ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    return cc;
}

int mail_send(const struct cfg *cfg, const char *to, const char *subject, const char *body,
              struct err *e)
{
    if (!mail_configured(cfg))
        return err_set(e, ERR_NOT_CONFIGURED,
                       "I'm afraid I can't send emails at the moment. I can send a text "
                       "instead if that helps.",
                       "email is not configured (SMTP_URL and SMTP_FROM)");
    if (!plausible_address(to))
        return err_set(e, ERR_NO_CONTACT, NULL, "mail: the address on file is not usable");
    struct mbuf m = {.p = malloc(MAIL_MAX), .cap = MAIL_MAX};
    if (!m.p)
        return err_set(e, ERR_NOMEM, NULL, "mail: out of memory");
    build_message(&m, cfg, to, subject ? subject : "", body ? body : "");
    if (m.overflow) {
        free(m.p);
        return err_set(e, ERR_EMAIL_FAILED, NULL, "mail: message larger than %d bytes", MAIL_MAX);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    double t0 = util_mono_ms();
    CURLcode cc = smtp_send(cfg, to, &m, errbuf);
    free(m.p);
    if (cc != CURLE_OK) {
        log_error("📧 [VOICE-MAIL] Email not sent to=%s: %s", to,
                  errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return err_set(e, ERR_EMAIL_FAILED, NULL, "smtp: %s",
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
    log_info("📧 [VOICE-MAIL] Email sent successfully to=%s ms=%.0f", to, util_mono_ms() - t0);
    return 0;
}
