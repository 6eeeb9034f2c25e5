/*
 * common.c - small helpers shared by the action handlers: user and claim
 * lookups (portable SQL, `?` placeholders), argument access, speakable
 * statuses and dates, identity accessors.
 *
 * Must not touch: sessions beyond their identity fields, sockets. Worker
 * thread (blocks on the database).
 */
#include "actions/internal.h"

#include "core/norm.h"
#include "core/util.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "actions"
#include "core/log.h"

int act__fail(struct act_call *c, int code, const char *say, const char *detail)
{
    return err_set(&c->err, code, say, "%s", detail ? detail : "");
}

int act__db_err(struct err *e, const char *what)
{
    char detail[sizeof e->detail];

    /* Whatever the backend said, the caller hears the database sentence. */
    snprintf(detail, sizeof detail, "%.40s: %.200s", what, e->code ? e->detail : "query failed");
    err_clear(e);
    return err_set(e, ERR_DB_UNAVAILABLE, NULL, "%s", detail);
}

const char *act__arg_str(const struct act_call *c, const char *key)
{
    const char *s = json_string_value(json_object_get(c->args, key));
    return s && *s ? s : NULL;
}

/*
 * A contact detail from the users row. One that does not fit is left empty
 * (not on file), never cut: a cut address or number is someone else's
 * ("...@bigcorp.com.au" cut to "...@bigcorp.com").
 */
static void contact_copy(long long id, const char *what, const char *v, char *out, size_t outsz)
{
    out[0] = '\0';
    if (!v)
        return;
    if (strlen(v) >= outsz) {
        log_warn("user %lld: %s on file is longer than %zu bytes; treated as not on file", id, what,
                 outsz - 1);
        return;
    }
    util_strlcpy(out, v, outsz);
}

int act__user_find(struct db *db, long long id, const char *phone, struct act__user *u,
                   struct err *e)
{
    static const char by_phone[] =
        "SELECT id, first_name, phone, email FROM users WHERE phone = ? ORDER BY id LIMIT 1";
    static const char by_id[] = "SELECT id, first_name, phone, email FROM users WHERE id = ?";
    struct db_rows r = {0};
    struct db_val a = phone ? DB_S(phone) : DB_I(id);
    int rc;

    memset(u, 0, sizeof *u);
    rc = db_exec(db, phone ? by_phone : by_id, &a, 1, &r, e);
    if (rc) {
        log_error("👤 [VOICE-DB] Error finding user: %s", e->detail);
        return act__db_err(e, "users lookup");
    }
    if (r.nrows < 1) {
        db_rows_free(&r);
        return 0;
    }
    u->id = db_cell_int(&r, 0, "id", 0);
    util_strlcpy(u->first_name, db_cell(&r, 0, "first_name") ? db_cell(&r, 0, "first_name") : "",
                 sizeof u->first_name);
    contact_copy(u->id, "phone", db_cell(&r, 0, "phone"), u->phone, sizeof u->phone);
    contact_copy(u->id, "email", db_cell(&r, 0, "email"), u->email, sizeof u->email);
    db_rows_free(&r);
    return 1;
}

int act__claim_of_user(struct db *db, const char *ref, long long user_id, long long *claim_id,
                       struct db_rows *row, struct err *e)
{
    static const char sql[] =
        "SELECT id, claim_reference, lender, claim_type, status, updated_at FROM user_claims "
        "WHERE claim_reference = ? AND user_id = ?";
    struct db_rows r = {0};
    const struct db_val a[] = {DB_S(ref), DB_I(user_id)};

    *claim_id = 0;
    if (user_id <= 0)
        return 0;
    if (db_exec(db, sql, a, 2, &r, e))
        return act__db_err(e, "claim lookup");
    if (r.nrows < 1) {
        db_rows_free(&r);
        return 0;
    }
    *claim_id = db_cell_int(&r, 0, "id", 0);
    if (row)
        *row = r;
    else
        db_rows_free(&r);
    return 1;
}

int act__own_claim(struct act_call *c, char *ref, size_t refsz, long long *claim_id,
                   struct db_rows *row)
{
    int rc;

    if ((rc = act__arg_claim_ref(c, "claim_reference", ref, refsz)))
        return rc;
    if ((rc = act__claim_of_user(c->db, ref, c->user_id, claim_id, row, &c->err)) < 0)
        return rc;
    if (!rc)
        return act__fail(c, ERR_NOT_FOUND,
                         "I couldn't find that claim reference on your account. Could you check "
                         "it and read it out again?",
                         "claim not on the caller's account");
    return 0;
}

int act__arg_claim_ref(struct act_call *c, const char *key, char *out, size_t outsz)
{
    const char *s = act__arg_str(c, key);

    if (!s || norm_claim_ref(s, out, outsz)) {
        json_object_set_new(c->data, "field", json_string(key));
        return act__fail(c, ERR_INVALID_CLAIM_REF, NULL, "claim reference not recognised");
    }
    return 0;
}

const char *act__status_words(const char *status, char *buf, size_t n)
{
    static const char *const map[][2] = {
        {"in_progress", "in progress"},
        {"submitted", "submitted and waiting for the lender's reply"},
        {"offer_received", "at the offer stage: we've received an offer"},
        {"offer_accepted", "at the offer stage: the offer has been accepted"},
        {"awaiting_documents", "waiting for some documents from you"},
        {"on_hold", "on hold"},
        {"complete", "complete"},
        {"completed", "complete"},
        {"closed", "closed"},
        {"rejected", "closed, because the lender turned it down"},
    };
    size_t i;

    if (!status || !*status)
        return "being processed";
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(status, map[i][0]))
            return map[i][1];
    util_strlcpy(buf, status, n);
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = ' ';
    return buf;
}

const char *act__last3(const char *phone)
{
    size_t n = phone ? strlen(phone) : 0;
    return n >= 3 ? phone + n - 3 : "";
}

void act__spoken_date(const char *ts, char *out, size_t n)
{
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    int y, m, d;

    if (!ts || sscanf(ts, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12) {
        util_strlcpy(out, "", n);
        return;
    }
    snprintf(out, n, "%d %s %d", d, months[m - 1], y);
}
