/*
 * act_review.c - "send_review_link": the review page (REVIEW_URL) to the
 * contact on file, at most once per user per 30 days (counted in
 * portal_links rows with link_type 'review'; checked and reserved in one
 * transaction under db_lock_serial, so it holds across every process that
 * shares the database: see send.c).
 * REVIEW_URL unset: not_configured, before any identity question. Worker thread.
 */
#include "actions/internal.h"

#include "core/cfg.h"
#include "core/util.h"
#include "db/db.h"

#include <stdio.h>
#include <string.h>

#define REVIEW_EVERY_S (30 * 86400)

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

int act__review_run(struct act_call *c)
{
    struct act__link_spec k = {
        .link_type = "review",
        .base_url = c->env->cfg->review_url,
        .with_token = false,
        .ttl_s = REVIEW_EVERY_S,
        .spoken = "our review link",
        .once_per_s = REVIEW_EVERY_S,
        .too_soon = "We sent you a review link recently, so I won't send another just now. "
                    "Thank you for offering, though.",
    };
    return act__send_link(c, &k);
}
