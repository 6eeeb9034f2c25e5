/*
 * vwstest.h - helpers shared by the test executables: configuration from
 * key=value lists, fresh databases per backend, temporary directories,
 * running the built binary and capturing its output.
 *
 * Include after cmocka's prerequisites:
 *   #include <stdarg.h> <stddef.h> <stdint.h> <setjmp.h> <cmocka.h>
 */
#ifndef VWS_TEST_H
#define VWS_TEST_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;

/* A cfg from "KEY=VALUE" strings (NULL-terminated); nothing read from the
 * real environment or .env. Aborts the test on a config error. */
void vt_cfg(struct cfg *c, const char *const *kv);
/* Same, returning the cfg_load error code instead (to test refusals). */
int vt_cfg_try(struct cfg *c, const char *const *kv, char *detail, size_t detailsz);

/* Fresh temporary directory (removed by vt_rmdir). Returns a static-lifetime copy. */
char *vt_tmpdir(void);
void vt_rmdir(const char *dir);

/* Environment-provided paths (set by CTest): built binary, source tree, build dir. */
const char *vt_bin(void);
const char *vt_src(void);
const char *vt_build(void);

struct vt_run {
    int status;          /* exit code, or 128+signal */
    char *out;           /* stdout (malloc'd, NUL-terminated) */
    char *err;           /* stderr */
};

/*
 * Run argv[0] with argv in directory cwd (NULL = current) with extra
 * environment entries env ("K=V", NULL-terminated, added to a minimal
 * clean environment: PATH, HOME, and ASAN/UBSAN/LSAN options). Waits at
 * most timeout_s, then kills. Returns 0 when it ran.
 */
int vt_run(struct vt_run *r, const char *cwd, const char *const *env, const char *const *argv,
           int timeout_s);
void vt_run_free(struct vt_run *r);

/* Free TCP port on 127.0.0.1 (bind to 0, read, close). */
int vt_free_port(void);

/* MySQL test server from scripts/mariadb.sh (env VWS_MYSQL_*); false when not set. */
bool vt_mysql_available(void);

#endif
