/*
 * log.h - the logger: text or JSON lines on stderr, masked.
 *
 * Every line goes through log_mask_text() before it is written, so phone
 * numbers and email addresses are masked whatever code produced the line;
 * callers never need to remember to mask. One write(2) per line, so lines
 * from different threads never interleave. Any thread.
 *
 * Each .c defines LOG_MODULE before using the macros:
 *     #define LOG_MODULE "db_sqlite"
 */
#ifndef VWS_LOG_H
#define VWS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

/* Set level and format (json=false: text). Call once at start; safe to call again. */
void log_setup(enum log_level level, bool json);

/* Redirect output to fd (default 2). For tests. */
void log_set_fd(int fd);

/* Parse "debug|info|warn|error|off"; returns -1 when unknown. */
int log_level_parse(const char *s);

enum log_level log_level_get(void);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_DEBUG, LOG_MODULE, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, LOG_MODULE, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_MODULE, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, LOG_MODULE, __VA_ARGS__)

/*
 * Copy in to out (size outsz, always NUL-terminated), masking phone numbers
 * (+447700900001 -> +44*******001, 07700 900001 -> *******001) and email
 * addresses (sarah@example.com -> s***@example.com). Returns bytes written.
 */
size_t log_mask_text(const char *in, char *out, size_t outsz);

/* Mask one phone number for storage (voice_action_logs.phone_masked). out >= 32 bytes. */
void log_mask_phone(const char *phone, char *out, size_t outsz);

#endif
