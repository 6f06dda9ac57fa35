/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush helper: the wire protocol and TCP plumbing
 * (Documentation/protocol.rst).
 */
#ifndef PAGEPUSH_WIRE_H
#define PAGEPUSH_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/pagepush.h>

/* Default port of 'pagepush serve'. */
#define PP_DEFAULT_PORT "7474"
/* Default seconds of silence after which a connection counts as lost. */
#define PP_DEFAULT_LINK_TIMEOUT 20

int pp_tcp_listen(const char *addr, char *bound, size_t len);
int pp_tcp_dial(const char *addr, int timeout_ms, char *err, size_t errlen);
int pp_tcp_nodelay(int fd);
int pp_tcp_link_timeout(int fd, unsigned int secs);
int pp_write_all(int fd, const void *buf, size_t len);
int pp_read_all(int fd, void *buf, size_t len);

void pp_hello_init(struct pagepush_hello *h, uint16_t role, uint32_t flags,
		   uint32_t status, uint64_t cookie, uint64_t size,
		   uint32_t page_size);
int pp_hello_check(const struct pagepush_hello *h, char *err, size_t len);
const char *pp_hello_status_name(uint32_t status);

void pp_frame_init(struct pagepush_frame *f, uint8_t type, uint64_t offset,
		   uint32_t length);
const char *pp_frame_type_name(uint8_t type);

#endif /* PAGEPUSH_WIRE_H */
