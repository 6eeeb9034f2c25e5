/*
 * links.c - single-use, expiring links (portal, document upload, review).
 *
 * Owns: portal_links rows. The clear token (32 random bytes, base64url)
 * exists only in the message sent to the user; the row keeps its lowercase
 * hex SHA-256. Verification consumes the token with a conditional UPDATE
 * (used_at IS NULL), so two simultaneous clicks cannot both succeed.
 * Worker thread (blocks on the database).
 */
#include "actions/links.h"
#include "actions/internal.h"

#include "core/err.h"
#include "core/util.h"
#include "db/db.h"

#include <string.h>

#define LOG_MODULE "links"
#include "core/log.h"

#define TOKEN_BYTES 32

static int db_fail(struct err *e, const char *what)
{
    char detail[sizeof e->detail];
    util_strlcpy(detail, e->code ? e->detail : "query failed", sizeof detail);
    err_clear(e);
    return err_set(e, ERR_DB_UNAVAILABLE, NULL, "%.40s: %.200s", what, detail);
}

int link_create(struct db *db, long long user_id, const char *link_type, const char *method,
                int ttl_s, const char *call_sid, char token_out[LINK_TOKEN_MAX], long long *row_id,
                struct err *e)
{
    static const char sql[] =
        "INSERT INTO portal_links (user_id, link_type, token_hash, method, call_sid, expires_at, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
    char hash[65], now[24], exp[24];
    struct db_rows r = {0};
    long long t = util_now();

    if (util_random_token(token_out, LINK_TOKEN_MAX, TOKEN_BYTES))
        return err_set(e, ERR_INTERNAL, NULL, "random token failed");
    util_sha256_hex(token_out, strlen(token_out), hash);
    db_utc_text(t, now, sizeof now);
    db_utc_text(t + ttl_s, exp, sizeof exp);
    const struct db_val a[] = {DB_I(user_id),
                               DB_S(link_type),
                               ACT__TXT(hash),
                               DB_S(method),
                               DB_S(call_sid && *call_sid ? call_sid : NULL),
                               ACT__TXT(exp),
                               ACT__TXT(now)};
    if (db_exec(db, sql, a, 7, &r, e)) {
        memset(token_out, 0, LINK_TOKEN_MAX);
        return db_fail(e, "portal_links insert");
    }
    if (row_id)
        *row_id = r.insert_id;
    db_rows_free(&r);
    return 0;
}

int link_discard(struct db *db, long long row_id, struct err *e)
{
    struct db_val a = DB_I(row_id);
    if (db_run(db, "DELETE FROM portal_links WHERE id = ?", &a, 1, e))
        return db_fail(e, "portal_links delete");
    return 0;
}

static bool token_shape_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n < 16 || n >= LINK_TOKEN_MAX)
        return false;
    for (; *t; t++)
        if (!(('a' <= *t && *t <= 'z') || ('A' <= *t && *t <= 'Z') || ('0' <= *t && *t <= '9') ||
              *t == '-' || *t == '_'))
            return false;
    return true;
}

static json_t *invalid(const char *reason)
{
    return json_pack("{s:b, s:s}", "valid", 0, "reason", reason);
}

int link_verify(struct db *db, const char *token, json_t **out, struct err *e)
{
    static const char find[] =
        "SELECT l.id, l.user_id, l.link_type, l.expires_at, l.used_at, u.first_name "
        "FROM portal_links l JOIN users u ON u.id = l.user_id WHERE l.token_hash = ?";
    static const char use[] =
        "UPDATE portal_links SET used_at = ? WHERE id = ? AND used_at IS NULL";
    char hash[65], now[24];
    struct db_rows r = {0}, w = {0};

    *out = NULL;
    if (!token_shape_ok(token)) {
        *out = invalid("unknown");
        return 0;
    }
    util_sha256_hex(token, strlen(token), hash);
    struct db_val a = ACT__TXT(hash);
    if (db_exec(db, find, &a, 1, &r, e))
        return db_fail(e, "portal_links lookup");
    db_utc_text(util_now(), now, sizeof now);
    if (r.nrows < 1) {
        *out = invalid("unknown");
    } else if (db_cell(&r, 0, "used_at")) {
        *out = invalid("used");
    } else if (strcmp(db_cell(&r, 0, "expires_at") ? db_cell(&r, 0, "expires_at") : "", now) <= 0) {
        *out = invalid("expired"); /* both "YYYY-MM-DD HH:MM:SS" UTC: text order is time order */
    } else {
        const struct db_val u[] = {ACT__TXT(now), DB_I(db_cell_int(&r, 0, "id", 0))};
        if (db_exec(db, use, u, 2, &w, e)) {
            db_rows_free(&r);
            return db_fail(e, "portal_links use");
        }
        *out = w.changes == 1 ? json_pack("{s:b, s:I, s:s?, s:s?, s:s?}", "valid", 1, "user_id",
                                          (json_int_t)db_cell_int(&r, 0, "user_id", 0),
                                          "first_name", db_cell(&r, 0, "first_name"), "link_type",
                                          db_cell(&r, 0, "link_type"), "expires_at",
                                          db_cell(&r, 0, "expires_at"))
                              : invalid("used"); /* lost a race with another click */
        db_rows_free(&w);
    }
    db_rows_free(&r);
    return 0;
}
