/* bridge/util/log.h — one line per event: "TIME level component event key=value ...". */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/** Startup, before other threads run. Lines above @level are dropped. */
void log_set_level(enum log_level level);

/** Any thread. True when a line at @level would be written (to skip costly formatting). */
int log_enabled(enum log_level level);

/**
 * Any thread. Writes one line to stderr: "TIME level component " then @fmt. The line is written
 * with a single write so lines from several threads never interleave. Never pass a secret.
 */
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Same, with a va_list (for lws's log hook). */
void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/**
 * Pure. Writes @s[0..len) into @dst as a double-quoted value safe to put in a log line: quotes,
 * backslashes, control and non-ASCII bytes are escaped, long values are cut with "...".
 * Returns @dst (always NUL-terminated; @cap >= 8).
 */
char *log_quote(char *dst, size_t cap, const void *s, size_t len);

/** Pure. "error", "warn", "info", "debug"; parses the same names (-EINVAL for others). */
const char *log_level_name(enum log_level level);
int log_level_parse(const char *name, enum log_level *out);
