// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush helper: small shared utilities.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

const char *pp_prog = "pagepush";

static void pp_vmsg(const char *what, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", pp_prog, what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void pp_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_vmsg("", fmt, ap);
	va_end(ap);
}

void pp_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_vmsg("warning: ", fmt, ap);
	va_end(ap);
}

/* "4096", "4K", "512M", "1G", "2MiB"; binary units. */
int pp_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int pp_parse_page_size(const char *s, uint32_t *out)
{
	uint64_t v;

	if (pp_parse_size(s, &v) || (v != 4096 && v != 2 << 20))
		return -EINVAL;
	*out = v;
	return 0;
}

int pp_parse_u32(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

const char *pp_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = bytes;
	unsigned int i = 0;

	while (v >= 1024 && i < ARRAY_SIZE(units) - 1) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[i]);
	return buf;
}

const char *pp_fmt_page_size(uint32_t page_size)
{
	return page_size == 4096 ? "4K" : page_size == (2 << 20) ? "2M" : "?";
}

const char *pp_fmt_usec(char *buf, size_t len, double usec)
{
	if (usec < 1000)
		snprintf(buf, len, "%.0f us", usec);
	else if (usec < 1000000)
		snprintf(buf, len, "%.2f ms", usec / 1000);
	else
		snprintf(buf, len, "%.2f s", usec / 1000000);
	return buf;
}

uint64_t pp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void pp_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}
