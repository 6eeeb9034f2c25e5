/*
 * sms.c - the one way an action texts someone.
 *
 * Owns: destination checks (E.164, no UK landlines), development safety
 * (redirect to SMS_TEST_NUMBERS or stay mock), rate limits counted in
 * sms_messages (per intended recipient and global, so every process that
 * shares the database enforces one limit), choosing the transport (mock or
 * Twilio, sms_twilio.c) and the single sms_messages row of every message.
 * Segment counting (GSM-7 / UCS-2) lives here too.
 *
 * Row life: one INSERT inside a short serialised transaction reserves the
 * message and counts the window (see reserve()); the row starts as 'unknown' for a
 * real send (if we die mid-send the truth is "may have gone") and one UPDATE
 * records the outcome. Must not touch sockets or sessions. Worker thread;
 * struct sms is read-only after sms_new.
 */
#define LOG_MODULE "sms"

#include "sms/sms.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/norm.h"
#include "core/util.h"
#include "db/db.h"
#include "sms/internal.h"

#define SMS_BODY_MAX 1600                /* Twilio refuses longer bodies (21617) */
#define SMS_OPTOUT_WINDOW_S (30 * 86400) /* a STOP seen this recently blocks sends */

struct sms {
    const struct cfg *cfg; /* borrowed */
    bool live;             /* ENABLE_REAL_SMS and Twilio configured */
};

/* Sentences for the agent (British English, no numbers read out). */
#define SAY_RATE_RECIPIENT                                                                         \
    "I've already sent you a few texts in the last few minutes, so I won't send another just "     \
    "now. Please check your messages, and I can try again a little later."
#define SAY_RATE_GLOBAL                                                                            \
    "Our text service is very busy right now, so I couldn't send that text. I can try again in "   \
    "a few minutes."
#define SAY_INVALID "The number we have on file doesn't look right, so I can't send a text to it."
#define SAY_LANDLINE "The number we have on file is a landline, so I can't send a text to it."
#define SAY_NOT_MOBILE                                                                             \
    "The number we have on file isn't a mobile number, so I can't send a text to it."
#define SAY_EMPTY "I couldn't send the text message just now."
#define SAY_OPTED_OUT                                                                              \
    "That number has opted out of our texts by replying STOP, so I can't text it. Texting START "  \
    "to us turns them back on."
#define SAY_DB "I couldn't send the text message just now."

/* ---- lifecycle ---- */

/* Plain http:// to Twilio would carry the auth token in clear: only for a loopback stand-in. */
static bool base_is_safe(const char *base)
{
    static const char *const ok[] = {"https://",          "http://127.0.0.1:", "http://127.0.0.1/",
                                     "http://localhost:", "http://localhost/", "http://[::1]:"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strncmp(base, ok[i], strlen(ok[i])))
            return true;
    return false;
}

int sms_new(struct sms **out, const struct cfg *cfg, struct err *e)
{
    if (cfg->enable_real_sms && !base_is_safe(cfg->twilio_api_base))
        return err_set(e, ERR_CONFIG, NULL,
                       "TWILIO_API_BASE must be https:// (plain http only to a loopback "
                       "stand-in); refusing to send the Twilio credentials in clear");
    struct sms *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, NULL, "sms_new: out of memory");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(s);
        return err_set(e, ERR_INTERNAL, NULL, "sms_new: curl_global_init failed");
    }
    s->cfg = cfg;
    s->live = cfg->enable_real_sms && *cfg->twilio_account_sid && *cfg->twilio_auth_token &&
              *cfg->twilio_from_number;
    log_info("📱 [VOICE-SMS] transport=%s env=%s test_numbers=%d rate=%d/%d global=%d/%d",
             s->live ? "twilio" : "mock",
             cfg->app_env == CFG_ENV_PRODUCTION ? "production" : "development",
             cfg->n_sms_test_numbers, cfg->sms_rate.count, cfg->sms_rate.window_s,
             cfg->sms_global_rate.count, cfg->sms_global_rate.window_s);
    if (cfg->app_env == CFG_ENV_PRODUCTION && !s->live)
        log_warn("📱 [VOICE-SMS] APP_ENV=production but ENABLE_REAL_SMS is off: texts are only "
                 "recorded (mode=mock), nobody receives them");
    if (*cfg->smtp_url && !*cfg->smtp_from)
        log_warn("📧 [VOICE-MAIL] SMTP_URL is set but SMTP_FROM is not: email is disabled");
    *out = s;
    return 0;
}

void sms_free(struct sms *s)
{
    if (!s)
        return;
    curl_global_cleanup();
    free(s);
}

bool sms_is_live(const struct sms *s)
{
    return s && s->live;
}

/* ---- segments ---- */

/* Decode one UTF-8 code point at *p (advances); invalid bytes give U+FFFD. */
static unsigned long utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned long c = s[0];
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0) {
        *p = s + 1;
        return 0xFFFD;
    }
    c = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + 1;
            return 0xFFFD;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *p = s + n + 1;
    return c;
}

/* GSM 03.38 septets for code point c: 1 basic, 2 extension (ESC + char), 0 not in GSM-7. */
static int gsm7_septets(unsigned long c)
{
    static const unsigned short basic_hi[] = {
        0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8,
        0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3,
        0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6,
        0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0};
    if (c == '\n' || c == '\r')
        return 1;
    if (c == '\f' || c == 0x20AC || (c < 0x80 && strchr("^{}\\[~]|", (int)c)))
        return 2;
    if (c >= 0x20 && c < 0x7F)
        return c == '`' ? 0 : 1;
    for (size_t i = 0; i < sizeof basic_hi / sizeof basic_hi[0]; i++)
        if (basic_hi[i] == c)
            return 1;
    return 0;
}

/*
 * Greedy split into segments of `single` units, or `multi` units once
 * split; a unit group (escape pair, surrogate pair) never straddles two
 * segments, as handsets and Twilio split them.
 */
static int count_segments(const unsigned char *units, int n, int total, int single, int multi)
{
    if (total == 0)
        return 0;
    if (total <= single)
        return 1;
    int segs = 1, used = 0;
    for (int i = 0; i < n; i++) {
        if (used + units[i] > multi) {
            segs++;
            used = 0;
        }
        used += units[i];
    }
    return segs;
}

int sms_segments(const char *body, bool *ucs2)
{
    const unsigned char *p = (const unsigned char *)(body ? body : "");
    size_t cap = strlen((const char *)p) + 1;
    unsigned char *gsm = malloc(cap), *u16 = malloc(cap);
    int n = 0, gsm_total = 0, u16_total = 0;
    bool is_ucs2 = false;
    if (!gsm || !u16) {
        free(gsm);
        free(u16);
        if (ucs2)
            *ucs2 = true;
        return 1;
    }
    while (*p) {
        unsigned long c = utf8_next(&p);
        int sept = gsm7_septets(c);
        if (!sept)
            is_ucs2 = true;
        gsm[n] = (unsigned char)sept;
        u16[n] = c > 0xFFFF ? 2 : 1;
        gsm_total += sept;
        u16_total += u16[n];
        n++;
    }
    int segs = is_ucs2 ? count_segments(u16, n, u16_total, 70, 67)
                       : count_segments(gsm, n, gsm_total, 160, 153);
    free(gsm);
    free(u16);
    if (ucs2)
        *ucs2 = is_ucs2;
    return segs;
}

/* Characters (code points) in a UTF-8 string. */
static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_seq_ok(const unsigned char *p)
{
    const unsigned char *q = p;
    unsigned long c = utf8_next(&q);
    size_t k = (size_t)(q - p);
    if (c == 0xFFFD && !(k == 3 && p[0] == 0xEF))
        return 0; /* utf8_next's marker for a bad byte, not a real U+FFFD */
    if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF || (k == 2 && c < 0x80) ||
        (k == 3 && c < 0x800) || (k == 4 && c < 0x10000))
        return 0;
    return k;
}

/* True when s is well-formed UTF-8 (what Twilio and a utf8mb4 column accept). */
static bool utf8_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = utf8_seq_ok(p);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

/* ---- destination checks ---- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/*
 * NULL when to may be texted, else our error code and a sentence.
 * E.164 is + and 8..15 digits, no leading 0. A UK number must be a mobile
 * (^\+447[1-57-9]\d{8}$ or Isle of Man +447624): 01/02/03 are landlines,
 * 070 personal numbers, 076 pagers, 080/084/087/09 not textable.
 */
static const char *check_destination(const char *to, const char **say)
{
    size_t n = to ? strlen(to) : 0;
    if (n < 9 || n > 16 || to[0] != '+' || to[1] == '0' || !all_digits(to + 1, n - 1)) {
        *say = SAY_INVALID;
        return "invalid_number";
    }
    if (strncmp(to, "+44", 3) || norm_is_uk_mobile(to))
        return NULL;
    if (to[3] == '1' || to[3] == '2' || to[3] == '3') {
        *say = SAY_LANDLINE;
        return "landline";
    }
    if (n != 13) {
        *say = SAY_INVALID;
        return "invalid_number";
    }
    *say = SAY_NOT_MOBILE;
    return "not_mobile";
}

/* ---- storage ---- */

/*
 * The body as stored: long token-like runs (a link's secret, 24+ URL-safe
 * characters) are cut to their first 4 characters, so the outbox never
 * holds a usable single-use link. Caller frees.
 */
static char *redact_body(const char *body)
{
    size_t n = strlen(body);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && (body[j] == '-' || body[j] == '_' || (body[j] >= '0' && body[j] <= '9') ||
                         (body[j] >= 'a' && body[j] <= 'z') || (body[j] >= 'A' && body[j] <= 'Z')))
            j++;
        if (j - i >= 24) {
            memcpy(out + o, body + i, 4);
            memcpy(out + o + 4, "...", 3);
            o += 7;
            i = j;
        } else if (j > i) {
            memcpy(out + o, body + i, j - i);
            o += j - i;
            i = j;
        } else if ((unsigned char)body[i] >= 0x80) {
            /* Copy a well-formed sequence whole; a bad byte becomes '?'. */
            size_t k = utf8_seq_ok((const unsigned char *)body + i);
            if (k) {
                memcpy(out + o, body + i, k);
                o += k;
                i += k;
            } else {
                out[o++] = '?';
                i++;
            }
        } else {
            out[o++] = body[i++];
        }
    }
    out[o] = '\0';
    return out;
}

static void set_refused(struct sms_result *r, const char *code, const char *say)
{
    r->sent = false;
    util_strlcpy(r->status, "refused", sizeof r->status);
    util_strlcpy(r->error_code, code, sizeof r->error_code);
    util_strlcpy(r->say, say, sizeof r->say);
}

static int insert_row(struct db *db, const char *intended, const char *body, struct sms_result *r,
                      const char *created, struct err *e)
{
    static const char sql[] =
        "INSERT INTO sms_messages (to_number, intended_to, body, mode, status, provider_sid, "
        "error_code, segments, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    char *stored = redact_body(body ? body : "");
    if (!stored)
        return err_set(e, ERR_NOMEM, SAY_DB, "sms: out of memory");
    struct db_val a[] = {DB_S(r->to),
                         DB_S(intended),
                         DB_S(stored),
                         DB_S(r->mode),
                         DB_S(r->status),
                         DB_S(r->provider_sid[0] ? r->provider_sid : NULL),
                         DB_S(r->error_code[0] ? r->error_code : NULL),
                         DB_I(r->segments),
                         DB_S(created)};
    struct db_rows rows = {0};
    int rc = db_exec(db, sql, a, 9, &rows, e);
    free(stored);
    if (rc == 0)
        r->row_id = rows.insert_id;
    db_rows_free(&rows);
    return rc;
}

static int update_row(struct db *db, const struct sms_result *r, struct err *e)
{
    static const char sql[] = "UPDATE sms_messages SET status = ?, provider_sid = ?, "
                              "error_code = ?, segments = ? WHERE id = ?";
    struct db_val a[] = {DB_S(r->status), DB_S(r->provider_sid[0] ? r->provider_sid : NULL),
                         DB_S(r->error_code[0] ? r->error_code : NULL), DB_I(r->segments),
                         DB_I(r->row_id)};
    return db_run(db, sql, a, 5, e);
}

static int count_rows(struct db *db, const char *sql, const struct db_val *a, int na, long long *n,
                      struct err *e)
{
    struct db_rows rows = {0};
    int rc = db_exec(db, sql, a, na, &rows, e);
    if (rc == 0)
        *n = db_cell_int(&rows, 0, "n", 0);
    db_rows_free(&rows);
    return rc;
}

/* ---- routing (development safety) ---- */

/* Decide mode and the number actually texted. */
static void plan_route(const struct sms *s, const char *intended, struct sms_result *r)
{
    const struct cfg *c = s->cfg;
    util_strlcpy(r->to, intended ? intended : "", sizeof r->to);
    if (!s->live) {
        util_strlcpy(r->mode, "mock", sizeof r->mode);
        return;
    }
    if (c->app_env == CFG_ENV_PRODUCTION || cfg_is_test_number(c, r->to)) {
        util_strlcpy(r->mode, "live", sizeof r->mode);
        return;
    }
    /* Development: never a real customer. */
    if (c->n_sms_test_numbers > 0) {
        util_strlcpy(r->mode, "redirected", sizeof r->mode);
        util_strlcpy(r->to, c->sms_test_numbers[0], sizeof r->to);
    } else {
        util_strlcpy(r->mode, "mock", sizeof r->mode);
    }
}

/* ---- rate limits ---- */

/*
 * Inside the reservation transaction: is the window full? Counts every
 * message that was or may have been sent (all but 'refused'), our own new
 * row included, so "3/600" allows the 3rd and refuses the 4th.
 */
static int over_limit(struct db *db, const struct cfg *c, const char *intended, long long id,
                      const char **code, const char **say, struct err *e)
{
    long long now = util_now(), n = 0;
    char since[32];
    int rc;
    *code = NULL;
    if (c->sms_rate.count > 0) {
        db_utc_text(now - c->sms_rate.window_s, since, sizeof since);
        const char *sp = since;
        struct db_val a[] = {DB_S(intended), DB_S(sp), DB_I(id)};
        rc = count_rows(db,
                        "SELECT COUNT(*) AS n FROM sms_messages WHERE intended_to = ? AND "
                        "created_at >= ? AND id <= ? AND status <> 'refused'",
                        a, 3, &n, e);
        if (rc)
            return rc;
        if (n > c->sms_rate.count) {
            *code = "rate_limited";
            *say = SAY_RATE_RECIPIENT;
            return 0;
        }
    }
    if (c->sms_global_rate.count > 0) {
        db_utc_text(now - c->sms_global_rate.window_s, since, sizeof since);
        const char *sp = since;
        struct db_val a[] = {DB_S(sp), DB_I(id)};
        rc = count_rows(db,
                        "SELECT COUNT(*) AS n FROM sms_messages WHERE created_at >= ? AND "
                        "id <= ? AND status <> 'refused'",
                        a, 2, &n, e);
        if (rc)
            return rc;
        if (n > c->sms_global_rate.count) {
            *code = "rate_limited"; /* global ceiling; the sentence differs */
            *say = SAY_RATE_GLOBAL;
        }
    }
    return 0;
}

/*
 * Write the row and apply the limits in one transaction, serialised across
 * every process that shares the database: the transaction first takes the
 * row lock that all senders contend for (db_lock_serial: an UPDATE of
 * schema_migrations' version-1 row, which always exists and which nothing
 * else writes at run time). SQLite's BEGIN IMMEDIATE already holds the write lock; on InnoDB an
 * INSERT alone would not stop two REPEATABLE READ transactions from each
 * counting the other's row as missing. The lock is held for one INSERT and
 * two COUNTs, never across the HTTP send.
 */
static int reserve(const struct sms *s, struct db *db, const char *intended, const char *body,
                   struct sms_result *r, struct err *e)
{
    char now[32];
    const char *code = NULL, *say = NULL;
    db_utc_text(util_now(), now, sizeof now);
    util_strlcpy(r->status, strcmp(r->mode, "mock") ? "unknown" : "mock", sizeof r->status);
    int rc = db_begin(db, e);
    if (rc)
        return rc;
    rc = db_lock_serial(db, e);
    if (!rc)
        rc = insert_row(db, intended, body, r, now, e);
    if (!rc)
        rc = over_limit(db, s->cfg, intended, r->row_id, &code, &say, e);
    if (!rc && code) {
        set_refused(r, code, say);
        rc = update_row(db, r, e);
    }
    if (!rc)
        rc = db_commit(db, e);
    if (rc) {
        db_rollback(db);
        r->row_id = 0;
    }
    return rc;
}

/* A STOP (21610) recorded for this number recently: don't ask Twilio again. */
static int opted_out(struct db *db, const char *to, bool *out, struct err *e)
{
    char since[32];
    long long n = 0;
    db_utc_text(util_now() - SMS_OPTOUT_WINDOW_S, since, sizeof since);
    const char *sp = since;
    struct db_val a[] = {DB_S(to), DB_S(sp)};
    int rc = count_rows(db,
                        "SELECT COUNT(*) AS n FROM sms_messages WHERE to_number = ? AND "
                        "error_code = '21610' AND created_at >= ?",
                        a, 2, &n, e);
    *out = n > 0;
    return rc;
}

/* ---- transport ---- */

static void deliver(const struct sms *s, const char *body, struct sms_result *r)
{
    if (!strcmp(r->mode, "mock")) {
        r->sent = true;
        util_strlcpy(r->status, "mock", sizeof r->status);
        return;
    }
    struct sms__tw_result tw;
    sms__twilio_send(s->cfg, r->to, body, &tw);
    util_strlcpy(r->status, tw.status, sizeof r->status);
    util_strlcpy(r->provider_sid, tw.sid, sizeof r->provider_sid);
    util_strlcpy(r->error_code, tw.error_code, sizeof r->error_code);
    if (tw.segments > 0)
        r->segments = tw.segments;
    r->sent = !strcmp(tw.status, "queued");
    if (!r->sent)
        util_strlcpy(r->say, tw.say, sizeof r->say);
}

/* A message refused before reservation (bad number, empty body, opted out). */
static int refuse_early(struct db *db, const char *intended, const char *body, struct sms_result *r,
                        const char *code, const char *say, struct err *e)
{
    char now[32];
    db_utc_text(util_now(), now, sizeof now);
    set_refused(r, code, say);
    log_warn("📱 [VOICE-SMS] SMS not sent: reason=%s mode=%s to=%s", code, r->mode, r->to);
    int rc = insert_row(db, intended, body, r, now, e);
    if (rc)
        log_error("📱 [VOICE-SMS] could not record refused SMS: %s", e ? e->detail : "");
    return rc;
}

static void log_outcome(const struct sms_result *r, const char *intended)
{
    if (r->sent && !strcmp(r->mode, "redirected"))
        log_info("📱 [VOICE-SMS] SMS sent successfully mode=redirected to=%s intended=%s sid=%s "
                 "segments=%d id=%lld",
                 r->to, intended, r->provider_sid, r->segments, r->row_id);
    else if (r->sent)
        log_info("📱 [VOICE-SMS] SMS sent successfully mode=%s to=%s sid=%s segments=%d id=%lld",
                 r->mode, r->to, r->provider_sid[0] ? r->provider_sid : "-", r->segments,
                 r->row_id);
    else
        log_warn("📱 [VOICE-SMS] SMS not sent: status=%s reason=%s mode=%s to=%s id=%lld", r->status,
                 r->error_code, r->mode, r->to, r->row_id);
}

int sms_send(struct sms *s, struct db *db, const char *to_e164, const char *body,
             struct sms_result *r, struct err *e)
{
    const char *why, *say = NULL;
    bool stop = false;
    char intended[24];
    memset(r, 0, sizeof *r);
    if (!s || !db) {
        util_strlcpy(r->status, "failed", sizeof r->status);
        util_strlcpy(r->say, SAY_DB, sizeof r->say);
        return err_set(e, ERR_INTERNAL, SAY_DB, "sms_send: no %s", s ? "database" : "sms");
    }
    /* Bounded copy: whatever the caller passed fits the columns. */
    util_strlcpy(intended, to_e164 ? to_e164 : "", sizeof intended);
    r->segments = sms_segments(body, &r->ucs2);
    plan_route(s, intended, r);

    why = check_destination(to_e164, &say);
    if (!why && (!body || !*body || utf8_len(body) > SMS_BODY_MAX || !utf8_valid(body))) {
        why = !body || !*body ? "empty_body" : !utf8_valid(body) ? "bad_encoding" : "body_too_long";
        say = SAY_EMPTY;
    }
    if (why)
        return refuse_early(db, intended, body, r, why, say, e);

    int rc = opted_out(db, r->to, &stop, e);
    if (!rc && stop)
        return refuse_early(db, intended, body, r, "opted_out", SAY_OPTED_OUT, e);
    if (!rc)
        rc = reserve(s, db, intended, body, r, e);
    if (rc) {
        r->sent = false;
        util_strlcpy(r->status, "failed", sizeof r->status);
        util_strlcpy(r->say, SAY_DB, sizeof r->say);
        log_error("📱 [VOICE-SMS] SMS not sent: could not record it (%s)", e ? e->detail : "");
        return rc;
    }
    if (!strcmp(r->status, "refused")) {
        log_outcome(r, intended);
        return 0;
    }
    if (!strcmp(r->mode, "redirected"))
        log_info("📱 [VOICE-SMS] development: %s is not a test number, texting %s instead", intended,
                 r->to);
    deliver(s, body, r);
    if (strcmp(r->mode, "mock")) {
        struct err ue = {0};
        if (update_row(db, r, &ue))
            log_error("📱 [VOICE-SMS] could not record SMS outcome id=%lld status=%s: %s", r->row_id,
                      r->status, ue.detail);
    }
    log_outcome(r, intended);
    return 0;
}
