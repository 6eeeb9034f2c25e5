/*
 * act_review.c - "send_review_link": the review page (REVIEW_URL) to the
 * contact on file, at most once per user per 30 days (counted in
 * portal_links rows with link_type 'review').
 * REVIEW_URL unset: not_configured, before any identity question. Worker thread.
 */
#include "actions/internal.h"

#include "core/cfg.h"
#include "core/util.h"
#include "db/db.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define REVIEW_EVERY_S (30 * 86400)

/* Serialises check-then-send so two calls of one user cannot both pass the
 * 30-day check in this process (a rare action: holding it across the send is
 * fine). Another instance behind a load balancer could still race. */
static pthread_mutex_t review_mu = PTHREAD_MUTEX_INITIALIZER;

const char act__review_desc[] =
    "Send the caller a link to leave us a review, by text (default) or email, to the contact "
    "details we hold. Only when they are happy to leave one; at most once a month.";

const char act__review_schema[] = "{\"type\":\"object\",\"properties\":{"
                                  "\"method\":{\"type\":\"string\",\"enum\":[\"sms\",\"email\"],"
                                  "\"description\":\"How to send it: sms (text) or email.\"}"
                                  "},\"required\":[\"method\"],\"additionalProperties\":false}";

int act__review_precheck(struct act_call *c)
{
    if (!c->env->cfg->review_url[0])
        return act__fail(c, ERR_NOT_CONFIGURED,
                         "I'm afraid I can't send a review link at the moment, but thank you for "
                         "offering.",
                         "REVIEW_URL is not set");
    return act__link_precheck(c);
}

static int sent_recently(struct act_call *c, long long user_id, bool *yes)
{
    static const char sql[] = "SELECT COUNT(*) AS n FROM portal_links WHERE user_id = ? AND "
                              "link_type = 'review' AND created_at > ?";
    char since[24];
    struct db_rows r = {0};

    db_utc_text(util_now() - REVIEW_EVERY_S, since, sizeof since);
    const struct db_val a[] = {DB_I(user_id), ACT__TXT(since)};
    if (db_exec(c->db, sql, a, 2, &r, &c->err))
        return act__db_err(&c->err, "review history");
    *yes = db_cell_int(&r, 0, "n", 0) > 0;
    db_rows_free(&r);
    return 0;
}

int act__review_run(struct act_call *c)
{
    struct act__link_spec k = {
        .link_type = "review",
        .base_url = c->env->cfg->review_url,
        .with_token = false,
        .ttl_s = REVIEW_EVERY_S,
        .spoken = "our review link",
    };
    bool recent = false;
    int rc;

    pthread_mutex_lock(&review_mu);
    rc = sent_recently(c, c->user_id, &recent);
    if (!rc && recent)
        rc = act__fail(c, ERR_TOO_SOON,
                       "We sent you a review link recently, so I won't send another just now. "
                       "Thank you for offering, though.",
                       "review link sent to this user within 30 days");
    if (!rc)
        rc = act__send_link(c, &k);
    pthread_mutex_unlock(&review_mu);
    return rc;
}
