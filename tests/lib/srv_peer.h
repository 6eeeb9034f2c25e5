/*
 * srv_peer.h - run `voice-ws serve` from a C test (fresh directory, demo
 * SQLite database, free port), talk HTTP to it (libcurl), place calls with the
 * Twilio stand-in (tests/peers/twilio_caller.js) and read the database it
 * wrote. Test code only. Every process started here is stopped by its pid.
 */
#ifndef VWS_SRV_PEER_H
#define VWS_SRV_PEER_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct vt_srv {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[128]; /* working directory (voice.db, stderr.txt) */
    char db_path[192];
    char err_path[192];
    int exit_status; /* after vt_srv_stop */
};

/* Init the demo DB, then start serve with env ("K=V", NULL-terminated) and wait
 * for /health. PORT and DB_PATH are set here. 0 or -1. */
int vt_srv_start(struct vt_srv *s, const char *const *env);
/* Send sig (SIGTERM), wait up to timeout_ms, SIGKILL after. Returns the exit status
 * (128+signal when killed) and removes the directory unless keep. */
int vt_srv_stop(struct vt_srv *s, int sig, int timeout_ms);
/* Wait for exit without signalling; -1 on timeout. */
int vt_srv_wait(struct vt_srv *s, int timeout_ms);
void vt_srv_cleanup(struct vt_srv *s);
/* The server's stderr (log) so far; caller frees. */
char *vt_srv_log(const struct vt_srv *s);
/* Wait until the log contains needle (timeout_ms); true when found. */
int vt_srv_log_wait(const struct vt_srv *s, const char *needle, int timeout_ms);

/* One HTTP request to 127.0.0.1:port. headers: "Name: value" list or NULL.
 * Returns the status (0 on transport error); *body (caller frees) may be NULL. */
int vt_http(int port, const char *method, const char *path, const char *const *headers,
            const char *body, size_t blen, char **resp_body);

/* Integer / text result of one SQL query on the server's database (first row, first
 * column); -1 / NULL when no row. */
long long vt_srv_sql_int(const struct vt_srv *s, const char *sql);
char *vt_srv_sql_text(const struct vt_srv *s, const char *sql);

/* The Twilio stand-in: spec is the JSON object documented in twilio_caller.js. */
struct vt_call {
    pid_t pid;
    char out_path[192];
};
int vt_call_start(struct vt_call *c, const char *spec_json);
/* Wait for the report (caller owns) or NULL after timeout_s (the process is killed). */
json_t *vt_call_wait(struct vt_call *c, int timeout_s);
/* Start + wait. */
json_t *vt_call_run(const char *spec_json, int timeout_s);

/* Convenience: the report's path value as integer (e.g. "received.media"). */
long long vt_jint(json_t *j, const char *dotted);

/* Start a helper process (argv[0] looked up in PATH), stdout to out_path (NULL =
 * /dev/null). Returns its pid or -1. Stop it with vt_proc_stop (SIGTERM, then KILL). */
pid_t vt_proc_start(const char *const *argv, const char *out_path);
void vt_proc_stop(pid_t pid);

/* Remember a process (and a temp dir to remove) for vt_peers_cleanup_all. */
void vt_peers_track(pid_t pid, const char *dir);
void vt_peers_untrack(pid_t pid);
/* cmocka teardown: SIGKILL every tracked process still running, remove their dirs. */
int vt_peers_cleanup_all(void **state);

#endif
