/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pagepush tracepoints: events/pagepush/ in tracefs. The kernel side of a
 * migration, event by event: faults held and released, requests sent,
 * chunks received, pages placed, protocol errors, state changes.
 * Documentation/tracing.rst describes each field.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM pagepush

#if !defined(_PAGEPUSH_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _PAGEPUSH_TRACE_H

#include <linux/tracepoint.h>
#include "compat/compat.h"

TRACE_EVENT(pagepush_fault_hold,
	TP_PROTO(u32 session, unsigned long page, unsigned int flags),
	TP_ARGS(session, page, flags),
	TP_STRUCT__entry(
		__field(u32, session)
		__field(unsigned long, page)
		__field(unsigned int, flags)
	),
	TP_fast_assign(
		__entry->session = session;
		__entry->page = page;
		__entry->flags = flags;
	),
	TP_printk("session=%u page=%lu fault_flags=%#x",
		  __entry->session, __entry->page, __entry->flags)
);

TRACE_EVENT(pagepush_fault_release,
	TP_PROTO(u32 session, unsigned long page, u64 held_ns, bool present),
	TP_ARGS(session, page, held_ns, present),
	TP_STRUCT__entry(
		__field(u32, session)
		__field(unsigned long, page)
		__field(u64, held_ns)
		__field(bool, present)
	),
	TP_fast_assign(
		__entry->session = session;
		__entry->page = page;
		__entry->held_ns = held_ns;
		__entry->present = present;
	),
	TP_printk("session=%u page=%lu held_ns=%llu present=%d",
		  __entry->session, __entry->page, __entry->held_ns,
		  __entry->present)
);

TRACE_EVENT(pagepush_request_sent,
	TP_PROTO(u32 session, unsigned long page),
	TP_ARGS(session, page),
	TP_STRUCT__entry(
		__field(u32, session)
		__field(unsigned long, page)
	),
	TP_fast_assign(
		__entry->session = session;
		__entry->page = page;
	),
	TP_printk("session=%u page=%lu", __entry->session, __entry->page)
);

TRACE_EVENT(pagepush_chunk,
	TP_PROTO(u32 session, unsigned int channel, unsigned long page,
		 unsigned long offset, u32 len),
	TP_ARGS(session, channel, page, offset, len),
	TP_STRUCT__entry(
		__field(u32, session)
		__field(unsigned int, channel)
		__field(unsigned long, page)
		__field(unsigned long, offset)
		__field(u32, len)
	),
	TP_fast_assign(
		__entry->session = session;
		__entry->channel = channel;
		__entry->page = page;
		__entry->offset = offset;
		__entry->len = len;
	),
	TP_printk("session=%u channel=%s page=%lu offset=%lu len=%u",
		  __entry->session,
		  __print_symbolic(__entry->channel, { 0, "precopy" },
				   { 1, "postcopy" }),
		  __entry->page, __entry->offset, __entry->len)
);

TRACE_EVENT(pagepush_page_placed,
	TP_PROTO(u32 session, unsigned int channel, unsigned long page,
		 bool zero),
	TP_ARGS(session, channel, page, zero),
	TP_STRUCT__entry(
		__field(u32, session)
		__field(unsigned int, channel)
		__field(unsigned long, page)
		__field(bool, zero)
	),
	TP_fast_assign(
		__entry->session = session;
		__entry->channel = channel;
		__entry->page = page;
		__entry->zero = zero;
	),
	TP_printk("session=%u channel=%s page=%lu zero=%d",
		  __entry->session,
		  __print_symbolic(__entry->channel, { 0, "precopy" },
				   { 1, "postcopy" }),
		  __entry->page, __entry->zero)
);

TRACE_EVENT(pagepush_protocol_error,
	TP_PROTO(u32 session, const char *reason),
	TP_ARGS(session, reason),
	TP_STRUCT__entry(
		__field(u32, session)
		__string(reason, reason)
	),
	TP_fast_assign(
		__entry->session = session;
		pp_assign_str(reason, reason);
	),
	TP_printk("session=%u reason=%s", __entry->session, __get_str(reason))
);

TRACE_EVENT(pagepush_state,
	TP_PROTO(u32 session, unsigned int old, unsigned int new),
	TP_ARGS(session, old, new),
	TP_STRUCT__entry(
		__field(u32, session)
		__field(unsigned int, old)
		__field(unsigned int, new)
	),
	TP_fast_assign(
		__entry->session = session;
		__entry->old = old;
		__entry->new = new;
	),
	TP_printk("session=%u %s -> %s", __entry->session,
		  __print_symbolic(__entry->old, { 1, "new" }, { 2, "connected" },
				   { 3, "complete" }, { 4, "failed" }, { 5, "paused" }),
		  __print_symbolic(__entry->new, { 1, "new" }, { 2, "connected" },
				   { 3, "complete" }, { 4, "failed" }, { 5, "paused" }))
);

#endif /* _PAGEPUSH_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
