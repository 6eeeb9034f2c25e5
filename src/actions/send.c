/*
 * send.c - delivering a message to the contact details on file: shared by
 * the link actions and schedule_callback.
 *
 * Owns: choosing SMS or email, the link rows' lifetime around a send (a
 * link that was certainly not delivered is deleted, so nothing half-done
 * stays behind and a failed review link does not start the 30 days).
 * Destinations only ever come from the users row, never from arguments.
 * Worker thread.
 */
#include "actions/internal.h"
#include "actions/links.h"

#include "core/cfg.h"
#include "core/util.h"
#include "db/db.h"
#include "sms/sms.h"
#include "sms/texts.h"

#include <stdio.h>
#include <string.h>

#define LOG_MODULE "actions"
#include "core/log.h"

int act__link_precheck(struct act_call *c)
{
    const char *method = act__arg_str(c, "method");

    if (method && !strcmp(method, "email") && !mail_configured(c->env->cfg))
        return act__fail(c, ERR_NOT_CONFIGURED,
                         "Email isn't set up on our side yet, I'm afraid. Shall I text it to you "
                         "instead?",
                         "email requested but SMTP_URL is not set");
    return 0;
}

int act__user_for_call(struct act_call *c, struct act__user *u)
{
    int rc = act__user_find(c->db, c->user_id, NULL, u, &c->err);
    if (rc < 0)
        return rc;
    if (!rc)
        return act__fail(c, ERR_NO_CALLER, NULL, "session user vanished");
    return 0;
}

static int fail_sms(struct act_call *c, const struct sms_result *r)
{
    bool limited = !strcmp(r->error_code, "rate_limited");
    json_object_set_new(
        c->data, "sms",
        json_pack("{s:b, s:s, s:s}", "sent", 0, "mode", r->mode, "status", r->status));
    return act__fail(c, limited ? ERR_RATE_LIMITED : ERR_SMS_FAILED, r->say[0] ? r->say : NULL,
                     r->error_code[0] ? r->error_code : "not sent");
}

int act__deliver(struct act_call *c, const struct act__user *u, const char *method,
                 const char *subject, const char *body, bool *maybe_delivered)
{
    struct sms_result r;
    char masked[32];
    int rc;

    *maybe_delivered = false;
    if (!strcmp(method, "email")) {
        if (!u->email[0])
            return act__fail(c, ERR_NO_CONTACT,
                             "I don't have an email address on file for you. Shall I text it to "
                             "your mobile instead?",
                             "no email on file");
        if ((rc = mail_send(c->env->cfg, u->email, subject, body, &c->err))) {
            *maybe_delivered = false;
            char d[sizeof c->err.detail];
            util_strlcpy(d, c->err.detail, sizeof d);
            err_clear(&c->err);
            return act__fail(c, ERR_EMAIL_FAILED, NULL, d);
        }
        log_mask_text(u->email, masked, sizeof masked);
        json_object_set_new(c->data, "sent_to", json_string(masked));
        return 0;
    }
    if (!u->phone[0])
        return act__fail(c, ERR_NO_CONTACT, NULL, "no phone on file");
    memset(&r, 0, sizeof r);
    if ((rc = sms_send(c->env->sms, c->db, u->phone, body, &r, &c->err)) < 0) {
        *maybe_delivered = r.sent; /* sent, but its outbox row could not be written */
        return act__db_err(&c->err, "sms record");
    }
    if (!r.sent) {
        *maybe_delivered = !strcmp(r.status, "unknown");
        return fail_sms(c, &r);
    }
    log_mask_phone(u->phone, masked, sizeof masked);
    json_object_set_new(c->data, "sent_to", json_string(masked));
    json_object_set_new(
        c->data, "sms",
        json_pack("{s:b, s:s, s:s}", "sent", 1, "mode", r.mode, "status", r.status));
    return 0;
}

/* "24 hours", "30 days", "15 minutes" */
static void spoken_ttl(int s, char *out, size_t n)
{
    if (s >= 2 * 86400 && s % 86400 == 0)
        snprintf(out, n, "%d days", s / 86400);
    else if (s >= 3600)
        snprintf(out, n, "%d hour%s", s / 3600, s / 3600 == 1 ? "" : "s");
    else
        snprintf(out, n, "%d minutes", s / 60);
}

/* A link of k's type sent to this user within k->once_per_s? (inside reserve_link's lock) */
static int sent_recently(struct act_call *c, const struct act__link_spec *k, long long user_id,
                         bool *yes)
{
    static const char sql[] = "SELECT COUNT(*) AS n FROM portal_links WHERE user_id = ? AND "
                              "link_type = ? AND created_at > ?";
    char since[24];
    struct db_rows r = {0};

    db_utc_text(util_now() - k->once_per_s, since, sizeof since);
    const struct db_val a[] = {DB_I(user_id), DB_S(k->link_type), ACT__TXT(since)};
    if (db_exec(c->db, sql, a, 3, &r, &c->err))
        return act__db_err(&c->err, "link history");
    *yes = db_cell_int(&r, 0, "n", 0) > 0;
    db_rows_free(&r);
    return 0;
}

/*
 * Emailed links to this user inside SMS_RATE_LIMIT's window: emails are
 * limited like texts (per user, counted in portal_links across processes),
 * so no caller can make us fill a customer's inbox.
 */
static int email_over_limit(struct act_call *c, long long user_id, bool *over)
{
    static const char sql[] = "SELECT COUNT(*) AS n FROM portal_links WHERE user_id = ? AND "
                              "method = 'email' AND created_at >= ?";
    const struct cfg_rate *lim = &c->env->cfg->sms_rate;
    char since[24];
    struct db_rows r = {0};

    db_utc_text(util_now() - lim->window_s, since, sizeof since);
    const struct db_val a[] = {DB_I(user_id), ACT__TXT(since)};
    if (db_exec(c->db, sql, a, 2, &r, &c->err))
        return act__db_err(&c->err, "email history");
    *over = db_cell_int(&r, 0, "n", 0) >= lim->count;
    db_rows_free(&r);
    return 0;
}

/*
 * The link row. With once_per_s, or for an email while SMS_RATE_LIMIT is on,
 * the check and the insert run in one short transaction under
 * db_lock_serial, so two processes sharing the database (two instances
 * behind a load balancer, the CLI beside the server) cannot both pass the
 * check. The row is the reservation: it is committed before the send and
 * deleted if the send surely failed.
 */
static int reserve_link(struct act_call *c, const struct act__link_spec *k, long long user_id,
                        const char *method, int ttl_s, char *token, long long *row)
{
    bool recent = false, over = false;
    bool email_limited = !strcmp(method, "email") && c->env->cfg->sms_rate.count > 0;
    int rc;

    if (k->once_per_s <= 0 && !email_limited)
        return link_create(c->db, user_id, k->link_type, method, ttl_s, c->session->call_sid, token,
                           row, &c->err);
    if ((rc = db_begin(c->db, &c->err)) || (rc = db_lock_serial(c->db, &c->err))) {
        if (c->db->in_tx)
            db_rollback(c->db);
        return act__db_err(&c->err, "link reservation");
    }
    rc = k->once_per_s > 0 ? sent_recently(c, k, user_id, &recent) : 0;
    if (!rc && recent)
        rc = act__fail(c, ERR_TOO_SOON, k->too_soon, "a link of this type was sent recently");
    if (!rc && email_limited && !(rc = email_over_limit(c, user_id, &over)) && over)
        rc = act__fail(c, ERR_RATE_LIMITED,
                       "I've already emailed you a few times in the last few minutes, so I won't "
                       "send another just now. Please check your inbox, and I can try again a "
                       "little later.",
                       "email rate limit (SMS_RATE_LIMIT per user)");
    if (!rc)
        rc = link_create(c->db, user_id, k->link_type, method, ttl_s, c->session->call_sid, token,
                         row, &c->err);
    if (!rc && (rc = db_commit(c->db, &c->err)))
        rc = act__db_err(&c->err, "link reservation commit");
    if (rc) {
        db_rollback(c->db);
        memset(token, 0, LINK_TOKEN_MAX);
    }
    return rc;
}

int act__send_link(struct act_call *c, const struct act__link_spec *k)
{
    const struct cfg *cfg = c->env->cfg;
    const char *method = act__arg_str(c, "method");
    int ttl_s = k->ttl_s ? k->ttl_s : cfg->link_ttl_s;
    char token[LINK_TOKEN_MAX], url[512], body[SMS_TEXT_MAX], subject[120] = "", ttl[32], base[256];
    struct act__user u;
    long long row = 0;
    bool maybe = false;
    int rc;

    if ((rc = act__user_for_call(c, &u)))
        return rc;
    if ((rc = reserve_link(c, k, u.id, method, ttl_s, token, &row)))
        return rc;
    util_strlcpy(base, k->base_url, sizeof base);
    for (size_t n = strlen(base); n && base[n - 1] == '/'; n--)
        base[n - 1] = '\0';
    if (k->with_token)
        snprintf(url, sizeof url, "%s%s%s%s%s", base, k->path, token, k->extra ? "&" : "",
                 k->extra ? k->extra : "");
    else
        snprintf(url, sizeof url, "%s", base);
    spoken_ttl(ttl_s, ttl, sizeof ttl);
    int hours = k->with_token ? ttl_s / 3600 : 0; /* the words come from sms/texts.c */
    if (!strcmp(method, "email"))
        sms_text_link_email(subject, sizeof subject, body, sizeof body, cfg->company_name,
                            u.first_name, k->link_type, url, hours);
    else
        sms_text_link(body, sizeof body, cfg->company_name, u.first_name, k->link_type, url, hours);
    rc = act__deliver(c, &u, method, subject, body, &maybe);
    memset(token, 0, sizeof token);
    memset(url, 0, sizeof url);
    memset(body, 0, sizeof body);
    if (rc) {
        struct err de = {0};
        if (!maybe && link_discard(c->db, row, &de))
            log_warn("could not discard undelivered link %lld: %s", row, de.detail);
        return rc;
    }
    json_object_set_new(c->data, "method", json_string(method));
    json_object_set_new(c->data, "link_type", json_string(k->link_type));
    json_object_set_new(c->data, "expires_in_seconds", json_integer(ttl_s));
    char tail[80] = "";
    if (k->with_token)
        snprintf(tail, sizeof tail, " It works once and expires in %s.", ttl);
    if (!strcmp(method, "email"))
        snprintf(c->message, sizeof c->message, "I've emailed %s to the address we have on file.%s",
                 k->spoken, tail);
    else
        snprintf(c->message, sizeof c->message, "I've texted %s to your mobile ending %s.%s",
                 k->spoken, act__last3(u.phone), tail);
    return 0;
}
