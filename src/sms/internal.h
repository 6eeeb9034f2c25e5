/*
 * internal.h - declarations shared by the files of src/sms only.
 *
 * sms.c decides whether and where a message goes and records it;
 * sms_twilio.c speaks the Twilio Messages API. Nothing outside src/sms
 * includes this file.
 */
#ifndef VWS_SMS_INTERNAL_H
#define VWS_SMS_INTERNAL_H

#include <stdbool.h>

struct cfg;

/* Outcome of one Twilio send (all attempts). */
struct sms__tw_result {
    char status[16];     /* queued | failed | unknown */
    char sid[40];        /* SM... from a 201, "" otherwise */
    char error_code[16]; /* Twilio code ("21211"), "http_500", "timeout", ... ; "" on 201 */
    char say[240];       /* sentence for the agent when not queued */
    int http_status;     /* last HTTP status, 0 = no response */
    int attempts;        /* HTTP requests made (1..3) */
    int segments;        /* num_segments from the 201 body, 0 = not given */
    bool opted_out;      /* 21610: recipient replied STOP */
};

/*
 * POST one message to {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json,
 * retrying only 429/503 (at most 3 attempts, full-jitter backoff, Retry-After).
 * Never logs the token or a full number. Worker thread. Always fills out.
 */
void sms__twilio_send(const struct cfg *cfg, const char *to, const char *body,
                      struct sms__tw_result *out);

/* Map a Twilio error (code, HTTP status) to our error_code text and a spoken sentence. */
void sms__twilio_map_error(long code, int http_status, struct sms__tw_result *out);

/* Backoff before retry n (1-based) in ms: full jitter over min(100*2^n, 3000). */
long sms__backoff_ms(int n, long retry_after_ms);

#endif
