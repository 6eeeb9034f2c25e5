/*
 * sms.h - outbound messages (SMS and email) for the actions.
 *
 * sms_send() is the one way an action texts someone: it applies development
 * safety (redirect / mock), rate limits counted in sms_messages, sends
 * through the transport (mock, or Twilio when ENABLE_REAL_SMS=true), and
 * records exactly one sms_messages row whatever happens. It never throws away
 * the caller's core action: the result says what happened.
 *
 * Threads: sms_send/mail_send run on a worker (they block on HTTP/SMTP and
 * the database); struct sms is read-only after sms_new and shared.
 */
#ifndef VWS_SMS_H
#define VWS_SMS_H

#include <stdbool.h>

struct cfg;
struct db;
struct err;
struct sms;

struct sms_result {
    bool sent;            /* accepted (Twilio 201) or recorded in mock mode */
    char mode[12];        /* mock | live | redirected */
    char status[16];      /* mock | queued | failed | unknown | refused */
    char to[24];          /* number actually texted (E.164) */
    char provider_sid[40];/* Twilio message SID, "" when none */
    char error_code[16];  /* Twilio error code or our reason ("rate_limited"), "" when none */
    char say[240];        /* sentence for the agent when !sent */
    int segments;         /* SMS segments of the body */
    bool ucs2;            /* body needs UCS-2 */
    long long row_id;     /* sms_messages.id */
};

/* cfg borrowed (outlives the sms). */
int sms_new(struct sms **out, const struct cfg *cfg, struct err *e);
void sms_free(struct sms *s);
bool sms_is_live(const struct sms *s);     /* ENABLE_REAL_SMS and Twilio configured */

/*
 * Send body to to_e164 (a number on file, never one the model supplied).
 * Returns 0 when the message was handled (sent or not: see r->sent), or a
 * negative ERR_* when even the record could not be written. Worker thread.
 */
int sms_send(struct sms *s, struct db *db, const char *to_e164, const char *body,
             struct sms_result *r, struct err *e);

/* Segment count for body (GSM-7 160/153, UCS-2 70/67). */
int sms_segments(const char *body, bool *ucs2);

/* ---- email ---- */

bool mail_configured(const struct cfg *cfg);
/* Send a plain-text email to the address on file. Worker thread. */
int mail_send(const struct cfg *cfg, const char *to, const char *subject, const char *body,
              struct err *e);

#endif
