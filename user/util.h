/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush helper: small shared utilities.
 */
#ifndef PAGEPUSH_UTIL_H
#define PAGEPUSH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Exit codes, documented in pagepush(8). */
enum {
	PP_EXIT_OK = 0,
	PP_EXIT_FAIL = 1,	/* the operation failed (kernel or peer said no) */
	PP_EXIT_USAGE = 2,	/* bad command line */
	PP_EXIT_MIGRATION = 3,	/* the migration failed (session FAILED) */
};

extern const char *pp_prog;

void pp_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int pp_parse_size(const char *s, uint64_t *out);
int pp_parse_page_size(const char *s, uint32_t *out);
int pp_parse_u32(const char *s, uint32_t *out);
const char *pp_fmt_bytes(char *buf, size_t len, uint64_t bytes);
const char *pp_fmt_page_size(uint32_t page_size);
const char *pp_fmt_usec(char *buf, size_t len, double usec);
uint64_t pp_now_ns(void);
void pp_json_string(FILE *f, const char *s);

#endif /* PAGEPUSH_UTIL_H */
