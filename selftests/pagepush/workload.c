// SPDX-License-Identifier: GPL-2.0
/*
 * workload: a program that uses /dev/pagepushN the way a migrated process
 * would, for the selftests, the demo and the benchmarks.
 *
 *   workload [options] DEV
 *     --ref FILE       what the memory must hold (the source's file)
 *     --access MODE    seq | random | none (default random)
 *     --threads N      threads touching pages (default 1)
 *     --touches N      pages each thread touches (default: all, for seq)
 *     --write          touch by writing a byte back (same value)
 *     --seed N         random seed
 *     --verify         compare every byte with --ref at the end
 *     --verify-threads N  threads comparing at the end (default 1)
 *     --timeout SECS   give up when the touches, or the comparison, take
 *                      longer: report which threads did not finish and on
 *                      which page they are, and exit 3
 *     --hold SECS      keep the mapping for SECS seconds, then exit
 *     --json           print the report as one JSON object
 *
 *   workload --create-ref SIZE --ref FILE [--seed N]
 *     write FILE: SIZE bytes of pseudo-random data from the seed (fast,
 *     unlike /dev/urandom in an emulated guest), and exit.
 *
 * Every first touch of a page is timed; the report gives the count, the
 * latency percentiles, how much of the mapping is PMD-mapped, and
 * "verified: OK" when every byte matched.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "nl.h"
#include "pp_test.h"

struct wl {
	const char *dev;
	const char *ref_path;
	const uint8_t *ref;
	volatile uint8_t *mem;
	uint64_t size;
	uint32_t page_size;
	uint64_t nr_pages;
	int access;		/* 0 none, 1 seq, 2 random */
	unsigned int threads;
	uint64_t touches;
	bool write;
	uint64_t seed;
	uint64_t *lat_ns;	/* one slot per touch, per thread */
	uint64_t mismatched_touches;
	unsigned int verify_threads;
	atomic_uint_fast64_t bad_pages;
};

/*
 * One thread. @page is the page it is on, @finished set when it is done:
 * read by the main thread to say where a thread that never finishes is
 * stuck.
 */
struct wl_thread {
	struct wl *wl;
	unsigned int id;
	pthread_t tid;
	uint64_t done;
	uint64_t bad;
	uint64_t first, last;	/* pages compared by a verifying thread */
	_Atomic uint64_t page;
	atomic_bool finished;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void *wl_run(void *arg)
{
	struct wl_thread *t = arg;
	struct wl *wl = t->wl;
	uint64_t rng = wl->seed * 0x9e3779b97f4a7c15ull + t->id + 1;
	uint64_t i, idx, off, t0;

	for (i = 0; i < wl->touches; i++) {
		if (wl->access == 1)
			idx = (t->id * wl->touches + i) % wl->nr_pages;
		else
			idx = xorshift(&rng) % wl->nr_pages;
		/* Somewhere inside the page, 8-byte aligned. */
		off = idx * wl->page_size + (xorshift(&rng) % (wl->page_size / 8)) * 8;
		atomic_store(&t->page, idx);
		t0 = now_ns();
		if (wl->write) {
			uint8_t v = wl->mem[off];

			wl->mem[off] = v;
		} else {
			(void)wl->mem[off];
		}
		wl->lat_ns[t->id * wl->touches + i] = now_ns() - t0;
		if (wl->ref && wl->mem[off] != wl->ref[off])
			t->bad++;
		t->done++;
	}
	atomic_store(&t->finished, true);
	return NULL;
}

/* Compare pages [first, last) with the reference. */
static void *wl_verify(void *arg)
{
	struct wl_thread *t = arg;
	struct wl *wl = t->wl;
	uint64_t idx, off;

	for (idx = t->first; idx < t->last; idx++) {
		off = idx * wl->page_size;
		atomic_store(&t->page, idx);
		if (memcmp((const void *)(wl->mem + off), wl->ref + off,
			   wl->page_size))
			atomic_fetch_add(&wl->bad_pages, 1);
		t->done++;
	}
	atomic_store(&t->finished, true);
	return NULL;
}

/*
 * Join @n threads, waiting at most @timeout seconds in all (0: for ever).
 * Returns how many did not finish in time; those are left running.
 */
static unsigned int wl_join(struct wl_thread *th, unsigned int n,
			    unsigned int timeout)
{
	struct timespec deadline;
	unsigned int i, stuck = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout;
	for (i = 0; i < n; i++) {
		if (!timeout) {
			pthread_join(th[i].tid, NULL);
			continue;
		}
		if (pthread_timedjoin_np(th[i].tid, NULL, &deadline))
			stuck++;
	}
	return stuck;
}

/*
 * Threads that did not finish in time: say where they are, and what the
 * session says, then exit. The process exits from under them (a held
 * fault is killable).
 */
static void __attribute__((noreturn))
wl_stuck(struct wl *wl, struct wl_thread *th, unsigned int n,
	 const char *phase, unsigned int timeout, bool json)
{
	struct pp_session_info info;
	unsigned int i, stuck = 0;
	struct pp_nl nl;
	bool have_info;

	have_info = !pp_nl_open(&nl) && !pp_nl_find(&nl, wl->dev, &info);
	if (json)
		printf("{\"stuck\":{\"phase\":\"%s\",\"timeout\":%u,\"threads\":[",
		       phase, timeout);
	else
		printf("%s did not finish within %u s:\n", phase, timeout);
	for (i = 0; i < n; i++) {
		if (atomic_load(&th[i].finished))
			continue;
		if (json)
			printf("%s{\"thread\":%u,\"page\":%" PRIu64 ",\"done\":%" PRIu64 "}",
			       stuck ? "," : "", th[i].id,
			       (uint64_t)atomic_load(&th[i].page), th[i].done);
		else
			printf("  thread %u on page %" PRIu64 " after %" PRIu64 " pages\n",
			       th[i].id, (uint64_t)atomic_load(&th[i].page),
			       th[i].done);
		stuck++;
	}
	if (json) {
		printf("],\"stuck_threads\":%u", stuck);
		if (have_info)
			printf(",\"state\":\"%s\",\"pages_present\":%" PRIu64
			       ",\"pages_total\":%" PRIu64 ",\"faults_held_now\":%" PRIu64,
			       pp_state_name(info.state),
			       info.stats[PAGEPUSH_STAT_PAGES_PRESENT],
			       info.stats[PAGEPUSH_STAT_PAGES_TOTAL],
			       info.stats[PAGEPUSH_STAT_FAULTS_HELD_NOW]);
		printf("}}\n");
	} else if (have_info) {
		printf("session %s: %" PRIu64 " of %" PRIu64 " pages present, %"
		       PRIu64 " faults held now\n", pp_state_name(info.state),
		       info.stats[PAGEPUSH_STAT_PAGES_PRESENT],
		       info.stats[PAGEPUSH_STAT_PAGES_TOTAL],
		       info.stats[PAGEPUSH_STAT_FAULTS_HELD_NOW]);
	}
	fflush(stdout);
	_exit(3);
}

/* --create-ref: SIZE bytes of pseudo-random data from @seed into @path. */
static int wl_create_ref(const char *path, uint64_t size, uint64_t seed)
{
	static uint64_t buf[1 << 17];	/* 1 MiB */
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	uint64_t off, i;
	size_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		fprintf(stderr, "workload: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (off = 0; off < size; off += n) {
		n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		for (i = 0; i < (n + 7) / 8; i++)
			buf[i] = xorshift(&rng) * 0x2545f4914f6cdd1dull;
		if (write(fd, buf, n) != (ssize_t)n) {
			fprintf(stderr, "workload: %s: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
	}
	if (close(fd)) {
		fprintf(stderr, "workload: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, uint64_t n, double p)
{
	uint64_t i;

	if (!n)
		return 0;
	i = (uint64_t)(p / 100.0 * (n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ref", required_argument, NULL, 'r' },
		{ "access", required_argument, NULL, 'a' },
		{ "threads", required_argument, NULL, 't' },
		{ "touches", required_argument, NULL, 'n' },
		{ "write", no_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 's' },
		{ "verify", no_argument, NULL, 'v' },
		{ "verify-threads", required_argument, NULL, 'V' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "hold", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "create-ref", required_argument, NULL, 'C' },
		{ }
	};
	struct wl wl = { .access = 2, .threads = 1, .seed = 1, .verify_threads = 1 };
	struct pp_session_info info;
	struct wl_thread *th;
	bool verify = false, json = false;
	unsigned int hold = 0, timeout = 0, i;
	uint64_t total = 0, bad_pages = 0, t0, elapsed, pmd, create = 0;
	struct pp_nl nl;
	int c, fd;

	while ((c = getopt_long(argc, argv, "r:a:t:n:ws:vV:T:H:jC:", opts, NULL)) != -1) {
		switch (c) {
		case 'r': wl.ref_path = optarg; break;
		case 'a':
			wl.access = !strcmp(optarg, "seq") ? 1 :
				    !strcmp(optarg, "none") ? 0 : 2;
			break;
		case 't': wl.threads = strtoul(optarg, NULL, 0); break;
		case 'n': wl.touches = strtoull(optarg, NULL, 0); break;
		case 'w': wl.write = true; break;
		case 's': wl.seed = strtoull(optarg, NULL, 0); break;
		case 'v': verify = true; break;
		case 'V': wl.verify_threads = strtoul(optarg, NULL, 0); break;
		case 'T': timeout = strtoul(optarg, NULL, 0); break;
		case 'H': hold = strtoul(optarg, NULL, 0); break;
		case 'j': json = true; break;
		case 'C': create = strtoull(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: workload [--ref FILE] [--access seq|random|none] [--threads N] [--touches N] [--write] [--seed N] [--verify] [--verify-threads N] [--timeout SECS] [--hold SECS] [--json] DEV\n"
				"       workload --create-ref SIZE --ref FILE [--seed N]\n");
			return 2;
		}
	}
	if (create) {
		if (!wl.ref_path || optind != argc)
			return 2;
		return wl_create_ref(wl.ref_path, create, wl.seed);
	}
	if (optind != argc - 1 || !wl.threads || !wl.verify_threads)
		return 2;
	wl.dev = argv[optind];

	if (pp_nl_open(&nl) || pp_nl_find(&nl, wl.dev, &info)) {
		fprintf(stderr, "workload: %s: %s\n", wl.dev, pp_nl_strerror(&nl));
		return 1;
	}
	pp_nl_close(&nl);
	wl.size = info.size;
	wl.page_size = info.page_size;
	wl.nr_pages = wl.size / wl.page_size;
	if (!wl.touches)
		wl.touches = wl.access == 1 ? (wl.nr_pages + wl.threads - 1) / wl.threads :
			     wl.nr_pages / 4 + 1;
	if (!wl.access)
		wl.touches = 0;

	fd = open(wl.dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "workload: %s: %s\n", wl.dev, strerror(errno));
		return 1;
	}
	wl.mem = mmap(NULL, wl.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (wl.mem == MAP_FAILED) {
		fprintf(stderr, "workload: mmap: %s\n", strerror(errno));
		return 1;
	}
	if (wl.ref_path) {
		int rfd = open(wl.ref_path, O_RDONLY);
		struct stat st;

		if (rfd < 0 || fstat(rfd, &st) || (uint64_t)st.st_size != wl.size) {
			fprintf(stderr, "workload: %s: missing or not %" PRIu64 " bytes\n",
				wl.ref_path, wl.size);
			return 1;
		}
		wl.ref = mmap(NULL, wl.size, PROT_READ, MAP_SHARED, rfd, 0);
		if (wl.ref == MAP_FAILED)
			return 1;
		close(rfd);
	}
	if (hold) {
		printf("holding\n");
		fflush(stdout);
		sleep(hold);
		return 0;
	}

	wl.lat_ns = calloc(wl.threads * (wl.touches ? wl.touches : 1), sizeof(uint64_t));
	th = calloc(wl.threads, sizeof(*th));
	if (!wl.lat_ns || !th)
		return 1;
	t0 = now_ns();
	for (i = 0; i < wl.threads; i++) {
		th[i].wl = &wl;
		th[i].id = i;
		if (pthread_create(&th[i].tid, NULL, wl_run, &th[i]))
			return 1;
	}
	if (wl_join(th, wl.threads, timeout))
		wl_stuck(&wl, th, wl.threads, "touches", timeout, json);
	for (i = 0; i < wl.threads; i++) {
		total += th[i].done;
		wl.mismatched_touches += th[i].bad;
	}
	elapsed = now_ns() - t0;
	qsort(wl.lat_ns, total, sizeof(uint64_t), cmp_u64);

	if (verify && wl.ref) {
		/* Slices of whole pages, one per thread. */
		free(th);
		th = calloc(wl.verify_threads, sizeof(*th));
		if (!th)
			return 1;
		for (i = 0; i < wl.verify_threads; i++) {
			th[i].wl = &wl;
			th[i].id = i;
			th[i].first = wl.nr_pages * i / wl.verify_threads;
			th[i].last = wl.nr_pages * (i + 1) / wl.verify_threads;
			if (pthread_create(&th[i].tid, NULL, wl_verify, &th[i]))
				return 1;
		}
		if (wl_join(th, wl.verify_threads, timeout))
			wl_stuck(&wl, th, wl.verify_threads, "verify", timeout, json);
		bad_pages = atomic_load(&wl.bad_pages);
	}
	pmd = pp_smaps_field((const void *)wl.mem, "FilePmdMapped");

	if (json) {
		printf("{\"touches\":%" PRIu64 ",\"threads\":%u,\"seconds\":%.6f,"
		       "\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
		       "\"pmd_mapped_bytes\":%" PRIu64 ",\"mismatched_touches\":%" PRIu64 ","
		       "\"verified\":%s,\"bad_pages\":%" PRIu64 "}\n",
		       total, wl.threads, elapsed / 1e9,
		       pct(wl.lat_ns, total, 50) / 1e3, pct(wl.lat_ns, total, 90) / 1e3,
		       pct(wl.lat_ns, total, 99) / 1e3, pct(wl.lat_ns, total, 99.9) / 1e3,
		       total ? wl.lat_ns[total - 1] / 1e3 : 0.0, pmd,
		       wl.mismatched_touches,
		       verify ? (bad_pages || wl.mismatched_touches ? "false" : "true") : "null",
		       bad_pages);
	} else {
		printf("touches: %" PRIu64 " by %u threads in %.3f s\n", total,
		       wl.threads, elapsed / 1e9);
		printf("touch latency: p50 %.1f us, p99 %.1f us, max %.1f us\n",
		       pct(wl.lat_ns, total, 50) / 1e3, pct(wl.lat_ns, total, 99) / 1e3,
		       total ? wl.lat_ns[total - 1] / 1e3 : 0.0);
		printf("PMD-mapped: %" PRIu64 " of %" PRIu64 " bytes\n", pmd, wl.size);
		if (verify)
			printf("verified: %s (%" PRIu64 " bad pages, %" PRIu64 " bad touches)\n",
			       bad_pages || wl.mismatched_touches ? "FAILED" : "OK",
			       bad_pages, wl.mismatched_touches);
	}
	return verify && (bad_pages || wl.mismatched_touches) ? 1 : 0;
}
