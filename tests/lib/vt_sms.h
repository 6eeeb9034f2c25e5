/*
 * vt_sms.h - test helpers for the messaging tests: start and stop a Node
 * test peer (twilio_faults.js, smtp_standin.js, Prism) on a loopback port,
 * read files, capture the log. Test code only.
 */
#ifndef VT_SMS_H
#define VT_SMS_H

#include <stdbool.h>
#include <sys/types.h>

struct vt_sms_peer {
    pid_t pid; /* 0 = not running */
    int port;
    char log[512]; /* stdout+stderr of the peer */
};

/*
 * Start argv (argv[0] a path; a "node" argv[0] is looked up in PATH) with
 * stdout/stderr to p->log; wait up to wait_s for 127.0.0.1:p->port to accept.
 * The peer dies with the test process (PR_SET_PDEATHSIG). 0 or -1.
 */
int vt_sms_peer_start(struct vt_sms_peer *p, const char *const *argv, int wait_s);
/* SIGTERM, then SIGKILL after 3 s; reaps. Safe on a stopped peer. */
void vt_sms_peer_stop(struct vt_sms_peer *p);

/* Whole file, malloc'd and NUL-terminated; NULL when missing. */
char *vt_sms_read_file(const char *path);
/* Occurrences of needle in the file (0 when missing). */
int vt_sms_count_in_file(const char *path, const char *needle);

/* Send the logger to a fresh file in dir; returns its path (static). */
const char *vt_sms_log_capture(const char *dir);
/* Put the logger back on stderr. */
void vt_sms_log_release(void);

#endif
