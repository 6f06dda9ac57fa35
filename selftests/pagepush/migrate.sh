#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Whole migrations between two emulated hosts: 'pagepush serve' on the
# source, 'pagepush attach' on the destination, a workload touching pages
# while the background stream runs, every byte checked at the end.
#
#   source host (pp-src)  ===== 200 Mbit/s, 2 ms RTT =====  destination
#   pagepush serve FILE                                     attach, workload
. "$(dirname "$0")/lib.sh"
pp_require_root

SIZE=${PP_MIGRATE_SIZE:-64M}
RATE=${PP_MIGRATE_RATE:-200mbit}
RTT=${PP_MIGRATE_RTT:-2}
tmp=$(mktemp -d)
trap 'pp_cleanup; rm -rf "$tmp"' EXIT

pp_link_up "$RATE" "$RTT" || { echo "# cannot set up the link"; exit 1; }
head -c "$SIZE" /dev/urandom > "$tmp/src.bin"
# Some all-zero pages, to go as ZERO frames.
dd if=/dev/zero of="$tmp/src.bin" bs=2M count=2 seek=3 conv=notrunc status=none

# migrate NAME PAGE SERVE_ARGS ATTACH_ARGS WORKLOAD_ARGS
migrate()
{
	local name=$1 page=$2 sargs=$3 aargs=$4 wargs=$5 dev rc=0 json

	if ! pp_serve_bg "$tmp/serve.out" --page-size "$page" \
		--stats-json "$tmp/stats.json" $sargs "$tmp/src.bin"; then
		pp_tap_fail "$name: serve starts"
		return
	fi
	dev=$(pp_dst "$PAGEPUSH" attach $aargs "$PP_SERVE_ADDR" 2> "$tmp/attach.err")
	if [ -z "$dev" ]; then
		sed 's/^/# /' "$tmp/attach.err"
		pp_tap_fail "$name: attach prints the device"
		kill "$PP_SERVE_PID" 2>/dev/null
		return
	fi
	pp_dst "$PP_WORKLOAD" --ref "$tmp/src.bin" --json $wargs "$dev" > "$tmp/wl.json" || rc=1
	wait "$PP_SERVE_PID" || rc=2
	json=$("$PAGEPUSH" status --json "$dev")
	"$PAGEPUSH" detach "$dev"
	# Touched while migrating, then all of it compared.
	if [ $rc = 0 ] && grep -q '"verified":true' "$tmp/wl.json" &&
	   echo "$json" | grep -q '"state":"complete"' &&
	   grep -q '"complete":true' "$tmp/stats.json"; then
		pp_tap_ok "$name"
	else
		pp_log "rc=$rc workload: $(cat "$tmp/wl.json")"
		pp_log "status: $json"
		sed 's/^/# /' "$tmp/serve.out"
		pp_tap_fail "$name"
	fi
	echo "$json" > "$tmp/last-status.json"
}

# Served faults: the source answered requests during the migration.
served()
{
	grep -o '"requests_served":[0-9]*' "$tmp/stats.json" | cut -d: -f2
}

pp_tap_plan 11

migrate "2M, random touches while streaming" 2M "" "" "--access random --touches 24 --verify"
s=$(served)
pp_check "2M: requests were served (${s:-0})" test "${s:-0}" -gt 0
migrate "2M, sequential touches" 2M "" "" "--access seq --verify"
migrate "2M, 16 threads, same and different pages" 2M "" "" \
	"--access random --threads 16 --touches 8 --seed 7 --verify"
pmd=$(grep -o '"pmd_mapped_bytes":[0-9]*' "$tmp/wl.json" | cut -d: -f2)
pp_check "2M: the mapping is PMD-mapped ($pmd bytes)" test "${pmd:-0}" -ge $((32 << 20))
migrate "4K, random touches while streaming" 4K "" "" "--access random --touches 200 --verify"
migrate "4K, 16 threads" 4K "" "" "--access random --threads 16 --touches 32 --verify"
migrate "2M, no preemption (one connection)" 2M "--no-preempt" "" \
	"--access random --touches 24 --verify"
post=$(grep -o '"postcopy":{"pages":[0-9]*' "$tmp/last-status.json" | grep -o '[0-9]*$')
pp_check "no preemption: nothing came on the postcopy channel" test "${post:-1}" = 0

# A source that disappears mid-way: selftests/pagepush/recover.sh.

# Every session is gone: the module holds no page and unloads.
pages=$(cat /sys/kernel/debug/pagepush/pages 2>/dev/null || echo 0)
pp_check "no page left behind ($pages)" test "$pages" = 0
if rmmod pagepush && modprobe pagepush; then
	pp_tap_ok "the module unloads after failed and complete sessions"
else
	pp_tap_fail "the module unloads after failed and complete sessions"
fi
pp_tap_done
