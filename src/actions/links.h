/*
 * links.h - single-use, expiring links (portal, document upload, review).
 *
 * A token is 32 random bytes (OpenSSL RAND_bytes) in base64url; only its
 * lowercase hex SHA-256 is stored (portal_links.token_hash). Verification
 * checks the hash, the expiry and that it was not used, then marks it used.
 * Worker thread (blocks on the database).
 */
#ifndef VWS_LINKS_H
#define VWS_LINKS_H

#include <jansson.h>

struct db;
struct err;

#define LINK_TOKEN_MAX 64

/*
 * Create a link row for user_id (link_type portal|documents|review, method
 * sms|email, call_sid may be NULL); token_out receives the clear token (never
 * stored). *row_id (may be NULL) receives portal_links.id. 0 or ERR_*.
 */
int link_create(struct db *db, long long user_id, const char *link_type, const char *method,
                int ttl_s, const char *call_sid, char token_out[LINK_TOKEN_MAX],
                long long *row_id, struct err *e);
/* Remove a link row that was never delivered (send failed). */
int link_discard(struct db *db, long long row_id, struct err *e);

/*
 * Verify and consume a token. *out (caller owns) is
 *   {"valid":true,"user_id":1,"first_name":"Sarah","link_type":"portal","expires_at":"..."}
 * or {"valid":false,"reason":"unknown|expired|used"}. Returns 0 unless the
 * database failed (ERR_DB_UNAVAILABLE).
 */
int link_verify(struct db *db, const char *token, json_t **out, struct err *e);

#endif
