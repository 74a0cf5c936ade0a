/*
 * tests/fuzz/replay.c — runs a fuzz target over its corpus without libFuzzer, so that the normal
 * and the sanitizer builds (gcc included) replay every seed and every past finding as a test.
 *
 * Usage: replay_<target> PATH...   where each PATH is a file or a directory of files (not
 * recursive; names starting with '.' are skipped). Exits 1 when a path cannot be read or when
 * there was no input at all: an empty corpus must not pass silently.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* UBSan reports must fail the test even when UBSAN_OPTIONS is not set (it still overrides). */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/*
 * The input being run, for the report when a check aborts: a signal handler has no other way to
 * know it. Only this harness has it; the targets keep no state.
 */
static const char *volatile current_input;

static void say_current(void)
{
	const char *path = current_input;
	if (path) {
		(void)!write(2, "replay: failed on ", 18);
		(void)!write(2, path, strlen(path));
		(void)!write(2, "\n", 1);
	}
}

/* A CHECK that fails aborts. */
static void on_abort(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A sanitizer report ends here (only in a sanitizer build: the symbol is weak). */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* Reads @path into an allocation of exactly its size, so ASan sees any read past the end. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long size;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto fail;
	/* malloc(0) may return NULL; one spare byte that the target is not told about. */
	data = malloc((size_t)size ? (size_t)size : 1);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
		goto fail;
	fclose(f);
	current_input = path;
	LLVMFuzzerTestOneInput(data, (size_t)size);
	current_input = NULL;
	free(data);
	return 0;
fail:
	fprintf(stderr, "replay: %s: cannot read\n", path);
	free(data);
	fclose(f);
	return -1;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of @dir in name order (so a failure is reproducible); the count. */
static long run_dir(const char *dir, int *status)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long count = 0;

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		*status = 1;
		return 0;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **more = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
			if (!more)
				abort();
			names = more;
		}
		if (!(names[n++] = strdup(e->d_name)))
			abort();
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
		char *path = malloc(len);
		struct stat st;
		if (!path)
			abort();
		snprintf(path, len, "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(path))
				*status = 1;
			else
				count++;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	int status = 0;
	long count = 0;
	struct stat st;

	signal(SIGABRT, on_abort);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(say_current);
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			status = 1;
		} else if (S_ISDIR(st.st_mode)) {
			count += run_dir(argv[i], &status);
		} else if (run_file(argv[i])) {
			status = 1;
		} else {
			count++;
		}
	}
	printf("replay: %ld inputs\n", count);
	if (count == 0) {
		fprintf(stderr, "replay: no input (usage: %s FILE|DIR...)\n", argv[0]);
		return 1;
	}
	return status;
}
