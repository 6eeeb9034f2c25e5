/*
 * act_documents.c - "send_document_link": a single-use, expiring link to the
 * secure document upload page (MAIN_APP_URL/documents/upload?token=...&type=...)
 * to the contact on file. Worker thread.
 */
#include "actions/internal.h"

#include "core/cfg.h"

#include <stdio.h>
#include <string.h>

const char act__doclink_desc[] =
    "Send the caller a secure, single-use link to upload documents (ID, bank statements, signed "
    "forms), by text (default) or email, to the contact details we hold.";

const char act__doclink_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"method\":{\"type\":\"string\",\"enum\":[\"sms\",\"email\"],"
    "\"description\":\"How to send it: sms (text) or email.\"},"
    "\"document_type\":{\"type\":\"string\",\"enum\":[\"id_proof\",\"bank_statement\","
    "\"signed_loa\",\"proof_of_address\",\"finance_agreement\",\"other\"],"
    "\"description\":\"The document they need to upload, if known.\"}"
    "},\"required\":[\"method\"],\"additionalProperties\":false}";

int act__doclink_run(struct act_call *c)
{
    const char *type = act__arg_str(c, "document_type");
    char extra[48];
    struct act__link_spec k = {
        .link_type = "documents",
        .base_url = c->env->cfg->main_app_url,
        .path = "/documents/upload?token=",
        .with_token = true,
        .spoken = "a secure link to upload your documents",
    };

    if (type) {
        snprintf(extra, sizeof extra, "type=%s", type);
        k.extra = extra;
        json_object_set_new(c->data, "document_type", json_string(type));
    }
    return act__send_link(c, &k);
}
