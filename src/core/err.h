/*
 * err.h - error codes for the program, words for the caller.
 *
 * One X-macro table lists every code with its wire name (the envelope's
 * error.code) and a default sentence the voice agent can say. Functions
 * return 0 on success and a negative ERR_* on failure; when a reason is
 * useful the caller passes a struct err. The first error set wins.
 * Any thread.
 */
#ifndef VWS_ERR_H
#define VWS_ERR_H

#define ERR_LIST(X)                                                                                \
    X(INVALID_ARGUMENTS, "invalid_arguments",                                                      \
      "Sorry, I didn't quite get the details for that. Could you say them again?")                 \
    X(NOT_FOUND, "not_found", "I couldn't find that record on your account.")                      \
    X(USER_NOT_FOUND, "user_not_found",                                                            \
      "I couldn't find an account with that number. Could you give me your claim reference so "    \
      "I can check another way?")                                                                  \
    X(NOT_VERIFIED, "verification_required",                                                       \
      "Before I can do that, I need to confirm who you are. Could you tell me your claim "         \
      "reference?")                                                                                \
    X(NO_CALLER, "caller_unknown",                                                                 \
      "I can't see a number on file for this call, so I can't do that right now. Could you give "  \
      "me the phone number on your account and your claim reference?")                             \
    X(FORBIDDEN, "forbidden", "I'm sorry, I can't help with that on this call.")                   \
    X(DB_UNAVAILABLE, "database_unavailable",                                                      \
      "I can't reach our records right now. I'm sorry about that. Would you like me to arrange "   \
      "a callback instead?")                                                                       \
    X(BUSY, "busy", "We're very busy at the moment. Could you give me a moment and try again?")    \
    X(TIMEOUT, "timeout", "That's taking longer than it should. Let me try something else.")       \
    X(BAD_TIME, "invalid_time",                                                                    \
      "Sorry, I didn't catch a time I can book. Could you say a day and a time, like tomorrow at " \
      "3pm?")                                                                                      \
    X(PAST_TIME, "time_in_past", "That time has already passed. What later time would suit you?") \
    X(OUTSIDE_HOURS, "outside_business_hours",                                                     \
      "We're closed at that time. Could you pick a time within our opening hours?")                \
    X(INVALID_PHONE, "invalid_phone_number",                                                       \
      "That doesn't sound like a UK phone number. Could you read it out again, digit by digit?")   \
    X(INVALID_CLAIM_REF, "invalid_claim_reference",                                                \
      "Claim references look like R M C dash and four digits. Could you read it out again?")       \
    X(NO_CONTACT, "no_contact_on_file",                                                            \
      "I don't have a contact detail on file to send that to. Our team can update it for you.")    \
    X(NOT_CONFIGURED, "not_configured", "I'm afraid that isn't available right now.")              \
    X(RATE_LIMITED, "rate_limited",                                                                \
      "I've already sent you a few messages just now, so I'll hold off for a little while.")       \
    X(TOO_SOON, "too_soon", "We've sent you that recently, so I won't send another just now.")     \
    X(SMS_FAILED, "sms_failed", "I couldn't send the text message just now.")                      \
    X(EMAIL_FAILED, "email_failed", "I couldn't send the email just now.")                         \
    X(UNKNOWN_ACTION, "unknown_action", "I can't do that, I'm afraid.")                            \
    X(BUDGET_EXCEEDED, "budget_exceeded",                                                          \
      "I've tried that too many times. Let me arrange for one of the team to call you back.")      \
    X(DUPLICATE, "duplicate", "I've already done that on this call.")                              \
    X(CONFIG, "config_error", "I'm afraid that isn't available right now.")                        \
    X(IO, "io_error", "Something went wrong on our side. Let me try that another way.")            \
    X(NOMEM, "out_of_memory", "Something went wrong on our side. Let me try that another way.")    \
    X(INTERNAL, "internal_error", "Something went wrong on our side. Let me try that another way.")

enum err_code {
    ERR_NONE = 0,
#define ERR__ENUM(sym, name, say) ERR__BASE_##sym,
    ERR__BASE_FIRST = 0,
    ERR_LIST(ERR__ENUM) ERR__COUNT_PLUS_ONE
#undef ERR__ENUM
};

/* Negative codes: ERR_NOT_FOUND == -ERR__BASE_NOT_FOUND, etc. */
#define ERR__NEG(sym) (-(int)ERR__BASE_##sym)
#define ERR_INVALID_ARGUMENTS ERR__NEG(INVALID_ARGUMENTS)
#define ERR_NOT_FOUND ERR__NEG(NOT_FOUND)
#define ERR_USER_NOT_FOUND ERR__NEG(USER_NOT_FOUND)
#define ERR_NOT_VERIFIED ERR__NEG(NOT_VERIFIED)
#define ERR_NO_CALLER ERR__NEG(NO_CALLER)
#define ERR_FORBIDDEN ERR__NEG(FORBIDDEN)
#define ERR_DB_UNAVAILABLE ERR__NEG(DB_UNAVAILABLE)
#define ERR_BUSY ERR__NEG(BUSY)
#define ERR_TIMEOUT ERR__NEG(TIMEOUT)
#define ERR_BAD_TIME ERR__NEG(BAD_TIME)
#define ERR_PAST_TIME ERR__NEG(PAST_TIME)
#define ERR_OUTSIDE_HOURS ERR__NEG(OUTSIDE_HOURS)
#define ERR_INVALID_PHONE ERR__NEG(INVALID_PHONE)
#define ERR_INVALID_CLAIM_REF ERR__NEG(INVALID_CLAIM_REF)
#define ERR_NO_CONTACT ERR__NEG(NO_CONTACT)
#define ERR_NOT_CONFIGURED ERR__NEG(NOT_CONFIGURED)
#define ERR_RATE_LIMITED ERR__NEG(RATE_LIMITED)
#define ERR_TOO_SOON ERR__NEG(TOO_SOON)
#define ERR_SMS_FAILED ERR__NEG(SMS_FAILED)
#define ERR_EMAIL_FAILED ERR__NEG(EMAIL_FAILED)
#define ERR_UNKNOWN_ACTION ERR__NEG(UNKNOWN_ACTION)
#define ERR_BUDGET_EXCEEDED ERR__NEG(BUDGET_EXCEEDED)
#define ERR_DUPLICATE ERR__NEG(DUPLICATE)
#define ERR_CONFIG ERR__NEG(CONFIG)
#define ERR_IO ERR__NEG(IO)
#define ERR_NOMEM ERR__NEG(NOMEM)
#define ERR_INTERNAL ERR__NEG(INTERNAL)

struct err {
    int code;          /* ERR_* (negative), 0 = none */
    char say[240];     /* one or two sentences safe to speak to the caller */
    char detail[256];  /* for logs only: SQLSTATE, HTTP status, errno; never spoken */
};

/* Wire name of a code ("not_found"); "ok" for 0, "internal_error" for unknown. Any thread. */
const char *err_name(int code);

/* Default spoken sentence for a code. Any thread. */
const char *err_say(int code);

/* Reset e to "no error". */
void err_clear(struct err *e);

/*
 * Set e (first error wins: does nothing if e->code is already set).
 * say: sentence for the caller, NULL = the code's default. detail_fmt: printf
 * format for the log-only detail, may be NULL. Returns code, so callers can
 * write `return err_set(e, ERR_X, NULL, "...")`. e may be NULL.
 */
int err_set(struct err *e, int code, const char *say, const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
