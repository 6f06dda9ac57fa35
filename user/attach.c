// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush attach and recover: the destination side. Dials the source,
 * handshakes on each connection, creates the session sized from the
 * handshake (attach) or finds the paused one (recover), hands both
 * sockets to the kernel and, for attach, prints the device path. No page
 * passes through this process.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "nl.h"
#include "report.h"
#include "util.h"
#include "wire.h"

enum { PRE = PAGEPUSH_CHANNEL_PRECOPY, POST = PAGEPUSH_CHANNEL_POSTCOPY };

/* Pause between recovery attempts of --persist, in milliseconds. */
#define DST_PERSIST_RETRY_MS	1000

/* How the destination dials, and what it learned from the source. */
struct dst_link {
	const char *addr;
	uint32_t flags;			/* PAGEPUSH_HELLO_* asked for */
	uint32_t connect_timeout;	/* seconds to retry a refused dial */
	uint32_t link_timeout;		/* see pp_tcp_link_timeout() */
	bool quiet;			/* errors are expected (retries) */
	/* From the source's answer, or the session when recovering. */
	uint64_t cookie;
	uint64_t size;
	uint32_t page_size;
	bool preempt;
	int fd[PAGEPUSH_NR_CHANNELS];
};

static void dst_err(const struct dst_link *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dst_err(const struct dst_link *l, const char *fmt, ...)
{
	va_list ap;

	if (l->quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", pp_prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Dial one connection and handshake; returns the fd or -1. */
static int dst_dial(struct dst_link *l, uint16_t role, int timeout_ms)
{
	bool recover = l->flags & PAGEPUSH_HELLO_RECOVER;
	struct pagepush_hello h;
	char err[192];
	uint32_t status;
	int fd, ret;

	fd = pp_tcp_dial(l->addr, timeout_ms, err, sizeof(err));
	if (fd < 0) {
		dst_err(l, "%s", err);
		return -1;
	}
	pp_tcp_nodelay(fd);
	if (pp_tcp_link_timeout(fd, l->link_timeout))
		pp_warn("cannot set the link timeout: %s", strerror(errno));
	/* The first connection of a new migration has no cookie yet. */
	pp_hello_init(&h, role, l->flags, 0,
		      role == PRE && !recover ? 0 : l->cookie,
		      recover ? l->size : 0, recover ? l->page_size : 0);
	ret = pp_write_all(fd, &h, sizeof(h));
	if (!ret)
		ret = pp_read_all(fd, &h, sizeof(h));
	if (ret) {
		dst_err(l, "handshake with %s failed: %s", l->addr,
			ret == -ECONNRESET ? "the source closed the connection" :
			strerror(-ret));
		goto fail;
	}
	if (pp_hello_check(&h, err, sizeof(err))) {
		dst_err(l, "%s: %s", l->addr, err);
		goto fail;
	}
	status = le32toh(h.status);
	if (status != PAGEPUSH_HELLO_OK) {
		dst_err(l, "%s refused the %s connection: %s%s", l->addr,
			role == PRE ? "precopy" : "postcopy",
			pp_hello_status_name(status),
			recover && status == PAGEPUSH_HELLO_ECOOKIE ?
			" (a restarted source needs --cookie with the session's cookie)" : "");
		goto fail;
	}
	if (role == PRE) {
		l->cookie = le64toh(h.cookie);
		l->size = le64toh(h.size_bytes);
		l->page_size = le32toh(h.page_size);
		l->preempt = le32toh(h.flags) & PAGEPUSH_HELLO_PREEMPT;
	}
	return fd;

fail:
	close(fd);
	return -1;
}

/*
 * Options attach and recover share: -N, -t, -T. Returns 1 if @c is one of
 * them, 0 if not, -1 for a bad value.
 */
static int dst_link_option(struct dst_link *l, int c, const char *arg)
{
	switch (c) {
	case 'N':
		l->flags &= ~PAGEPUSH_HELLO_PREEMPT;
		return 1;
	case 't':
		if (pp_parse_u32(arg, &l->connect_timeout) ||
		    l->connect_timeout > INT32_MAX / 1000) {
			pp_err("bad --connect-timeout '%s': seconds", arg);
			return -1;
		}
		return 1;
	case 'T':
		if (pp_parse_u32(arg, &l->link_timeout) ||
		    l->link_timeout > UINT32_MAX / 1000) {
			pp_err("bad --link-timeout '%s': seconds", arg);
			return -1;
		}
		return 1;
	}
	return 0;
}

static void dst_close(struct dst_link *l)
{
	unsigned int ch;

	for (ch = 0; ch < PAGEPUSH_NR_CHANNELS; ch++) {
		if (l->fd[ch] >= 0)
			close(l->fd[ch]);
		l->fd[ch] = -1;
	}
}

/* Both connections of a migration, the second paired by the cookie. */
static int dst_open(struct dst_link *l)
{
	l->fd[PRE] = dst_dial(l, PRE, l->connect_timeout * 1000);
	if (l->fd[PRE] < 0)
		return -1;
	if (l->preempt) {
		l->fd[POST] = dst_dial(l, POST, 1000);
		if (l->fd[POST] < 0) {
			dst_close(l);
			return -1;
		}
	}
	return 0;
}

/*
 * Resume a paused session: new connections to the same source, which
 * checks the cookie, size and page size, then RECOVER. The kernel tells
 * the source which pages it has. Returns 0 or -1.
 */
static int dst_recover(struct pp_nl *nl, const struct pp_session_info *info,
		       struct dst_link *l)
{
	int ret;

	l->flags |= PAGEPUSH_HELLO_RECOVER;
	l->cookie = info->cookie;
	l->size = info->size;
	l->page_size = info->page_size;
	if (dst_open(l))
		return -1;
	ret = pp_nl_recover(nl, info->index, l->fd[PRE], l->fd[POST], l->cookie);
	/* The kernel holds its own references on the sockets. */
	dst_close(l);
	if (ret) {
		dst_err(l, "cannot recover /dev/%s: %s", info->device,
			pp_nl_strerror(nl));
		return -1;
	}
	return 0;
}

static void dst_progress(const struct pp_session_info *in, uint64_t t0,
			 bool tty)
{
	const uint64_t *st = in->stats;
	uint64_t total = st[PAGEPUSH_STAT_PAGES_TOTAL];
	uint64_t present = st[PAGEPUSH_STAT_PAGES_PRESENT];
	double secs = (pp_now_ns() - t0) / 1e9;
	double frac = total ? (double)present / total : 0;
	uint64_t bytes = in->chan[PRE][PAGEPUSH_CHAN_BYTES] +
			 in->chan[POST][PAGEPUSH_CHAN_BYTES];
	char bar[33];
	int i, fill = (int)(frac * 32);

	for (i = 0; i < 32; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[32] = '\0';
	fprintf(stderr, "%s[%s] %5.1f%%  %" PRIu64 "/%" PRIu64 " pages  %.1f MB/s  %"
		PRIu64 " held%s%s", tty ? "\r" : "", bar, frac * 100, present, total,
		secs > 0 ? bytes / secs / 1e6 : 0.0,
		st[PAGEPUSH_STAT_FAULTS_HELD_NOW],
		in->state == PAGEPUSH_STATE_PAUSED ? "  PAUSED" : "",
		tty ? "  " : "\n");
}

/*
 * Follow the session until it ends; returns an exit code. With @persist
 * (a link to dial), a paused session is recovered, attempt after attempt,
 * until it resumes or fails.
 */
static int dst_wait(struct pp_nl *nl, struct pp_nl *ev, uint32_t index,
		    struct dst_link *persist)
{
	bool tty = isatty(STDERR_FILENO), told = false;
	uint64_t t0 = pp_now_ns(), last = 0, attempts = 0;
	struct pp_session_info info, e;
	int ret;

	for (;;) {
		ret = pp_nl_wait_event(ev, &e, 1000);
		if (ret < 0) {
			pp_err("lost the events group: %s", strerror(-ret));
			return PP_EXIT_FAIL;
		}
		if (ret > 0 && e.index != index)
			continue;
		if (ret > 0 && e.event == PAGEPUSH_EVENT_DELETED) {
			if (tty)
				fputc('\n', stderr);
			pp_err("the session was deleted");
			return PP_EXIT_MIGRATION;
		}
		if (pp_nl_get(nl, index, &info)) {
			pp_err("cannot read the session: %s", pp_nl_strerror(nl));
			return PP_EXIT_FAIL;
		}
		if (info.state != PAGEPUSH_STATE_CONNECTED ||
		    pp_now_ns() - last >= (tty ? 200000000ull : 2000000000ull)) {
			dst_progress(&info, t0, tty);
			last = pp_now_ns();
		}
		switch (info.state) {
		case PAGEPUSH_STATE_COMPLETE:
			if (tty)
				fputc('\n', stderr);
			fprintf(stderr, "%s: migration complete in %.2f s\n", pp_prog,
				(pp_now_ns() - t0) / 1e9);
			return PP_EXIT_OK;
		case PAGEPUSH_STATE_FAILED:
			if (tty)
				fputc('\n', stderr);
			pp_err("migration failed: %s", info.reason);
			return PP_EXIT_MIGRATION;
		case PAGEPUSH_STATE_PAUSED:
			if (!told) {
				if (tty)
					fputc('\n', stderr);
				fprintf(stderr, "%s: paused: %s; %s\n", pp_prog, info.reason,
					persist ? "recovering" :
					"run 'pagepush recover DEV SRC:PORT' or 'pagepush detach DEV'");
				told = true;
			}
			if (!persist)
				break;
			/* Only the first failure of a series is worth telling. */
			persist->quiet = attempts++ > 0;
			if (!dst_recover(nl, &info, persist)) {
				fprintf(stderr, "%s: resumed after %" PRIu64 " attempt%s\n",
					pp_prog, attempts, attempts == 1 ? "" : "s");
				attempts = 0;
				told = false;
			} else {
				usleep(DST_PERSIST_RETRY_MS * 1000);
			}
			break;
		default:
			told = false;
			break;
		}
	}
}

static void attach_usage(FILE *f)
{
	fprintf(f,
		"usage: %s attach [--name NAME] [--wait] [--persist] [--no-preempt]\n"
		"                 [--connect-timeout SECS] [--link-timeout SECS]\n"
		"                 [--pause-timeout SECS] SRC:PORT\n\n"
		"Connect to 'pagepush serve' at SRC:PORT, create a session the size the\n"
		"source announces, hand the connections to the kernel and print the\n"
		"device path (/dev/pagepushN) as the first line of stdout. Map that\n"
		"device MAP_SHARED: pages not yet arrived are fetched when touched.\n"
		"If the connections are lost the session pauses: tasks wait, nothing\n"
		"is lost, and 'pagepush recover' (or --persist) resumes it.\n\n"
		"  --name NAME            unique session name\n"
		"  --wait                 stay until the migration ends, showing progress on\n"
		"                         stderr; exit 0 when complete, 3 when it failed\n"
		"  --persist              like --wait, and recover a paused session by\n"
		"                         itself, retrying every second until it resumes\n"
		"                         or fails\n"
		"  --no-preempt           ask for one connection (the baseline)\n"
		"  --connect-timeout SECS keep retrying a refused connection (default 10)\n"
		"  --link-timeout SECS    silence after which a connection counts as lost\n"
		"                         (default %u; 0: the system's TCP defaults)\n"
		"  --pause-timeout SECS   fail the session if it stays paused this long\n"
		"                         (default 0: wait for recover or detach)\n",
		pp_prog, PP_DEFAULT_LINK_TIMEOUT);
}

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "wait", no_argument, NULL, 'w' },
		{ "persist", no_argument, NULL, 'P' },
		{ "no-preempt", no_argument, NULL, 'N' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "link-timeout", required_argument, NULL, 'T' },
		{ "pause-timeout", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct dst_link link = {
		.flags = PAGEPUSH_HELLO_PREEMPT,
		.connect_timeout = 10,
		.link_timeout = PP_DEFAULT_LINK_TIMEOUT,
		.fd = { -1, -1 },
	};
	struct pp_session_info info;
	struct pp_nl nl, ev = { };
	const char *name = NULL;
	bool wait = false, persist = false, events = false;
	uint32_t pause_timeout = 0;
	int c, o, ret = PP_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "n:wPNt:T:u:h", opts, NULL)) != -1) {
		o = dst_link_option(&link, c, optarg);
		if (o < 0)
			return PP_EXIT_USAGE;
		if (o)
			continue;
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'w':
			wait = true;
			break;
		case 'P':
			wait = persist = true;
			break;
		case 'u':
			if (pp_parse_u32(optarg, &pause_timeout)) {
				pp_err("bad --pause-timeout '%s': seconds", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'h':
			attach_usage(stdout);
			return PP_EXIT_OK;
		default:
			attach_usage(stderr);
			return PP_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		pp_err("attach needs SRC:PORT");
		attach_usage(stderr);
		return PP_EXIT_USAGE;
	}
	link.addr = argv[optind];

	/* Kernel side first: no point dialling if the module is missing. */
	if (pp_nl_open(&nl)) {
		pp_err("%s", pp_nl_strerror(&nl));
		return PP_EXIT_FAIL;
	}
	if (wait) {
		if (pp_nl_open(&ev) || pp_nl_subscribe(&ev)) {
			pp_err("cannot follow events: %s", pp_nl_strerror(&ev));
			goto out;
		}
		events = true;
	}

	if (dst_open(&link))
		goto out;
	if (pp_nl_new_ex(&nl, link.size, link.page_size, name, pause_timeout,
			 &info)) {
		pp_err("cannot create the session: %s", pp_nl_strerror(&nl));
		goto out;
	}
	if (pp_nl_connect(&nl, info.index, link.fd[PRE], link.fd[POST],
			  link.cookie)) {
		pp_err("cannot connect the session: %s", pp_nl_strerror(&nl));
		pp_nl_del(&nl, info.index);
		goto out;
	}
	/* The kernel holds its own references on the sockets. */
	dst_close(&link);

	printf("/dev/%s\n", info.device);
	fflush(stdout);
	ret = PP_EXIT_OK;
	if (wait)
		ret = dst_wait(&nl, &ev, info.index, persist ? &link : NULL);
out:
	dst_close(&link);
	if (events)
		pp_nl_close(&ev);
	pp_nl_close(&nl);
	return ret;
}

static void recover_usage(FILE *f)
{
	fprintf(f,
		"usage: %s recover [--wait] [--no-preempt] [--connect-timeout SECS]\n"
		"                  [--link-timeout SECS] DEV SRC:PORT\n\n"
		"Resume the paused session DEV (/dev/pagepushN, N, or its name): dial\n"
		"the source at SRC:PORT again (the same 'pagepush serve', or one\n"
		"restarted with --cookie and the session's cookie), tell it which\n"
		"pages are here, and carry on. Held tasks then get their pages.\n\n"
		"  --wait                 stay until the migration ends (exit 0 when\n"
		"                         complete, 3 when it failed)\n"
		"  --no-preempt           ask for one connection\n"
		"  --connect-timeout SECS keep retrying a refused connection (default 10)\n"
		"  --link-timeout SECS    silence after which a connection counts as lost\n"
		"                         (default %u)\n",
		pp_prog, PP_DEFAULT_LINK_TIMEOUT);
}

int cmd_recover(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "no-preempt", no_argument, NULL, 'N' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "link-timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct dst_link link = {
		.flags = PAGEPUSH_HELLO_PREEMPT,
		.connect_timeout = 10,
		.link_timeout = PP_DEFAULT_LINK_TIMEOUT,
		.fd = { -1, -1 },
	};
	struct pp_session_info info;
	struct pp_nl nl, ev = { };
	bool wait = false, events = false;
	int c, o, ret = PP_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "wNt:T:h", opts, NULL)) != -1) {
		o = dst_link_option(&link, c, optarg);
		if (o < 0)
			return PP_EXIT_USAGE;
		if (o)
			continue;
		switch (c) {
		case 'w':
			wait = true;
			break;
		case 'h':
			recover_usage(stdout);
			return PP_EXIT_OK;
		default:
			recover_usage(stderr);
			return PP_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		pp_err("recover needs DEV and SRC:PORT");
		recover_usage(stderr);
		return PP_EXIT_USAGE;
	}
	link.addr = argv[optind + 1];

	if (pp_nl_open(&nl)) {
		pp_err("%s", pp_nl_strerror(&nl));
		return PP_EXIT_FAIL;
	}
	if (wait) {
		if (pp_nl_open(&ev) || pp_nl_subscribe(&ev)) {
			pp_err("cannot follow events: %s", pp_nl_strerror(&ev));
			goto out;
		}
		events = true;
	}
	if (pp_nl_find(&nl, argv[optind], &info)) {
		pp_err("%s: %s", argv[optind], pp_nl_strerror(&nl));
		goto out;
	}
	if (info.state != PAGEPUSH_STATE_PAUSED) {
		pp_err("/dev/%s is %s, not paused: nothing to recover", info.device,
		       pp_state_name(info.state));
		goto out;
	}
	if (dst_recover(&nl, &info, &link))
		goto out;
	fprintf(stderr, "%s: /dev/%s resumed\n", pp_prog, info.device);
	ret = PP_EXIT_OK;
	if (wait)
		ret = dst_wait(&nl, &ev, info.index, NULL);
out:
	if (events)
		pp_nl_close(&ev);
	pp_nl_close(&nl);
	return ret;
}
