#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench, the guest side: every scenario between two emulated hosts,
# results to $PP_OUT (copied to bench/results/ by the host).
#
#   source (pp-src) ---- LINK_RATE, LINK_RTT ---- destination (pp-dst)
#   pagepush serve FILE                           pagepush attach + faultbench
#                                                 or faultbench's userfaultfd
#                                                 receiver
#
# One JSON file per run in $PP_OUT/runs/, raw latencies next to it, and
# $PP_OUT/rows.tsv, which bench/report.sh turns into the tables and plots.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../selftests/pagepush/lib.sh"
pp_require_root

RATE=${LINK_RATE:-1gbit}
RTT=${LINK_RTT:-1}
LAT_SIZE=${BENCH_LAT_SIZE:-256M}
TPUT_SIZE=${BENCH_TPUT_SIZE:-1G}
FB=$here/faultbench
out=${PP_OUT:-/tmp/bench-out}
mkdir -p "$out/runs"
rows=$out/rows.tsv
: > "$rows"
tmp=$(mktemp -d)
trap 'pp_cleanup; rm -rf "$tmp"' EXIT

log() { echo "bench: $*"; }

mkfile() {
	[ -f "$tmp/$1.img" ] || head -c "$1" /dev/urandom > "$tmp/$1.img"
	echo "$tmp/$1.img"
}

hugepages() {
	echo "$1" > /proc/sys/vm/nr_hugepages
}

# run SCENARIO RECEIVER PAGE PREEMPT SIZE SERVE_ARGS FAULTBENCH_ARGS
run() {
	local scen=$1 recv=$2 page=$3 preempt=$4 size=$5 sargs=$6 fargs=$7
	local name="$scen-$recv-$page-$preempt" file dev= json rc=0 pflag=

	file=$(mkfile "$size")
	json=$out/runs/$name.json
	[ "$preempt" = off ] && pflag=--no-preempt
	[ "$page" = 2M ] && hugepages $(( $(numfmt --from=iec "$size") / (2 << 20) + 16 ))
	if ! pp_serve_bg "$tmp/serve.out" --page-size "$page" $pflag \
		--stats-json "$tmp/serve.json" $sargs "$file"; then
		log "$name: serve did not start"
		return
	fi
	case $recv in
	pagepush)
		dev=$(pp_dst "$PAGEPUSH" attach $pflag "$PP_SERVE_ADDR") || rc=1
		[ -n "$dev" ] && pp_dst "$FB" --pagepush "$dev" $fargs --json "$json" \
			--lat-out "$out/runs/$name.lat" || rc=1
		;;
	uffd-missing|uffd-minor)
		pp_dst "$FB" --"$recv" "$PP_SERVE_ADDR" $pflag $fargs --json "$json" \
			--lat-out "$out/runs/$name.lat" || rc=1
		;;
	esac
	case " $fargs " in
	*" --wait-complete "*) wait "$PP_SERVE_PID" ;;
	*) kill "$PP_SERVE_PID" 2>/dev/null; wait "$PP_SERVE_PID" 2>/dev/null ;;
	esac
	[ -n "$dev" ] && "$PAGEPUSH" detach "$dev"
	hugepages 0
	if [ $rc != 0 ] || [ ! -s "$json" ]; then
		log "$name: FAILED"
		sed 's/^/  /' "$tmp/serve.out"
		return
	fi
	cp "$tmp/serve.json" "$out/runs/$name.serve.json" 2>/dev/null
	printf '%s\t%s\t%s\t%s\t%s\n' "$scen" "$recv" "$page" "$preempt" "runs/$name.json" >> "$rows"
	log "$name: $(cat "$json")"
}

receivers="pagepush uffd-missing uffd-minor"

pp_link_up "$RATE" "$RTT" || exit 1
log "link: rate $RATE, RTT $RTT ms (tbf burst 256kb latency 2ms, netem delay RTT/2 each way)"
pp_dst iperf3 -s -D -1 > /dev/null 2>&1
sleep 0.5
pp_src iperf3 -c "$PP_DST_ADDR" -t 4 -J > "$out/iperf3.json" 2>/dev/null
log "iperf3: $(grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' "$out/iperf3.json" | tail -n 1 | sed 's/.*:[[:space:]]*//' )"
echo "$RATE" > "$out/link_rate"
echo "$RTT" > "$out/link_rtt"

# 1. Fault latency under load: faults ahead of the background stream.
for page in 2M 4K; do
	if [ $page = 2M ]; then f="--faults 24 --interval-us 20000"; else f="--faults 100 --interval-us 2000"; fi
	for preempt in on off; do
		for r in $receivers; do
			run load "$r" $page $preempt "$LAT_SIZE" "" "$f --delay-ms 300 --from 0.75 --seed 11"
		done
	done
done

# 2. Idle fault latency: no background stream at all.
for page in 2M 4K; do
	if [ $page = 2M ]; then f="--faults 24 --interval-us 5000"; else f="--faults 200 --interval-us 1000"; fi
	for r in $receivers; do
		run idle "$r" $page on "$LAT_SIZE" "--no-background" "$f --from 0 --seed 12"
	done
done

# 3. Throughput (and CPU per GiB): the whole region, no fault.
for page in 2M 4K; do
	for r in $receivers; do
		run tput "$r" $page on "$TPUT_SIZE" "" "--faults 0 --wait-complete"
	done
done

# The bare veth, no shaping: what the receivers cost by themselves.
pp_link_shape "" 0
for page in 2M 4K; do
	if [ $page = 2M ]; then f="--faults 24 --interval-us 20000"; else f="--faults 100 --interval-us 2000"; fi
	for r in $receivers; do
		run bare "$r" $page on "$LAT_SIZE" "" "$f --delay-ms 300 --from 0.75 --seed 11"
	done
done

# 4. Scaling: threads faulting distinct pages at once, unshaped link.
for t in 1 4 16 64; do
	for r in pagepush uffd-missing; do
		run "scale$t" "$r" 4K on 64M "--no-background" \
			"--threads $t --faults $((1024 / t)) --from 0 --seed 13"
	done
done
log "done"
