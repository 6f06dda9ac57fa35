/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * pagepush: postcopy memory migration into a kernel-owned mapping.
 *
 * This header is shared by the kernel module and user space. It holds the
 * generic netlink family (Documentation/netlink.rst and
 * Documentation/netlink/specs/pagepush.yaml) and the wire protocol spoken
 * between a source and a destination (Documentation/protocol.rst).
 */
#ifndef _UAPI_LINUX_PAGEPUSH_H
#define _UAPI_LINUX_PAGEPUSH_H

#include <linux/const.h>
#include <linux/types.h>

/* ---- generic netlink family ------------------------------------------- */

#define PAGEPUSH_GENL_NAME		"pagepush"
#define PAGEPUSH_GENL_VERSION		1
#define PAGEPUSH_MCGRP_EVENTS		"events"

/* Longest session name, without the terminating NUL. */
#define PAGEPUSH_NAME_MAX		31
/* Longest failure reason, without the terminating NUL. */
#define PAGEPUSH_REASON_MAX		127
/* Largest session, in bytes. */
#define PAGEPUSH_SIZE_MAX		_BITULL(40)
/* Number of log2 buckets in the held-fault latency histogram. */
#define PAGEPUSH_LATENCY_BUCKETS	32
/* Padding attribute inside the PAGEPUSH_A_LATENCY nest. */
#define PAGEPUSH_LATENCY_PAD		(PAGEPUSH_LATENCY_BUCKETS + 1)

/**
 * enum pagepush_cmd - generic netlink commands
 * @PAGEPUSH_CMD_NEW: create a session; replies with the session.
 * @PAGEPUSH_CMD_GET: one session (do) or all of them (dump).
 * @PAGEPUSH_CMD_DEL: delete a session.
 * @PAGEPUSH_CMD_CONNECT: hand a NEW session its connected sockets.
 * @PAGEPUSH_CMD_EVENT: notification on the "events" multicast group only.
 * @PAGEPUSH_CMD_RECOVER: hand a PAUSED session new connected sockets to
 *	the same source (same cookie) and resume it.
 */
enum pagepush_cmd {
	PAGEPUSH_CMD_UNSPEC,
	PAGEPUSH_CMD_NEW,
	PAGEPUSH_CMD_GET,
	PAGEPUSH_CMD_DEL,
	PAGEPUSH_CMD_CONNECT,
	PAGEPUSH_CMD_EVENT,
	PAGEPUSH_CMD_RECOVER,

	__PAGEPUSH_CMD_MAX,
	PAGEPUSH_CMD_MAX = __PAGEPUSH_CMD_MAX - 1
};

/**
 * enum pagepush_state - session states
 * @PAGEPUSH_STATE_NEW: created, no source yet; faults get SIGBUS.
 * @PAGEPUSH_STATE_CONNECTED: receiving; faults on absent pages are held.
 * @PAGEPUSH_STATE_COMPLETE: every page is present; sockets released.
 * @PAGEPUSH_STATE_FAILED: given up (see the reason); faults on absent
 *	pages get SIGBUS, present pages stay mapped and usable.
 * @PAGEPUSH_STATE_PAUSED: a connection was lost before every page
 *	arrived (see the reason); sockets are released, faults on absent
 *	pages are held until RECOVER resumes the session or it is given up
 *	(DEL, or the pause timeout) and fails.
 */
enum pagepush_state {
	PAGEPUSH_STATE_UNSPEC,
	PAGEPUSH_STATE_NEW,
	PAGEPUSH_STATE_CONNECTED,
	PAGEPUSH_STATE_COMPLETE,
	PAGEPUSH_STATE_FAILED,
	PAGEPUSH_STATE_PAUSED,

	__PAGEPUSH_STATE_MAX,
	PAGEPUSH_STATE_MAX = __PAGEPUSH_STATE_MAX - 1
};

/**
 * enum pagepush_event - what a PAGEPUSH_CMD_EVENT notification announces
 * @PAGEPUSH_EVENT_CREATED: a session was created.
 * @PAGEPUSH_EVENT_CONNECTED: a session received its sockets.
 * @PAGEPUSH_EVENT_COMPLETE: every page of a session is present.
 * @PAGEPUSH_EVENT_FAILED: a session failed; PAGEPUSH_A_REASON says why.
 * @PAGEPUSH_EVENT_DELETED: a session was deleted.
 * @PAGEPUSH_EVENT_PAUSED: a session lost its connections and waits for
 *	RECOVER; PAGEPUSH_A_REASON says why.
 * @PAGEPUSH_EVENT_RESUMED: a paused session received new sockets.
 */
enum pagepush_event {
	PAGEPUSH_EVENT_UNSPEC,
	PAGEPUSH_EVENT_CREATED,
	PAGEPUSH_EVENT_CONNECTED,
	PAGEPUSH_EVENT_COMPLETE,
	PAGEPUSH_EVENT_FAILED,
	PAGEPUSH_EVENT_DELETED,
	PAGEPUSH_EVENT_PAUSED,
	PAGEPUSH_EVENT_RESUMED,

	__PAGEPUSH_EVENT_MAX,
	PAGEPUSH_EVENT_MAX = __PAGEPUSH_EVENT_MAX - 1
};

/**
 * enum pagepush_attr - top-level attributes
 * @PAGEPUSH_A_INDEX: u32, session index N of /dev/pagepushN.
 * @PAGEPUSH_A_NAME: string, optional unique session name.
 * @PAGEPUSH_A_SIZE_BYTES: u64, session size; a multiple of the page size.
 * @PAGEPUSH_A_PAGE_SIZE_BYTES: u32, 4096 or 2097152.
 * @PAGEPUSH_A_STATE: u32, &enum pagepush_state.
 * @PAGEPUSH_A_REASON: string, why the session failed.
 * @PAGEPUSH_A_DEVICE: string, device node name ("pagepush0").
 * @PAGEPUSH_A_PRECOPY_FD: u32, connected TCP socket of the background
 *	stream; also carries the return path (requests, COMPLETE).
 * @PAGEPUSH_A_POSTCOPY_FD: u32, optional connected TCP socket that carries
 *	requested pages only.
 * @PAGEPUSH_A_EVENT: u32, &enum pagepush_event (notifications).
 * @PAGEPUSH_A_STATS: nest, &enum pagepush_stat_attr.
 * @PAGEPUSH_A_CHANNEL: nest, repeated once per channel,
 *	&enum pagepush_chan_attr.
 * @PAGEPUSH_A_LATENCY: nest of u64 counters; attribute type i + 1 counts
 *	held faults that lasted [2^i, 2^(i+1)) microseconds (bucket 0 also
 *	counts faults under 1 us, the last bucket everything longer);
 *	PAGEPUSH_LATENCY_PAD pads.
 * @PAGEPUSH_A_COOKIE: u64, migration cookie the source handed out, as
 *	the helper reported it at CONNECT (informational; GET only).
 * @PAGEPUSH_A_PAD: padding for 64-bit attributes.
 * @PAGEPUSH_A_PAUSE_TIMEOUT: u32, seconds a session may stay PAUSED
 *	before it fails; 0 (the default) waits for RECOVER or DEL for ever.
 *	Set at NEW, reported by GET.
 */
enum pagepush_attr {
	PAGEPUSH_A_UNSPEC,
	PAGEPUSH_A_INDEX,
	PAGEPUSH_A_NAME,
	PAGEPUSH_A_SIZE_BYTES,
	PAGEPUSH_A_PAGE_SIZE_BYTES,
	PAGEPUSH_A_STATE,
	PAGEPUSH_A_REASON,
	PAGEPUSH_A_DEVICE,
	PAGEPUSH_A_PRECOPY_FD,
	PAGEPUSH_A_POSTCOPY_FD,
	PAGEPUSH_A_EVENT,
	PAGEPUSH_A_STATS,
	PAGEPUSH_A_CHANNEL,
	PAGEPUSH_A_LATENCY,
	PAGEPUSH_A_COOKIE,
	PAGEPUSH_A_PAD,
	PAGEPUSH_A_PAUSE_TIMEOUT,

	__PAGEPUSH_A_MAX,
	PAGEPUSH_A_MAX = __PAGEPUSH_A_MAX - 1
};

/**
 * enum pagepush_stat_attr - session counters (all u64)
 * @PAGEPUSH_STAT_PAGES_TOTAL: pages in the session.
 * @PAGEPUSH_STAT_PAGES_PRESENT: pages placed (received or known zero).
 * @PAGEPUSH_STAT_REQUESTS_SENT: REQUEST frames sent to the source.
 * @PAGEPUSH_STAT_FAULTS_HELD_NOW: tasks held right now.
 * @PAGEPUSH_STAT_FAULTS_HELD_TOTAL: faults that were held, in total.
 * @PAGEPUSH_STAT_FAULTS_SIGBUS: faults answered with SIGBUS.
 * @PAGEPUSH_STAT_SPLIT_BRAIN: chunks for a page the other channel held
 *	partially (a protocol error: stays 0 with a correct source).
 * @PAGEPUSH_STAT_PAUSES: times the session lost its connections.
 * @PAGEPUSH_STAT_RECOVERIES: times RECOVER resumed it.
 * @PAGEPUSH_STAT_PAD: padding.
 */
enum pagepush_stat_attr {
	PAGEPUSH_STAT_UNSPEC,
	PAGEPUSH_STAT_PAD,
	PAGEPUSH_STAT_PAGES_TOTAL,
	PAGEPUSH_STAT_PAGES_PRESENT,
	PAGEPUSH_STAT_REQUESTS_SENT,
	PAGEPUSH_STAT_FAULTS_HELD_NOW,
	PAGEPUSH_STAT_FAULTS_HELD_TOTAL,
	PAGEPUSH_STAT_FAULTS_SIGBUS,
	PAGEPUSH_STAT_SPLIT_BRAIN,
	PAGEPUSH_STAT_PAUSES,
	PAGEPUSH_STAT_RECOVERIES,

	__PAGEPUSH_STAT_MAX,
	PAGEPUSH_STAT_MAX = __PAGEPUSH_STAT_MAX - 1
};

/**
 * enum pagepush_chan_attr - per-channel counters
 * @PAGEPUSH_CHAN_ID: u32, &enum pagepush_channel.
 * @PAGEPUSH_CHAN_PAGES: u64, pages completed and placed by this channel.
 * @PAGEPUSH_CHAN_BYTES: u64, payload bytes received (duplicates too).
 * @PAGEPUSH_CHAN_ZERO_PAGES: u64, pages placed from ZERO frames.
 * @PAGEPUSH_CHAN_DUPLICATES: u64, pages that arrived already present.
 * @PAGEPUSH_CHAN_FAULT_PAGES: u64, held faults released by a page this
 *	channel completed (a page N tasks waited for counts N).
 * @PAGEPUSH_CHAN_CPU_NS: u64, CPU time of this channel's receive thread.
 * @PAGEPUSH_CHAN_PAD: padding.
 */
enum pagepush_chan_attr {
	PAGEPUSH_CHAN_UNSPEC,
	PAGEPUSH_CHAN_PAD,
	PAGEPUSH_CHAN_ID,
	PAGEPUSH_CHAN_PAGES,
	PAGEPUSH_CHAN_BYTES,
	PAGEPUSH_CHAN_ZERO_PAGES,
	PAGEPUSH_CHAN_DUPLICATES,
	PAGEPUSH_CHAN_FAULT_PAGES,
	PAGEPUSH_CHAN_CPU_NS,

	__PAGEPUSH_CHAN_MAX,
	PAGEPUSH_CHAN_MAX = __PAGEPUSH_CHAN_MAX - 1
};

/**
 * enum pagepush_channel - the two connections of a migration
 * @PAGEPUSH_CHANNEL_PRECOPY: every page, in the background; its reverse
 *	direction is the return path.
 * @PAGEPUSH_CHANNEL_POSTCOPY: requested pages only.
 */
enum pagepush_channel {
	PAGEPUSH_CHANNEL_PRECOPY,
	PAGEPUSH_CHANNEL_POSTCOPY,

	PAGEPUSH_NR_CHANNELS
};

/* ---- wire protocol (all fields little-endian) ------------------------- */

#define PAGEPUSH_WIRE_MAGIC		0x48535050	/* "PPSH" */
#define PAGEPUSH_WIRE_VERSION		1

/* pagepush_hello.flags */
#define PAGEPUSH_HELLO_PREEMPT		_BITUL(0)	/* two channels */
#define PAGEPUSH_HELLO_RECOVER		_BITUL(1)	/* resume a migration */

/* pagepush_hello.status, set by the source in its answer */
enum pagepush_hello_status {
	PAGEPUSH_HELLO_OK,
	PAGEPUSH_HELLO_EVERSION,	/* version not spoken */
	PAGEPUSH_HELLO_ECOOKIE,		/* cookie unknown to this source */
	PAGEPUSH_HELLO_EROLE,		/* channel role unexpected now */
	PAGEPUSH_HELLO_EBUSY,		/* source serves another destination */
	PAGEPUSH_HELLO_EMISMATCH,	/* size or page size differ (recovery) */
};

/**
 * struct pagepush_hello - handshake, first bytes each way on a connection
 * @magic: PAGEPUSH_WIRE_MAGIC.
 * @version: PAGEPUSH_WIRE_VERSION.
 * @role: &enum pagepush_channel this connection will carry.
 * @flags: PAGEPUSH_HELLO_*; the destination asks, the source answers
 *	with what it will do.
 * @status: &enum pagepush_hello_status (source's answer; 0 from the
 *	destination).
 * @cookie: 0 from the destination on its first connection; the source
 *	answers with the migration cookie, which the destination then sends
 *	on its second connection to pair both. A recovering destination
 *	(PAGEPUSH_HELLO_RECOVER) sends the cookie on both.
 * @size_bytes: region size (source's answer; also the destination's, when
 *	it recovers, for the source to check).
 * @page_size: page size, 4096 or 2097152 (likewise).
 * @reserved: zero.
 *
 * The destination sends a hello, the source answers with one; 64 bytes.
 */
struct pagepush_hello {
	__le32 magic;
	__le16 version;
	__le16 role;
	__le32 flags;
	__le32 status;
	__le64 cookie;
	__le64 size_bytes;
	__le32 page_size;
	__u8 reserved[28];
};

/**
 * enum pagepush_frame_type - frame types
 * @PAGEPUSH_FRAME_PAGE: source to destination: @length bytes of page data
 *	at byte @offset follow the header.
 * @PAGEPUSH_FRAME_ZERO: source to destination: the whole pages in
 *	[@offset, @offset + @length) are all zero; no payload.
 * @PAGEPUSH_FRAME_EOS: source to destination: nothing more will come on
 *	this channel.
 * @PAGEPUSH_FRAME_DISCARD: reserved for a live source.
 * @PAGEPUSH_FRAME_REQUEST: destination to source, on the return path: a
 *	task waits for the page at byte @offset (page-aligned, @length is
 *	the page size).
 * @PAGEPUSH_FRAME_COMPLETE: destination to source, on the return path:
 *	every page is present.
 * @PAGEPUSH_FRAME_PRESENT: destination to source, on the return path,
 *	first after a recovery: @length bytes of bitmap follow, bit i (least
 *	significant first) set if page @offset / page size + i is present.
 *	Frames cover the region from offset 0, in order.
 * @PAGEPUSH_FRAME_RESUME: destination to source, after the last PRESENT
 *	frame: the bitmap is complete, send what is missing.
 * @PAGEPUSH_FRAME_ABORT: destination to source, on the return path: the
 *	destination gave up on the migration; do not wait for a recovery.
 */
enum pagepush_frame_type {
	PAGEPUSH_FRAME_PAGE = 1,
	PAGEPUSH_FRAME_ZERO,
	PAGEPUSH_FRAME_EOS,
	PAGEPUSH_FRAME_DISCARD,
	PAGEPUSH_FRAME_REQUEST,
	PAGEPUSH_FRAME_COMPLETE,
	PAGEPUSH_FRAME_PRESENT,
	PAGEPUSH_FRAME_RESUME,
	PAGEPUSH_FRAME_ABORT,
};

/**
 * struct pagepush_frame - header of every frame after the handshake
 * @version: PAGEPUSH_WIRE_VERSION.
 * @type: &enum pagepush_frame_type.
 * @flags: zero.
 * @length: payload length (PAGE, PRESENT), range length (ZERO, REQUEST),
 *	else 0.
 * @offset: byte offset in the region.
 */
struct pagepush_frame {
	__u8 version;
	__u8 type;
	__le16 flags;
	__le32 length;
	__le64 offset;
};

#endif /* _UAPI_LINUX_PAGEPUSH_H */
