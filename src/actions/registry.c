/*
 * registry.c - the one static table of voice actions, and the tool lists
 * built from it for OpenAI (function format) and Gemini (Google's OpenAPI
 * schema subset).
 *
 * Owns: the table (sorted by name, checked at start by act_registry_check)
 * and the schema conversion. Each action's schema and description live in
 * its own act_*.c; nothing here is written twice.
 * Must not touch: the database, sessions. Any thread (read-only data).
 */
#include "actions/action.h"
#include "actions/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "registry"
#include "core/log.h"

#define F_LOOKUP (ACT_READS_DB | ACT_NEEDS_CALLER | ACT_NEEDS_VERIFIED)
#define F_SEND                                                                                     \
    (ACT_READS_DB | ACT_WRITES_DB | ACT_SENDS | ACT_SIDE_EFFECT | ACT_NEEDS_CALLER |               \
     ACT_NEEDS_VERIFIED)

/* clang-format off */
static const struct act_def act_table[] = {
/*    name                     flags                                   description           schema                  handler             precheck */
    { "check_claim_details",   F_LOOKUP,                               act__claim_desc,      act__claim_schema,      act__claim_run,     NULL },
    { "check_requirements",    F_LOOKUP,                               act__reqs_desc,       act__reqs_schema,       act__reqs_run,      NULL },
    { "check_user_details",    ACT_READS_DB,                           act__user_desc,       act__user_schema,       act__user_run,      NULL },
    { "schedule_callback",     ACT_READS_DB | ACT_WRITES_DB | ACT_SENDS |
                               ACT_SIDE_EFFECT,                        act__callback_desc,   act__callback_schema,   act__callback_run,  NULL },
    { "search_knowledge_base", ACT_READS_DB,                           act__kb_desc,         act__kb_schema,         act__kb_run,        NULL },
    { "send_document_link",    F_SEND,                                 act__doclink_desc,    act__doclink_schema,    act__doclink_run,   act__link_precheck },
    { "send_portal_link",      F_SEND,                                 act__portal_desc,     act__portal_schema,     act__portal_run,    act__link_precheck },
    { "send_review_link",      F_SEND,                                 act__review_desc,     act__review_schema,     act__review_run,    act__review_precheck },
};
/* clang-format on */

#define ACT_N ((int)(sizeof act_table / sizeof act_table[0]))

int act_count(void)
{
    return ACT_N;
}

const struct act_def *act_at(int i)
{
    return i >= 0 && i < ACT_N ? &act_table[i] : NULL;
}

const struct act_def *act_find(const char *name)
{
    int lo = 0, hi = ACT_N - 1;

    if (!name)
        return NULL;
    while (lo <= hi) { /* the table is sorted: binary search */
        int mid = (lo + hi) / 2, c = strcmp(name, act_table[mid].name);
        if (!c)
            return &act_table[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int check_row(const struct act_def *d, const struct act_def *prev, struct err *e)
{
    json_error_t je;
    json_t *s;

    if (!d->name || !*d->name || !d->handler || !d->description || !d->schema)
        return err_set(e, ERR_INTERNAL, NULL, "action table: row '%s' incomplete",
                       d->name ? d->name : "?");
    if (prev && strcmp(prev->name, d->name) >= 0)
        return err_set(e, ERR_INTERNAL, NULL,
                       "action table: '%s' after '%s' (unsorted or duplicate)", d->name,
                       prev->name);
    s = json_loads(d->schema, 0, &je);
    const char *type = s ? json_string_value(json_object_get(s, "type")) : NULL;
    if (!s || !json_is_object(s) || !type || strcmp(type, "object") ||
        !json_is_object(json_object_get(s, "properties"))) {
        json_decref(s);
        return err_set(e, ERR_INTERNAL, NULL, "action table: schema of '%s' invalid: %s", d->name,
                       s ? "not an object schema" : je.text);
    }
    json_decref(s);
    return 0;
}

int act_registry_check(struct err *e)
{
    for (int i = 0; i < ACT_N; i++) {
        int rc = check_row(&act_table[i], i ? &act_table[i - 1] : NULL, e);
        if (rc) {
            log_error("%s", e ? e->detail : "action table invalid");
            return rc;
        }
    }
    return 0;
}

json_t *act_tools_openai(void)
{
    json_t *arr = json_array();

    for (int i = 0; i < ACT_N; i++) {
        json_t *params = json_loads(act_table[i].schema, 0, NULL);
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s, s:o}", "type", "function", "name",
                                        act_table[i].name, "description", act_table[i].description,
                                        "parameters", params ? params : json_object()));
    }
    return arr;
}

/* ---- Gemini: Google's OpenAPI 3.0 subset ---- */

static json_t *to_google(json_t *s);

static json_t *upper_type(const char *t)
{
    char buf[16];
    size_t i;

    for (i = 0; t[i] && i < sizeof buf - 1; i++)
        buf[i] = (char)toupper((unsigned char)t[i]);
    buf[i] = '\0';
    return json_string(buf);
}

/* Keywords Google's Schema accepts and that we use; everything else is dropped
 * (additionalProperties above all, which the subset does not have). Length
 * bounds are also dropped: act_execute enforces them, and Google types them
 * as int64-in-strings, a needless source of 400s. */
static json_t *to_google(json_t *s)
{
    static const char *const keep[] = {"description", "enum",    "format",  "nullable",
                                       "required",    "minimum", "maximum", NULL};
    json_t *out = json_object(), *v;
    const char *k;

    json_object_foreach(s, k, v)
    {
        if (!strcmp(k, "type") && json_is_string(v)) {
            json_object_set_new(out, "type", upper_type(json_string_value(v)));
        } else if (!strcmp(k, "properties") && json_is_object(v)) {
            json_t *props = json_object(), *pv;
            const char *pk;
            json_object_foreach(v, pk, pv) json_object_set_new(props, pk, to_google(pv));
            json_object_set_new(out, "properties", props);
        } else if (!strcmp(k, "items") && json_is_object(v)) {
            json_object_set_new(out, "items", to_google(v));
        } else {
            for (int i = 0; keep[i]; i++)
                if (!strcmp(k, keep[i]))
                    json_object_set(out, k, v);
        }
    }
    return out;
}

json_t *act_tools_gemini(void)
{
    json_t *arr = json_array();

    for (int i = 0; i < ACT_N; i++) {
        json_t *schema = json_loads(act_table[i].schema, 0, NULL);
        json_t *params = schema ? to_google(schema) : json_object();
        json_decref(schema);
        /* BLOCKING: the model waits for the result instead of guessing (the
         * default differs between Live models, so it is always explicit). */
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", act_table[i].name,
                                             "description", act_table[i].description, "behavior",
                                             "BLOCKING", "parameters", params));
    }
    return arr;
}
