#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: a 512 MiB migration between two emulated hosts joined by a
# 1 Gbit/s link with a 1 ms round trip. The destination's workload runs
# while its memory is still arriving: it touches random pages (each held
# until its page arrives), then reads every byte and compares it with the
# source's file.
#
#   source (pp-src) ---- 1 Gbit/s, 1 ms RTT ---- destination (pp-dst)
#   pagepush serve FILE                          pagepush attach; workload
. "$(dirname "$0")/lib.sh"
pp_require_root

SIZE=${DEMO_SIZE:-512M}
RATE=${DEMO_RATE:-1gbit}
RTT=${DEMO_RTT:-1}
PAGE=${DEMO_PAGE:-2M}
tmp=$(mktemp -d)
trap 'pp_cleanup; rm -rf "$tmp"' EXIT

echo "== pagepush demo: $SIZE in $PAGE pages over $RATE, ${RTT} ms RTT"
pp_link_up "$RATE" "$RTT" || exit 1
head -c "$SIZE" /dev/urandom > "$tmp/memory.img"
echo "source memory image: $tmp/memory.img ($SIZE of random data)"

pp_serve_bg "$tmp/serve.out" --page-size "$PAGE" \
	--stats-json "$tmp/serve.json" "$tmp/memory.img" || exit 1
t0=$(date +%s.%N)
dev=$(pp_dst "$PAGEPUSH" attach --name demo "$PP_SERVE_ADDR") || exit 1
echo "destination device: $dev"

# The workload starts at once: random touches by 4 threads while the
# background stream runs, then a full comparison.
pp_dst "$PP_WORKLOAD" --ref "$tmp/memory.img" --access random --threads 4 \
	--touches 16 --verify --json "$dev" > "$tmp/workload.json"
wrc=$?
wait "$PP_SERVE_PID"
src_rc=$?
t1=$(date +%s.%N)
status=$("$PAGEPUSH" status --json "$dev")

echo
sed -n '1,/^  preempt/p' "$tmp/serve.out" | grep -v '^listening'
echo
"$PAGEPUSH" status "$dev"
echo
json_num() { echo "$1" | grep -o "\"$2\":[0-9.]*" | head -n 1 | cut -d: -f2; }
wl=$(cat "$tmp/workload.json")
secs=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
bytes=$(json_num "$status" size_bytes)
pmd=$(json_num "$wl" pmd_mapped_bytes)
echo "== report"
echo "migration time:   $secs s"
echo "throughput:       $(awk "BEGIN { printf \"%.1f\", $bytes / 1048576 / $secs }") MiB/s"
echo "faults held:      $(json_num "$status" faults_held_total)"
echo "fault latency:    p50 $(json_num "$wl" p50) us, p99 $(json_num "$wl" p99) us, max $(json_num "$wl" max) us (workload touches)"
echo "PMD-mapped:       $(awk "BEGIN { printf \"%.1f\", 100 * ${pmd:-0} / $bytes }")% of the mapping (smaps FilePmdMapped)"
"$PAGEPUSH" detach "$dev"
if [ "$wrc" = 0 ] && [ "$src_rc" = 0 ] && echo "$wl" | grep -q '"verified":true'; then
	echo "verified: OK"
else
	echo "verified: FAILED (workload exit $wrc, source exit $src_rc)"
	exit 1
fi
