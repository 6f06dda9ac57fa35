// SPDX-License-Identifier: GPL-2.0
/*
 * The pagepush generic netlink family against bad requests: a seeded
 * fuzzer over every command (NEW, GET, DEL, CONNECT, RECOVER and numbers
 * no command has), their header fields, flags and attributes (unknown,
 * reply-only, wrong lengths and types, out of range, NLA_F_NESTED, bad
 * nests, oversize and unterminated strings, truncated, trailing bytes,
 * missing), a table of hand-made malformed requests with their errno and
 * message, and dumps cut short (socket closed or exited mid-dump, partial
 * reads, sessions deleted during a dump, a second request meanwhile).
 *
 * A model of the family's strict validation (the kernel's policy checks,
 * then pagepush's own, Documentation/netlink.rst) says for every request
 * whether it must succeed, must fail with an extended-ack message, or must
 * fail where the netlink core gives no message (an unknown command, a
 * header too short, a dump of a command without one). The family must keep
 * working throughout: a NEW, GET and DEL round trip every few hundred
 * requests and at the end.
 *
 * PP_FUZZ_SEED=N repeats a run (the seed is printed); PP_FUZZ_MSGS=N sets
 * the number of fuzzed requests (20000).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/genl/genl.h>

#include "../kselftest_harness.h"
#include "pp_test.h"

#define NF_MSGS_DEFAULT		20000
#define NF_TIMEOUT_MS		5000
#define NF_MAX_LIVE		24
#define NF_MAX_REPORTS		10
#define NF_ROUND_TRIP_EVERY	500

static uint64_t nf_seed;
static long nf_start_pages;

static void __attribute__((constructor)) nf_init(void)
{
	nf_seed = pp_fuzz_seed();
	nf_start_pages = pp_module_pages();
}

/*
 * A TAP diagnostic, flushed now: the harness ends each test with _exit(),
 * which would drop what stdout buffers when it is a pipe (the runner).
 */
__attribute__((format(printf, 1, 2)))
static void nf_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static uint64_t nf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/* A NEW, GET and DEL that must work: the family is still usable. */
static int nf_round_trip(struct pp_nl *nl, char *why, size_t len)
{
	struct pp_session_info info, got;
	int ret;

	ret = pp_nl_new(nl, 4 * SZ_4K, SZ_4K, NULL, &info);
	if (ret) {
		snprintf(why, len, "NEW: %s", pp_nl_strerror(nl));
		return ret;
	}
	ret = pp_nl_get(nl, info.index, &got);
	if (!ret && (got.index != info.index || got.state != PAGEPUSH_STATE_NEW))
		ret = -EPROTO;
	if (ret)
		snprintf(why, len, "GET: %s", pp_nl_strerror(nl));
	if (pp_nl_del(nl, info.index)) {
		snprintf(why, len, "DEL: %s", pp_nl_strerror(nl));
		return -EIO;
	}
	return ret;
}

/* ---- building requests ----------------------------------------------- */

/* An empty request: netlink and generic netlink headers, no attribute. */
static struct nl_msg *nf_msg(struct pp_nl *nl, uint8_t cmd, uint16_t flags,
			     uint8_t version, uint16_t reserved)
{
	struct nl_msg *msg = nlmsg_alloc_size(1 << 16);
	struct genlmsghdr *g;
	struct nlmsghdr *nlh;

	if (!msg)
		return NULL;
	nlh = nlmsg_put(msg, 0, 0, nl->family, GENL_HDRLEN, flags);
	if (!nlh) {
		nlmsg_free(msg);
		return NULL;
	}
	g = nlmsg_data(nlh);
	g->cmd = cmd;
	g->version = version;
	g->reserved = reserved;
	return msg;
}

/*
 * An attribute as it is, whatever its header says: @nla_len is what the
 * header claims, @n the payload bytes that follow, then padding to 4
 * unless @nopad.
 */
static void nf_raw_attr(struct nl_msg *msg, uint16_t nla_len, uint16_t type,
			const void *data, size_t n, bool nopad)
{
	static const uint8_t zero[4];
	struct nlattr h = { .nla_len = nla_len, .nla_type = type };

	nlmsg_append(msg, &h, sizeof(h), 0);
	if (n)
		nlmsg_append(msg, (void *)data, n, 0);
	if (!nopad && n % 4)
		nlmsg_append(msg, (void *)zero, 4 - n % 4, 0);
}

static void nf_attr(struct nl_msg *msg, uint16_t type, const void *data,
		    size_t n)
{
	nf_raw_attr(msg, NLA_HDRLEN + n, type, data, n, false);
}

/* ---- the model of the family's validation ---------------------------- */

enum nf_want {
	NF_OK,		/* succeeds */
	NF_ERR_MSG,	/* fails with an extended-ack message */
	NF_ERR,		/* fails; the core may give no message */
	NF_ANY_MSG,	/* succeeds, or fails with a message */
	NF_RECOVER,	/* fails: EOPNOTSUPP (no such command yet) or a message */
};

static const char * const nf_want_names[] = {
	[NF_OK] = "success", [NF_ERR_MSG] = "an error with a message",
	[NF_ERR] = "an error", [NF_ANY_MSG] = "success or a message",
	[NF_RECOVER] = "EOPNOTSUPP or an error with a message",
};

/* What a request is, read back from its bytes as the kernel reads them. */
struct nf_req {
	enum nf_want want;
	const char *why;	/* the first thing wrong with it */
	int miss_type;		/* pagepush names a missing attribute */
	uint8_t cmd;
	bool dump;
	bool has[PAGEPUSH_A_MAX + 1];
	uint64_t val[PAGEPUSH_A_MAX + 1];
	char name[PAGEPUSH_NAME_MAX + 1];
};

struct nf_live {
	uint32_t index;
	char name[PAGEPUSH_NAME_MAX + 1];
	bool anchor;		/* made by the test, not by a fuzzed NEW */
};

struct nf_state {
	struct nf_live live[NF_MAX_LIVE + 8];
	int nlive;
};

static struct nf_live *nf_find(struct nf_state *s, uint32_t index)
{
	int i;

	for (i = 0; i < s->nlive; i++) {
		if (s->live[i].index == index)
			return &s->live[i];
	}
	return NULL;
}

static bool nf_name_used(struct nf_state *s, const char *name)
{
	int i;

	for (i = 0; i < s->nlive; i++) {
		if (!strcmp(s->live[i].name, name))
			return true;
	}
	return false;
}

static bool nf_name_valid(const char *name)
{
	const char *p;

	if (!*name)
		return false;
	for (p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      *p == '.'))
			return false;
	}
	return true;
}

static void nf_bad(struct nf_req *q, enum nf_want want, const char *why)
{
	/* An error without a message wins: it may come first. */
	if (q->want == NF_ERR || q->want == NF_RECOVER)
		return;
	if (q->want == NF_OK || q->want == NF_ANY_MSG || want == NF_ERR) {
		q->want = want;
		q->why = why;
	}
}

/*
 * Read a request as the kernel does (net/netlink/genetlink.c, lib/nlattr.c
 * with NL_VALIDATE_STRICT, the family's policy, kernel/netlink.c) and say
 * what must come back.
 */
static void nf_expect(struct nf_state *s, const uint8_t *buf, size_t len,
		      struct nf_req *q)
{
	const struct nlmsghdr *nlh = (const void *)buf;
	const struct genlmsghdr *g = (const void *)(buf + NLMSG_HDRLEN);
	uint16_t flags = nlh->nlmsg_flags;
	bool uncertain = false;
	int rem, type, plen;
	const uint8_t *p;

	memset(q, 0, sizeof(*q));
	q->want = NF_OK;
	q->why = "valid";
	q->miss_type = -1;
	if (nlh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN) {
		nf_bad(q, NF_ERR, "header too short");
		return;
	}
	q->cmd = g->cmd;
	q->dump = (flags & NLM_F_DUMP) == NLM_F_DUMP;
	if (g->reserved)
		nf_bad(q, NF_ERR_MSG, "reserved field");
	if (q->dump)
		flags &= ~NLM_F_DUMP;
	if (flags & ~(NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO))
		nf_bad(q, NF_ERR_MSG, "netlink flags");
	if (q->want != NF_OK)
		return;

	switch (q->cmd) {
	case PAGEPUSH_CMD_NEW:
	case PAGEPUSH_CMD_GET:
	case PAGEPUSH_CMD_DEL:
	case PAGEPUSH_CMD_CONNECT:
		break;
	case PAGEPUSH_CMD_RECOVER:
		/* Being added: any refusal with a message, or none at all. */
		q->want = NF_RECOVER;
		q->why = "RECOVER";
		return;
	default:
		nf_bad(q, NF_ERR, "no such command");
		return;
	}
	if (q->dump && q->cmd != PAGEPUSH_CMD_GET) {
		nf_bad(q, NF_ERR, "dump of a command without one");
		return;
	}

	/* The attributes, strictly. */
	p = buf + NLMSG_HDRLEN + GENL_HDRLEN;
	rem = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	while (rem >= NLA_HDRLEN) {
		const struct nlattr *a = (const void *)p;
		const uint8_t *d = p + NLA_HDRLEN;
		uint64_t v = 0;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > rem)
			break;
		type = a->nla_type & NLA_TYPE_MASK;
		plen = a->nla_len - NLA_HDRLEN;
		switch (type) {
		case PAGEPUSH_A_INDEX:
		case PAGEPUSH_A_PAGE_SIZE_BYTES:
		case PAGEPUSH_A_PRECOPY_FD:
		case PAGEPUSH_A_POSTCOPY_FD:
			if (plen != 4) {
				nf_bad(q, NF_ERR_MSG, "u32 of the wrong length");
				break;
			}
			if (a->nla_type & NLA_F_NESTED) {
				nf_bad(q, NF_ERR_MSG, "NLA_F_NESTED on a u32");
				break;
			}
			memcpy(&v, d, 4);
			if ((type == PAGEPUSH_A_INDEX && v > 1023) ||
			    (type == PAGEPUSH_A_PAGE_SIZE_BYTES &&
			     (v < SZ_4K || v > SZ_2M)) ||
			    ((type == PAGEPUSH_A_PRECOPY_FD ||
			      type == PAGEPUSH_A_POSTCOPY_FD) && v > INT32_MAX))
				nf_bad(q, NF_ERR_MSG, "u32 out of range");
			break;
		case PAGEPUSH_A_SIZE_BYTES:
		case PAGEPUSH_A_COOKIE:
			if (plen != 8) {
				nf_bad(q, NF_ERR_MSG, "u64 of the wrong length");
				break;
			}
			if (a->nla_type & NLA_F_NESTED) {
				nf_bad(q, NF_ERR_MSG, "NLA_F_NESTED on a u64");
				break;
			}
			memcpy(&v, d, 8);
			if (type == PAGEPUSH_A_SIZE_BYTES &&
			    (!v || v > PAGEPUSH_SIZE_MAX))
				nf_bad(q, NF_ERR_MSG, "size out of range");
			break;
		case PAGEPUSH_A_NAME: {
			int minlen = plen < PAGEPUSH_NAME_MAX + 1 ? plen :
				     PAGEPUSH_NAME_MAX + 1;
			int slen = plen;

			if (a->nla_type & NLA_F_NESTED) {
				nf_bad(q, NF_ERR_MSG, "NLA_F_NESTED on a string");
				break;
			}
			if (!minlen || !memchr(d, 0, minlen)) {
				nf_bad(q, NF_ERR_MSG, "name without a NUL");
				break;
			}
			if (d[slen - 1] == 0)
				slen--;
			if (slen > PAGEPUSH_NAME_MAX) {
				nf_bad(q, NF_ERR_MSG, "name too long");
				break;
			}
			snprintf(q->name, sizeof(q->name), "%s", (const char *)d);
			break;
		}
		case PAGEPUSH_A_PAUSE_TIMEOUT:
			/* Reply-only today, a u32 for NEW once PAUSED lands. */
			if (plen != 4 || a->nla_type & NLA_F_NESTED)
				nf_bad(q, NF_ERR_MSG, "pause timeout malformed");
			else
				uncertain = true;
			break;
		default:
			if (!type || type > PAGEPUSH_A_MAX)
				nf_bad(q, NF_ERR_MSG, "unknown attribute type");
			else
				nf_bad(q, NF_ERR_MSG, "reply-only attribute");
			break;
		}
		if (type >= 1 && type <= PAGEPUSH_A_MAX) {
			q->has[type] = true;
			q->val[type] = v;
		}
		p += NLA_ALIGN(a->nla_len);
		rem -= NLA_ALIGN(a->nla_len);
	}
	if (rem > 0)
		nf_bad(q, NF_ERR_MSG, "bytes left over");
	if (q->want != NF_OK)
		return;

	/* The family's own checks, for a request the policy let through. */
	switch (q->cmd) {
	case PAGEPUSH_CMD_NEW:
		if (!q->has[PAGEPUSH_A_SIZE_BYTES]) {
			nf_bad(q, NF_ERR_MSG, "NEW without a size");
			q->miss_type = PAGEPUSH_A_SIZE_BYTES;
		} else if (!q->has[PAGEPUSH_A_PAGE_SIZE_BYTES]) {
			nf_bad(q, NF_ERR_MSG, "NEW without a page size");
			q->miss_type = PAGEPUSH_A_PAGE_SIZE_BYTES;
		} else if (q->val[PAGEPUSH_A_PAGE_SIZE_BYTES] != SZ_4K &&
			   q->val[PAGEPUSH_A_PAGE_SIZE_BYTES] != SZ_2M) {
			nf_bad(q, NF_ERR_MSG, "page size");
		} else if (q->val[PAGEPUSH_A_SIZE_BYTES] %
			   q->val[PAGEPUSH_A_PAGE_SIZE_BYTES]) {
			nf_bad(q, NF_ERR_MSG, "size not a multiple");
		} else if (q->has[PAGEPUSH_A_NAME] && !nf_name_valid(q->name)) {
			nf_bad(q, NF_ERR_MSG, "name characters");
		} else if (q->has[PAGEPUSH_A_NAME] && nf_name_used(s, q->name)) {
			nf_bad(q, NF_ERR_MSG, "name taken");
		}
		break;
	case PAGEPUSH_CMD_GET:
	case PAGEPUSH_CMD_DEL:
		if (q->dump)
			break;
		if (!q->has[PAGEPUSH_A_INDEX]) {
			nf_bad(q, NF_ERR_MSG, "no index");
			q->miss_type = PAGEPUSH_A_INDEX;
		} else if (!nf_find(s, q->val[PAGEPUSH_A_INDEX])) {
			nf_bad(q, NF_ERR_MSG, "no such session");
		}
		break;
	case PAGEPUSH_CMD_CONNECT:
		/* The fuzzer holds no TCP socket: CONNECT can only fail. */
		if (!q->has[PAGEPUSH_A_PRECOPY_FD]) {
			nf_bad(q, NF_ERR_MSG, "CONNECT without precopy");
			q->miss_type = PAGEPUSH_A_PRECOPY_FD;
		} else if (q->has[PAGEPUSH_A_POSTCOPY_FD] &&
			   q->val[PAGEPUSH_A_POSTCOPY_FD] ==
			   q->val[PAGEPUSH_A_PRECOPY_FD]) {
			nf_bad(q, NF_ERR_MSG, "the same descriptor twice");
		} else if (!q->has[PAGEPUSH_A_INDEX]) {
			nf_bad(q, NF_ERR_MSG, "CONNECT without index");
			q->miss_type = PAGEPUSH_A_INDEX;
		} else {
			nf_bad(q, NF_ERR_MSG, "not a connected TCP socket");
		}
		break;
	}
	if (uncertain) {
		/* Refused today by the policy, before pagepush looks. */
		q->miss_type = -1;
		if (q->want == NF_OK) {
			q->want = NF_ANY_MSG;
			q->why = "pause timeout";
		}
	}
}

/* Whether @ans is what @q wants. */
static bool nf_answer_ok(const struct nf_req *q, const struct pp_nl_answer *ans)
{
	if (!ans->answered)
		return false;
	switch (q->want) {
	case NF_OK:
		return !ans->error;
	case NF_ERR_MSG:
		return ans->error < 0 && ans->msg[0];
	case NF_ERR:
		return ans->error < 0;
	case NF_ANY_MSG:
		return !ans->error || ans->msg[0];
	case NF_RECOVER:
		return ans->error == -EOPNOTSUPP || (ans->error < 0 && ans->msg[0]);
	}
	return false;
}

/* ---- the generator ---------------------------------------------------- */

enum nf_mut {
	NM_RESERVED, NM_FLAGS, NM_SHORT, NM_TYPE0, NM_TYPE_BIG, NM_REPLY_ONLY,
	NM_BAD_LEN, NM_NESTED, NM_BYTEORDER, NM_LONG_NAME, NM_NAME_NO_NUL,
	NM_NAME_ODD, NM_TRUNC, NM_LEFTOVER, NM_LEN_SMALL, NM_BAD_NEST,
	NM_DUP, NM_RANGE, NM_MANY, NM_DROP, NM_PAUSE_TIMEOUT,
	NF_NR_MUT
};

static const char * const nf_mut_names[NF_NR_MUT] = {
	"reserved", "flags", "short-header", "type-0", "type-big",
	"reply-only", "bad-length", "nested-flag", "byteorder-flag",
	"long-name", "unterminated-name", "odd-name", "truncated",
	"leftover", "small-nla_len", "bad-nest", "duplicate", "range",
	"many", "missing", "pause-timeout",
};

struct nf_gen {
	struct pp_rng *r;
	struct nf_state *s;
	uint32_t muts;
};

static uint32_t nf_index(struct nf_gen *g)
{
	struct nf_state *s = g->s;

	switch (pp_rng_below(g->r, 10)) {
	case 0 ... 4:
		if (s->nlive)
			return s->live[pp_rng_below(g->r, s->nlive)].index;
		__attribute__((fallthrough));
	case 5 ... 7:
		return pp_rng_below(g->r, 1024);
	default:
		return 1024 + pp_rng_below(g->r, 1u << 31) * 2;
	}
}

static void nf_u32(struct nl_msg *msg, uint16_t type, uint32_t v)
{
	nf_attr(msg, type, &v, 4);
}

static void nf_u64(struct nl_msg *msg, uint16_t type, uint64_t v)
{
	nf_attr(msg, type, &v, 8);
}

static void nf_name(struct nf_gen *g, struct nl_msg *msg)
{
	static const char chars[] = "abcxyz0189-_.";
	char name[PAGEPUSH_NAME_MAX + 1];
	unsigned int i, n = 1 + pp_rng_below(g->r, 12);

	for (i = 0; i < n; i++)
		name[i] = chars[pp_rng_below(g->r, sizeof(chars) - 1)];
	name[n] = 0;
	nf_attr(msg, PAGEPUSH_A_NAME, name, n + 1);
}

/* The attributes a plausible request of @cmd carries, mostly right. */
static void nf_natural(struct nf_gen *g, struct nl_msg *msg, uint8_t cmd)
{
	struct pp_rng *r = g->r;
	uint32_t ps;

	switch (cmd) {
	case PAGEPUSH_CMD_NEW:
		ps = pp_rng_below(r, 2) ? SZ_4K : SZ_2M;
		if (pp_rng_below(r, 20))
			nf_u64(msg, PAGEPUSH_A_SIZE_BYTES,
			       pp_rng_below(r, 30) ? (1 + pp_rng_below(r, 64)) * (uint64_t)ps :
						      1 + pp_rng_below(r, 4ull * ps));
		if (pp_rng_below(r, 20))
			nf_u32(msg, PAGEPUSH_A_PAGE_SIZE_BYTES,
			       pp_rng_below(r, 10) ? ps : SZ_4K + pp_rng_below(r, SZ_2M - SZ_4K));
		if (pp_rng_below(r, 3))
			nf_name(g, msg);
		break;
	case PAGEPUSH_CMD_GET:
	case PAGEPUSH_CMD_DEL:
		if (pp_rng_below(r, 20))
			nf_u32(msg, PAGEPUSH_A_INDEX, nf_index(g));
		break;
	case PAGEPUSH_CMD_CONNECT:
	case PAGEPUSH_CMD_RECOVER:
		if (pp_rng_below(r, 20))
			nf_u32(msg, PAGEPUSH_A_INDEX, nf_index(g));
		if (pp_rng_below(r, 20))
			nf_u32(msg, PAGEPUSH_A_PRECOPY_FD, pp_rng_below(r, 3) ?
			       pp_rng_below(r, 16) : pp_rng_next(r));
		if (pp_rng_below(r, 2))
			nf_u32(msg, PAGEPUSH_A_POSTCOPY_FD, pp_rng_below(r, 16));
		if (pp_rng_below(r, 2))
			nf_u64(msg, PAGEPUSH_A_COOKIE, pp_rng_next(r));
		break;
	default:
		/* A command that does not exist, with something in it. */
		if (pp_rng_below(r, 2))
			nf_u32(msg, PAGEPUSH_A_INDEX, nf_index(g));
		break;
	}
}

static const uint16_t nf_reply_only[] = {
	PAGEPUSH_A_STATE, PAGEPUSH_A_REASON, PAGEPUSH_A_DEVICE,
	PAGEPUSH_A_EVENT, PAGEPUSH_A_STATS, PAGEPUSH_A_CHANNEL,
	PAGEPUSH_A_LATENCY, PAGEPUSH_A_PAD,
};

static const uint16_t nf_request[] = {
	PAGEPUSH_A_INDEX, PAGEPUSH_A_NAME, PAGEPUSH_A_SIZE_BYTES,
	PAGEPUSH_A_PAGE_SIZE_BYTES, PAGEPUSH_A_PRECOPY_FD,
	PAGEPUSH_A_POSTCOPY_FD, PAGEPUSH_A_COOKIE,
};

static uint16_t nf_pick(struct pp_rng *r, const uint16_t *v, size_t n)
{
	return v[pp_rng_below(r, n)];
}

static bool nf_is_u64(uint16_t type)
{
	return type == PAGEPUSH_A_SIZE_BYTES || type == PAGEPUSH_A_COOKIE;
}

/* One thing wrong (or oddly right) in the attributes, appended. */
static void nf_mutate_attrs(struct nf_gen *g, struct nl_msg *msg,
			    enum nf_mut k)
{
	struct pp_rng *r = g->r;
	uint8_t buf[4096 + 64];
	uint16_t type;
	unsigned int i, n;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = pp_rng_below(r, 4) ? 'a' + pp_rng_below(r, 26) : pp_rng_next(r);
	switch (k) {
	case NM_TYPE0:
		nf_attr(msg, 0, buf, pp_rng_below(r, 9));
		break;
	case NM_TYPE_BIG:
		nf_attr(msg, PAGEPUSH_A_MAX + 1 + pp_rng_below(r, NLA_TYPE_MASK - PAGEPUSH_A_MAX),
			buf, pp_rng_below(r, 9));
		break;
	case NM_REPLY_ONLY:
		type = nf_pick(r, nf_reply_only, ARRAY_SIZE(nf_reply_only));
		if (pp_rng_below(r, 2))
			type |= NLA_F_NESTED;
		nf_attr(msg, type, buf, pp_rng_below(r, 24));
		break;
	case NM_BAD_LEN:
		type = nf_pick(r, nf_request, ARRAY_SIZE(nf_request));
		if (type == PAGEPUSH_A_NAME)
			type = PAGEPUSH_A_INDEX;
		do {
			n = pp_rng_below(r, 17);
		} while (n == (nf_is_u64(type) ? 8u : 4u));
		memset(buf, 0, 8);
		nf_attr(msg, type, buf, n);
		break;
	case NM_NESTED:
	case NM_BYTEORDER:
		type = nf_pick(r, nf_request, ARRAY_SIZE(nf_request));
		memset(buf, 0, 8);
		if (type == PAGEPUSH_A_NAME) {
			memcpy(buf, "nm", 3);
			n = 3;
		} else {
			n = nf_is_u64(type) ? 8 : 4;
			buf[0] = 1;
		}
		nf_attr(msg, type | (k == NM_NESTED ? NLA_F_NESTED :
				     NLA_F_NET_BYTEORDER), buf, n);
		break;
	case NM_LONG_NAME:
		n = PAGEPUSH_NAME_MAX + 1 + pp_rng_below(r, 4000);
		memset(buf, 'n', n);
		buf[n] = 0;
		nf_attr(msg, PAGEPUSH_A_NAME, buf, n + 1);
		break;
	case NM_NAME_NO_NUL:
		n = pp_rng_below(r, 40);
		memset(buf, 'u', n);
		nf_attr(msg, PAGEPUSH_A_NAME, buf, n);
		break;
	case NM_NAME_ODD: {
		static const char * const odd[] = {
			"", "a/b", "sp ace", "tab\t", "\xc3\xa9t\xc3\xa9", "..",
			"a\0hidden", "-", "x\x7f", "%s%n",
		};
		const char *o = odd[pp_rng_below(r, ARRAY_SIZE(odd))];

		n = strlen(o) + 1;
		if (o[0] == 'a' && o[1] == 0)
			n = 9;	/* "a\0hidden\0" */
		memcpy(buf, o, n);
		nf_attr(msg, PAGEPUSH_A_NAME, buf, n);
		break;
	}
	case NM_TRUNC:
		/* Its nla_len claims more than the message holds. */
		type = nf_pick(r, nf_request, ARRAY_SIZE(nf_request));
		n = pp_rng_below(r, 8);
		nf_raw_attr(msg, NLA_HDRLEN + n + 4 + pp_rng_below(r, 256), type,
			    buf, n, true);
		break;
	case NM_LEFTOVER:
		nlmsg_append(msg, buf, 1 + pp_rng_below(r, 3), 0);
		break;
	case NM_LEN_SMALL:
		nf_raw_attr(msg, pp_rng_below(r, NLA_HDRLEN),
			    nf_pick(r, nf_request, ARRAY_SIZE(nf_request)),
			    buf, pp_rng_below(r, 8), false);
		break;
	case NM_BAD_NEST: {
		/* A nest of stats holding an attribute that overruns it. */
		uint8_t nest[16];
		struct nlattr *in = (struct nlattr *)nest;

		in->nla_len = 64;
		in->nla_type = PAGEPUSH_STAT_PAGES_TOTAL;
		memset(nest + NLA_HDRLEN, 0xee, sizeof(nest) - NLA_HDRLEN);
		type = pp_rng_below(r, 2) ? PAGEPUSH_A_STATS : PAGEPUSH_A_CHANNEL;
		if (pp_rng_below(r, 2))
			type = nf_pick(r, nf_request, ARRAY_SIZE(nf_request));
		nf_attr(msg, type | NLA_F_NESTED, nest, sizeof(nest));
		break;
	}
	case NM_DUP:
		/* The same attribute again, another value: the last wins. */
		type = nf_pick(r, nf_request, ARRAY_SIZE(nf_request));
		if (type == PAGEPUSH_A_NAME)
			nf_name(g, msg);
		else if (nf_is_u64(type))
			nf_u64(msg, type, pp_rng_below(r, 2) ? SZ_2M : pp_rng_next(r));
		else
			nf_u32(msg, type, pp_rng_below(r, 2) ? pp_rng_below(r, 8) :
				pp_rng_next(r));
		break;
	case NM_RANGE:
		switch (pp_rng_below(r, 5)) {
		case 0:
			nf_u32(msg, PAGEPUSH_A_INDEX, 1024 + pp_rng_below(r, UINT32_MAX - 1024));
			break;
		case 1:
			nf_u32(msg, PAGEPUSH_A_PAGE_SIZE_BYTES, pp_rng_below(r, 2) ?
			       pp_rng_below(r, SZ_4K) : SZ_2M + 1 + pp_rng_below(r, 1u << 30));
			break;
		case 2:
			nf_u64(msg, PAGEPUSH_A_SIZE_BYTES, pp_rng_below(r, 2) ? 0 :
			       PAGEPUSH_SIZE_MAX + 1 + pp_rng_below(r, 1ull << 50));
			break;
		default:
			nf_u32(msg, pp_rng_below(r, 2) ? PAGEPUSH_A_PRECOPY_FD :
			       PAGEPUSH_A_POSTCOPY_FD, 0x80000000u + pp_rng_below(r, 1u << 31));
			break;
		}
		break;
	case NM_MANY:
		/* A large request: many harmless attributes, then the rest. */
		n = 64 + pp_rng_below(r, 512);
		for (i = 0; i < n; i++)
			nf_u64(msg, PAGEPUSH_A_COOKIE, i);
		break;
	case NM_PAUSE_TIMEOUT:
		memset(buf, 0, 8);
		n = pp_rng_below(r, 4) ? 4 : pp_rng_below(r, 9);
		nf_attr(msg, PAGEPUSH_A_PAUSE_TIMEOUT, buf, n);
		break;
	default:
		break;
	}
}

static struct nl_msg *nf_generate(struct pp_nl *nl, struct nf_gen *g)
{
	static const uint8_t cmds[] = {
		PAGEPUSH_CMD_NEW, PAGEPUSH_CMD_NEW, PAGEPUSH_CMD_GET,
		PAGEPUSH_CMD_GET, PAGEPUSH_CMD_GET, PAGEPUSH_CMD_DEL,
		PAGEPUSH_CMD_DEL, PAGEPUSH_CMD_CONNECT, PAGEPUSH_CMD_CONNECT,
		PAGEPUSH_CMD_RECOVER,
	};
	struct pp_rng *r = g->r;
	uint16_t flags = NLM_F_REQUEST | NLM_F_ACK, reserved = 0;
	uint8_t cmd, version = PAGEPUSH_GENL_VERSION;
	unsigned int nmut, i;
	struct nl_msg *msg;
	enum nf_mut k;

	g->muts = 0;
	if (pp_rng_below(r, 12)) {
		cmd = cmds[pp_rng_below(r, ARRAY_SIZE(cmds))];
	} else {
		/* 0 UNSPEC, 5 EVENT (notifications only), or beyond. */
		static const uint8_t bad[] = { 0, PAGEPUSH_CMD_EVENT, 7, 8, 100, 255 };

		cmd = pp_rng_below(r, 2) ? bad[pp_rng_below(r, ARRAY_SIZE(bad))] :
					   7 + pp_rng_below(r, 249);
	}
	if (cmd == PAGEPUSH_CMD_GET && pp_rng_below(r, 3) == 0)
		flags |= NLM_F_DUMP;
	else if (!pp_rng_below(r, 40))
		flags |= NLM_F_DUMP;
	if (!pp_rng_below(r, 20))
		flags |= NLM_F_ECHO;
	if (!pp_rng_below(r, 5))
		version = pp_rng_below(r, 256);

	/* Most requests get something wrong, a few several things. */
	nmut = pp_rng_below(r, 10) < 2 ? 0 : 1 + (pp_rng_below(r, 4) == 0);
	if (!pp_rng_below(r, 25)) {
		g->muts |= 1u << NM_RESERVED;
		reserved = 1 + pp_rng_below(r, 0xffff);
	}
	if (!pp_rng_below(r, 25)) {
		static const uint16_t bad_flags[] = {
			NLM_F_ROOT, NLM_F_MATCH, NLM_F_ATOMIC, NLM_F_APPEND,
			NLM_F_DUMP_INTR, NLM_F_DUMP_FILTERED, NLM_F_MULTI, 0x8000,
		};

		g->muts |= 1u << NM_FLAGS;
		flags |= nf_pick(r, bad_flags, ARRAY_SIZE(bad_flags));
	}

	msg = nf_msg(nl, cmd, flags, version, reserved);
	if (!msg)
		return NULL;
	if (pp_rng_below(r, 8))
		nf_natural(g, msg, cmd);
	else
		g->muts |= 1u << NM_DROP;
	for (i = 0; i < nmut; i++) {
		k = NM_TYPE0 + pp_rng_below(r, NF_NR_MUT - NM_TYPE0);
		if (k == NM_DROP || k == NM_SHORT)
			k = NM_DUP;
		g->muts |= 1u << k;
		nf_mutate_attrs(g, msg, k);
		/* After a truncated attribute nothing can follow. */
		if (k == NM_TRUNC)
			break;
	}
	if (!pp_rng_below(r, 50)) {
		/* The message stops inside the generic netlink header. */
		g->muts |= 1u << NM_SHORT;
		nlmsg_hdr(msg)->nlmsg_len = NLMSG_HDRLEN + pp_rng_below(r, GENL_HDRLEN);
	}
	return msg;
}

/* ---- bookkeeping ------------------------------------------------------- */

static void nf_forget(struct nf_state *s, uint32_t index)
{
	struct nf_live *l = nf_find(s, index);

	if (l)
		*l = s->live[--s->nlive];
}

static int nf_count_cb(const struct pp_session_info *info, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int nf_anchor(struct pp_nl *nl, struct nf_state *s, unsigned int n)
{
	struct pp_session_info info;
	char name[PAGEPUSH_NAME_MAX + 1];
	int ret;

	snprintf(name, sizeof(name), "nf-anchor-%u", n);
	ret = pp_nl_new(nl, 16 * SZ_4K, SZ_4K, name, &info);
	if (ret)
		return ret;
	s->live[s->nlive].index = info.index;
	snprintf(s->live[s->nlive].name, sizeof(s->live[0].name), "%s", name);
	s->live[s->nlive].anchor = true;
	s->nlive++;
	return 0;
}

static void nf_hexdump(char *out, size_t len, const uint8_t *p, size_t n)
{
	size_t i, at = 0;

	out[0] = 0;
	for (i = 0; i < n && at + 3 < len; i++)
		at += snprintf(out + at, len - at, "%02x", p[i]);
}

/* ---- the fuzzer -------------------------------------------------------- */

FIXTURE(nlfuzz)
{
	struct pp_nl nl;	/* fuzzed requests */
	struct pp_nl ctl;	/* round trips, cleanup */
	struct nf_state s;
};

FIXTURE_SETUP(nlfuzz)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl)) TH_LOG("%s", pp_nl_strerror(&self->nl));
	ASSERT_EQ(0, pp_nl_open(&self->ctl));
	memset(&self->s, 0, sizeof(self->s));
}

FIXTURE_TEARDOWN(nlfuzz)
{
	int i;

	for (i = 0; i < self->s.nlive; i++)
		pp_nl_del(&self->ctl, self->s.live[i].index);
	pp_nl_close(&self->ctl);
	pp_nl_close(&self->nl);
}

TEST_F_TIMEOUT(nlfuzz, requests, 300)
{
	uint64_t n = pp_env_u64("PP_FUZZ_MSGS", NF_MSGS_DEFAULT), i, t0;
	uint64_t wants[NF_RECOVER + 1] = { 0 }, muts[NF_NR_MUT] = { 0 };
	uint64_t errnos[4] = { 0 };	/* EINVAL, ERANGE, ENOENT, other */
	uint64_t ok = 0, with_msg = 0, miss = 0, created = 0, deleted = 0;
	struct pp_rng r = { .s = nf_seed };
	struct nf_gen g = { .r = &r, .s = &self->s };
	unsigned int bad = 0, round_trips = 0, a = 0, k;
	struct pp_nl_answer ans;
	char why[256], hex[200], line[1024];
	struct nf_req q;
	int len, others = 0;

	/* Random DELs could hit someone else's session. */
	ASSERT_EQ(0, pp_nl_dump(&self->ctl, nf_count_cb, &others));
	if (others)
		SKIP(return, "%d sessions exist that are not the test's", others);
	nf_diag("seed %llu (PP_FUZZ_SEED=%llu repeats it), %llu requests\n",
		       (unsigned long long)nf_seed, (unsigned long long)nf_seed,
		       (unsigned long long)n);
	for (a = 0; a < 3; a++)
		ASSERT_EQ(0, nf_anchor(&self->ctl, &self->s, a));

	t0 = nf_now_ms();
	for (i = 0; i < n && bad < 50; i++) {
		struct nl_msg *msg = nf_generate(&self->nl, &g);
		struct nlmsghdr *nlh;
		bool good;
		int ret;

		ASSERT_NE(NULL, msg);
		nlh = nlmsg_hdr(msg);
		nf_expect(&self->s, (const uint8_t *)nlh, nlh->nlmsg_len, &q);
		wants[q.want]++;
		for (k = 0; k < NF_NR_MUT; k++)
			muts[k] += !!(g.muts & (1u << k));

		ret = pp_nl_raw(&self->nl, nlh, nlh->nlmsg_len, &ans, NF_TIMEOUT_MS);
		good = !ret && nf_answer_ok(&q, &ans);
		/* The kernel names the attribute it missed, as documented. */
		if (good && q.miss_type >= 0 && ans.miss_type != q.miss_type)
			good = false;
		/* An offset, when given, points into the request. */
		if (good && ans.offs >= 0 &&
		    (ans.offs < NLMSG_HDRLEN + GENL_HDRLEN ||
		     ans.offs >= (int)nlh->nlmsg_len))
			good = false;
		if (!good && bad++ < NF_MAX_REPORTS) {
			nf_hexdump(hex, sizeof(hex), (const uint8_t *)nlh,
				   nlh->nlmsg_len < 96 ? nlh->nlmsg_len : 96);
			TH_LOG("request %llu (PP_FUZZ_SEED=%llu, cmd %u, flags %#x, mutations %#x, %u bytes): expected %s (%s); got %s, errno %d, message '%s', offset %d, missing %d; bytes %s",
			       (unsigned long long)i, (unsigned long long)nf_seed,
			       q.cmd, nlh->nlmsg_flags, g.muts, nlh->nlmsg_len,
			       nf_want_names[q.want], q.why,
			       ret ? strerror(-ret) : ans.answered ? "an answer" : "nothing",
			       ans.error, ans.msg, ans.offs, ans.miss_type, hex);
		}
		if (!ans.error) {
			ok++;
		} else {
			with_msg += !!ans.msg[0];
			miss += ans.miss_type >= 0;
			errnos[ans.error == -EINVAL ? 0 : ans.error == -ERANGE ? 1 :
			       ans.error == -ENOENT ? 2 : 3]++;
		}

		/* Keep the model's sessions in step with the kernel's. */
		if (!ret && !ans.error && !q.dump && q.cmd == PAGEPUSH_CMD_NEW &&
		    ans.index >= 0 && self->s.nlive < NF_MAX_LIVE + 8) {
			struct nf_live *l = &self->s.live[self->s.nlive++];

			l->index = ans.index;
			snprintf(l->name, sizeof(l->name), "%s",
				 q.has[PAGEPUSH_A_NAME] ? q.name : "");
			l->anchor = false;
			created++;
		}
		if (!ret && !ans.error && !q.dump && q.cmd == PAGEPUSH_CMD_DEL) {
			nf_forget(&self->s, q.val[PAGEPUSH_A_INDEX]);
			deleted++;
		}
		nlmsg_free(msg);

		/* Not too many sessions; a few anchors always. */
		while (self->s.nlive > NF_MAX_LIVE) {
			uint32_t idx = self->s.live[self->s.nlive - 1].index;

			EXPECT_EQ(0, pp_nl_del(&self->ctl, idx));
			nf_forget(&self->s, idx);
		}
		if (self->s.nlive < 2)
			ASSERT_EQ(0, nf_anchor(&self->ctl, &self->s, a++));

		if (i % NF_ROUND_TRIP_EVERY == NF_ROUND_TRIP_EVERY - 1) {
			round_trips++;
			EXPECT_EQ(0, nf_round_trip(&self->ctl, why, sizeof(why)))
				TH_LOG("after request %llu: %s", (unsigned long long)i, why);
		}
	}

	len = snprintf(line, sizeof(line), "mutations:");
	for (k = 0; k < NF_NR_MUT && len < (int)sizeof(line); k++)
		len += snprintf(line + len, sizeof(line) - len, " %s %llu",
				nf_mut_names[k], (unsigned long long)muts[k]);
	nf_diag("%s\n", line);
	nf_diag("expected: %llu success, %llu error with message, %llu error, %llu success or message, %llu RECOVER\n",
		       (unsigned long long)wants[NF_OK],
		       (unsigned long long)wants[NF_ERR_MSG],
		       (unsigned long long)wants[NF_ERR],
		       (unsigned long long)wants[NF_ANY_MSG],
		       (unsigned long long)wants[NF_RECOVER]);
	nf_diag("answers: %llu success (%llu sessions created, %llu deleted), errors: %llu EINVAL, %llu ERANGE, %llu ENOENT, %llu other; %llu with a message, %llu naming a missing attribute\n",
		       (unsigned long long)ok, (unsigned long long)created,
		       (unsigned long long)deleted,
		       (unsigned long long)errnos[0], (unsigned long long)errnos[1],
		       (unsigned long long)errnos[2], (unsigned long long)errnos[3],
		       (unsigned long long)with_msg, (unsigned long long)miss);
	nf_diag("netlink messages fuzzed: %llu in %.1f s (%u round trips)\n",
		       (unsigned long long)i, (nf_now_ms() - t0) / 1000.0,
		       round_trips);
	EXPECT_EQ(0, bad) TH_LOG("%u requests answered wrongly (first %d logged)",
				 bad, NF_MAX_REPORTS);
	EXPECT_EQ(n, i);
	EXPECT_EQ(0, nf_round_trip(&self->ctl, why, sizeof(why))) TH_LOG("%s", why);
}

/* ---- hand-made malformed requests ----------------------------------------- */

/* Attribute bytes, little-endian. */
#define NB16(v)		((v) & 0xff), (((v) >> 8) & 0xff)
#define NB32(v)		NB16(v), NB16((v) >> 16)
#define NA(len, type)	NB16(len), NB16(type)
#define NA_U32(type, v)	NA(8, type), NB32(v)
#define NX8		'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'

enum { IDX_NONE, IDX_LIVE, IDX_NOSUCH, IDX_NOSUCH_THEN_LIVE };

FIXTURE(malformed)
{
	struct pp_nl nl;
	struct pp_session_info info;
};

FIXTURE_VARIANT(malformed)
{
	uint8_t cmd;
	uint16_t flags;		/* added to REQUEST | ACK */
	uint8_t version;
	uint16_t reserved;
	int index;		/* an INDEX attribute first: IDX_* */
	uint8_t attrs[48];
	size_t alen;
	int nlmsg_len;		/* > 0: overrides the length */
	int err;		/* 0: succeeds */
	const char *msg;	/* the message holds it; NULL: any or none */
	int miss_type;		/* > 0: NLMSGERR_ATTR_MISS_TYPE */
};

FIXTURE_VARIANT_ADD(malformed, reserved_field_set)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .reserved = 1,
	.index = IDX_LIVE, .err = -EINVAL, .msg = "reserved",
};

FIXTURE_VARIANT_ADD(malformed, replace_flag)
{
	.cmd = PAGEPUSH_CMD_NEW, .flags = NLM_F_REPLACE, .version = 1,
	.err = -EINVAL, .msg = "flags",
};

FIXTURE_VARIANT_ADD(malformed, half_dump_flag)
{
	.cmd = PAGEPUSH_CMD_GET, .flags = NLM_F_MATCH, .version = 1,
	.err = -EINVAL, .msg = "flags",
};

FIXTURE_VARIANT_ADD(malformed, genl_header_cut)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1,
	.nlmsg_len = NLMSG_HDRLEN + 2, .err = -EINVAL,
};

FIXTURE_VARIANT_ADD(malformed, version_0_is_not_checked)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 0, .index = IDX_LIVE,
};

FIXTURE_VARIANT_ADD(malformed, version_255_is_not_checked)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 255, .index = IDX_LIVE,
};

FIXTURE_VARIANT_ADD(malformed, cmd_unspec)
{
	.cmd = PAGEPUSH_CMD_UNSPEC, .version = 1, .err = -EOPNOTSUPP,
};

FIXTURE_VARIANT_ADD(malformed, cmd_event_is_not_a_request)
{
	.cmd = PAGEPUSH_CMD_EVENT, .version = 1, .index = IDX_LIVE,
	.err = -EOPNOTSUPP,
};

FIXTURE_VARIANT_ADD(malformed, cmd_7)
{
	.cmd = 7, .version = 1, .err = -EOPNOTSUPP,
};

FIXTURE_VARIANT_ADD(malformed, cmd_255)
{
	.cmd = 255, .version = 1, .index = IDX_LIVE, .err = -EOPNOTSUPP,
};

FIXTURE_VARIANT_ADD(malformed, dump_of_new)
{
	.cmd = PAGEPUSH_CMD_NEW, .flags = NLM_F_DUMP, .version = 1,
	.err = -EOPNOTSUPP,
};

FIXTURE_VARIANT_ADD(malformed, dump_of_del)
{
	.cmd = PAGEPUSH_CMD_DEL, .flags = NLM_F_DUMP, .version = 1,
	.index = IDX_LIVE, .err = -EOPNOTSUPP,
};

FIXTURE_VARIANT_ADD(malformed, dump_with_bad_attribute)
{
	.cmd = PAGEPUSH_CMD_GET, .flags = NLM_F_DUMP, .version = 1,
	.attrs = { NA_U32(PAGEPUSH_A_STATE, 1) }, .alen = 8,
	.err = -EINVAL, .msg = "Unsupported",
};

FIXTURE_VARIANT_ADD(malformed, attribute_type_0)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA_U32(0, 1) }, .alen = 8,
	.err = -EINVAL, .msg = "Unknown attribute type",
};

FIXTURE_VARIANT_ADD(malformed, attribute_type_above_max)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA_U32(PAGEPUSH_A_MAX + 1, 1) }, .alen = 8,
	.err = -EINVAL, .msg = "Unknown attribute type",
};

FIXTURE_VARIANT_ADD(malformed, reply_only_reason)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA(8, PAGEPUSH_A_REASON), 'w', 'h', 'y', 0 }, .alen = 8,
	.err = -EINVAL, .msg = "Unsupported attribute",
};

FIXTURE_VARIANT_ADD(malformed, reply_only_nest)
{
	.cmd = PAGEPUSH_CMD_DEL, .version = 1, .index = IDX_LIVE,
	.attrs = { NA(16, PAGEPUSH_A_STATS | NLA_F_NESTED),
		   NA(12, PAGEPUSH_STAT_PAGES_TOTAL), NB32(1), NB32(0) },
	.alen = 16, .err = -EINVAL, .msg = "Unsupported attribute",
};

FIXTURE_VARIANT_ADD(malformed, nest_overrunning_itself)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA(12, PAGEPUSH_A_CHANNEL | NLA_F_NESTED),
		   NA(200, PAGEPUSH_CHAN_ID), NB32(0) },
	.alen = 12, .err = -EINVAL,
};

FIXTURE_VARIANT_ADD(malformed, nested_flag_on_u32)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1,
	.attrs = { NA_U32(PAGEPUSH_A_INDEX | NLA_F_NESTED, 0) }, .alen = 8,
	.err = -EINVAL, .msg = "NLA_F_NESTED",
};

FIXTURE_VARIANT_ADD(malformed, u32_of_3_bytes)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1,
	.attrs = { NA(7, PAGEPUSH_A_INDEX), 0, 0, 0, 0 }, .alen = 8,
	.err = -EINVAL, .msg = "length",
};

FIXTURE_VARIANT_ADD(malformed, u64_of_4_bytes)
{
	.cmd = PAGEPUSH_CMD_NEW, .version = 1,
	.attrs = { NA_U32(PAGEPUSH_A_SIZE_BYTES, 4096),
		   NA_U32(PAGEPUSH_A_PAGE_SIZE_BYTES, 4096) },
	.alen = 16, .err = -EINVAL, .msg = "length",
};

FIXTURE_VARIANT_ADD(malformed, index_out_of_range)
{
	.cmd = PAGEPUSH_CMD_DEL, .version = 1,
	.attrs = { NA_U32(PAGEPUSH_A_INDEX, 1024) }, .alen = 8,
	.err = -ERANGE, .msg = "range",
};

FIXTURE_VARIANT_ADD(malformed, fd_out_of_range)
{
	.cmd = PAGEPUSH_CMD_CONNECT, .version = 1, .index = IDX_LIVE,
	.attrs = { NA_U32(PAGEPUSH_A_PRECOPY_FD, 0x80000000u) }, .alen = 8,
	.err = -ERANGE, .msg = "range",
};

FIXTURE_VARIANT_ADD(malformed, name_without_nul)
{
	.cmd = PAGEPUSH_CMD_NEW, .version = 1,
	.attrs = { NA(8, PAGEPUSH_A_NAME), 'a', 'b', 'c', 'd' }, .alen = 8,
	.err = -EINVAL, .msg = "policy",
};

FIXTURE_VARIANT_ADD(malformed, name_of_32)
{
	.cmd = PAGEPUSH_CMD_NEW, .version = 1,
	.attrs = { NA(37, PAGEPUSH_A_NAME), NX8, NX8, NX8, NX8, 0 },
	.alen = 40, .err = -EINVAL, .msg = "policy",
};

FIXTURE_VARIANT_ADD(malformed, name_empty)
{
	.cmd = PAGEPUSH_CMD_NEW, .version = 1,
	.attrs = { NA(5, PAGEPUSH_A_NAME), 0, 0, 0, 0,
		   NA(12, PAGEPUSH_A_SIZE_BYTES), NB32(4096), NB32(0),
		   NA_U32(PAGEPUSH_A_PAGE_SIZE_BYTES, 4096) },
	.alen = 28, .err = -EINVAL, .msg = "name",
};

FIXTURE_VARIANT_ADD(malformed, trailing_bytes)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { 0xde, 0xad }, .alen = 2,
	.err = -EINVAL, .msg = "leftover",
};

FIXTURE_VARIANT_ADD(malformed, attribute_longer_than_message)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA(64, PAGEPUSH_A_COOKIE), NB32(0), NB32(0) }, .alen = 12,
	.err = -EINVAL, .msg = "leftover",
};

FIXTURE_VARIANT_ADD(malformed, nla_len_below_header)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA(2, PAGEPUSH_A_INDEX), NB32(0) }, .alen = 8,
	.err = -EINVAL, .msg = "leftover",
};

FIXTURE_VARIANT_ADD(malformed, get_without_index)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1,
	.err = -EINVAL, .msg = "missing", .miss_type = PAGEPUSH_A_INDEX,
};

FIXTURE_VARIANT_ADD(malformed, new_without_page_size)
{
	.cmd = PAGEPUSH_CMD_NEW, .version = 1,
	.attrs = { NA(12, PAGEPUSH_A_SIZE_BYTES), NB32(4096), NB32(0) },
	.alen = 12, .err = -EINVAL, .msg = "missing",
	.miss_type = PAGEPUSH_A_PAGE_SIZE_BYTES,
};

FIXTURE_VARIANT_ADD(malformed, connect_without_precopy)
{
	.cmd = PAGEPUSH_CMD_CONNECT, .version = 1, .index = IDX_LIVE,
	.err = -EINVAL, .msg = "missing", .miss_type = PAGEPUSH_A_PRECOPY_FD,
};

FIXTURE_VARIANT_ADD(malformed, connect_without_index)
{
	.cmd = PAGEPUSH_CMD_CONNECT, .version = 1,
	.attrs = { NA_U32(PAGEPUSH_A_PRECOPY_FD, 0) }, .alen = 8,
	.err = -EINVAL, .msg = "missing", .miss_type = PAGEPUSH_A_INDEX,
};

FIXTURE_VARIANT_ADD(malformed, connect_no_such_session)
{
	.cmd = PAGEPUSH_CMD_CONNECT, .version = 1, .index = IDX_NOSUCH,
	.attrs = { NA_U32(PAGEPUSH_A_PRECOPY_FD, 0) }, .alen = 8,
	.err = -ENOENT, .msg = "no session",
};

FIXTURE_VARIANT_ADD(malformed, connect_fd_not_open)
{
	.cmd = PAGEPUSH_CMD_CONNECT, .version = 1, .index = IDX_LIVE,
	.attrs = { NA_U32(PAGEPUSH_A_PRECOPY_FD, 0x7fffffff) }, .alen = 8,
	.err = -EINVAL, .msg = "not open",
};

FIXTURE_VARIANT_ADD(malformed, byteorder_flag_is_accepted)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_LIVE,
	.attrs = { NA(12, PAGEPUSH_A_COOKIE | NLA_F_NET_BYTEORDER), NB32(0),
		   NB32(0) },
	.alen = 12,
};

FIXTURE_VARIANT_ADD(malformed, duplicate_index_last_wins)
{
	.cmd = PAGEPUSH_CMD_GET, .version = 1, .index = IDX_NOSUCH_THEN_LIVE,
};

FIXTURE_SETUP(malformed)
{
	ASSERT_EQ(0, pp_nl_open(&self->nl));
	ASSERT_EQ(0, pp_nl_new(&self->nl, 4 * SZ_4K, SZ_4K, NULL, &self->info));
}

FIXTURE_TEARDOWN(malformed)
{
	pp_nl_del(&self->nl, self->info.index);
	pp_nl_close(&self->nl);
}

TEST_F(malformed, answer)
{
	struct nl_msg *msg = nf_msg(&self->nl, variant->cmd,
				    NLM_F_REQUEST | NLM_F_ACK | variant->flags,
				    variant->version, variant->reserved);
	struct pp_nl_answer ans;
	struct nlmsghdr *nlh;
	char why[256];
	int ret;

	ASSERT_NE(NULL, msg);
	if (variant->index == IDX_LIVE)
		nf_u32(msg, PAGEPUSH_A_INDEX, self->info.index);
	else if (variant->index == IDX_NOSUCH)
		nf_u32(msg, PAGEPUSH_A_INDEX, self->info.index == 1023 ? 1022 : 1023);
	else if (variant->index == IDX_NOSUCH_THEN_LIVE)
		nf_u32(msg, PAGEPUSH_A_INDEX, self->info.index ^ 1);
	if (variant->alen)
		nlmsg_append(msg, (void *)variant->attrs, variant->alen, 0);
	if (variant->index == IDX_NOSUCH_THEN_LIVE)
		nf_u32(msg, PAGEPUSH_A_INDEX, self->info.index);
	nlh = nlmsg_hdr(msg);
	if (variant->nlmsg_len)
		nlh->nlmsg_len = variant->nlmsg_len;
	/* Index 1023 must be free for the no-such-session cases. */
	if (variant->index == IDX_NOSUCH && variant->err == -ENOENT) {
		struct pp_session_info info;

		if (!pp_nl_get(&self->nl, 1023, &info))
			SKIP(nlmsg_free(msg); return, "session 1023 exists");
	}

	ret = pp_nl_raw(&self->nl, nlh, nlh->nlmsg_len, &ans, NF_TIMEOUT_MS);
	nlmsg_free(msg);
	ASSERT_EQ(0, ret) TH_LOG("no answer: %s", strerror(-ret));
	ASSERT_TRUE(ans.answered);
	EXPECT_EQ(variant->err, ans.error) TH_LOG("message '%s'", ans.msg);
	if (variant->msg) {
		EXPECT_NE(NULL, strstr(ans.msg, variant->msg))
			TH_LOG("message '%s' lacks '%s'", ans.msg, variant->msg);
	}
	if (variant->miss_type) {
		EXPECT_EQ(variant->miss_type, ans.miss_type);
	}
	if (ans.offs >= 0) {
		EXPECT_GE(ans.offs, NLMSG_HDRLEN + GENL_HDRLEN);
	}
	if (!variant->err && variant->cmd == PAGEPUSH_CMD_GET) {
		EXPECT_EQ(1, ans.replies);
		EXPECT_EQ(self->info.index, ans.index);
	}
	/* Whatever the request did, the family still works. */
	EXPECT_EQ(0, nf_round_trip(&self->nl, why, sizeof(why))) TH_LOG("%s", why);
}

/*
 * RECOVER (6) is being added: until then the family has no such command;
 * after, a NEW session cannot be recovered. Either way it is refused, and
 * a refusal pagepush makes has a message.
 */
TEST(recover_of_a_new_session)
{
	struct pp_session_info info;
	struct pp_nl_answer ans;
	struct nlmsghdr *nlh;
	struct nl_msg *msg;
	struct pp_nl nl;
	int sv[2];

	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, pp_nl_new(&nl, 4 * SZ_4K, SZ_4K, NULL, &info));
	ASSERT_EQ(0, pp_tcp_pair(&sv[0], &sv[1]));
	msg = nf_msg(&nl, PAGEPUSH_CMD_RECOVER, NLM_F_REQUEST | NLM_F_ACK, 1, 0);
	ASSERT_NE(NULL, msg);
	nf_u32(msg, PAGEPUSH_A_INDEX, info.index);
	nf_u32(msg, PAGEPUSH_A_PRECOPY_FD, sv[0]);
	nf_u64(msg, PAGEPUSH_A_COOKIE, 42);
	nlh = nlmsg_hdr(msg);
	ASSERT_EQ(0, pp_nl_raw(&nl, nlh, nlh->nlmsg_len, &ans, NF_TIMEOUT_MS));
	nlmsg_free(msg);
	ASSERT_TRUE(ans.answered);
	EXPECT_GT(0, ans.error);
	if (ans.error != -EOPNOTSUPP) {
		EXPECT_NE(0, ans.msg[0]) TH_LOG("errno %d without a message", ans.error);
	}
	/* Still NEW, and a CONNECT with the same socket works. */
	ASSERT_EQ(0, pp_nl_get(&nl, info.index, &info));
	EXPECT_EQ(PAGEPUSH_STATE_NEW, info.state);
	EXPECT_EQ(0, pp_nl_connect(&nl, info.index, sv[0], -1, 42))
		TH_LOG("%s", pp_nl_strerror(&nl));
	EXPECT_EQ(0, pp_nl_del(&nl, info.index));
	close(sv[0]);
	close(sv[1]);
	pp_nl_close(&nl);
}

/* ---- dumps cut short ---------------------------------------------------- */

#define NF_DUMP_SESSIONS	160

FIXTURE(dump)
{
	struct pp_nl nl;
	uint32_t index[NF_DUMP_SESSIONS];
	bool alive[NF_DUMP_SESSIONS];
	int n;
	long pages;
};

FIXTURE_SETUP(dump)
{
	struct pp_session_info info;
	int i;

	ASSERT_EQ(0, pp_nl_open(&self->nl));
	self->pages = pp_module_pages();
	self->n = 0;
	for (i = 0; i < NF_DUMP_SESSIONS; i++) {
		ASSERT_EQ(0, pp_nl_new(&self->nl, SZ_4K, SZ_4K, NULL, &info))
			TH_LOG("%s", pp_nl_strerror(&self->nl));
		self->index[i] = info.index;
		self->alive[i] = true;
		self->n++;
	}
}

FIXTURE_TEARDOWN(dump)
{
	char why[256];
	int i;

	for (i = 0; i < self->n; i++) {
		if (self->alive[i])
			pp_nl_del(&self->nl, self->index[i]);
	}
	if (nf_round_trip(&self->nl, why, sizeof(why)))
		TH_LOG("the family is broken after the test: %s", why);
	if (self->pages >= 0 && pp_module_pages() != self->pages)
		TH_LOG("module pages %ld -> %ld", self->pages, pp_module_pages());
	pp_nl_close(&self->nl);
}

/* Start a GET dump on @nl without reading anything. */
static int nf_dump_start(struct pp_nl *nl, uint32_t seq)
{
	struct nl_msg *msg = nf_msg(nl, PAGEPUSH_CMD_GET,
				    NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, 1, 0);
	struct nlmsghdr *nlh;
	int ret;

	if (!msg)
		return -ENOMEM;
	nlh = nlmsg_hdr(msg);
	nlh->nlmsg_seq = seq;
	ret = send(nl_socket_get_fd(nl->sk), nlh, nlh->nlmsg_len, 0) < 0 ? -errno : 0;
	nlmsg_free(msg);
	return ret;
}

struct nf_dump_read {
	uint32_t seen[1024];	/* indexes, in the order they came */
	int nseen;
	bool done;
	int error;
	bool ordered;		/* each index above the one before */
	int other;		/* answers to other requests */
	int other_error;
};

/*
 * Read what the dump with @seq sends, at most @max datagrams (-1: until
 * DONE), into buffers of @buflen bytes (smaller ones truncate).
 */
static int nf_dump_read(struct pp_nl *nl, uint32_t seq, int max, size_t buflen,
			struct nf_dump_read *d)
{
	int fd = nl_socket_get_fd(nl->sk), got = 0;
	static char buf[65536];
	struct nlmsghdr *nlh;
	ssize_t n;
	int left;

	while ((max < 0 || got < max) && !d->done) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, NF_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, buf, buflen, 0);
		if (n < 0)
			return -errno;
		got++;
		left = n < (ssize_t)buflen ? (int)n : (int)buflen;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, left);
		     nlh = NLMSG_NEXT(nlh, left)) {
			struct nlattr *tb[PAGEPUSH_A_MAX + 1];

			if (nlh->nlmsg_seq != seq) {
				if (nlh->nlmsg_type == NLMSG_ERROR) {
					struct nlmsgerr *e = NLMSG_DATA(nlh);

					d->other++;
					if (e->error)
						d->other_error = e->error;
				}
				continue;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				d->done = true;
				d->error = *(int *)NLMSG_DATA(nlh);
				break;
			}
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				d->done = true;
				d->error = ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
				break;
			}
			if (genlmsg_parse(nlh, 0, tb, PAGEPUSH_A_MAX, NULL) ||
			    !tb[PAGEPUSH_A_INDEX])
				continue;
			if (d->nseen && nla_get_u32(tb[PAGEPUSH_A_INDEX]) <=
					d->seen[d->nseen - 1])
				d->ordered = false;
			if (d->nseen < 1024)
				d->seen[d->nseen++] = nla_get_u32(tb[PAGEPUSH_A_INDEX]);
		}
	}
	return 0;
}

static int nf_count_listed(FIXTURE_DATA(dump) *self, struct nf_dump_read *d)
{
	int i, j, n = 0;

	for (i = 0; i < self->n; i++) {
		for (j = 0; j < d->nseen; j++) {
			if (d->seen[j] == self->index[i]) {
				n++;
				break;
			}
		}
	}
	return n;
}

/* Sockets closed, and processes gone, with a dump half read. */
TEST_F(dump, closed_mid_dump)
{
	struct nf_dump_read d;
	struct pp_nl nl;
	int i, status;
	pid_t pid;

	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, pp_nl_open(&nl));
		ASSERT_EQ(0, nf_dump_start(&nl, 1));
		memset(&d, 0, sizeof(d));
		d.ordered = true;
		/* Nothing read, one datagram, or one read into 64 bytes. */
		if (i % 3 == 1)
			ASSERT_EQ(0, nf_dump_read(&nl, 1, 1, 65536, &d));
		if (i % 3 == 2)
			ASSERT_EQ(0, nf_dump_read(&nl, 1, 1, 64, &d));
		pp_nl_close(&nl);
	}
	for (i = 0; i < 4; i++) {
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			if (pp_nl_open(&nl) || nf_dump_start(&nl, 1))
				_exit(1);
			if (i & 1) {
				memset(&d, 0, sizeof(d));
				nf_dump_read(&nl, 1, 1, 65536, &d);
			}
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	}

	/* A whole dump still lists every session, once, in order. */
	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, nf_dump_start(&nl, 2));
	memset(&d, 0, sizeof(d));
	d.ordered = true;
	ASSERT_EQ(0, nf_dump_read(&nl, 2, -1, 65536, &d));
	EXPECT_TRUE(d.done);
	EXPECT_EQ(0, d.error);
	EXPECT_TRUE(d.ordered);
	EXPECT_EQ(self->n, nf_count_listed(self, &d));
	pp_nl_close(&nl);
}

/* Reads into a small buffer truncate datagrams; the dump goes on to DONE. */
TEST_F(dump, partial_reads)
{
	struct nf_dump_read d = { .ordered = true };
	struct pp_nl nl;

	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, nf_dump_start(&nl, 3));
	ASSERT_EQ(0, nf_dump_read(&nl, 3, 3, 100, &d));
	ASSERT_EQ(0, nf_dump_read(&nl, 3, -1, 65536, &d));
	EXPECT_TRUE(d.done);
	EXPECT_EQ(0, d.error);
	EXPECT_TRUE(d.ordered);
	EXPECT_GT(self->n, nf_count_listed(self, &d));
	pp_nl_close(&nl);
}

/*
 * Sessions deleted while a dump walks them: each index at most once, in
 * order; every session that lives and comes after the first part is
 * listed.
 */
TEST_F(dump, sessions_deleted_mid_dump)
{
	struct nf_dump_read d = { .ordered = true };
	uint32_t after;
	struct pp_nl nl;
	int i, j, missing = 0;

	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, nf_dump_start(&nl, 4));
	ASSERT_EQ(0, nf_dump_read(&nl, 4, 1, 65536, &d));
	ASSERT_FALSE(d.done) TH_LOG("the whole dump fit in one datagram");
	ASSERT_LT(0, d.nseen);
	after = d.seen[d.nseen - 1];
	for (i = 0; i < self->n; i += 2) {
		EXPECT_EQ(0, pp_nl_del(&self->nl, self->index[i]));
		self->alive[i] = false;
	}
	ASSERT_EQ(0, nf_dump_read(&nl, 4, -1, 65536, &d));
	EXPECT_TRUE(d.done);
	EXPECT_EQ(0, d.error);
	EXPECT_TRUE(d.ordered);
	/* The kernel may have filled the next datagram before the DELs. */
	for (i = 1; i < self->n; i += 2) {
		bool listed = false;

		for (j = 0; j < d.nseen; j++)
			listed |= d.seen[j] == self->index[i];
		if (self->index[i] > after && !listed)
			missing++;
	}
	EXPECT_EQ(0, missing);
	pp_nl_close(&nl);
}

/* Requests on the socket of a running dump: a second dump, a GET. */
TEST_F(dump, requests_during_dump)
{
	struct nf_dump_read d = { .ordered = true };
	struct pp_nl nl;
	struct nl_msg *msg;
	struct nlmsghdr *nlh;

	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, nf_dump_start(&nl, 5));
	ASSERT_EQ(0, nf_dump_read(&nl, 5, 1, 65536, &d));
	/* A second dump on the same socket, then a GET. */
	ASSERT_EQ(0, nf_dump_start(&nl, 6));
	msg = nf_msg(&nl, PAGEPUSH_CMD_GET, NLM_F_REQUEST | NLM_F_ACK, 1, 0);
	ASSERT_NE(NULL, msg);
	nf_u32(msg, PAGEPUSH_A_INDEX, self->index[0]);
	nlh = nlmsg_hdr(msg);
	nlh->nlmsg_seq = 7;
	ASSERT_LT(0, send(nl_socket_get_fd(nl.sk), nlh, nlh->nlmsg_len, 0));
	nlmsg_free(msg);
	/* The first dump finishes; the others were answered on the way. */
	ASSERT_EQ(0, nf_dump_read(&nl, 5, -1, 65536, &d));
	EXPECT_TRUE(d.done);
	EXPECT_EQ(0, d.error);
	EXPECT_TRUE(d.ordered);
	EXPECT_EQ(self->n, nf_count_listed(self, &d));
	/* The second dump is refused (one at a time), the GET answered. */
	EXPECT_EQ(2, d.other);
	EXPECT_EQ(-EBUSY, d.other_error);
	pp_nl_close(&nl);
}

/* Everything deleted mid-dump, then the socket closed. */
TEST_F(dump, all_deleted_mid_dump)
{
	struct nf_dump_read d = { .ordered = true };
	struct pp_nl nl;
	int i;

	ASSERT_EQ(0, pp_nl_open(&nl));
	ASSERT_EQ(0, nf_dump_start(&nl, 8));
	ASSERT_EQ(0, nf_dump_read(&nl, 8, 1, 65536, &d));
	for (i = 0; i < self->n; i++) {
		EXPECT_EQ(0, pp_nl_del(&self->nl, self->index[i]));
		self->alive[i] = false;
	}
	ASSERT_EQ(0, nf_dump_read(&nl, 8, 1, 65536, &d));
	pp_nl_close(&nl);
}

TEST_HARNESS_MAIN
