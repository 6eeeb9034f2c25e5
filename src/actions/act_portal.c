/*
 * act_portal.c - "send_portal_link": a single-use, expiring customer portal
 * link (MAIN_APP_URL/portal?token=...) to the contact on file.
 * Must not touch: destinations from arguments (there are none). Worker thread.
 */
#include "actions/internal.h"

#include "core/cfg.h"

#include <stdio.h>
#include <string.h>

const char act__portal_desc[] =
    "Send the caller a secure, single-use link to their customer portal, by text (default) or "
    "email, to the contact details we hold. Never ask for a number or address to send it to.";

const char act__portal_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"method\":{\"type\":\"string\",\"enum\":[\"sms\",\"email\"],"
    "\"description\":\"How to send it: sms (text) or email.\"},"
    "\"link_type\":{\"type\":\"string\",\"enum\":[\"dashboard\",\"claims\",\"documents\","
    "\"profile\"],"
    "\"description\":\"Which page of the portal the link opens; dashboard if not said.\"}"
    "},\"required\":[\"method\"],\"additionalProperties\":false}";

int act__portal_run(struct act_call *c)
{
    const char *section = act__arg_str(c, "link_type");
    char extra[48];
    struct act__link_spec k = {
        .link_type = "portal",
        .base_url = c->env->cfg->main_app_url,
        .path = "/portal?token=",
        .with_token = true,
        .spoken = "a secure link to your portal",
    };

    if (section && strcmp(section, "dashboard")) {
        snprintf(extra, sizeof extra, "section=%s", section);
        k.extra = extra;
    }
    json_object_set_new(c->data, "section", json_string(section ? section : "dashboard"));
    return act__send_link(c, &k);
}
