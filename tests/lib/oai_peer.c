/*
 * oai_peer.c - run the OpenAI Realtime stand-in from C tests (see oai_peer.h).
 * Test code only.
 */
#include "oai_peer.h"

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

static int start_once(struct vt_oai *s, const char *script_json, const char *key, const char *cert,
                      const char *pkey)
{
    char script[192], errp[192], js[512], portbuf[16];
    int in[2], out[2];

    memset(s, 0, sizeof *s);
    char *d = vt_tmpdir();
    snprintf(s->dir, sizeof s->dir, "%s", d);
    free(d);
    snprintf(script, sizeof script, "%s/script.json", s->dir);
    snprintf(s->log_path, sizeof s->log_path, "%s/log.jsonl", s->dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", s->dir);
    snprintf(js, sizeof js, "%s/tests/peers/openai_standin.js", vt_src());
    if (write_file(script, script_json ? script_json : "{\"rules\":[]}"))
        return -1;
    s->port = vt_free_port();
    snprintf(portbuf, sizeof portbuf, "%d", s->port);
    if (pipe(in) || pipe(out))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(out[1], 1);
        if (fe >= 0)
            dup2(fe, 2);
        close(in[1]);
        close(out[0]);
        if (cert)
            execlp("node", "node", js, "--port", portbuf, "--key", key ? key : "sk-test",
                   "--script", script, "--log", s->log_path, "--lifeline", "--tls-cert", cert,
                   "--tls-key", pkey, (char *)NULL);
        else
            execlp("node", "node", js, "--port", portbuf, "--key", key ? key : "sk-test",
                   "--script", script, "--log", s->log_path, "--lifeline", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->pid = pid;
    s->stdin_fd = in[1];
    if (cert)
        snprintf(s->url, sizeof s->url, "wss://localhost:%d/v1/realtime", s->port);
    else
        snprintf(s->url, sizeof s->url, "ws://127.0.0.1:%d/v1/realtime", s->port);

    /* Wait for {"listening":PORT}. */
    char line[256];
    size_t n = 0;
    double until = now_ms() + 10000;
    while (now_ms() < until && n < sizeof line - 1) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t k = read(out[0], line + n, sizeof line - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        line[n] = '\0';
        if (strstr(line, "\"listening\"")) {
            close(out[0]);
            return 0;
        }
    }
    close(out[0]);
    char *err = vt_oai_stderr(s);
    fprintf(stderr, "oai_peer: stand-in did not start on port %d (got '%.*s'); stderr: %s\n",
            s->port, (int)n, line, err);
    free(err);
    vt_oai_stop(s);
    return -1;
}

int vt_oai_start(struct vt_oai *s, const char *script_json, const char *key)
{
    /* A port from vt_free_port can be taken again before node binds it: retry. */
    for (int attempt = 0; attempt < 3; attempt++)
        if (start_once(s, script_json, key, NULL, NULL) == 0)
            return 0;
    return -1;
}

int vt_oai_start_tls(struct vt_oai *s, const char *script_json, const char *key,
                     const char *cert_pem_path, const char *key_pem_path)
{
    for (int attempt = 0; attempt < 3; attempt++)
        if (start_once(s, script_json, key, cert_pem_path, key_pem_path) == 0)
            return 0;
    return -1;
}

int vt_oai_make_certs(const char *dir)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext.cnf && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=vws-test-ca 2>/dev/null && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile ext.cnf 2>/dev/null",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

void vt_oai_stop(struct vt_oai *s)
{
    if (s->pid > 0) {
        int st;
        kill(s->pid, SIGTERM);
        double until = now_ms() + 3000;
        while (waitpid(s->pid, &st, WNOHANG) == 0) {
            if (now_ms() > until) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &st, 0);
                break;
            }
            poll(NULL, 0, 10);
        }
        s->pid = 0;
    }
    if (s->stdin_fd > 0) {
        close(s->stdin_fd);
        s->stdin_fd = 0;
    }
    if (s->dir[0]) {
        vt_rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

json_t *vt_oai_log(const struct vt_oai *s)
{
    json_t *arr = json_array();
    FILE *f = fopen(s->log_path, "r");
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

static int count_dir(json_t *log, const char *dir, const char *type)
{
    size_t i;
    json_t *r;
    int n = 0;
    json_array_foreach(log, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "dir"));
        const char *t = json_string_value(json_object_get(json_object_get(r, "ev"), "type"));
        if (d && t && !strcmp(d, dir) && !strcmp(t, type))
            n++;
    }
    return n;
}

int vt_oai_count_in(json_t *log, const char *type)
{
    return count_dir(log, "in", type);
}

int vt_oai_count_out(json_t *log, const char *type)
{
    return count_dir(log, "out", type);
}

json_t *vt_oai_nth_in(json_t *log, const char *type, int nth)
{
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "dir"));
        json_t *ev = json_object_get(r, "ev");
        const char *t = json_string_value(json_object_get(ev, "type"));
        if (d && t && !strcmp(d, "in") && !strcmp(t, type) && nth-- == 0)
            return ev;
    }
    return NULL;
}

int vt_oai_errors(json_t *log, const char *code)
{
    size_t i;
    json_t *r;
    int n = 0;
    json_array_foreach(log, i, r)
    {
        const char *d = json_string_value(json_object_get(r, "dir"));
        json_t *ev = json_object_get(r, "ev");
        const char *t = json_string_value(json_object_get(ev, "type"));
        if (!d || !t || strcmp(d, "out") || strcmp(t, "error"))
            continue;
        const char *c = json_string_value(json_object_get(json_object_get(ev, "error"), "code"));
        if (!*code || (c && !strcmp(c, code)))
            n++;
    }
    return n;
}

char *vt_oai_stderr(const struct vt_oai *s)
{
    char p[192];
    snprintf(p, sizeof p, "%s/stderr.txt", s->dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return strdup("");
    char *buf = calloc(1, 8193);
    size_t n = fread(buf, 1, 8192, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}
