/*
 * act_callback.c - "schedule_callback": book a callback in business hours
 * (Europe/London) and text a confirmation.
 *
 * Owns: the missed_calls row (callback_time in UTC, source 'voice',
 * call_sid). The number called back and texted is the user's number on file,
 * or, when the caller is not on file, the number Twilio gave us for this call
 * (the signed From): never a number from the model. A clock time outside
 * business hours books nothing: success:false, error.code
 * outside_business_hours, and the next slot proposed in words and in
 * data.proposed_time. A phrase without a clock time ("asap", "tomorrow",
 * "Monday") that lands outside hours books the next opening directly
 * (data.next_opening=true, said in the message). At most 90 days ahead
 * (the spoken date carries no year). An SMS failure
 * never undoes the callback (data.sms.sent=false, said in the message; a
 * text whose fate is unknown is spoken as "may or may not have gone").
 * Worker thread.
 */
#include "actions/internal.h"

#include "core/cfg.h"
#include "core/util.h"
#include "core/when.h"
#include "db/db.h"
#include "sms/sms.h"
#include "sms/texts.h"

#include <stdio.h>
#include <string.h>

#define LOG_MODULE "act_callback"
#include "core/log.h"

#define CALLBACK_HORIZON_S (90 * 86400LL) /* callbacks are booked at most this far ahead */

const char act__callback_desc[] =
    "Book a callback from our team at the time the caller wants (UK time, business hours "
    "Monday to Friday 9am to 6pm) and text them a confirmation. Pass the time as they said it, "
    "for example 'tomorrow at 3pm' or 'Monday morning', or as ISO 8601.";

const char act__callback_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"preferred_time\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":100,"
    "\"description\":\"When to call back, as the caller said it ('tomorrow at 3pm', 'in two "
    "hours') or ISO 8601.\"},"
    "\"reason\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":300,"
    "\"description\":\"Short reason for the callback, in a few words.\"}"
    "},\"required\":[\"preferred_time\",\"reason\"],\"additionalProperties\":false}";

/* Whom to call back: the number on file for the call's user, else the caller's own. */
static int callback_number(struct act_call *c, struct act__user *u, char *phone, size_t n)
{
    int rc;

    memset(u, 0, sizeof *u);
    if (c->user_id > 0 && (rc = act__user_find(c->db, c->user_id, NULL, u, &c->err)) < 0)
        return rc;
    util_strlcpy(phone, u->phone[0] ? u->phone : c->session->caller, n);
    if (!phone[0])
        return act__fail(c, ERR_NO_CALLER,
                         "I can't see the number you're calling from, so I can't book a callback "
                         "on this call. Could you tell me the phone number on your account and "
                         "your claim reference?",
                         "no number to call back");
    return 0;
}

/*
 * The time to book in *t. Outside business hours: a phrase with a clock time
 * ("Saturday at 10am", ISO 8601) books nothing and proposes the next slot
 * (outside_business_hours), because the caller chose that time; a phrase
 * without one ("asap", "tomorrow", "Monday", "Saturday morning") books the
 * next opening directly (*moved = true), because any opening time fits it.
 */
static int check_time(struct act_call *c, long long now, long long *t, bool *moved)
{
    struct when_hours h;
    bool explicit_time = false;
    char spoken[64], utc[24];

    if (when_parse(act__arg_str(c, "preferred_time"), now, t, &explicit_time)) {
        json_object_set_new(c->data, "field", json_string("preferred_time"));
        return act__fail(c, ERR_BAD_TIME, NULL, "time not understood");
    }
    if (*t <= now)
        return act__fail(c, ERR_PAST_TIME, NULL, "time in the past");
    if (*t > now + CALLBACK_HORIZON_S) { /* the spoken date has no year: keep it unambiguous */
        json_object_set_new(c->data, "field", json_string("preferred_time"));
        return act__fail(c, ERR_BAD_TIME,
                         "I can only book a callback up to three months ahead. Could you give me "
                         "a day before then?",
                         "more than 90 days ahead");
    }
    when_hours_from_cfg(c->env->cfg, &h);
    if (when_in_hours(*t, &h))
        return 0;
    long long next = when_next_slot(*t, &h);
    if (!explicit_time) {
        *t = next;
        *moved = true;
        json_object_set_new(c->data, "next_opening", json_true());
        return 0;
    }
    char say[sizeof c->err.say];
    when_format_spoken(next, spoken, sizeof spoken);
    when_format_utc(next, utc, sizeof utc);
    json_object_set_new(c->data, "proposed_time", json_string(utc));
    json_object_set_new(c->data, "proposed_time_spoken", json_string(spoken));
    snprintf(say, sizeof say,
             "We're closed at that time. The next time we could call you is %s. Would that suit "
             "you?",
             spoken);
    return act__fail(c, ERR_OUTSIDE_HOURS, say, "outside business hours");
}

static int insert_callback(struct act_call *c, const char *phone, long long t, long long *id)
{
    static const char sql[] =
        "INSERT INTO missed_calls (user_id, phone, callback_time, reason, status, source, "
        "call_sid, created_at) VALUES (?, ?, ?, ?, 'pending', 'voice', ?, ?)";
    char utc[24], now[24];
    struct db_rows r = {0};

    when_format_utc(t, utc, sizeof utc);
    db_utc_text(util_now(), now, sizeof now);
    const struct db_val a[] = {c->user_id > 0 ? DB_I(c->user_id) : DB_NIL,
                               DB_S(phone),
                               ACT__TXT(utc),
                               DB_S(act__arg_str(c, "reason")),
                               DB_S(c->session->call_sid[0] ? c->session->call_sid : NULL),
                               ACT__TXT(now)};
    if (db_exec(c->db, sql, a, 6, &r, &c->err))
        return act__db_err(&c->err, "missed_calls insert");
    *id = r.insert_id;
    db_rows_free(&r);
    json_object_set_new(c->data, "callback_id", json_integer(*id));
    json_object_set_new(c->data, "callback_time", json_string(utc));
    return 0;
}

enum confirm_outcome { CONFIRM_SENT, CONFIRM_NOT_SENT, CONFIRM_MAYBE };

/*
 * The confirmation; its failure is reported, never returned as an error.
 * CONFIRM_MAYBE: Twilio timed out or answered 5xx after the request went
 * out (status unknown), so the text may or may not have gone; say gets
 * sms_result.say, the sentence for that case.
 */
static enum confirm_outcome confirm(struct act_call *c, const struct act__user *u,
                                    const char *phone, const char *spoken, char *say, size_t saysz)
{
    struct sms_result r;
    struct err e = {0};
    char body[SMS_TEXT_MAX];
    int rc;

    sms_text_callback(body, sizeof body, c->env->cfg->company_name, u->first_name, spoken);
    memset(&r, 0, sizeof r);
    rc = sms_send(c->env->sms, c->db, phone, body, &r, &e);
    if (rc < 0)
        log_warn("callback confirmation not recorded: %s", e.detail);
    json_object_set_new(c->data, "sms",
                        json_pack("{s:b, s:s, s:s, s:s?}", "sent", rc == 0 && r.sent, "mode",
                                  r.mode[0] ? r.mode : "none", "status",
                                  r.status[0] ? r.status : "failed", "error_code",
                                  r.error_code[0] ? r.error_code : NULL));
    if (rc == 0 && r.sent)
        return CONFIRM_SENT;
    if (rc == 0 && !strcmp(r.status, "unknown")) {
        util_strlcpy(say, r.say, saysz);
        return CONFIRM_MAYBE;
    }
    return CONFIRM_NOT_SENT;
}

int act__callback_run(struct act_call *c)
{
    struct act__user u;
    char phone[24], spoken[64];
    long long now = util_now(), t = 0, id = 0;
    bool moved = false;
    int rc;

    if ((rc = callback_number(c, &u, phone, sizeof phone)))
        return rc;
    if ((rc = check_time(c, now, &t, &moved)))
        return rc;
    if ((rc = insert_callback(c, phone, t, &id)))
        return rc;
    when_format_spoken(t, spoken, sizeof spoken);
    json_object_set_new(c->data, "callback_time_spoken", json_string(spoken));
    char say[sizeof((struct sms_result *)0)->say] = "";
    enum confirm_outcome sent = confirm(c, &u, phone, spoken, say, sizeof say);
    char when[96];
    if (moved)
        snprintf(when, sizeof when, "the next time we're open, %s", spoken);
    else
        snprintf(when, sizeof when, "%s", spoken);
    const char *change = moved ? " If that doesn't suit, just tell me a better time." : "";
    if (sent == CONFIRM_SENT)
        snprintf(c->message, sizeof c->message,
                 "I've booked your callback for %s, and I've sent you a text to confirm.%s", when,
                 change);
    else if (sent == CONFIRM_MAYBE)
        snprintf(c->message, sizeof c->message,
                 "I've booked your callback for %s. %s The callback is booked either way.%s", when,
                 say[0] ? say : "I'm not sure whether the confirmation text went through.", change);
    else
        snprintf(c->message, sizeof c->message,
                 "I've booked your callback for %s, but I couldn't send the confirmation text "
                 "just now. The callback is still booked.%s",
                 when, change);
    return 0;
}
