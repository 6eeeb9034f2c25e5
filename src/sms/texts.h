/*
 * texts.h - the words of the messages we send (SMS and email).
 *
 * Short, British English, the company's name, the customer's first name
 * only, and one SMS segment where possible: each builder tries its fullest
 * wording first and falls back to shorter ones until the text fits one
 * segment (160 GSM-7 characters). Pure functions, any thread.
 */
#ifndef VWS_SMS_TEXTS_H
#define VWS_SMS_TEXTS_H

#include <stddef.h>

#define SMS_TEXT_MAX 480 /* out buffers: room for 3 segments */

/*
 * Callback confirmation. when_text is already in UK local time and
 * readable, e.g. "Tue 25 Nov at 3:00pm". first_name may be NULL/"" (then
 * "Hi,"), only its first word is used. Returns the segment count of out.
 *   "Hi Sarah, Resolve My Claim will call you back on Tue 25 Nov at 3:00pm.
 *    Thank you."
 */
int sms_text_callback(char *out, size_t outsz, const char *company, const char *first_name,
                      const char *when_text);

/*
 * Secure link. link_type "portal" | "documents" | "review" (others read as
 * "portal"); ttl_hours > 0 adds "valid for N hours" where it fits (not for
 * review). Returns the segment count of out.
 *   "Hi Sarah, here is your secure Resolve My Claim portal link (valid for 24
 *    hours): https://... Please don't share it." (shorter when that doesn't fit)
 */
int sms_text_link(char *out, size_t outsz, const char *company, const char *first_name,
                  const char *link_type, const char *url, int ttl_hours);

/* Email version of a link: subject and a short plain-text body. */
void sms_text_link_email(char *subject, size_t subjsz, char *body, size_t bodysz,
                         const char *company, const char *first_name, const char *link_type,
                         const char *url, int ttl_hours);

#endif
