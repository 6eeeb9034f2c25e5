/*
 * act_user.c - "check_user_details": find the caller's account and raise
 * the call's identity (caller_id, or verified with a claim reference).
 *
 * Rules: the caller's own number (the signed From) on file gives caller_id;
 * with a claim reference on that account it gives verified. Any other
 * number needs a claim reference on that number's account, else the answer
 * is exactly the "not found" answer (no existence oracle). A successful
 * check of another number switches the call to that verified user.
 * Must not touch: anything but users/user_claims reads and the session's
 * identity. Worker thread.
 */
#include "actions/internal.h"

#include "core/cfg.h"
#include "core/norm.h"
#include "core/util.h"
#include "db/db.h"

#include <stdio.h>
#include <string.h>

#define LOG_MODULE "act_user"
#include "core/log.h"

const char act__user_desc[] =
    "Look up the caller's account by phone number and optionally confirm who they are with a "
    "claim reference. Call this at the start of a call about an existing claim. Use the number "
    "the caller is ringing from unless they give another one; a number that isn't theirs needs "
    "a claim reference on that account.";

const char act__user_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"phone_number\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":40,"
    "\"description\":\"The phone number on the account, as the caller said it (UK formats such "
    "as 07700 900001 are fine), or the word caller for the number they are calling from.\"},"
    "\"claim_reference\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":40,"
    "\"description\":\"A claim reference such as RMC-1001, to confirm the caller's identity.\"}"
    "},\"required\":[\"phone_number\"],\"additionalProperties\":false}";

/* The one answer for "no such user", "not your number and no reference" and
 * "reference not on that account": the same code and the same words. */
static int not_found(struct act_call *c, const char *why)
{
    json_object_set_new(c->data, "identity", json_string("none"));
    json_object_set_new(c->data, "next_steps",
                        json_string("Ask for the phone number on the account and a claim "
                                    "reference (RMC- and four digits), or offer a callback."));
    return act__fail(c, ERR_USER_NOT_FOUND, NULL, why);
}

/* The user's claims: at most ACT__LIST_MAX listed, *n the exact number. */
static int add_claims(struct act_call *c, long long user_id, int *n)
{
    static const char sql[] = "SELECT claim_reference, status FROM user_claims WHERE user_id = ? "
                              "ORDER BY claim_reference LIMIT ?";
    static const char count_sql[] = "SELECT COUNT(*) AS n FROM user_claims WHERE user_id = ?";
    struct db_rows r = {0};
    const struct db_val a[] = {DB_I(user_id), DB_I(ACT__LIST_MAX)};
    json_t *arr;

    if (db_exec(c->db, sql, a, 2, &r, &c->err))
        return act__db_err(&c->err, "claims list");
    arr = json_array();
    for (int i = 0; i < r.nrows; i++)
        json_array_append_new(arr, json_pack("{s:s?, s:s?}", "claim_reference",
                                             db_cell(&r, i, "claim_reference"), "status",
                                             db_cell(&r, i, "status")));
    *n = r.nrows;
    db_rows_free(&r);
    json_object_set_new(c->data, "claims", arr);
    if (*n == ACT__LIST_MAX) {
        struct db_rows k = {0};
        if (db_exec(c->db, count_sql, a, 1, &k, &c->err))
            return act__db_err(&c->err, "claims count");
        *n = (int)db_cell_int(&k, 0, "n", *n);
        db_rows_free(&k);
    }
    json_object_set_new(c->data, "claims_total", json_integer(*n));
    return 0;
}

/* Returns the call's identity level afterwards. */
static enum act_id_level raise_identity(struct act_call *c, long long user_id,
                                        enum act_id_level level)
{
    struct act__ident now;

    /* never lower: a verified call stays verified when the agent re-checks caller ID */
    act__ident_raise(c->session, user_id, level, &now);
    level = now.level;
    user_id = now.user_id;
    c->user_id = user_id;
    json_object_set_new(c->data, "identity",
                        json_string(level == ACT_ID_VERIFIED ? "verified" : "caller_id"));
    return level;
}

static int own_number(struct act_call *c, const struct act__user *u, const char *ref)
{
    long long claim_id = 0;
    int rc, n = 0;

    if (ref && (rc = act__claim_of_user(c->db, ref, u->id, &claim_id, NULL, &c->err)) < 0)
        return rc;
    bool verified =
        raise_identity(c, u->id, claim_id ? ACT_ID_VERIFIED : ACT_ID_CALLER) == ACT_ID_VERIFIED;
    json_object_set_new(c->data, "first_name", json_string(u->first_name));
    json_object_set_new(c->data, "verified", json_boolean(verified));
    verified = claim_id != 0; /* the words describe this check */
    if (verified || !c->env->cfg->require_verification)
        if ((rc = add_claims(c, u->id, &n)))
            return rc;
    if (ref && !claim_id)
        snprintf(c->message, sizeof c->message,
                 "I've found your account, %s, but that claim reference doesn't match it. Could "
                 "you check the reference and read it out again?",
                 u->first_name);
    else if (verified)
        snprintf(c->message, sizeof c->message,
                 "Thanks, %s. I've found your account and confirmed your claim %s, so you're "
                 "verified. You have %d claim%s with us.",
                 u->first_name, ref, n, n == 1 ? "" : "s");
    else if (c->env->cfg->require_verification)
        snprintf(c->message, sizeof c->message,
                 "I've found your account, %s. To keep it secure, could you tell me one of your "
                 "claim references?",
                 u->first_name);
    else
        snprintf(c->message, sizeof c->message,
                 "I've found your account, %s. You have %d claim%s with us.", u->first_name, n,
                 n == 1 ? "" : "s");
    return 0;
}

static int other_number(struct act_call *c, const struct act__user *u, const char *ref)
{
    long long claim_id = 0;
    int rc, n = 0;

    if (!ref)
        return not_found(c, "not the caller's number and no claim reference");
    if ((rc = act__claim_of_user(c->db, ref, u->id, &claim_id, NULL, &c->err)) < 0)
        return rc;
    if (!claim_id)
        return not_found(c, "claim reference not on that account");
    raise_identity(c, u->id, ACT_ID_VERIFIED);
    json_object_set_new(c->data, "first_name", json_string(u->first_name));
    json_object_set_new(c->data, "verified", json_true());
    if ((rc = add_claims(c, u->id, &n)))
        return rc;
    snprintf(c->message, sizeof c->message,
             "Thanks, %s. I've found the account and confirmed claim %s, so you're verified. "
             "There %s %d claim%s on it.",
             u->first_name, ref, n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
    return 0;
}

/* "caller", "this number", "the number I'm calling from": the signed From,
 * which the model cannot see. Only ever resolves to the call's own number. */
static bool means_own_number(const char *s)
{
    static const char *const words[] = {
        "caller", "this number", "calling from", "my number", "this phone", "ringing from", NULL};
    int digits = 0;
    for (const char *p = s; *p; p++)
        digits += *p >= '0' && *p <= '9';
    if (digits >= 7)
        return false; /* "my number is 07700 900002": the number said, not the words */
    for (int i = 0; words[i]; i++)
        if (strcasestr(s, words[i]))
            return true;
    return false;
}

int act__user_run(struct act_call *c)
{
    const char *said = act__arg_str(c, "phone_number");
    char phone[24], ref[16];
    bool has_ref = act__arg_str(c, "claim_reference") != NULL;
    struct act__user u;
    int rc;

    if (said && means_own_number(said) && c->session->caller[0])
        util_strlcpy(phone, c->session->caller, sizeof phone);
    else if (!said || norm_phone(said, phone, sizeof phone)) {
        json_object_set_new(c->data, "field", json_string("phone_number"));
        return act__fail(c, ERR_INVALID_PHONE, NULL, "phone number not recognised");
    }
    if (has_ref && (rc = act__arg_claim_ref(c, "claim_reference", ref, sizeof ref)))
        return rc;
    if ((rc = act__user_find(c->db, 0, phone, &u, &c->err)) < 0)
        return rc;
    bool own = c->session->caller[0] && !strcmp(phone, c->session->caller);
    if (!rc)
        return not_found(c, own ? "caller's number not on file" : "number not on file");
    return own ? own_number(c, &u, has_ref ? ref : NULL)
               : other_number(c, &u, has_ref ? ref : NULL);
}
