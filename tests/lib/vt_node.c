/*
 * vt_node.c - Node stand-in processes for C tests (see vt_node.h). Test code only.
 */
#include "vt_node.h"

#include "vwstest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

json_t *vt_node_log(const char *log_path)
{
    json_t *arr = json_array();
    FILE *f = fopen(log_path, "r");
    if (!f)
        return arr;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *r = json_loads(line, 0, NULL);
        if (r)
            json_array_append_new(arr, r);
    }
    free(line);
    fclose(f);
    return arr;
}

char *vt_node_stderr(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    if (f && buf) {
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
    }
    if (f)
        fclose(f);
    return buf;
}

static void exec_peer(const char *js, const char *portbuf, const char *key, const char *script,
                      const char *log, const char *cert, const char *tkey)
{
    if (cert)
        execlp("node", "node", js, "--port", portbuf, "--key", key, "--script", script, "--log",
               log, "--lifeline", "--tls-cert", cert, "--tls-key", tkey, (char *)NULL);
    else
        execlp("node", "node", js, "--port", portbuf, "--key", key, "--script", script, "--log",
               log, "--lifeline", (char *)NULL);
    _exit(127);
}

/* Read the peer's stdout until {"listening":…} or 10 s. */
static int wait_listening(int fd, char *line, size_t linesz)
{
    size_t n = 0;
    double until = now_ms() + 10000;
    line[0] = '\0';
    while (now_ms() < until && n < linesz - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, line + n, linesz - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        line[n] = '\0';
        if (strstr(line, "\"listening\""))
            return 0;
    }
    return -1;
}

int vt_node_start(struct vt_node *p, const char *peer_js, const char *key,
                  const char *script_json, const char *cert, const char *tkey, const char *tag)
{
    char script[192], errp[192], js[512], portbuf[16], line[256];
    int in[2], out[2];

    memset(p, 0, sizeof *p);
    char *d = vt_tmpdir();
    snprintf(p->dir, sizeof p->dir, "%s", d);
    free(d);
    snprintf(script, sizeof script, "%s/script.json", p->dir);
    snprintf(p->log_path, sizeof p->log_path, "%s/log.jsonl", p->dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", p->dir);
    snprintf(js, sizeof js, "%s/tests/peers/%s", vt_src(), peer_js);
    if (write_file(script, script_json ? script_json : "{\"rules\":[]}"))
        return -1;
    p->port = vt_free_port();
    snprintf(portbuf, sizeof portbuf, "%d", p->port);
    if (pipe(in))
        return -1;
    if (pipe(out)) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (fe >= 0)
            dup2(fe, 2);
        close(in[1]);
        close(out[0]);
        exec_peer(js, portbuf, key, script, p->log_path, cert, tkey);
    }
    close(in[0]);
    close(out[1]);
    p->pid = pid > 0 ? pid : 0;
    p->stdin_fd = in[1];
    int rc = pid > 0 ? wait_listening(out[0], line, sizeof line) : -1;
    close(out[0]);
    if (rc) {
        char *err = vt_node_stderr(p->dir);
        fprintf(stderr, "%s: stand-in did not start on port %d (got '%s'); stderr: %s\n", tag,
                p->port, line, err ? err : "");
        free(err);
        vt_node_stop(p);
    }
    return rc;
}

void vt_node_stop(struct vt_node *p)
{
    if (p->pid > 0) {
        int st;
        kill(p->pid, SIGTERM);
        double until = now_ms() + 3000;
        while (waitpid(p->pid, &st, WNOHANG) == 0) {
            if (now_ms() > until) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &st, 0);
                break;
            }
            poll(NULL, 0, 10);
        }
        p->pid = 0;
    }
    if (p->stdin_fd > 0) {
        close(p->stdin_fd);
        p->stdin_fd = 0;
    }
    if (p->dir[0]) {
        vt_rmdir(p->dir);
        p->dir[0] = '\0';
    }
}
