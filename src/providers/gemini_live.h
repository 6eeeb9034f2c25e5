/*
 * gemini_live.h - extras of the Gemini Live provider beyond struct prov_ops
 * (prov_gemini_ops itself is declared in provider.h).
 *
 * Threads: prov_gemini_check_config and prov_gemini_setup_json may run on
 * any thread (pure); the rest on the loop thread.
 */
#ifndef VWS_GEMINI_LIVE_H
#define VWS_GEMINI_LIVE_H

#include <jansson.h>
#include <stdbool.h>

struct cfg;
struct err;
struct prov;

/*
 * Start-up check of the Gemini settings, called by `serve` before it accepts
 * calls (whichever provider is selected, when Gemini is configured or chosen).
 * Refuses, with ERR_CONFIG and e->detail naming the variable:
 *   - GEMINI_AFFECTIVE_DIALOG=true with a model that doesn't offer it (only the
 *     Gemini 2.5 native-audio family does; gemini-3.8-live removed it), or with
 *     a 2.5 native-audio model on an API version other than v1alpha;
 *   - a GEMINI_MODEL with characters outside [A-Za-z0-9._:-] or empty;
 *   - an empty GEMINI_VOICE.
 * Returns 0 when the settings are usable.
 */
int prov_gemini_check_config(const struct cfg *cfg, struct err *e);

/* True when the model belongs to the family that accepts enableAffectiveDialog. */
bool prov_gemini_model_has_affective(const char *model);

/*
 * The setup message this provider sends: {"setup":{...}} (caller owns).
 * handle: resumption handle or NULL; context: extra text appended to the
 * system instruction (a restarted session's transcript) or NULL.
 */
json_t *prov_gemini_setup_json(const struct cfg *cfg, const char *instructions, const char *handle,
                               const char *context);

/* Counters for tests and the load generator (loop thread). */
struct prov_gemini_stats {
    int connects;            /* sockets opened (1 + resumptions/restarts) */
    int resumes;             /* completed resumptions (setupComplete on a new socket) */
    int fresh_restarts;      /* resumptions that had to start a new session */
    int malformed;           /* malformed server messages tolerated */
    long audio_frames_in;    /* 20 ms caller frames received */
    long audio_msgs_out;     /* realtimeInput messages sent */
    long audio_frames_out;   /* 20 ms u-law frames handed to the session */
    long usage_total_tokens; /* last totalTokenCount seen */
    long fast_msgs;          /* model audio messages taken by the fast path (gem_fast.c) */
};
void prov_gemini_get_stats(const struct prov *p, struct prov_gemini_stats *out);

#endif
