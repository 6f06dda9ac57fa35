// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush: the helper. Sets up sessions of the pagepush kernel module
 * over generic netlink, dials and hands over the connections on the
 * destination, and serves pages on the source. See pagepush(8).
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "util.h"
#include <linux/pagepush.h>

#ifndef PAGEPUSH_VERSION
#define PAGEPUSH_VERSION "0"
#endif

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} pp_cmds[] = {
	{ "serve", cmd_serve, "serve a file's pages to one destination (source side)" },
	{ "attach", cmd_attach, "connect to a source and map its memory at /dev/pagepushN" },
	{ "status", cmd_status, "show sessions, their progress and fault latency" },
	{ "monitor", cmd_monitor, "follow session events" },
	{ "recover", cmd_recover, "resume a paused session from its source" },
	{ "detach", cmd_detach, "delete a session (a paused one fails)" },
	{ "new", cmd_new, "create a session by hand (no source yet)" },
};

static void usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "usage: %s COMMAND [OPTIONS]\n\n", pp_prog);
	fprintf(f, "In-kernel postcopy memory migration for hugepage-backed memory.\n\n");
	fprintf(f, "Commands:\n");
	for (i = 0; i < ARRAY_SIZE(pp_cmds); i++)
		fprintf(f, "  %-8s %s\n", pp_cmds[i].name, pp_cmds[i].summary);
	fprintf(f, "\n'%s COMMAND --help' describes a command; pagepush(8) has the rest.\n",
		pp_prog);
}

int main(int argc, char **argv)
{
	unsigned int i;

	if (argc < 2) {
		usage(stderr);
		return PP_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return PP_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("pagepush %s (wire protocol %d, netlink family v%d)\n",
		       PAGEPUSH_VERSION, PAGEPUSH_WIRE_VERSION,
		       PAGEPUSH_GENL_VERSION);
		return PP_EXIT_OK;
	}
	for (i = 0; i < ARRAY_SIZE(pp_cmds); i++) {
		if (!strcmp(argv[1], pp_cmds[i].name))
			return pp_cmds[i].fn(argc - 1, argv + 1);
	}
	pp_err("unknown command '%s'; see '%s --help'", argv[1], pp_prog);
	return PP_EXIT_USAGE;
}
