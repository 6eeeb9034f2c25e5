/*
 * aws.h - AWS Secrets Manager GetSecretValue over libcurl with SigV4.
 *
 * Used once at start by cfg_load() when AWS_SECRET_ID is set. Main thread,
 * before any worker exists. Never logs a secret value.
 */
#ifndef VWS_AWS_H
#define VWS_AWS_H

#include <jansson.h>

struct err;

struct aws_creds {
    const char *secret_id;      /* AWS_SECRET_ID: name or ARN */
    const char *region;         /* AWS_REGION (or AWS_DEFAULT_REGION) */
    const char *access_key_id;  /* AWS_ACCESS_KEY_ID */
    const char *secret_key;     /* AWS_SECRET_ACCESS_KEY */
    const char *session_token;  /* AWS_SESSION_TOKEN, may be "" */
    const char *endpoint_url;   /* AWS_ENDPOINT_URL, "" = https://secretsmanager.REGION.amazonaws.com */
};

/*
 * Fetch the secret; its SecretString must be a JSON object of variable
 * names to string values. On success *out is that object (caller owns).
 * On failure returns ERR_CONFIG with a clear e->detail (status, AWS error
 * type), never the secret itself.
 */
int aws_secret_fetch(const struct aws_creds *c, json_t **out, struct err *e);

#endif
