/*
 * sms_twilio.c - the Twilio Messages API over libcurl.
 *
 * Owns: one POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json
 * per attempt (form-encoded To/From/Body, HTTP Basic), the retry policy and
 * turning Twilio's answers into our outcome (queued / failed / unknown) and
 * a sentence the agent can say.
 *
 * Retry policy (twilio.md 4.4): only 429 and 503 are retried (Twilio did not
 * take the request), at most 3 attempts in all, full-jitter backoff
 * (base 100 ms, cap 3 s) and never sooner than Retry-After. A timeout, a
 * dropped connection after the request went out, or any other 5xx is NOT
 * retried: the message may already have gone (the API has no idempotency
 * key), so it is recorded as 'unknown'. Other 4xx are permanent.
 *
 * Never logs the auth token or a full number. Worker thread; no state.
 */
#define LOG_MODULE "sms_twilio"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cfg.h"
#include "core/log.h"
#include "core/util.h"
#include "sms/internal.h"

#define TW_ATTEMPTS_MAX 3
#define TW_BACKOFF_BASE_MS 100
#define TW_BACKOFF_CAP_MS 3000
#define TW_RESP_MAX (64 * 1024) /* a Messages.json answer is < 2 KB */
#define TW_CONNECT_TIMEOUT_S 5

#define SAY_BUSY                                                                                   \
    "Our text service is busy at the moment, so the message didn't go. I can try again in a "      \
    "few minutes."
#define SAY_UNKNOWN                                                                                \
    "I'm not sure whether that text went through. If it hasn't arrived in a few minutes, let me "  \
    "know and I'll look into it."
#define SAY_INVALID                                                                                \
    "The number we have on file can't receive texts, so the message couldn't be sent."
#define SAY_OPTED_OUT                                                                              \
    "That number has opted out of our texts by replying STOP, so I can't text it. Texting START "  \
    "to us turns them back on."
#define SAY_OURS                                                                                   \
    "I couldn't send the text because of a problem on our side. I've let the team know."
#define SAY_FAILED "I couldn't send the text message just now."

struct tw_buf {
    char *data;
    size_t len;
    bool too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct tw_buf *b = arg;
    size_t add = size * n;
    if (b->len + add > TW_RESP_MAX) {
        b->too_big = true;
        return add; /* keep reading, drop the excess */
    }
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->len += add;
    d[b->len] = '\0';
    b->data = d;
    return add;
}

/* ---- errors ---- */

static void set_out(struct sms__tw_result *o, const char *status, const char *code, const char *say)
{
    util_strlcpy(o->status, status, sizeof o->status);
    util_strlcpy(o->error_code, code, sizeof o->error_code);
    util_strlcpy(o->say, say, sizeof o->say);
}

void sms__twilio_map_error(long code, int http, struct sms__tw_result *o)
{
    char ec[24];
    if (code > 0)
        snprintf(ec, sizeof ec, "%ld", code);
    else
        snprintf(ec, sizeof ec, "http_%d", http);

    if (code == 21610) {
        o->opted_out = true;
        set_out(o, "failed", ec, SAY_OPTED_OUT);
        log_warn("📱 [VOICE-SMS] recipient has opted out (replied STOP), code=21610; not retried");
    } else if (code == 21211 || code == 21614 || code == 21612) {
        set_out(o, "failed", ec, SAY_INVALID);
    } else if (code == 21408 || code == 21606 || code == 21608 || code == 21607) {
        set_out(o, "failed", ec, SAY_OURS);
        log_error("📱 [VOICE-SMS] OPERATOR: Twilio refused our sending configuration code=%ld "
                  "(check Geo Permissions and TWILIO_FROM_NUMBER)",
                  code);
    } else if (code == 20003 || http == 401) {
        set_out(o, "failed", code > 0 ? ec : "20003", SAY_OURS);
        log_error("📱 [VOICE-SMS] OPERATOR ALERT: Twilio authentication failed (code=%ld http=%d); "
                  "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
                  code, http);
    } else if (code == 20429 || http == 429 || http == 503) {
        set_out(o, "failed", ec, SAY_BUSY);
    } else if (http >= 500) {
        /* 500/502/504: Twilio may have taken it; never blindly resend. */
        set_out(o, "unknown", ec, SAY_UNKNOWN);
    } else {
        set_out(o, "failed", ec, SAY_FAILED);
        if (code == 20404 || (code >= 21602 && code <= 21604) || code == 21617 || http == 404)
            log_error("📱 [VOICE-SMS] OPERATOR: Twilio rejected our request code=%ld http=%d", code,
                      http);
    }
}

/* Error code from Twilio's {"code","message",...} or RFC 9457 problem+json; 0 if none. */
static long error_code_of(const struct tw_buf *b, char *msg, size_t msgsz)
{
    msg[0] = '\0';
    if (!b->data || b->too_big)
        return 0;
    json_t *j = json_loadb(b->data, b->len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    long code = 0;
    json_t *c = json_object_get(j, "code");
    if (json_is_integer(c))
        code = (long)json_integer_value(c);
    else if (json_is_string(c))
        code = strtol(json_string_value(c), NULL, 10);
    const char *m = json_string_value(json_object_get(j, "message"));
    if (!m)
        m = json_string_value(json_object_get(j, "detail"));
    if (!m)
        m = json_string_value(json_object_get(j, "title"));
    if (m)
        util_strlcpy(msg, m, msgsz);
    json_decref(j);
    return code > 0 ? code : 0;
}

/* Fill sid / segments from a 2xx body. Tolerates nulls, strings for numbers, any UTF-8. */
static void parse_created(const struct tw_buf *b, struct sms__tw_result *o)
{
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        log_warn("📱 [VOICE-SMS] Twilio accepted the message but the answer was not JSON");
        json_decref(j);
        return;
    }
    const char *sid = json_string_value(json_object_get(j, "sid"));
    if (sid && strlen(sid) < sizeof o->sid)
        util_strlcpy(o->sid, sid, sizeof o->sid);
    json_t *ns = json_object_get(j, "num_segments");
    if (json_is_string(ns))
        o->segments = atoi(json_string_value(ns));
    else if (json_is_integer(ns))
        o->segments = (int)json_integer_value(ns);
    if (o->segments < 0 || o->segments > 100)
        o->segments = 0;
    json_decref(j);
}

/* ---- backoff ---- */

long sms__backoff_ms(int n, long retry_after_ms)
{
    long cap = TW_BACKOFF_BASE_MS;
    for (int i = 0; i < n && cap < TW_BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > TW_BACKOFF_CAP_MS)
        cap = TW_BACKOFF_CAP_MS;
    unsigned r = 0;
    util_random(&r, sizeof r);
    long wait = (long)(r % (unsigned)(cap + 1));
    return wait > retry_after_ms ? wait : retry_after_ms;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- one attempt ---- */

struct tw_req {
    const char *url;
    const char *form;
    const struct cfg *cfg;
};

/* Returns the curl code; *http = status (0 when none), *sent = request went out. */
static CURLcode attempt(CURL *h, const struct tw_req *q, struct tw_buf *b, long *http,
                        long *retry_after_s, bool *sent)
{
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, q->form);
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, q->cfg->twilio_account_sid);
    curl_easy_setopt(h, CURLOPT_PASSWORD, q->cfg->twilio_auth_token);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long total = q->cfg->sms_timeout_s;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                     total < TW_CONNECT_TIMEOUT_S ? total : (long)TW_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, total);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "voice-ws/1.0");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);

    CURLcode cc = curl_easy_perform(h);
    curl_off_t ra = 0;
    long reqsize = 0;
    *http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http);
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &reqsize);
    /* capped: an absurd value in milliseconds would overflow (anything this long means give up) */
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        *retry_after_s = ra > 86400 ? 86400L : (long)ra;
    *sent = reqsize > 0;
    return cc;
}

/* Outcome of a transport failure (no HTTP status). */
static void transport_failed(CURLcode cc, bool sent, struct sms__tw_result *o)
{
    bool timeout = cc == CURLE_OPERATION_TIMEDOUT;
    if (!sent) {
        /* Nothing reached Twilio: definitely not sent. */
        set_out(o, "failed", timeout ? "connect_timeout" : "connect_failed", SAY_FAILED);
        log_error("📱 [VOICE-SMS] could not reach Twilio: %s", curl_easy_strerror(cc));
    } else {
        set_out(o, "unknown", timeout ? "timeout" : "connection_lost", SAY_UNKNOWN);
        log_error("📱 [VOICE-SMS] Twilio did not answer after the request was sent (%s); "
                  "the message may or may not have gone; not retried",
                  curl_easy_strerror(cc));
    }
}

static char *build_form(CURL *h, const char *to, const char *from, const char *body)
{
    char *eto = curl_easy_escape(h, to, 0), *efrom = curl_easy_escape(h, from, 0);
    char *ebody = curl_easy_escape(h, body, 0), *form = NULL;
    if (eto && efrom && ebody) {
        size_t n = strlen(eto) + strlen(efrom) + strlen(ebody) + 32;
        form = malloc(n);
        if (form)
            snprintf(form, n, "To=%s&From=%s&Body=%s", eto, efrom, ebody);
    }
    curl_free(eto);
    curl_free(efrom);
    curl_free(ebody);
    return form;
}

static char *build_url(CURL *h, const struct cfg *cfg)
{
    char *esid = curl_easy_escape(h, cfg->twilio_account_sid, 0);
    size_t blen = strlen(cfg->twilio_api_base);
    while (blen > 0 && cfg->twilio_api_base[blen - 1] == '/')
        blen--;
    char *url = NULL;
    if (esid) {
        size_t n = blen + strlen(esid) + 64;
        url = malloc(n);
        if (url)
            snprintf(url, n, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)blen,
                     cfg->twilio_api_base, esid);
    }
    curl_free(esid);
    return url;
}

/* true when this answer should be retried (and the caller may still wait). */
static bool retryable(long http)
{
    return http == 429 || http == 503;
}

static void run_attempts(CURL *h, const struct tw_req *q, struct sms__tw_result *o)
{
    for (int n = 1; n <= TW_ATTEMPTS_MAX; n++) {
        struct tw_buf b = {0};
        long http = 0, retry_after_s = 0;
        bool sent = false;
        double t0 = util_mono_ms();
        CURLcode cc = attempt(h, q, &b, &http, &retry_after_s, &sent);
        o->attempts = n;
        o->http_status = (int)http;
        log_info("📱 [VOICE-SMS] twilio attempt=%d http=%ld curl=%d ms=%.0f", n, http, (int)cc,
                 util_mono_ms() - t0);
        if (cc != CURLE_OK) {
            transport_failed(cc, sent, o);
            free(b.data);
            return;
        }
        if (http >= 200 && http < 300) {
            set_out(o, "queued", "", "");
            parse_created(&b, o);
            free(b.data);
            return;
        }
        char msg[200];
        long code = error_code_of(&b, msg, sizeof msg);
        free(b.data);
        sms__twilio_map_error(code, (int)http, o);
        log_warn("📱 [VOICE-SMS] Twilio answered http=%ld code=%ld: %s", http, code,
                 msg[0] ? msg : "(no JSON error body)");
        if (!retryable(http) || n == TW_ATTEMPTS_MAX)
            return;
        long budget_ms = 1000L * q->cfg->sms_timeout_s;
        if (retry_after_s * 1000L > budget_ms) {
            log_warn("📱 [VOICE-SMS] Retry-After %lds is longer than we can wait; giving up",
                     retry_after_s);
            return;
        }
        long wait = sms__backoff_ms(n, retry_after_s * 1000L);
        log_info("📱 [VOICE-SMS] retrying in %ld ms (Retry-After %lds)", wait, retry_after_s);
        sleep_ms(wait);
    }
}

void sms__twilio_send(const struct cfg *cfg, const char *to, const char *body,
                      struct sms__tw_result *out)
{
    memset(out, 0, sizeof *out);
    set_out(out, "failed", "internal", SAY_FAILED);
    CURL *h = curl_easy_init();
    if (!h) {
        log_error("📱 [VOICE-SMS] curl_easy_init failed");
        return;
    }
    char *url = build_url(h, cfg);
    char *form = build_form(h, to, cfg->twilio_from_number, body);
    if (url && form) {
        struct tw_req q = {.url = url, .form = form, .cfg = cfg};
        run_attempts(h, &q, out);
    } else {
        log_error("📱 [VOICE-SMS] out of memory building the Twilio request");
    }
    free(url);
    free(form);
    curl_easy_cleanup(h);
}
