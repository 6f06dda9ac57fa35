/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the pagepush selftests: a hand-driven source over
 * loopback TCP, frame I/O, waiting on session counters, test patterns.
 */
#ifndef PAGEPUSH_TEST_H
#define PAGEPUSH_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/pagepush.h>

#include "nl.h"

#define SZ_4K	4096u
#define SZ_2M	(2u << 20)

/* A session whose source is the test itself, over loopback TCP. */
struct pp_fake {
	struct pp_nl nl;
	struct pp_session_info info;
	char dev[64];
	uint64_t size;
	uint32_t page_size;
	int src[PAGEPUSH_NR_CHANNELS];	/* the test writes frames here */
	int dst[PAGEPUSH_NR_CHANNELS];	/* handed to the kernel */
};

int pp_tcp_pair(int *client, int *server);
int pp_fake_new(struct pp_fake *f, uint64_t size, uint32_t page_size);
int pp_fake_connect(struct pp_fake *f, bool two_channels);
void pp_fake_close(struct pp_fake *f);
int pp_fake_map(struct pp_fake *f, uint64_t nr_pages, uint32_t page_size,
		bool two_channels, int *fd, char **mem);
void pp_fake_unmap(struct pp_fake *f, int fd, char *mem);

int pp_send_frame(int fd, uint8_t type, uint64_t off, uint32_t len,
		  const void *data);
int pp_send_page(int fd, uint64_t off, uint32_t page_size, uint32_t chunk,
		 const void *data);
int pp_send_pattern_page(int fd, uint32_t page_size, uint64_t idx,
			 uint32_t chunk);
int pp_recv_frame(int fd, struct pagepush_frame *f, int timeout_ms);

int pp_wait_state(struct pp_nl *nl, uint32_t index, uint32_t state,
		  int timeout_ms, struct pp_session_info *out);
int pp_wait_stat(struct pp_nl *nl, uint32_t index, unsigned int stat,
		 uint64_t min, int timeout_ms);

void pp_pattern(void *buf, size_t len, uint64_t offset);
bool pp_pattern_ok(const void *buf, size_t len, uint64_t offset);
int pp_write_pattern_file(const char *path, uint64_t size);

uint64_t pp_smaps_field(const void *addr, const char *field);
long pp_module_pages(void);
long pp_meminfo_kb(const char *field);

/* Seeded pseudo-random numbers for the fuzzers (splitmix64). */
struct pp_rng {
	uint64_t s;
};

static inline uint64_t pp_rng_next(struct pp_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform enough in [0, n); 0 when n is 0. */
static inline uint64_t pp_rng_below(struct pp_rng *r, uint64_t n)
{
	return n ? pp_rng_next(r) % n : 0;
}

uint64_t pp_env_u64(const char *name, uint64_t def);
uint64_t pp_fuzz_seed(void);

/*
 * CONNECT, or any later command that hands a session its sockets the same
 * way (RECOVER): index, precopy, optional postcopy (-1), cookie.
 */
int pp_nl_attach(struct pp_nl *nl, uint8_t cmd, uint32_t index,
		 int precopy_fd, int postcopy_fd, uint64_t cookie);

/* What the kernel answered to a request sent with pp_nl_raw(). */
struct pp_nl_answer {
	bool answered;		/* an acknowledgement, error or DONE arrived */
	int error;		/* 0, or the negative errno */
	char msg[256];		/* NLMSGERR_ATTR_MSG, or "" */
	int offs;		/* NLMSGERR_ATTR_OFFS, or -1 */
	int miss_type;		/* NLMSGERR_ATTR_MISS_TYPE, or -1 */
	unsigned int replies;	/* messages of the family before the end */
	int64_t index;		/* PAGEPUSH_A_INDEX of the last reply, or -1 */
};

int pp_nl_raw(struct pp_nl *nl, void *req, size_t len,
	      struct pp_nl_answer *ans, int timeout_ms);

#endif /* PAGEPUSH_TEST_H */
