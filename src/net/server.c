/*
 * server.c - placeholder until the voice server lands: refuses clearly.
 */
#include "net/server.h"

#include <stdio.h>

int srv_run(const struct cfg *cfg, const struct srv_opts *o)
{
    (void)cfg;
    (void)o;
    fprintf(stderr, "voice-ws: serve is not available in this build yet\n");
    return 1;
}
