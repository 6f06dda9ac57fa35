// SPDX-License-Identifier: GPL-2.0
/*
 * faultbench: the benchmarks' workload. Touches pages of a region that is
 * still arriving and times every first touch, with the region coming from
 * either receiver of the same wire protocol:
 *
 *   faultbench --pagepush DEV ...          the kernel module (/dev/pagepushN)
 *   faultbench --uffd-missing SRC:PORT ... userfaultfd, recv + UFFDIO_COPY
 *   faultbench --uffd-minor SRC:PORT ...   userfaultfd on shared memory,
 *                                          recv in place + UFFDIO_CONTINUE
 *
 * Options:
 *   --faults N        pages each thread touches (distinct across threads)
 *   --threads T       faulting threads (default 1)
 *   --interval-us U   pause between two touches of a thread (default 0)
 *   --delay-ms D      wait before the first touch (default 0)
 *   --from FRACTION   pick pages from [FRACTION * pages, end) (default 0.5:
 *                     ahead of the background stream, so they are absent)
 *   --seed S          page choice
 *   --no-preempt      (userfaultfd) ask for one connection
 *   --wait-complete   wait until every page arrived, and time it
 *   --verify FILE     compare the whole region with FILE at the end
 *   --json FILE       results; --lat-out FILE: every latency in us
 *
 * The pagepush receiver's CPU time is what its receive threads used
 * (PAGEPUSH_CHAN_CPU_NS); the userfaultfd receiver's is its own threads'.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "nl.h"
#include "uffd.h"

enum backend { BK_PAGEPUSH, BK_UFFD_MISSING, BK_UFFD_MINOR };

static const char *const backend_names[] = {
	[BK_PAGEPUSH] = "pagepush",
	[BK_UFFD_MISSING] = "uffd-missing",
	[BK_UFFD_MINOR] = "uffd-minor",
};

struct bench {
	enum backend backend;
	const char *target;
	volatile uint8_t *mem;
	uint64_t size;
	uint32_t page_size;
	uint64_t nr_pages;
	uint64_t *pages;	/* the pages to touch, threads * faults */
	uint64_t *lat_ns;
	unsigned int threads;
	uint64_t faults;
	unsigned int interval_us;
	struct uffd_recv *uffd;
	struct pp_nl nl;
	uint32_t index;
};

struct worker {
	struct bench *b;
	unsigned int id;
	pthread_t tid;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	uint64_t i, k, t0;

	for (i = 0; i < b->faults; i++) {
		k = w->id * b->faults + i;
		t0 = now_ns();
		(void)b->mem[b->pages[k] * b->page_size + 64];
		b->lat_ns[k] = now_ns() - t0;
		if (b->interval_us)
			usleep(b->interval_us);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, uint64_t n, double p)
{
	uint64_t i;

	if (!n)
		return 0;
	i = (uint64_t)(p / 100.0 * (n - 1) + 0.5);
	return v[i < n ? i : n - 1] / 1e3;
}

/* Receiver CPU seconds so far. */
static double receiver_cpu(struct bench *b)
{
	struct pp_session_info info;

	if (b->backend != BK_PAGEPUSH)
		return uffd_recv_cpu_seconds(b->uffd);
	if (pp_nl_get(&b->nl, b->index, &info))
		return 0;
	return (info.chan[0][PAGEPUSH_CHAN_CPU_NS] +
		info.chan[1][PAGEPUSH_CHAN_CPU_NS]) / 1e9;
}

/*
 * Wait for the end of the migration. The pagepush session is followed on
 * the events group, not polled: a GET every few milliseconds would take
 * CPU from the receiver being measured.
 */
static int wait_complete(struct bench *b)
{
	struct pp_session_info info, ev;
	struct pp_nl events;
	int ret;

	if (b->backend != BK_PAGEPUSH)
		return uffd_recv_wait_complete(b->uffd, -1);
	if (pp_nl_open(&events) || pp_nl_subscribe(&events))
		return -EIO;
	for (;;) {
		ret = pp_nl_get(&b->nl, b->index, &info);
		if (ret)
			break;
		if (info.state == PAGEPUSH_STATE_COMPLETE)
			break;
		if (info.state == PAGEPUSH_STATE_FAILED) {
			fprintf(stderr, "faultbench: session failed: %s\n", info.reason);
			ret = -EIO;
			break;
		}
		/* A state change, or a second to be sure. */
		pp_nl_wait_event(&events, &ev, 1000);
	}
	pp_nl_close(&events);
	return ret;
}

static double process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pagepush", required_argument, NULL, 'p' },
		{ "uffd-missing", required_argument, NULL, 'm' },
		{ "uffd-minor", required_argument, NULL, 'n' },
		{ "faults", required_argument, NULL, 'f' },
		{ "threads", required_argument, NULL, 't' },
		{ "interval-us", required_argument, NULL, 'i' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "from", required_argument, NULL, 'F' },
		{ "seed", required_argument, NULL, 's' },
		{ "no-preempt", no_argument, NULL, 'N' },
		{ "wait-complete", no_argument, NULL, 'w' },
		{ "verify", required_argument, NULL, 'v' },
		{ "json", required_argument, NULL, 'j' },
		{ "lat-out", required_argument, NULL, 'l' },
		{ }
	};
	struct bench b = { .threads = 1, .backend = -1 };
	const char *verify = NULL, *json = NULL, *lat_out = NULL;
	bool no_preempt = false, wait = false;
	unsigned int delay_ms = 0, i;
	uint64_t seed = 1, t0, t_faults = 0, t_complete = 0, n, span, first, k;
	double from = 0.5, cpu0, pcpu0, rcpu = 0, pcpu;
	struct worker *w;
	uint8_t *used;
	char err[256];
	int c, ret = 0, verified = -1;

	while ((c = getopt_long(argc, argv, "p:m:n:f:t:i:d:F:s:Nwv:j:l:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': b.backend = BK_PAGEPUSH; b.target = optarg; break;
		case 'm': b.backend = BK_UFFD_MISSING; b.target = optarg; break;
		case 'n': b.backend = BK_UFFD_MINOR; b.target = optarg; break;
		case 'f': b.faults = strtoull(optarg, NULL, 0); break;
		case 't': b.threads = strtoul(optarg, NULL, 0); break;
		case 'i': b.interval_us = strtoul(optarg, NULL, 0); break;
		case 'd': delay_ms = strtoul(optarg, NULL, 0); break;
		case 'F': from = strtod(optarg, NULL); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'N': no_preempt = true; break;
		case 'w': wait = true; break;
		case 'v': verify = optarg; break;
		case 'j': json = optarg; break;
		case 'l': lat_out = optarg; break;
		default:
			fprintf(stderr, "faultbench: see the comment at the top of bench/faultbench.c\n");
			return 2;
		}
	}
	if ((int)b.backend < 0 || !b.threads) {
		fprintf(stderr, "faultbench: --pagepush DEV, --uffd-missing or --uffd-minor SRC:PORT\n");
		return 2;
	}

	if (b.backend == BK_PAGEPUSH) {
		struct pp_session_info info;
		int fd;

		if (pp_nl_open(&b.nl) || pp_nl_find(&b.nl, b.target, &info)) {
			fprintf(stderr, "faultbench: %s: %s\n", b.target, pp_nl_strerror(&b.nl));
			return 1;
		}
		b.index = info.index;
		b.size = info.size;
		b.page_size = info.page_size;
		fd = open(b.target, O_RDWR);
		if (fd < 0)
			return 1;
		b.mem = mmap(NULL, b.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (b.mem == MAP_FAILED)
			return 1;
	} else {
		b.uffd = uffd_recv_start(b.target, b.backend == BK_UFFD_MISSING ?
					 UFFD_MODE_MISSING : UFFD_MODE_MINOR,
					 no_preempt, err, sizeof(err));
		if (!b.uffd) {
			fprintf(stderr, "faultbench: %s\n", err);
			return 1;
		}
		b.mem = uffd_recv_base(b.uffd);
		b.size = uffd_recv_size(b.uffd);
		b.page_size = uffd_recv_page_size(b.uffd);
	}
	t0 = now_ns();
	cpu0 = receiver_cpu(&b);
	pcpu0 = process_cpu();
	b.nr_pages = b.size / b.page_size;

	/* Distinct pages, from the part the stream reaches last. */
	n = (uint64_t)b.threads * b.faults;
	first = (uint64_t)(from * b.nr_pages);
	span = b.nr_pages - first;
	if (n > span) {
		fprintf(stderr, "faultbench: %" PRIu64 " faults need that many distinct pages after %" PRIu64 "\n",
			n, first);
		return 2;
	}
	b.pages = calloc(n ? n : 1, sizeof(uint64_t));
	b.lat_ns = calloc(n ? n : 1, sizeof(uint64_t));
	used = calloc(span, 1);
	w = calloc(b.threads, sizeof(*w));
	if (!b.pages || !b.lat_ns || !used || !w)
		return 1;
	srandom(seed);
	for (k = 0; k < n; k++) {
		uint64_t p;

		do {
			p = ((uint64_t)random() << 31 | random()) % span;
		} while (used[p]);
		used[p] = 1;
		b.pages[k] = first + p;
	}

	if (delay_ms)
		usleep(delay_ms * 1000);
	if (n) {
		uint64_t f0 = now_ns();

		for (i = 0; i < b.threads; i++) {
			w[i].b = &b;
			w[i].id = i;
			pthread_create(&w[i].tid, NULL, worker, &w[i]);
		}
		for (i = 0; i < b.threads; i++)
			pthread_join(w[i].tid, NULL);
		t_faults = now_ns() - f0;
	}
	if (wait) {
		ret = wait_complete(&b);
		t_complete = now_ns() - t0;
	}
	rcpu = receiver_cpu(&b) - cpu0;
	pcpu = process_cpu() - pcpu0;
	if (b.backend != BK_PAGEPUSH)
		pcpu -= rcpu;	/* the receiver's threads are in this process */

	if (verify && !ret) {
		int fd = open(verify, O_RDONLY);
		const uint8_t *ref = fd < 0 ? MAP_FAILED :
			mmap(NULL, b.size, PROT_READ, MAP_SHARED, fd, 0);

		verified = ref != MAP_FAILED && !memcmp((const void *)b.mem, ref, b.size);
	}

	if (lat_out) {
		FILE *f = fopen(lat_out, "w");

		for (k = 0; f && k < n; k++)
			fprintf(f, "%.1f\n", b.lat_ns[k] / 1e3);
		if (f)
			fclose(f);
	}
	qsort(b.lat_ns, n, sizeof(uint64_t), cmp_u64);
	if (json) {
		FILE *f = fopen(json, "w");
		double mean = 0;

		for (k = 0; k < n; k++)
			mean += b.lat_ns[k] / 1e3;
		if (n)
			mean /= n;
		if (!f)
			return 1;
		fprintf(f, "{\"backend\":\"%s\",\"page_size_bytes\":%u,\"size_bytes\":%" PRIu64 ","
			"\"faults\":%" PRIu64 ",\"threads\":%u,\"fault_seconds\":%.6f,"
			"\"faults_per_second\":%.1f,\"complete_seconds\":%.6f,"
			"\"lat_us\":{\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
			"\"receiver_cpu_seconds\":%.3f,\"workload_cpu_seconds\":%.3f,"
			"\"verified\":%s}\n",
			backend_names[b.backend], b.page_size, b.size, n, b.threads,
			t_faults / 1e9, t_faults ? n / (t_faults / 1e9) : 0.0,
			t_complete / 1e9, mean, pct_us(b.lat_ns, n, 50),
			pct_us(b.lat_ns, n, 90), pct_us(b.lat_ns, n, 99),
			pct_us(b.lat_ns, n, 99.9),
			n ? b.lat_ns[n - 1] / 1e3 : 0.0, rcpu, pcpu,
			verified < 0 ? "null" : verified ? "true" : "false");
		fclose(f);
	}
	if (b.uffd)
		uffd_recv_stop(b.uffd);
	if (verified == 0) {
		fprintf(stderr, "faultbench: the region differs from %s\n", verify);
		return 1;
	}
	return ret ? 1 : 0;
}
