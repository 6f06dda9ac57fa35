// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush attach: the destination side. Dials the source, handshakes on
 * each connection, creates the session sized from the handshake, hands
 * both sockets to the kernel and prints the device path. No page passes
 * through this process.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
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

struct dst_offer {
	uint64_t cookie;
	uint64_t size;
	uint32_t page_size;
	bool preempt;
};

/* Dial one connection and handshake; returns the fd or -1. */
static int dst_dial(const char *addr, uint16_t role, uint32_t flags,
		    uint64_t cookie, int timeout_ms, struct dst_offer *offer)
{
	struct pagepush_hello h;
	char err[192];
	uint32_t status;
	int fd, ret;

	fd = pp_tcp_dial(addr, timeout_ms, err, sizeof(err));
	if (fd < 0) {
		pp_err("%s", err);
		return -1;
	}
	pp_tcp_nodelay(fd);
	pp_hello_init(&h, role, flags, 0, cookie, 0, 0);
	ret = pp_write_all(fd, &h, sizeof(h));
	if (!ret)
		ret = pp_read_all(fd, &h, sizeof(h));
	if (ret) {
		pp_err("handshake with %s failed: %s", addr,
		       ret == -ECONNRESET ? "the source closed the connection" :
		       strerror(-ret));
		goto fail;
	}
	if (pp_hello_check(&h, err, sizeof(err))) {
		pp_err("%s: %s", addr, err);
		goto fail;
	}
	status = le32toh(h.status);
	if (status != PAGEPUSH_HELLO_OK) {
		pp_err("%s refused the %s connection: %s", addr,
		       role == PRE ? "precopy" : "postcopy",
		       pp_hello_status_name(status));
		goto fail;
	}
	offer->cookie = le64toh(h.cookie);
	offer->size = le64toh(h.size_bytes);
	offer->page_size = le32toh(h.page_size);
	offer->preempt = le32toh(h.flags) & PAGEPUSH_HELLO_PREEMPT;
	return fd;

fail:
	close(fd);
	return -1;
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
		PRIu64 " held%s", tty ? "\r" : "", bar, frac * 100, present, total,
		secs > 0 ? bytes / secs / 1e6 : 0.0,
		st[PAGEPUSH_STAT_FAULTS_HELD_NOW], tty ? "  " : "\n");
}

/* Follow the session until it ends; returns an exit code. */
static int dst_wait(struct pp_nl *nl, struct pp_nl *ev, uint32_t index)
{
	bool tty = isatty(STDERR_FILENO);
	uint64_t t0 = pp_now_ns(), last = 0;
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
		if (info.state == PAGEPUSH_STATE_COMPLETE ||
		    info.state == PAGEPUSH_STATE_FAILED ||
		    pp_now_ns() - last >= (tty ? 200000000ull : 2000000000ull)) {
			dst_progress(&info, t0, tty);
			last = pp_now_ns();
		}
		if (info.state == PAGEPUSH_STATE_COMPLETE) {
			if (tty)
				fputc('\n', stderr);
			fprintf(stderr, "%s: migration complete in %.2f s\n", pp_prog,
				(pp_now_ns() - t0) / 1e9);
			return PP_EXIT_OK;
		}
		if (info.state == PAGEPUSH_STATE_FAILED) {
			if (tty)
				fputc('\n', stderr);
			pp_err("migration failed: %s", info.reason);
			return PP_EXIT_MIGRATION;
		}
	}
}

static void attach_usage(FILE *f)
{
	fprintf(f,
		"usage: %s attach [--name NAME] [--wait] [--no-preempt]\n"
		"                 [--connect-timeout SECS] SRC:PORT\n\n"
		"Connect to 'pagepush serve' at SRC:PORT, create a session the size the\n"
		"source announces, hand the connections to the kernel and print the\n"
		"device path (/dev/pagepushN) as the first line of stdout. Map that\n"
		"device MAP_SHARED: pages not yet arrived are fetched when touched.\n\n"
		"  --name NAME            unique session name\n"
		"  --wait                 stay until the migration ends, showing progress on\n"
		"                         stderr; exit 0 when complete, 3 when it failed\n"
		"  --no-preempt           ask for one connection (the baseline)\n"
		"  --connect-timeout SECS keep retrying a refused connection (default 10)\n",
		pp_prog);
}

int cmd_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "wait", no_argument, NULL, 'w' },
		{ "no-preempt", no_argument, NULL, 'N' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct dst_offer offer, post_offer;
	struct pp_session_info info;
	struct pp_nl nl, ev = { };
	const char *name = NULL, *addr;
	bool wait = false, events = false;
	uint32_t flags = PAGEPUSH_HELLO_PREEMPT, timeout = 10;
	int fd[PAGEPUSH_NR_CHANNELS] = { -1, -1 };
	int c, ret = PP_EXIT_FAIL;

	while ((c = getopt_long(argc, argv, "n:wNt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'w':
			wait = true;
			break;
		case 'N':
			flags &= ~PAGEPUSH_HELLO_PREEMPT;
			break;
		case 't':
			if (pp_parse_u32(optarg, &timeout)) {
				pp_err("bad --connect-timeout '%s'", optarg);
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
	addr = argv[optind];

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

	fd[PRE] = dst_dial(addr, PRE, flags, 0, timeout * 1000, &offer);
	if (fd[PRE] < 0)
		goto out;
	if (offer.preempt) {
		fd[POST] = dst_dial(addr, POST, flags, offer.cookie, 1000,
				    &post_offer);
		if (fd[POST] < 0)
			goto out;
	}

	if (pp_nl_new(&nl, offer.size, offer.page_size, name, &info)) {
		pp_err("cannot create the session: %s", pp_nl_strerror(&nl));
		goto out;
	}
	if (pp_nl_connect(&nl, info.index, fd[PRE], fd[POST], offer.cookie)) {
		pp_err("cannot connect the session: %s", pp_nl_strerror(&nl));
		pp_nl_del(&nl, info.index);
		goto out;
	}
	/* The kernel holds its own references on the sockets. */
	close(fd[PRE]);
	fd[PRE] = -1;
	if (fd[POST] >= 0) {
		close(fd[POST]);
		fd[POST] = -1;
	}

	printf("/dev/%s\n", info.device);
	fflush(stdout);
	ret = PP_EXIT_OK;
	if (wait)
		ret = dst_wait(&nl, &ev, info.index);
out:
	if (fd[PRE] >= 0)
		close(fd[PRE]);
	if (fd[POST] >= 0)
		close(fd[POST]);
	if (events)
		pp_nl_close(&ev);
	pp_nl_close(&nl);
	return ret;
}
