/*
 * act_claim.c - "check_claim_details": status, lender, type and last update
 * of one claim belonging to the call's user.
 *
 * Another person's claim and a claim that does not exist get the same
 * error.code (not_found) and the same words: no existence oracle.
 * Must not touch: anything but reads of user_claims/claim_requirements.
 * Worker thread.
 */
#include "actions/internal.h"

#include "db/db.h"

#include <stdio.h>
#include <string.h>

#define LOG_MODULE "act_claim"
#include "core/log.h"

const char act__claim_desc[] =
    "Get the status, lender, claim type and last update of one of the caller's claims. Only "
    "works for claims on the caller's own account.";

const char act__claim_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"claim_reference\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":40,"
    "\"description\":\"The claim reference, such as RMC-1001 (spoken forms like 'R M C one "
    "zero zero one' are fine).\"}"
    "},\"required\":[\"claim_reference\"],\"additionalProperties\":false}";

static int count_outstanding(struct act_call *c, long long claim_id, int *n)
{
    static const char sql[] = "SELECT COUNT(*) AS n FROM claim_requirements WHERE claim_id = ? AND "
                              "status = 'outstanding'";
    struct db_rows r = {0};
    struct db_val a = DB_I(claim_id);

    if (db_exec(c->db, sql, &a, 1, &r, &c->err))
        return act__db_err(&c->err, "requirements count");
    *n = (int)db_cell_int(&r, 0, "n", 0);
    db_rows_free(&r);
    return 0;
}

int act__claim_run(struct act_call *c)
{
    char ref[16], when[40], sbuf[64];
    struct db_rows r = {0};
    long long claim_id;
    int rc, n = 0;

    if ((rc = act__own_claim(c, ref, sizeof ref, &claim_id, &r)))
        return rc;
    if ((rc = count_outstanding(c, claim_id, &n))) {
        db_rows_free(&r);
        return rc;
    }
    const char *status = db_cell(&r, 0, "status"), *lender = db_cell(&r, 0, "lender"),
               *updated = db_cell(&r, 0, "updated_at");
    json_object_set_new(c->data, "claim",
                        json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:i}", "claim_reference", ref,
                                  "lender", lender, "claim_type", db_cell(&r, 0, "claim_type"),
                                  "status", status, "updated_at", updated,
                                  "outstanding_requirements", n));
    act__spoken_date(updated, when, sizeof when);
    snprintf(c->message, sizeof c->message, "Your claim %s%s%s is %s.%s%s%s%s", ref,
             lender ? " with " : "", lender ? lender : "",
             act__status_words(status, sbuf, sizeof sbuf), *when ? " It was last updated on " : "",
             when, *when ? "." : "", n ? " There are still some documents we need from you." : "");
    db_rows_free(&r);
    return 0;
}
