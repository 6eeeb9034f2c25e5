/*
 * aws.c - AWS Secrets Manager GetSecretValue: one signed POST over libcurl.
 *
 * Owns: building the JSON 1.1 request, signing it (libcurl's
 * CURLOPT_AWS_SIGV4; curl 7.88 signs host, x-amz-date and every header we
 * set ourselves, so Content-Type, X-Amz-Target and X-Amz-Security-Token are
 * all covered), reading a bounded response, and turning SecretString into a
 * JSON object of string values.
 * Never logs or returns the secret: errors carry the HTTP status, the AWS
 * error type and AWS's own message, which never contains the value.
 * Main thread, at start, before any worker exists (cfg_load).
 */
#include "core/aws.h"

#include "core/err.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AWS_CONNECT_TIMEOUT_S 5L
#define AWS_TOTAL_TIMEOUT_S 10L        /* the answer normally takes well under a second */
#define AWS_RESPONSE_MAX (1024 * 1024) /* a secret is at most 64 KiB; its envelope is small */

struct body {
    char *buf;
    size_t len;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > AWS_RESPONSE_MAX) {
        b->too_big = true;
        return 0; /* abort the transfer */
    }
    char *nb = realloc(b->buf, b->len + n + 1);
    if (!nb)
        return 0;
    b->buf = nb;
    memcpy(b->buf + b->len, ptr, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* Regions are short lower-case names ("eu-west-2"); anything else would alter the URL. */
static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n < 3 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)r[i]) && !isdigit((unsigned char)r[i]) && r[i] != '-')
            return false;
    return true;
}

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* "com.amazon.coral.service#ResourceNotFoundException" -> "ResourceNotFoundException". */
static const char *short_type(const char *t)
{
    const char *h = strrchr(t, '#');
    return h ? h + 1 : t;
}

/* A failed answer: status, __type and AWS's message (bounded, one line). */
static int http_error(long status, const struct body *b, const char *secret_id, struct err *e)
{
    json_t *root = b->buf ? json_loadb(b->buf, b->len, 0, NULL) : NULL;
    const char *type = NULL, *msg = NULL;
    char clean[160];

    if (json_is_object(root)) {
        type = json_string_value(json_object_get(root, "__type"));
        msg = json_string_value(json_object_get(root, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(root, "Message"));
    }
    if (!type)
        type = "unknown error";
    type = short_type(type);
    clean[0] = '\0';
    /* A signature error's message quotes the canonical request: it adds nothing useful. */
    if (msg && !strstr(type, "Signature")) {
        size_t i = 0;
        for (; msg[i] && i < sizeof clean - 1; i++)
            clean[i] = (unsigned char)msg[i] < 0x20 ? ' ' : msg[i];
        clean[i] = '\0';
    }
    err_set(e, ERR_CONFIG, NULL, "AWS_SECRET_ID %s: Secrets Manager answered HTTP %ld %s%s%s",
            secret_id, status, type, clean[0] ? ": " : "", clean);
    json_decref(root);
    return ERR_CONFIG;
}

/* SecretString -> object of strings (caller owns). */
static int parse_secret(const struct body *b, const char *secret_id, json_t **out, struct err *e)
{
    json_error_t je;
    json_t *root = json_loadb(b->buf ? b->buf : "", b->len, 0, &je), *obj = NULL;
    const char *ss;
    const char *key;
    json_t *val;
    int rc = ERR_CONFIG;

    if (!json_is_object(root)) {
        err_set(e, ERR_CONFIG, NULL, "AWS_SECRET_ID %s: Secrets Manager answer is not JSON",
                secret_id);
        goto out;
    }
    ss = json_string_value(json_object_get(root, "SecretString"));
    if (!ss) {
        err_set(e, ERR_CONFIG, NULL,
                "AWS_SECRET_ID %s: the secret has no SecretString (binary secrets are not "
                "supported; store a JSON object of NAME: value)",
                secret_id);
        goto out;
    }
    obj = json_loads(ss, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(obj)) {
        /* je.text may quote the secret's text: not repeated here. */
        err_set(e, ERR_CONFIG, NULL,
                "AWS_SECRET_ID %s: SecretString is not a JSON object of NAME: \"value\" pairs",
                secret_id);
        goto out;
    }
    json_object_foreach(obj, key, val)
    {
        if (!json_is_string(val)) {
            err_set(e, ERR_CONFIG, NULL,
                    "AWS_SECRET_ID %s: the value of %s in SecretString is not a string", secret_id,
                    key);
            goto out;
        }
    }
    *out = obj;
    obj = NULL;
    rc = 0;
out:
    json_decref(obj);
    json_decref(root);
    return rc;
}

int aws_secret_fetch(const struct aws_creds *c, json_t **out, struct err *e)
{
    char url[512], sigv4[96], *hdr_token = NULL;
    size_t hdr_token_len = 0;
    struct curl_slist *hdrs = NULL;
    struct body b = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    json_t *req = NULL;
    char *payload = NULL;
    CURL *h = NULL;
    long status = 0;
    int rc = ERR_CONFIG;

    *out = NULL;
    if (!c || !c->secret_id || !*c->secret_id)
        return err_set(e, ERR_CONFIG, NULL, "AWS_SECRET_ID is empty");
    if (strlen(c->secret_id) > 2048) /* the longest name or ARN AWS accepts */
        return err_set(e, ERR_CONFIG, NULL, "AWS_SECRET_ID is longer than 2048 characters");
    if (!c->region || !region_ok(c->region))
        return err_set(e, ERR_CONFIG, NULL,
                       "AWS_REGION: invalid value '%s' (expected a region "
                       "such as eu-west-2)",
                       c->region ? c->region : "");
    if (!c->access_key_id || !*c->access_key_id || !c->secret_key || !*c->secret_key)
        return err_set(e, ERR_CONFIG, NULL,
                       "AWS_SECRET_ID is set but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not");
    if (!header_safe(c->access_key_id) || strchr(c->access_key_id, ':') ||
        !header_safe(c->secret_key) || (c->session_token && !header_safe(c->session_token)))
        return err_set(e, ERR_CONFIG, NULL,
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN contain control "
                       "characters");
    if (c->endpoint_url && *c->endpoint_url) {
        if (strncmp(c->endpoint_url, "https://", 8) && strncmp(c->endpoint_url, "http://", 7))
            return err_set(e, ERR_CONFIG, NULL,
                           "AWS_ENDPOINT_URL: invalid value '%s' (expected an http(s):// URL)",
                           c->endpoint_url);
        snprintf(url, sizeof url, "%s", c->endpoint_url);
    } else {
        snprintf(url, sizeof url, "https://secretsmanager.%s.amazonaws.com/", c->region);
    }
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:secretsmanager", c->region);

    req = json_pack("{s:s}", "SecretId", c->secret_id);
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    h = curl_easy_init();
    if (!payload || !h) {
        rc = err_set(e, ERR_CONFIG, NULL, "AWS_SECRET_ID: cannot build the request (%s)",
                     payload ? "curl" : "SecretId is not valid UTF-8");
        goto out;
    }

    hdrs = curl_slist_append(hdrs, "Content-Type: application/x-amz-json-1.1");
    hdrs = curl_slist_append(hdrs, "X-Amz-Target: secretsmanager.GetSecretValue");
    /*
     * Only headers that are really sent: curl 7.88 signs every header in this
     * list, including an empty "Expect:" used to suppress one, which AWS then
     * finds missing and refuses (InvalidSignatureException).
     */
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (c->session_token && *c->session_token) {
        hdr_token_len = strlen(c->session_token) + 32;
        hdr_token = malloc(hdr_token_len);
        if (!hdr_token) {
            rc = err_set(e, ERR_NOMEM, NULL, "AWS: out of memory");
            goto out;
        }
        snprintf(hdr_token, hdr_token_len, "X-Amz-Security-Token: %s", c->session_token);
        hdrs = curl_slist_append(hdrs, hdr_token);
    }

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, AWS_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, AWS_TOTAL_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    /* The access key id never contains ':', so USERPWD splits where we mean it to. */
    {
        size_t n = strlen(c->access_key_id) + strlen(c->secret_key) + 2;
        char *userpwd = malloc(n);
        if (!userpwd) {
            rc = err_set(e, ERR_NOMEM, NULL, "AWS: out of memory");
            goto out;
        }
        snprintf(userpwd, n, "%s:%s", c->access_key_id, c->secret_key);
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
        /* curl copies option strings, so the key is wiped from our memory now */
        memset(userpwd, 0, n);
        free(userpwd);
    }
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (b.too_big)
            rc = err_set(e, ERR_CONFIG, NULL,
                         "AWS_SECRET_ID %s: Secrets Manager answer larger than %d bytes",
                         c->secret_id, AWS_RESPONSE_MAX);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = err_set(e, ERR_CONFIG, NULL,
                         "AWS_SECRET_ID %s: Secrets Manager at %s did not answer within %ld s",
                         c->secret_id, url, AWS_TOTAL_TIMEOUT_S);
        else
            rc = err_set(e, ERR_CONFIG, NULL,
                         "AWS_SECRET_ID %s: cannot reach Secrets Manager at %s: %s", c->secret_id,
                         url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        rc = http_error(status, &b, c->secret_id, e);
    else
        rc = parse_secret(&b, c->secret_id, out, e);

out:
    if (b.buf) {
        memset(b.buf, 0, b.len); /* the answer held the secret */
        free(b.buf);
    }
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (hdr_token) {
        memset(hdr_token, 0, hdr_token_len);
        free(hdr_token);
    }
    free(payload);
    json_decref(req);
    return rc;
}
