// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush helper: printing sessions for people and for scripts.
 */
#include <inttypes.h>
#include <string.h>

#include "report.h"
#include "util.h"

/**
 * pp_latency_percentile() - a percentile of the held-fault histogram
 * @info: session
 * @pct: 0..100; 100 gives the maximum
 *
 * Return: upper bound in microseconds of the bucket holding the
 * percentile, or 0 when no fault was held.
 */
double pp_latency_percentile(const struct pp_session_info *info, double pct)
{
	uint64_t total = 0, seen = 0, want;
	int i;

	for (i = 0; i < PAGEPUSH_LATENCY_BUCKETS; i++)
		total += info->latency[i];
	if (!total)
		return 0;
	want = (uint64_t)(total * pct / 100.0 + 0.999999);
	if (want < 1)
		want = 1;
	if (want > total)
		want = total;
	for (i = 0; i < PAGEPUSH_LATENCY_BUCKETS; i++) {
		seen += info->latency[i];
		if (seen >= want)
			return (double)(1ull << (i + 1));
	}
	return (double)(1ull << PAGEPUSH_LATENCY_BUCKETS);
}

static const char *const pp_chan_names[PAGEPUSH_NR_CHANNELS] = {
	"precopy", "postcopy",
};

void pp_report_text(FILE *f, const struct pp_session_info *in)
{
	const uint64_t *st = in->stats;
	char a[32], b[32], c[32];
	unsigned int i;

	fprintf(f, "/dev/%s", in->device);
	if (in->name[0])
		fprintf(f, "  name %s", in->name);
	fprintf(f, "  %s  %s in %s pages\n", pp_state_name(in->state),
		pp_fmt_bytes(a, sizeof(a), in->size),
		pp_fmt_page_size(in->page_size));
	if (in->reason[0])
		fprintf(f, "  reason    %s\n", in->reason);
	if (!in->has_stats)
		return;
	if (in->cookie)
		fprintf(f, "  cookie    %#" PRIx64 "\n", in->cookie);
	fprintf(f, "  pages     %" PRIu64 " of %" PRIu64 " present (%.1f%%)\n",
		st[PAGEPUSH_STAT_PAGES_PRESENT], st[PAGEPUSH_STAT_PAGES_TOTAL],
		st[PAGEPUSH_STAT_PAGES_TOTAL] ?
		100.0 * st[PAGEPUSH_STAT_PAGES_PRESENT] /
		st[PAGEPUSH_STAT_PAGES_TOTAL] : 0.0);
	for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
		const uint64_t *ch = in->chan[i];

		fprintf(f, "  %-9s %" PRIu64 " pages, %s, %" PRIu64 " zero, %"
			PRIu64 " duplicate, %" PRIu64 " held faults served\n",
			pp_chan_names[i], ch[PAGEPUSH_CHAN_PAGES],
			pp_fmt_bytes(a, sizeof(a), ch[PAGEPUSH_CHAN_BYTES]),
			ch[PAGEPUSH_CHAN_ZERO_PAGES], ch[PAGEPUSH_CHAN_DUPLICATES],
			ch[PAGEPUSH_CHAN_FAULT_PAGES]);
	}
	fprintf(f, "  faults    %" PRIu64 " held now, %" PRIu64 " held in total, %"
		PRIu64 " SIGBUS; %" PRIu64 " requests sent\n",
		st[PAGEPUSH_STAT_FAULTS_HELD_NOW],
		st[PAGEPUSH_STAT_FAULTS_HELD_TOTAL],
		st[PAGEPUSH_STAT_FAULTS_SIGBUS], st[PAGEPUSH_STAT_REQUESTS_SENT]);
	if (st[PAGEPUSH_STAT_FAULTS_HELD_TOTAL])
		fprintf(f, "  latency   p50 <= %s, p99 <= %s, max <= %s\n",
			pp_fmt_usec(a, sizeof(a), pp_latency_percentile(in, 50)),
			pp_fmt_usec(b, sizeof(b), pp_latency_percentile(in, 99)),
			pp_fmt_usec(c, sizeof(c), pp_latency_percentile(in, 100)));
	if (st[PAGEPUSH_STAT_PAUSES] || in->pause_timeout)
		fprintf(f, "  recovery  %" PRIu64 " pauses, %" PRIu64
			" recoveries; pause timeout %s\n",
			st[PAGEPUSH_STAT_PAUSES], st[PAGEPUSH_STAT_RECOVERIES],
			in->pause_timeout ? pp_fmt_usec(a, sizeof(a),
							in->pause_timeout * 1e6) :
			"none");
	if (in->state == PAGEPUSH_STATE_PAUSED)
		fprintf(f, "  recover   pagepush recover /dev/%s SRC:PORT\n",
			in->device);
	if (st[PAGEPUSH_STAT_SPLIT_BRAIN])
		fprintf(f, "  errors    %" PRIu64 " split-brain chunks\n",
			st[PAGEPUSH_STAT_SPLIT_BRAIN]);
}

static void pp_json_u64(FILE *f, const char *key, uint64_t v, bool comma)
{
	fprintf(f, "\"%s\":%" PRIu64 "%s", key, v, comma ? "," : "");
}

void pp_report_json(FILE *f, const struct pp_session_info *in)
{
	const uint64_t *st = in->stats;
	unsigned int i;

	fprintf(f, "{\"index\":%u,\"device\":\"/dev/%s\",\"name\":", in->index,
		in->device);
	pp_json_string(f, in->name);
	fprintf(f, ",\"state\":\"%s\",\"reason\":", pp_state_name(in->state));
	pp_json_string(f, in->reason);
	fprintf(f, ",");
	pp_json_u64(f, "size_bytes", in->size, true);
	pp_json_u64(f, "page_size_bytes", in->page_size, true);
	pp_json_u64(f, "cookie", in->cookie, true);
	pp_json_u64(f, "pause_timeout_s", in->pause_timeout, in->has_stats);
	if (in->has_stats) {
		pp_json_u64(f, "pages_total", st[PAGEPUSH_STAT_PAGES_TOTAL], true);
		pp_json_u64(f, "pages_present", st[PAGEPUSH_STAT_PAGES_PRESENT], true);
		pp_json_u64(f, "requests_sent", st[PAGEPUSH_STAT_REQUESTS_SENT], true);
		pp_json_u64(f, "faults_held_now", st[PAGEPUSH_STAT_FAULTS_HELD_NOW], true);
		pp_json_u64(f, "faults_held_total", st[PAGEPUSH_STAT_FAULTS_HELD_TOTAL], true);
		pp_json_u64(f, "faults_sigbus", st[PAGEPUSH_STAT_FAULTS_SIGBUS], true);
		pp_json_u64(f, "split_brain", st[PAGEPUSH_STAT_SPLIT_BRAIN], true);
		pp_json_u64(f, "pauses", st[PAGEPUSH_STAT_PAUSES], true);
		pp_json_u64(f, "recoveries", st[PAGEPUSH_STAT_RECOVERIES], true);
		fprintf(f, "\"channels\":{");
		for (i = 0; i < PAGEPUSH_NR_CHANNELS; i++) {
			const uint64_t *ch = in->chan[i];

			fprintf(f, "%s\"%s\":{", i ? "," : "", pp_chan_names[i]);
			pp_json_u64(f, "pages", ch[PAGEPUSH_CHAN_PAGES], true);
			pp_json_u64(f, "bytes", ch[PAGEPUSH_CHAN_BYTES], true);
			pp_json_u64(f, "zero_pages", ch[PAGEPUSH_CHAN_ZERO_PAGES], true);
			pp_json_u64(f, "duplicates", ch[PAGEPUSH_CHAN_DUPLICATES], true);
			pp_json_u64(f, "held_faults", ch[PAGEPUSH_CHAN_FAULT_PAGES], true);
			pp_json_u64(f, "cpu_ns", ch[PAGEPUSH_CHAN_CPU_NS], false);
			fprintf(f, "}");
		}
		fprintf(f, "},\"latency_us\":{\"buckets\":[");
		for (i = 0; i < PAGEPUSH_LATENCY_BUCKETS; i++)
			fprintf(f, "%s%" PRIu64, i ? "," : "", in->latency[i]);
		fprintf(f, "],\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f}",
			pp_latency_percentile(in, 50),
			pp_latency_percentile(in, 99),
			pp_latency_percentile(in, 100));
	}
	fprintf(f, "}");
}

void pp_report_event(FILE *f, const struct pp_session_info *in, bool json)
{
	if (json) {
		fprintf(f, "{\"event\":\"%s\",\"session\":", pp_event_name(in->event));
		pp_report_json(f, in);
		fprintf(f, "}\n");
	} else {
		fprintf(f, "%-9s /dev/%s%s%s state %s%s%s\n",
			pp_event_name(in->event), in->device,
			in->name[0] ? " name " : "", in->name,
			pp_state_name(in->state),
			in->reason[0] ? " reason: " : "", in->reason);
	}
	fflush(f);
}
