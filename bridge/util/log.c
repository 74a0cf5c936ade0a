/* bridge/util/log.c — key=value log lines on stderr, safe to call from any thread. */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int current_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
	atomic_store(&current_level, (int)level);
}

int log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&current_level);
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(name, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t used;
	int n;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	used = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + used, sizeof(line) - used, ".%03ldZ %s %s ", ts.tv_nsec / 1000000L,
		     log_level_name(level), component);
	if (n < 0)
		return;
	used += (size_t)n;
	n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	if (n < 0)
		return;
	/* A line longer than the buffer is cut, never split: one event, one line. */
	used = (size_t)n >= sizeof(line) - used ? sizeof(line) - 2 : used + (size_t)n;
	while (used > 0 && line[used - 1] == '\n')
		used--;
	line[used++] = '\n';
	if (write(STDERR_FILENO, line, used) < 0)
		return;
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, component, fmt, ap);
	va_end(ap);
}

char *log_quote(char *dst, size_t cap, const void *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t o = 0, starts[4] = {0, 0, 0, 0};

	dst[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		size_t esc = (c == '"' || c == '\\') ? 2 : (c < 0x20 || c >= 0x7f) ? 4 : 1;

		/* The character, the closing quote and the NUL must fit; if not, cut with "...",
		 * dropping whole characters (never half an escape) to make room for it. */
		if (o + esc + 2 > cap) {
			for (size_t k = 0; k < 4 && k < i && o + 3 + 2 > cap; k++)
				o = starts[(i - 1 - k) % 4];
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		starts[i % 4] = o;
		if (esc == 2) {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (esc == 4) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}
