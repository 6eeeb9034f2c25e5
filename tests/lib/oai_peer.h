/*
 * oai_peer.h - start/stop the OpenAI Realtime stand-in (tests/peers/openai_standin.js)
 * from a C test and read what it received. Test code only.
 *
 *   struct vt_oai peer;
 *   vt_oai_start(&peer, "{\"rules\":[...]}", "sk-test");   // script JSON text (NULL = none)
 *   ... OPENAI_REALTIME_URL = peer.url ("ws://127.0.0.1:PORT/v1/realtime") ...
 *   json_t *log = vt_oai_log(&peer);                          // array of records
 *   vt_oai_stop(&peer);                                       // always: kills node by its pid
 *
 * The stand-in is started with --lifeline: if the test process dies, node sees EOF on
 * stdin and exits, so no stand-in outlives its test.
 */
#ifndef VWS_OAI_PEER_H
#define VWS_OAI_PEER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct vt_oai {
    pid_t pid;    /* node process, 0 when not running */
    int stdin_fd; /* lifeline pipe (write end) */
    int port;
    char url[128]; /* ws://127.0.0.1:PORT/v1/realtime */
    char dir[128]; /* temp dir: script.json, log.jsonl, stderr.txt */
    char log_path[192];
};

/* Start on a free loopback port; waits until it listens (10 s max). 0 or -1. */
int vt_oai_start(struct vt_oai *s, const char *script_json, const char *key);
/* Same over TLS (wss://localhost:PORT/v1/realtime) with this PEM certificate and key. */
int vt_oai_start_tls(struct vt_oai *s, const char *script_json, const char *key,
                     const char *cert_pem_path, const char *key_pem_path);
/* Make a throwaway CA (dir/ca.pem) and a server cert for localhost/127.0.0.1 signed by it
 * (dir/srv.pem, dir/srv.key) with the openssl CLI. 0 or -1. */
int vt_oai_make_certs(const char *dir);
/* SIGTERM, wait, remove the temp dir. Safe to call twice. */
void vt_oai_stop(struct vt_oai *s);
/* Every record so far (JSON lines parsed into an array). Caller owns. */
json_t *vt_oai_log(const struct vt_oai *s);

/* Client events of this type received (dir "in"), across connections. */
int vt_oai_count_in(json_t *log, const char *type);
/* Server events of this type sent (dir "out"). */
int vt_oai_count_out(json_t *log, const char *type);
/* n-th (0-based) received client event of this type, borrowed from log; NULL if none. */
json_t *vt_oai_nth_in(json_t *log, const char *type, int n);
/* Error events sent by the stand-in with this code ("" = any). */
int vt_oai_errors(json_t *log, const char *code);
/* The stand-in's stderr so far (malloc'd) for failure messages. */
char *vt_oai_stderr(const struct vt_oai *s);

#endif
