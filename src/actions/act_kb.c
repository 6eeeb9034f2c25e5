/*
 * act_kb.c - "search_knowledge_base": full-text search over knowledge_base
 * (SQLite FTS5 / MySQL FULLTEXT through db_kb_search), top 3 with title and
 * snippet. No identity needed: the articles are public help text.
 * Worker thread.
 */
#include "actions/internal.h"

#include "db/db.h"

#include <stdio.h>
#include <string.h>

#define KB_TOP 3

const char act__kb_desc[] =
    "Search our help articles (how claims work, fees, timescales, documents, complaints, the "
    "portal) and answer general questions from them. No account details needed.";

const char act__kb_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"query\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":200,"
    "\"description\":\"What the caller wants to know, in a few words.\"},"
    "\"category\":{\"type\":\"string\",\"enum\":[\"claims\",\"fees\",\"timescales\",\"documents\","
    "\"complaints\",\"portal\"],\"description\":\"Narrow the search to one topic, if clear.\"}"
    "},\"required\":[\"query\"],\"additionalProperties\":false}";

int act__kb_run(struct act_call *c)
{
    struct db_rows r = {0};
    json_t *arr;

    if (db_kb_search(c->db, act__arg_str(c, "query"), act__arg_str(c, "category"), KB_TOP, &r,
                     &c->err))
        return act__db_err(&c->err, "knowledge base search");
    arr = json_array();
    for (int i = 0; i < r.nrows && i < KB_TOP; i++)
        json_array_append_new(
            arr, json_pack("{s:I, s:s?, s:s?, s:s?}", "id", (json_int_t)db_cell_int(&r, i, "id", 0),
                           "category", db_cell(&r, i, "category"), "title", db_cell(&r, i, "title"),
                           "snippet", db_cell(&r, i, "snippet")));
    json_object_set_new(c->data, "results", arr);
    json_object_set_new(c->data, "count", json_integer(json_array_size(arr)));
    if (r.nrows == 0) {
        snprintf(c->message, sizeof c->message,
                 "I couldn't find anything on that in our help articles. I can arrange for one "
                 "of the team to call you back if you like.");
    } else {
        const char *title = db_cell(&r, 0, "title"), *snip = db_cell(&r, 0, "snippet");
        snprintf(c->message, sizeof c->message, "From our help article \"%s\": %s",
                 title ? title : "", snip ? snip : "");
    }
    db_rows_free(&r);
    return 0;
}
