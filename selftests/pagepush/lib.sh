#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shell library for the pagepush tests, the demo and the benchmarks:
# TAP output, and two hosts joined by an emulated link.
#
#   +----------------------+                      +----------------------+
#   | netns $PP_SRC_NS     |   veth pair          | netns $PP_DST_NS     |
#   |  pp-src  10.77.0.1   |<-------------------->|  pp-dst  10.77.0.2   |
#   |  pagepush serve      |  netem delay RTT/2   |  pagepush attach     |
#   |                      |  + tbf rate, each way|  workload            |
#   +----------------------+                      +----------------------+
#
# Namespaces are named after the PID of the script, and removed by a trap
# on exit. Files are shared: a namespace isolates the network only.

PP_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PP_ROOT=${PP_ROOT:-$(cd "$PP_LIB_DIR/../.." && pwd)}
if [ -z "${PAGEPUSH:-}" ]; then
	if [ -x "$PP_ROOT/user/pagepush" ]; then
		PAGEPUSH=$PP_ROOT/user/pagepush
	else
		PAGEPUSH=$(command -v pagepush || echo pagepush)
	fi
fi
PP_WORKLOAD=${PP_WORKLOAD:-$PP_LIB_DIR/workload}
PP_SRC_NS=pp-src-$$
PP_DST_NS=pp-dst-$$
PP_SRC_ADDR=10.77.0.1
PP_DST_ADDR=10.77.0.2
PP_KSFT_SKIP=4

# ---- TAP ---------------------------------------------------------------

pp_tap_n=0
pp_tap_failed=0
pp_tap_skipped=0

pp_tap_plan()
{
	echo "TAP version 13"
	echo "1..$1"
}

pp_tap_ok()
{
	pp_tap_n=$((pp_tap_n + 1))
	echo "ok $pp_tap_n $*"
}

pp_tap_fail()
{
	pp_tap_n=$((pp_tap_n + 1))
	pp_tap_failed=$((pp_tap_failed + 1))
	echo "not ok $pp_tap_n $*"
}

pp_tap_skip()
{
	pp_tap_n=$((pp_tap_n + 1))
	pp_tap_skipped=$((pp_tap_skipped + 1))
	echo "ok $pp_tap_n $* # SKIP"
}

# pp_check DESCRIPTION COMMAND...: one test from a command's status.
pp_check()
{
	local desc=$1

	shift
	if "$@"; then
		pp_tap_ok "$desc"
	else
		pp_tap_fail "$desc"
	fi
}

pp_tap_done()
{
	echo "# $((pp_tap_n - pp_tap_failed - pp_tap_skipped)) passed, $pp_tap_failed failed, $pp_tap_skipped skipped"
	[ "$pp_tap_failed" = 0 ]
	exit $?
}

pp_log()
{
	echo "# $*"
}

# ---- two hosts ---------------------------------------------------------

pp_src()
{
	ip netns exec "$PP_SRC_NS" "$@"
}

pp_dst()
{
	ip netns exec "$PP_DST_NS" "$@"
}

pp_cleanup()
{
	local pids

	pids=$(ip netns pids "$PP_SRC_NS" 2>/dev/null; ip netns pids "$PP_DST_NS" 2>/dev/null)
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	ip netns del "$PP_SRC_NS" 2>/dev/null
	ip netns del "$PP_DST_NS" 2>/dev/null
	return 0
}

# pp_link_shape RATE RTT_MS: rate limit (tbf, e.g. 1gbit; "" for none)
# and round-trip delay (netem, half each way; 0 for none) on both ends.
# The bottleneck queue is bounded in bytes (tbf latency), so whatever
# waits there is at most ~2 ms of traffic.
pp_link_shape()
{
	local rate=$1 rtt=${2:-0} ns dev half

	half=$(awk "BEGIN { print $rtt / 2 }")
	for ns in "$PP_SRC_NS" "$PP_DST_NS"; do
		dev=pp-src
		[ "$ns" = "$PP_DST_NS" ] && dev=pp-dst
		ip -n "$ns" link set "$dev" mtu 1500
		tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null
		if [ "$rtt" != 0 ]; then
			tc -n "$ns" qdisc add dev "$dev" root handle 1: netem \
				delay "${half}ms" limit 100000 || return 1
			if [ -n "$rate" ]; then
				tc -n "$ns" qdisc add dev "$dev" parent 1:1 handle 10: \
					tbf rate "$rate" burst 256kb latency 2ms || return 1
			fi
		elif [ -n "$rate" ]; then
			tc -n "$ns" qdisc add dev "$dev" root handle 10: \
				tbf rate "$rate" burst 256kb latency 2ms || return 1
		fi
	done
}

# pp_link_up [RATE] [RTT_MS]: create both hosts and the link between them.
pp_link_up()
{
	trap pp_cleanup EXIT
	ip netns add "$PP_SRC_NS" || return 1
	ip netns add "$PP_DST_NS" || return 1
	ip link add pp-src netns "$PP_SRC_NS" type veth peer name pp-dst \
		netns "$PP_DST_NS" || return 1
	ip -n "$PP_SRC_NS" addr add "$PP_SRC_ADDR/24" dev pp-src
	ip -n "$PP_DST_NS" addr add "$PP_DST_ADDR/24" dev pp-dst
	ip -n "$PP_SRC_NS" link set lo up
	ip -n "$PP_DST_NS" link set lo up
	ip -n "$PP_SRC_NS" link set pp-src up
	ip -n "$PP_DST_NS" link set pp-dst up
	pp_link_shape "${1:-}" "${2:-0}"
}

# pp_serve_bg OUTFILE ARGS...: start 'pagepush serve' on the source host,
# wait until it listens; sets PP_SERVE_PID and PP_SERVE_ADDR.
pp_serve_bg()
{
	local out=$1 i

	shift
	# Not through pp_src: $! must be the server itself (ip execs it).
	ip netns exec "$PP_SRC_NS" "$PAGEPUSH" serve --listen "$PP_SRC_ADDR:0" \
		"$@" > "$out" 2>&1 &
	PP_SERVE_PID=$!
	for i in $(seq 200); do
		PP_SERVE_ADDR=$(sed -n 's/^listening on //p' "$out")
		[ -n "$PP_SERVE_ADDR" ] && return 0
		kill -0 "$PP_SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "# pagepush serve did not start:" >&2
	sed 's/^/# /' "$out" >&2
	return 1
}

pp_require_root()
{
	if [ "$(id -u)" != 0 ]; then
		echo "# these tests need root"
		exit "$PP_KSFT_SKIP"
	fi
}
