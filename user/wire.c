// SPDX-License-Identifier: GPL-2.0
/*
 * pagepush helper: the wire protocol and TCP plumbing.
 */
#include <endian.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "util.h"
#include "wire.h"

/* Split "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT". */
static int pp_split_addr(const char *addr, char *host, size_t hlen,
			 char *port, size_t plen)
{
	const char *colon;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		snprintf(host, hlen, "%.*s", (int)(end - addr - 1), addr + 1);
		snprintf(port, plen, "%s", end[1] ? end + 2 : PP_DEFAULT_PORT);
		return 0;
	}
	colon = strrchr(addr, ':');
	if (!colon) {
		if (strspn(addr, "0123456789") == strlen(addr) && *addr) {
			host[0] = '\0';
			snprintf(port, plen, "%s", addr);
		} else {
			snprintf(host, hlen, "%s", addr);
			snprintf(port, plen, "%s", PP_DEFAULT_PORT);
		}
		return 0;
	}
	snprintf(host, hlen, "%.*s", (int)(colon - addr), addr);
	snprintf(port, plen, "%s", colon[1] ? colon + 1 : PP_DEFAULT_PORT);
	return 0;
}

/**
 * pp_tcp_listen() - listen on "ADDR:PORT" (":0" picks a free port)
 * @addr: where
 * @bound: the address actually bound, printable
 * @len: size of @bound
 *
 * Return: the listening socket, or a negative errno.
 */
int pp_tcp_listen(const char *addr, char *bound, size_t len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE,
	};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[32], h[INET6_ADDRSTRLEN], p[16];
	struct addrinfo *res, *ai;
	int fd = -1, one = 1, err = -EADDRNOTAVAIL;

	if (pp_split_addr(addr, host, sizeof(host), port, sizeof(port)))
		return -EINVAL;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res))
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 8))
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err;
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl) &&
	    !getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			 NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(bound, len, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
	else
		snprintf(bound, len, "%s", addr);
	return fd;
}

/**
 * pp_tcp_dial() - connect to "HOST:PORT", retrying refused connections
 * @addr: where
 * @timeout_ms: how long to keep retrying a refused connection
 * @err: why it failed
 * @errlen: size of @err
 *
 * Return: the connected socket, or -1 with @err set.
 */
int pp_tcp_dial(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	uint64_t deadline = pp_now_ns() + (uint64_t)timeout_ms * 1000000;
	char host[256], port[32];
	struct addrinfo *res, *ai;
	int fd = -1, rc, e = 0;

	if (pp_split_addr(addr, host, sizeof(host), port, sizeof(port)) ||
	    !host[0]) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", addr);
		return -1;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host,
			 gai_strerror(rc));
		return -1;
	}
	for (;;) {
		for (ai = res; ai; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
			if (fd < 0) {
				e = errno;
				continue;
			}
			if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
				goto out;
			e = errno;
			close(fd);
			fd = -1;
		}
		if (e != ECONNREFUSED || pp_now_ns() >= deadline)
			break;
		usleep(50000);
	}
	snprintf(err, errlen, "cannot connect to %s: %s%s", addr, strerror(e),
		 e == ECONNREFUSED ? " (is 'pagepush serve' running there?)" : "");
out:
	freeaddrinfo(res);
	return fd;
}

int pp_tcp_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/**
 * pp_tcp_link_timeout() - declare a connection lost after @secs of silence
 * @fd: connected TCP socket
 * @secs: seconds; 0 leaves the system's defaults (minutes to hours)
 *
 * Data unacknowledged for @secs fails the connection (TCP_USER_TIMEOUT),
 * and an idle connection sends keepalive probes after @secs / 2, so a
 * peer or link that vanished is noticed on both sides within about @secs,
 * whether data is flowing or not. The kernel's receive threads inherit
 * these settings with the socket.
 *
 * Return: 0 or -1 with errno set.
 */
int pp_tcp_link_timeout(int fd, unsigned int secs)
{
	int one = 1, idle = secs / 2 ? secs / 2 : 1, intvl = secs / 4 ? secs / 4 : 1;
	unsigned int ms = secs * 1000;

	if (!secs)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)))
		return -1;
	return 0;
}

int pp_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int pp_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, MSG_WAITALL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= n;
	}
	return 0;
}

void pp_hello_init(struct pagepush_hello *h, uint16_t role, uint32_t flags,
		   uint32_t status, uint64_t cookie, uint64_t size,
		   uint32_t page_size)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(PAGEPUSH_WIRE_MAGIC);
	h->version = htole16(PAGEPUSH_WIRE_VERSION);
	h->role = htole16(role);
	h->flags = htole32(flags);
	h->status = htole32(status);
	h->cookie = htole64(cookie);
	h->size_bytes = htole64(size);
	h->page_size = htole32(page_size);
}

static const char *const pp_hello_statuses[] = {
	[PAGEPUSH_HELLO_OK] = "ok",
	[PAGEPUSH_HELLO_EVERSION] = "protocol version not supported",
	[PAGEPUSH_HELLO_ECOOKIE] = "unknown migration cookie",
	[PAGEPUSH_HELLO_EROLE] = "unexpected channel",
	[PAGEPUSH_HELLO_EBUSY] = "the source serves another destination",
	[PAGEPUSH_HELLO_EMISMATCH] = "the source serves a region of another size or page size",
};

const char *pp_hello_status_name(uint32_t status)
{
	if (status < ARRAY_SIZE(pp_hello_statuses) && pp_hello_statuses[status])
		return pp_hello_statuses[status];
	return "unknown status";
}

/**
 * pp_hello_check() - is this a hello we understand?
 * @h: as received
 * @err: why not
 * @len: size of @err
 *
 * Return: 0, -EPROTO (not pagepush) or -EPROTONOSUPPORT (version).
 */
int pp_hello_check(const struct pagepush_hello *h, char *err, size_t len)
{
	if (le32toh(h->magic) != PAGEPUSH_WIRE_MAGIC) {
		snprintf(err, len, "the peer does not speak the pagepush protocol");
		return -EPROTO;
	}
	if (le16toh(h->version) != PAGEPUSH_WIRE_VERSION) {
		snprintf(err, len, "the peer speaks protocol version %u, this is version %u",
			 le16toh(h->version), PAGEPUSH_WIRE_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

void pp_frame_init(struct pagepush_frame *f, uint8_t type, uint64_t offset,
		   uint32_t length)
{
	f->version = PAGEPUSH_WIRE_VERSION;
	f->type = type;
	f->flags = 0;
	f->length = htole32(length);
	f->offset = htole64(offset);
}

const char *pp_frame_type_name(uint8_t type)
{
	switch (type) {
	case PAGEPUSH_FRAME_PAGE: return "PAGE";
	case PAGEPUSH_FRAME_ZERO: return "ZERO";
	case PAGEPUSH_FRAME_EOS: return "EOS";
	case PAGEPUSH_FRAME_DISCARD: return "DISCARD";
	case PAGEPUSH_FRAME_REQUEST: return "REQUEST";
	case PAGEPUSH_FRAME_COMPLETE: return "COMPLETE";
	case PAGEPUSH_FRAME_PRESENT: return "PRESENT";
	case PAGEPUSH_FRAME_RESUME: return "RESUME";
	case PAGEPUSH_FRAME_ABORT: return "ABORT";
	default: return "unknown";
	}
}
