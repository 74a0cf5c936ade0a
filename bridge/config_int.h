/*
 * bridge/config_int.h — what config.c, config_read.c and config_check.c share; for no other
 * module.
 */
#pragma once
#include <stddef.h>

#include "config.h"

/* The largest TCP port. */
#define CONFIG_PORT_MAX 65535

/* What ends the scheme of a URL. */
#define CONFIG_SCHEME_SEP     "://"
#define CONFIG_SCHEME_SEP_LEN (sizeof CONFIG_SCHEME_SEP - 1)

/* A message before config_fail() escapes and cuts it to the caller's buffer. */
#define CONFIG_MSG_SIZE 512
/* The message of one key, which config_load_text() then prefixes with the file's name. */
#define CONFIG_ERR_SIZE 256

enum key_kind {
	KIND_STRING,
	KIND_INT,
	KIND_BOOL,
	KIND_CHOICE, /* a string from a fixed list, stored as its index */
};

struct config_key {
	const char *section; /* NULL at the top level */
	const char *name;
	enum key_kind kind;
	size_t offset;
	long min, max;              /* KIND_INT */
	const char *const *choices; /* KIND_CHOICE, NULL-terminated */
	const int *values;          /* KIND_CHOICE: stored for choices[i] instead of i, when set */
};

/* The scalar keys of the file (config_read.c); config.c sets and frees their strings. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/**
 * Writes the message to @err (control characters as \xNN, cut to @errlen) and returns -EINVAL.
 * @err may be NULL.
 */
int config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Frees @n strings of @list and @list. */
void config_free_strings(char **list, size_t n);

/** Frees @n tokens and the array. */
void config_free_tokens(struct config_token *tokens, size_t n);

/** The value of hex digit @c, or -1. */
int config_hexval(char c);
