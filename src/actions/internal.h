/*
 * internal.h - declarations shared by the files of src/actions/ only.
 *
 * Each act_*.c defines its handler, its JSON Schema and its description;
 * registry.c lists them in the one static table. The helpers below are the
 * small pieces every handler needs: reading the session's identity under its
 * lock, looking a user up, speaking a status, masking a number.
 * Never include this from outside src/actions/.
 */
#ifndef VWS_ACTIONS_INTERNAL_H
#define VWS_ACTIONS_INTERNAL_H

#include "actions/action.h"

#include <stdbool.h>
#include <stddef.h>

struct db;

/* Rows of a list put in an envelope (claims, requirements); counts stay exact. */
#define ACT__LIST_MAX 20

/* A bound text parameter from a char array (never NULL; DB_S would warn). */
#define ACT__TXT(x) ((struct db_val){.type = DB_TEXT, .s = (x)})

/* ---- per-action declarations (defined in act_*.c) ---- */

#define ACT__DECL(x)                                                                               \
    extern const char act__##x##_schema[];                                                         \
    extern const char act__##x##_desc[];                                                           \
    act_handler_fn act__##x##_run

ACT__DECL(claim);                    /* check_claim_details */
ACT__DECL(reqs);                     /* check_requirements */
ACT__DECL(user);                     /* check_user_details */
ACT__DECL(callback);                 /* schedule_callback */
ACT__DECL(kb);                       /* search_knowledge_base */
ACT__DECL(doclink);                  /* send_document_link */
ACT__DECL(portal);                   /* send_portal_link */
ACT__DECL(review);                   /* send_review_link */
act_handler_fn act__link_precheck;   /* email configured? (portal, documents) */
act_handler_fn act__review_precheck; /* REVIEW_URL set? */

/* ---- session identity (locks s->mu) ---- */

struct act__ident {
    long long user_id;
    enum act_id_level level;
};
void act__ident_get(struct act_session *s, struct act__ident *out);
/*
 * Raise (or switch) the session's identity: used by check_user_details. The
 * compare and the write happen under one lock, so two concurrent checks can
 * never lower a verified call. The rule: the new identity is taken when its
 * level is at least the current one or nobody is identified yet. *now gets
 * the identity in force afterwards.
 */
void act__ident_raise(struct act_session *s, long long user_id, enum act_id_level level,
                      struct act__ident *now);

/* Identify the caller with a borrowed connection (db may be NULL when the
 * caller is withheld). 0 or ERR_DB_UNAVAILABLE. */
int act__session_identify_db(struct db *db, struct act_session *s, char *first_name, int fnsz,
                             struct err *e);

/*
 * Exactly-once cache. act__once_begin: 1 = an earlier success exists
 * (*earlier = its envelope, caller owns); 0 = this execution owns the key
 * and MUST call act__once_end (env on success, NULL on failure); 2 = cache
 * full, run without it (do not call act__once_end).
 */
int act__once_begin(struct act_session *s, const char *key, json_t **earlier);
void act__once_end(struct act_session *s, const char *key, const json_t *env_or_null);

/* ---- users and claims ---- */

struct act__user {
    long long id;
    char first_name[64];
    char phone[24];  /* E.164 on file, "" when none */
    char email[256]; /* "" when none (or longer than an address can be: never cut) */
};

/*
 * Find a user by id (phone==NULL) or by E.164 phone (id ignored). Returns 1
 * found, 0 not found, or ERR_DB_UNAVAILABLE (logs "Error finding user").
 */
int act__user_find(struct db *db, long long id, const char *phone, struct act__user *u,
                   struct err *e);

/*
 * The claim `ref` (canonical RMC-nnnn) when it belongs to user_id: *claim_id
 * and, when row is given, the claim's columns. 1 found, 0 not (also for
 * another person's claim), <0 ERR_*.
 */
struct db_rows;
int act__claim_of_user(struct db *db, const char *ref, long long user_id, long long *claim_id,
                       struct db_rows *row, struct err *e);

/*
 * The call's own claim named by the "claim_reference" argument: normalised
 * into ref (>= 16), *claim_id and, when row is given, its columns (caller
 * frees). 0, or c->err set: invalid_claim_reference; not_found, with the same
 * words for another person's claim as for one that doesn't exist (the one
 * place those words live, so the actions cannot drift into an oracle); database.
 */
int act__own_claim(struct act_call *c, char *ref, size_t refsz, long long *claim_id,
                   struct db_rows *row);

/* Normalise c->args' claim_reference into out (>= 16) or fail the call. */
int act__arg_claim_ref(struct act_call *c, const char *key, char *out, size_t outsz);

/* Set c->err and return its code (handler convenience). */
int act__fail(struct act_call *c, int code, const char *say, const char *detail);

/* Turn any database error in e into ERR_DB_UNAVAILABLE (detail kept). */
int act__db_err(struct err *e, const char *what);

/* "in_progress" -> "in progress" etc., for speech ("your claim is ..."). buf for unknown ones. */
const char *act__status_words(const char *status, char *buf, size_t n);
/* "2026-11-03 10:00:00" -> "3 November 2026"; "" when unparseable. */
void act__spoken_date(const char *ts, char *out, size_t n);
/* "+447700900001" -> "001" (last three digits, for "your mobile ending 001"). */
const char *act__last3(const char *phone);

/* ---- delivery (send.c) ---- */

/* The session's user (c->user_id) from the users table; caller_unknown if gone. */
int act__user_for_call(struct act_call *c, struct act__user *u);

/*
 * Send body by method ("sms" | "email") to u's contact on file. 0 when sent
 * (data.sent_to masked, data.sms for SMS); else c->err set (rate_limited,
 * sms_failed, email_failed, no_contact_on_file, database) and
 * *maybe_delivered tells whether the message may still have gone out.
 */
int act__deliver(struct act_call *c, const struct act__user *u, const char *method,
                 const char *subject, const char *body, bool *maybe_delivered);

struct act__link_spec {
    const char *link_type; /* portal_links.link_type: portal | documents | review */
    const char *base_url;  /* MAIN_APP_URL or REVIEW_URL */
    const char *path;      /* "/portal?token=" (token appended) */
    const char *extra;     /* "section=claims" etc. appended after '&', may be NULL */
    bool with_token;       /* false: the link is base_url itself (review) */
    int ttl_s;             /* 0 = LINK_TTL_SECONDS */
    const char *spoken;    /* "a secure portal link" */
    int once_per_s;        /* > 0: at most one link of this type per user in this many seconds
                              (counted in portal_links, across processes); else too_soon */
    const char *too_soon;  /* what the agent says when once_per_s refuses */
};
/* Create the link row (checking once_per_s in the same serialised transaction), build the
 * URL, deliver it; delete the row when it surely wasn't sent. */
int act__send_link(struct act_call *c, const struct act__link_spec *k);

/* Optional string argument, NULL when absent. */
const char *act__arg_str(const struct act_call *c, const char *key);

#endif
