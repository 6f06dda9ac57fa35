#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench, the host side: turn the runs in DIR (bench/results) into
# one JSON file per scenario, Markdown tables on stdout (also
# DIR/summary.md) and a latency CDF plot per scenario (gnuplot, PNG).
#
# usage: report.sh DIR
set -u
dir=${1:-bench/results}
rows=$dir/rows.tsv
[ -f "$rows" ] || { echo "report.sh: no $rows" >&2; exit 1; }

# jget KEY FILE: a number from a flat JSON file.
jget() { grep -o "\"$1\":[-0-9.e+]*" "$2" | head -n 1 | cut -d: -f2; }

rate=$(cat "$dir/link_rate")
rtt=$(cat "$dir/link_rtt")
rate_bps=$(numfmt --from=si "${rate%bit}" 2>/dev/null || echo 1000000000)
iperf_bps=$(grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' "$dir/iperf3.json" 2>/dev/null |
	tail -n 1 | sed 's/.*:[[:space:]]*//')
iperf_bps=${iperf_bps:-0}

# floor_ms PAGE_BYTES RTT_MS BPS
floor_ms() { awk -v b="$1" -v r="$2" -v bps="$3" 'BEGIN { printf "%.3f", r + (bps > 0 ? b * 8 / bps * 1000 : 0) }'; }

{
echo "# pagepush benchmarks"
echo
echo "Link: tbf rate $rate, netem RTT $rtt ms; iperf3 measured $(awk -v b="$iperf_bps" 'BEGIN { printf "%.0f", b / 1e6 }') Mbit/s on it."
echo "Floor = RTT + page size / link rate; ratio = p50 / floor."
for scen in load idle bare; do
	grep -q "^$scen	" "$rows" || continue
	echo
	case $scen in
	load) echo "## Fault latency under load (background stream running)" ;;
	idle) echo "## Idle fault latency (no background stream)" ;;
	bare) echo "## Fault latency under load, bare veth (no shaping)" ;;
	esac
	echo
	echo "| receiver | page | preempt | faults | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | floor ms | p50/floor |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	while IFS=$'\t' read -r s recv page preempt json; do
		json=$dir/$json
		[ "$s" = "$scen" ] || continue
		bytes=$(jget page_size_bytes "$json")
		if [ "$scen" = bare ]; then fl=$(floor_ms "$bytes" 0 "$iperf_bps"); else fl=$(floor_ms "$bytes" "$rtt" "$rate_bps"); fi
		p50=$(jget p50 "$json")
		printf '| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n' \
			"$recv" "$page" "$preempt" "$(jget faults "$json")" \
			"$(awk -v v="$p50" 'BEGIN{print v/1000}')" \
			"$(awk -v v="$(jget p90 "$json")" 'BEGIN{print v/1000}')" \
			"$(awk -v v="$(jget p99 "$json")" 'BEGIN{print v/1000}')" \
			"$(awk -v v="$(jget p999 "$json")" 'BEGIN{print v/1000}')" \
			"$(awk -v v="$(jget max "$json")" 'BEGIN{print v/1000}')" \
			"$fl" "$(awk -v p="$p50" -v f="$fl" 'BEGIN{r = f > 0 ? p / 1000 / f : 0; print r}')"
	done < "$rows"
done

if grep -q "^tput	" "$rows"; then
	echo
	echo "## Throughput and CPU (whole region, no fault; time from the source's handshake to COMPLETE)"
	echo
	echo "| receiver | page | MiB | seconds | MiB/s | iperf3 MiB/s | ratio | receiver CPU s/GiB | workload CPU s/GiB |"
	echo "|---|---|---|---|---|---|---|---|---|"
	while IFS=$'\t' read -r s recv page preempt json; do
		json=$dir/$json
		[ "$s" = tput ] || continue
		size=$(jget size_bytes "$json")
		# The source's clock, from its handshake to COMPLETE: the same
		# span whichever receiver.
		secs=$(jget seconds "${json%.json}.serve.json")
		cpu=$(jget receiver_cpu_seconds "$json")
		wcpu=$(jget workload_cpu_seconds "$json")
		awk -v r="$recv" -v p="$page" -v sz="$size" -v t="$secs" -v ip="$iperf_bps" -v c="$cpu" -v w="$wcpu" 'BEGIN {
			mib = sz / 1048576; rate = t > 0 ? mib / t : 0; irate = ip / 8 / 1048576;
			ratio = irate > 0 ? rate / irate : 0;
			gib = sz / 1073741824;
			printf "| %s | %s | %.0f | %.2f | %.1f | %.1f | %.2f | %.2f | %.2f |\n", r, p, mib, t, rate, irate, ratio, c / gib, w / gib }'
	done < "$rows"
fi

if grep -q "^scale" "$rows"; then
	echo
	echo "## Scaling: threads faulting distinct 4 KiB pages at once (bare veth, no background)"
	echo
	echo "| receiver | threads | faults | faults/s | p50 ms | p99 ms |"
	echo "|---|---|---|---|---|---|"
	while IFS=$'\t' read -r s recv page preempt json; do
		json=$dir/$json
		case $s in scale*) ;; *) continue ;; esac
		printf '| %s | %s | %s | %.0f | %.2f | %.2f |\n' "$recv" "${s#scale}" \
			"$(jget faults "$json")" "$(jget faults_per_second "$json")" \
			"$(awk -v v="$(jget p50 "$json")" 'BEGIN{print v/1000}')" \
			"$(awk -v v="$(jget p99 "$json")" 'BEGIN{print v/1000}')"
	done < "$rows"
fi
} | tee "$dir/summary.md"

# One JSON file per scenario: the link and every run of it.
for scen in $(cut -f1 "$rows" | sort -u); do
	{
		printf '{"scenario":"%s","link":{"rate":"%s","rtt_ms":%s,"iperf3_bps":%s},"runs":[' \
			"$scen" "$rate" "$rtt" "$iperf_bps"
		first=1
		while IFS=$'\t' read -r s recv page preempt json; do
		json=$dir/$json
			[ "$s" = "$scen" ] || continue
			[ $first = 1 ] || printf ','
			first=0
			printf '{"receiver":"%s","page":"%s","preempt":"%s","result":%s' \
				"$recv" "$page" "$preempt" "$(cat "$json")"
			sj=${json%.json}.serve.json
			[ -f "$sj" ] && printf ',"source":%s' "$(cat "$sj")"
			printf '}'
		done < "$rows"
		printf ']}\n'
	} > "$dir/$scen.json"
done

# Latency CDFs.
command -v gnuplot > /dev/null || { echo "report.sh: no gnuplot, no plots" >&2; exit 0; }
for scen in load idle bare scale; do
	grep -q "^$scen" "$rows" || continue
	plots=
	while IFS=$'\t' read -r s recv page preempt json; do
		json=$dir/$json
		case $s in "$scen"|"$scen"[0-9]*) ;; *) continue ;; esac
		[ "$scen" = scale ] && preempt="threads ${s#scale}"
		lat=${json%.json}.lat
		[ -s "$lat" ] || continue
		cdf=${json%.json}.cdf
		sort -n "$lat" | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i] / 1000, i / NR }' > "$cdf"
		case $preempt in on|off) preempt="preempt $preempt" ;; esac
		plots="$plots${plots:+, }'$cdf' using 1:2 with steps title '$recv $page $preempt'"
	done < "$rows"
	[ -n "$plots" ] || continue
	gnuplot <<GP
set terminal pngcairo size 1200,600 noenhanced
set output '$dir/$scen-cdf.png'
set title 'pagepush: fault latency CDF ($scen; link $rate, RTT $rtt ms)'
set xlabel 'fault latency (ms, log scale)'
set ylabel 'fraction of faults'
set logscale x
set key outside right
set grid
plot $plots
GP
done
ls "$dir"/*.png 2>/dev/null
