/*
 * vt_node.h - start and stop a Node stand-in (tests/peers/<name>.js) from a C
 * test: a temp dir holding script.json, log.jsonl and stderr.txt, a free
 * loopback port, a lifeline pipe on stdin (the peer exits when the test
 * dies), and a bounded wait for its {"listening":PORT} line. Test code only.
 */
#ifndef VWS_VT_NODE_H
#define VWS_VT_NODE_H

#include <jansson.h>
#include <sys/types.h>

struct vt_node {
    pid_t pid;           /* node process, 0 when not running */
    int stdin_fd;        /* lifeline pipe (write end) */
    int port;
    char dir[128];       /* temp dir: script.json, log.jsonl, stderr.txt */
    char log_path[192];
};

/*
 * Run `node tests/peers/<peer_js> --port P --key KEY --script DIR/script.json
 * --log DIR/log.jsonl --lifeline [--tls-cert CERT --tls-key TKEY]` and wait
 * (10 s max) until it listens. script_json NULL = {"rules":[]}. On failure
 * the peer's stderr is printed with tag, everything is cleaned up, -1.
 */
int vt_node_start(struct vt_node *p, const char *peer_js, const char *key,
                  const char *script_json, const char *cert, const char *tkey, const char *tag);
/* SIGTERM (SIGKILL after 3 s), close the lifeline, remove the temp dir. */
void vt_node_stop(struct vt_node *p);
/* The peer's JSONL record (one JSON value per line) as an array; [] when none. */
json_t *vt_node_log(const char *log_path);
/* The peer's stderr so far (malloc'd, "" when none). */
char *vt_node_stderr(const char *dir);

#endif
