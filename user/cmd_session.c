// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush helper: new, status, detach, monitor.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "nl.h"
#include "report.h"
#include "util.h"

/* Open the family or explain why not; returns an exit code on failure. */
static int pp_open_or_explain(struct pp_nl *nl)
{
	if (!pp_nl_open(nl))
		return 0;
	pp_err("%s", pp_nl_strerror(nl));
	return PP_EXIT_FAIL;
}

/* Report a failed request, with a hint for the common cases. */
static int pp_request_failed(struct pp_nl *nl, const char *what)
{
	pp_err("%s: %s", what, pp_nl_strerror(nl));
	if (nl->err == -EPERM)
		pp_err("this needs CAP_NET_ADMIN: run it as root");
	return PP_EXIT_FAIL;
}

static void new_usage(FILE *f)
{
	fprintf(f,
		"usage: %s new --size SIZE --page-size 4K|2M [--name NAME] [--json]\n\n"
		"Create a session with no source and print its device path.\n"
		"Until a source is connected, touching its memory raises SIGBUS.\n"
		"'attach' does this and connects in one step; 'new' is for tests\n"
		"and for programs that connect the session themselves.\n\n"
		"  --size SIZE        bytes, a multiple of the page size (K, M, G, T suffixes)\n"
		"  --page-size 4K|2M  page size of the session\n"
		"  --name NAME        unique name (letters, digits, '-', '_', '.'; 31 at most)\n"
		"  --json             print the session as JSON instead of its device path\n",
		pp_prog);
}

int cmd_new(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct pp_session_info info;
	uint64_t size = 0;
	uint32_t page_size = 0;
	const char *name = NULL;
	bool json = false;
	struct pp_nl nl;
	int c, ret;

	while ((c = getopt_long(argc, argv, "s:p:n:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (pp_parse_size(optarg, &size)) {
				pp_err("bad --size '%s': use bytes or a K/M/G/T suffix, e.g. 512M", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'p':
			if (pp_parse_page_size(optarg, &page_size)) {
				pp_err("bad --page-size '%s': use 4K or 2M", optarg);
				return PP_EXIT_USAGE;
			}
			break;
		case 'n':
			name = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			new_usage(stdout);
			return PP_EXIT_OK;
		default:
			new_usage(stderr);
			return PP_EXIT_USAGE;
		}
	}
	if (optind != argc || !size || !page_size) {
		pp_err("new needs --size and --page-size");
		new_usage(stderr);
		return PP_EXIT_USAGE;
	}

	ret = pp_open_or_explain(&nl);
	if (ret)
		return ret;
	if (pp_nl_new(&nl, size, page_size, name, &info)) {
		ret = pp_request_failed(&nl, "cannot create the session");
		goto out;
	}
	if (json) {
		pp_report_json(stdout, &info);
		putchar('\n');
	} else {
		printf("/dev/%s\n", info.device);
	}
out:
	pp_nl_close(&nl);
	return ret;
}

static void status_usage(FILE *f)
{
	fprintf(f,
		"usage: %s status [--json] [DEV]\n\n"
		"Show one session (DEV: /dev/pagepushN, N, or its name) or all.\n"
		"Latencies are upper bounds of log2 histogram buckets.\n\n"
		"  --json   one JSON object for DEV, or {\"sessions\": [...]} for all\n",
		pp_prog);
}

struct status_ctx {
	bool json;
	unsigned int n;
};

static int status_cb(const struct pp_session_info *info, void *arg)
{
	struct status_ctx *ctx = arg;

	if (ctx->json) {
		if (ctx->n)
			putchar(',');
		pp_report_json(stdout, info);
	} else {
		if (ctx->n)
			putchar('\n');
		pp_report_text(stdout, info);
	}
	ctx->n++;
	return 0;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct status_ctx ctx = { };
	struct pp_session_info info;
	struct pp_nl nl;
	int c, ret;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctx.json = true;
			break;
		case 'h':
			status_usage(stdout);
			return PP_EXIT_OK;
		default:
			status_usage(stderr);
			return PP_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		status_usage(stderr);
		return PP_EXIT_USAGE;
	}

	ret = pp_open_or_explain(&nl);
	if (ret)
		return ret;
	if (optind < argc) {
		if (pp_nl_find(&nl, argv[optind], &info)) {
			ret = pp_request_failed(&nl, argv[optind]);
			goto out;
		}
		if (ctx.json) {
			pp_report_json(stdout, &info);
			putchar('\n');
		} else {
			pp_report_text(stdout, &info);
		}
		goto out;
	}

	if (ctx.json)
		printf("{\"sessions\":[");
	if (pp_nl_dump(&nl, status_cb, &ctx)) {
		if (ctx.json)
			printf("]}\n");
		ret = pp_request_failed(&nl, "cannot list the sessions");
		goto out;
	}
	if (ctx.json)
		printf("]}\n");
	else if (!ctx.n)
		printf("no sessions\n");
out:
	pp_nl_close(&nl);
	return ret;
}

static void detach_usage(FILE *f)
{
	fprintf(f,
		"usage: %s detach DEV\n\n"
		"Delete a session (DEV: /dev/pagepushN, N, or its name). A migration\n"
		"in progress or paused stops (the source is told when it can be);\n"
		"the device node goes away. Mappings keep the pages that arrived;\n"
		"touching one that never arrived raises SIGBUS.\n",
		pp_prog);
}

int cmd_detach(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct pp_session_info info;
	struct pp_nl nl;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			detach_usage(stdout);
			return PP_EXIT_OK;
		}
		detach_usage(stderr);
		return PP_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		detach_usage(stderr);
		return PP_EXIT_USAGE;
	}
	ret = pp_open_or_explain(&nl);
	if (ret)
		return ret;
	if (pp_nl_find(&nl, argv[optind], &info) ||
	    pp_nl_del(&nl, info.index))
		ret = pp_request_failed(&nl, argv[optind]);
	pp_nl_close(&nl);
	return ret;
}

static void monitor_usage(FILE *f)
{
	fprintf(f,
		"usage: %s monitor [--json]\n\n"
		"Print session events as they happen (created, connected, paused and\n"
		"resumed, complete, failed with its reason, deleted), one line each,\n"
		"until interrupted.\n\n"
		"  --json   one JSON object per line\n",
		pp_prog);
}

int cmd_monitor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct pp_session_info info;
	bool json = false;
	struct pp_nl nl;
	int c, ret;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			monitor_usage(stdout);
			return PP_EXIT_OK;
		default:
			monitor_usage(stderr);
			return PP_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		monitor_usage(stderr);
		return PP_EXIT_USAGE;
	}
	ret = pp_open_or_explain(&nl);
	if (ret)
		return ret;
	if (pp_nl_subscribe(&nl)) {
		ret = pp_request_failed(&nl, "monitor");
		goto out;
	}
	for (;;) {
		c = pp_nl_wait_event(&nl, &info, -1);
		if (c < 0) {
			pp_err("lost the events group: %s", strerror(-c));
			ret = PP_EXIT_FAIL;
			break;
		}
		if (c > 0)
			pp_report_event(stdout, &info, json);
	}
out:
	pp_nl_close(&nl);
	return ret;
}
