/*
 * aws.c - Secrets Manager fetch. Placeholder until the SigV4 client lands:
 * it refuses clearly instead of pretending.
 */
#include "core/aws.h"

#include "core/err.h"

int aws_secret_fetch(const struct aws_creds *c, json_t **out, struct err *e)
{
    (void)c;
    *out = NULL;
    return err_set(e, ERR_CONFIG, NULL, "AWS_SECRET_ID: Secrets Manager client not built yet");
}
