/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A user-space pagepush destination built on userfaultfd, for benchmarks:
 * the same wire protocol (Documentation/protocol.rst) and the same source,
 * received the way QEMU's postcopy destination does it. One receive thread
 * per connection assembles pages and installs them; one fault thread reads
 * the userfaultfd and sends REQUEST frames on the return path.
 *
 * If the migration fails, the pages still absent are made inaccessible
 * and their waiters woken: a task touching one gets SIGSEGV (the module
 * sends SIGBUS), never a zero page. Call uffd_recv_stop() only once the
 * workload no longer touches the region.
 */
#ifndef PAGEPUSH_BENCH_UFFD_H
#define PAGEPUSH_BENCH_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum uffd_mode {
	/*
	 * Private anonymous memory (4K pages) or a hugetlbfs
	 * MAP_PRIVATE|MAP_HUGETLB anonymous mapping (2M pages); recv() into a
	 * buffer, then UFFDIO_COPY.
	 */
	UFFD_MODE_MISSING,
	/*
	 * Shared memory: a memfd (4K) or memfd MFD_HUGETLB (2M); recv()
	 * straight into a second (write) mapping of the memfd, then
	 * UFFDIO_CONTINUE on the faulting mapping.
	 */
	UFFD_MODE_MINOR,
};

struct uffd_recv;

/*
 * Dial the source at addr ("HOST:PORT"), handshake (ask for preemption
 * unless no_preempt), allocate and map the region the source announces,
 * register it with userfaultfd, start the threads. Returns NULL with a
 * message in err on failure.
 */
struct uffd_recv *uffd_recv_start(const char *addr, enum uffd_mode mode,
				  bool no_preempt, char *err, size_t errlen);

/* The faulting mapping, what a workload touches. */
void *uffd_recv_base(struct uffd_recv *r);
uint64_t uffd_recv_size(struct uffd_recv *r);
uint32_t uffd_recv_page_size(struct uffd_recv *r);

/*
 * Wait until every page is present and COMPLETE was sent (0), the timeout
 * passed (-ETIMEDOUT) or it failed (-errno, message via uffd_recv_error()).
 * timeout_ms < 0: forever.
 */
int uffd_recv_wait_complete(struct uffd_recv *r, int timeout_ms);
const char *uffd_recv_error(struct uffd_recv *r);

/*
 * CPU time (seconds) used so far by the receiver's own threads (receive
 * threads and the fault thread), from their per-thread clocks
 * (pthread_getcpuclockid).
 */
double uffd_recv_cpu_seconds(struct uffd_recv *r);
uint64_t uffd_recv_requests_sent(struct uffd_recv *r);

/* Stop threads, close sockets, unmap, free. */
void uffd_recv_stop(struct uffd_recv *r);

#endif /* PAGEPUSH_BENCH_UFFD_H */
