/*
 * act_requirements.c - "check_requirements": the outstanding
 * claim_requirements of one of the call's user's claims.
 *
 * Another person's claim gets the same not_found as a missing claim.
 * Must not touch: anything but reads. Worker thread.
 */
#include "actions/internal.h"

#include "db/db.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define LOG_MODULE "act_reqs"
#include "core/log.h"

const char act__reqs_desc[] =
    "List what we still need from the caller (documents, signatures) for one of their claims.";

const char act__reqs_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"claim_reference\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":40,"
    "\"description\":\"The claim reference, such as RMC-1001.\"}"
    "},\"required\":[\"claim_reference\"],\"additionalProperties\":false}";

/* "a, b and c" from the descriptions, lower-cased first letter, bounded. */
static void spoken_list(const struct db_rows *r, char *out, size_t n)
{
    size_t o = 0;

    out[0] = '\0';
    for (int i = 0; i < r->nrows && o + 1 < n; i++) {
        const char *d = db_cell(r, i, "description");
        if (!d || !*d)
            d = db_cell(r, i, "requirement_type");
        const char *sep = i == 0 ? "" : i == r->nrows - 1 ? " and " : ", ";
        int w = snprintf(out + o, n - o, "%s%s", sep, d ? d : "a document");
        if (w < 0 || (size_t)w >= n - o) {
            out[o] = '\0'; /* never half an item (or half a character) */
            break;
        }
        char *first = out + o + strlen(sep); /* "Bank statement" -> "bank statement" */
        if (isupper((unsigned char)first[0]) && islower((unsigned char)first[1]))
            first[0] = (char)tolower((unsigned char)first[0]);
        o += (size_t)w;
    }
}

int act__reqs_run(struct act_call *c)
{
    static const char sql[] =
        "SELECT requirement_type, description, status, due_date FROM claim_requirements "
        "WHERE claim_id = ? AND status = 'outstanding' ORDER BY id LIMIT ?";
    static const char count_sql[] = "SELECT COUNT(*) AS n FROM claim_requirements "
                                    "WHERE claim_id = ? AND status = 'outstanding'";
    char ref[16], list[300];
    struct db_rows r = {0};
    long long claim_id;
    int rc, total;

    if ((rc = act__own_claim(c, ref, sizeof ref, &claim_id, NULL)))
        return rc;
    const struct db_val a[] = {DB_I(claim_id), DB_I(ACT__LIST_MAX)};
    if (db_exec(c->db, sql, a, 2, &r, &c->err))
        return act__db_err(&c->err, "requirements");
    total = r.nrows;
    if (total == ACT__LIST_MAX) { /* listed at most ACT__LIST_MAX; the count stays exact */
        struct db_rows k = {0};
        if (db_exec(c->db, count_sql, a, 1, &k, &c->err)) {
            db_rows_free(&r);
            return act__db_err(&c->err, "requirements count");
        }
        total = (int)db_cell_int(&k, 0, "n", total);
        db_rows_free(&k);
    }
    json_t *arr = json_array();
    for (int i = 0; i < r.nrows; i++)
        json_array_append_new(arr, json_pack("{s:s?, s:s?, s:s?}", "requirement_type",
                                             db_cell(&r, i, "requirement_type"), "description",
                                             db_cell(&r, i, "description"), "due_date",
                                             db_cell(&r, i, "due_date")));
    json_object_set_new(c->data, "claim_reference", json_string(ref));
    json_object_set_new(c->data, "outstanding", arr);
    json_object_set_new(c->data, "count", json_integer(total));
    if (r.nrows == 0) {
        snprintf(c->message, sizeof c->message,
                 "There's nothing outstanding on claim %s at the moment.", ref);
    } else {
        spoken_list(&r, list, sizeof list);
        snprintf(c->message, sizeof c->message,
                 "For claim %s we still need %d thing%s: %s. I can text you a secure link to "
                 "upload %s.",
                 ref, total, total == 1 ? "" : "s", list, total == 1 ? "it" : "them");
    }
    db_rows_free(&r);
    return 0;
}
