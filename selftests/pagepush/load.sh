#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Load: many tasks faulting while the link between the hosts keeps going
# away for a moment, many migrations at once, and the module's life with
# sessions that are still migrating.
#
#   source host (pp-src)  ==== 2 ms RTT, outages ====  destination (pp-dst)
#   pagepush serve FILE...                             attach, workloads
#
# 1. 1 GiB in 2 MiB pages, 64 threads touching random pages while the
#    link flaps: every 400-800 ms it drops every packet (netem loss 100%)
#    or goes down (ip link set down) for 100-250 ms, short enough for TCP
#    to retransmit and carry on. Then 256 MiB the same way without the
#    background stream (pure postcopy: there, a task whose wakeup was
#    lost would wait for ever, as nothing else would bring its page).
#    Every thread finishes (the workload's --timeout names any that does
#    not), every byte matches the source, the session is COMPLETE, its
#    counters add up, and TCP did retransmit.
# 2. Eight migrations at once over one link (half of them pure postcopy,
#    so they are all connected together however fast the machine), all
#    COMPLETE and byte-identical; rmmod is refused while they run and
#    disturbs none.
# 3. Sessions deleted while migrating, with tasks held in faults: the
#    tasks get SIGBUS, the threads and nodes go, the module holds no page,
#    MemFree comes back, rmmod succeeds. The module is loaded again at
#    the end for the suites that follow.
. "$(dirname "$0")/lib.sh"
pp_require_root

SIZE=${PP_LOAD_SIZE:-1G}
THREADS=${PP_LOAD_THREADS:-64}
TOUCHES=${PP_LOAD_TOUCHES:-16}
SESSIONS=${PP_LOAD_SESSIONS:-8}
POSTCOPY_SIZE=${PP_LOAD_POSTCOPY_SIZE:-256M}
SESSION_SIZE=${PP_LOAD_SESSION_SIZE:-32M}
LIVE_SIZE=${PP_LOAD_LIVE_SIZE:-128M}
# Generous: a healthy run needs a tenth of it; only a hang reaches it.
TIMEOUT=${PP_LOAD_TIMEOUT:-180}

tmp=$(mktemp -d)
src=$tmp/src
load_cleanup()
{
	touch "$tmp/flap.stop"
	pp_cleanup
	umount "$src" 2>/dev/null
	rm -rf "$tmp"
}
trap load_cleanup EXIT

bytes()
{
	numfmt --from=iec "$1"
}

# Starting a program costs a lot in an emulated guest (hundreds of
# milliseconds when it is busy): what runs in loops, or must be on time,
# uses shell builtins only.

# nap SECS: sleep, without starting a program.
mkfifo "$tmp/nap"
nap()
{
	read -r -t "$1" _ <> "$tmp/nap"
}

# now_ms: milliseconds since boot, in NOW.
now_ms()
{
	local up

	read -r up _ < /proc/uptime
	NOW=$((10#${up/./} * 10))
}

# ---- JSON without a JSON tool: the helper's output has a fixed shape ------

# jnum JSON KEY: the first number labelled KEY.
jnum()
{
	local re="\"$2\":([0-9]+)"

	[[ $1 =~ $re ]] && echo "${BASH_REMATCH[1]}"
}

# jobj JSON KEY: the first flat object labelled KEY, as text.
jobj()
{
	local re="\"$2\":\{[^{}]*\}"

	[[ $1 =~ $re ]] && echo "${BASH_REMATCH[0]}"
}

# jall JSON KEY: every number labelled KEY, in NUMS; their sum in SUM,
# the smallest in MIN.
jall()
{
	local s=$1 re="\"$2\":([0-9]+)"

	NUMS=() SUM=0 MIN=
	while [[ $s =~ $re ]]; do
		NUMS+=("${BASH_REMATCH[1]}")
		SUM=$((SUM + BASH_REMATCH[1]))
		[ -z "$MIN" ] || [ "${BASH_REMATCH[1]}" -lt "$MIN" ] &&
			MIN=${BASH_REMATCH[1]}
		s=${s#*"${BASH_REMATCH[0]}"}
	done
}

# jsum JSON KEY: the sum of the array of numbers labelled KEY.
jsum()
{
	local re="\"$2\":\[([0-9,]*)\]" n total=0

	[[ $1 =~ $re ]] || return
	for n in ${BASH_REMATCH[1]//,/ }; do
		total=$((total + n))
	done
	echo "$total"
}

# count_of TEXT WORD: how many times WORD occurs in TEXT, in COUNT.
count_of()
{
	local s=$1

	COUNT=0
	while [[ $s == *"$2"* ]]; do
		COUNT=$((COUNT + 1))
		s=${s#*"$2"}
	done
}

# ---- the link ---------------------------------------------------------------

RTT=2

# TCP segments retransmitted, both hosts together.
retrans()
{
	local ns n total=0

	for ns in "$PP_SRC_NS" "$PP_DST_NS"; do
		n=$(ip netns exec "$ns" awk '/^Tcp:/ {
			if (!h) { for (i = 1; i <= NF; i++) k[i] = $i; h = 1 }
			else for (i = 1; i <= NF; i++) if (k[i] == "RetransSegs") print $i }' \
			/proc/net/snmp)
		total=$((total + ${n:-0}))
	done
	echo "$total"
}

# netem_cmd NS LOSS: the tc command that sets netem on NS's end of the
# link: RTT/2 of delay, LOSS percent dropped.
netem_cmd()
{
	local dev=pp-src

	[ "$1" = "$PP_DST_NS" ] && dev=pp-dst
	echo "qdisc change dev $dev root handle 1: netem delay $((RTT / 2))ms limit 100000 loss $2%"
}

# Outages until $tmp/flap.stop appears: up for 400-800 ms, then out for
# 100-250 ms, netem dropping everything both ways and the veth down by
# turns. The commands go to tc and ip processes started beforehand, at
# real-time priority like this loop, so an outage lasts as long as it
# should however busy the guest is. "OUTAGES MILLISECONDS" in $tmp/flaps.
flap_loop()
{
	local n=0 down=0 t0 c pids=() tc_src tc_dst ip_dst

	tc -n "$PP_SRC_NS" -force -batch "$tmp/tc-src" & pids+=($!)
	tc -n "$PP_DST_NS" -force -batch "$tmp/tc-dst" & pids+=($!)
	ip -n "$PP_DST_NS" -force -batch "$tmp/ip-dst" & pids+=($!)
	exec {tc_src}> "$tmp/tc-src" {tc_dst}> "$tmp/tc-dst" {ip_dst}> "$tmp/ip-dst"
	chrt -f -p 50 $BASHPID > /dev/null 2>&1
	for c in "${pids[@]}"; do
		chrt -f -p 50 "$c" > /dev/null 2>&1
	done
	: > "$tmp/flap.ready"

	while [ ! -e "$tmp/flap.stop" ]; do
		nap "0.$((4 + RANDOM % 5))"
		[ -e "$tmp/flap.stop" ] && break
		now_ms
		t0=$NOW
		if [ $((n % 2)) = 0 ]; then
			netem_cmd "$PP_SRC_NS" 100 >&$tc_src
			netem_cmd "$PP_DST_NS" 100 >&$tc_dst
			nap "0.$((10 + RANDOM % 16))"
			netem_cmd "$PP_SRC_NS" 0 >&$tc_src
			netem_cmd "$PP_DST_NS" 0 >&$tc_dst
		else
			echo "link set pp-dst down" >&$ip_dst
			nap "0.$((10 + RANDOM % 16))"
			echo "link set pp-dst up" >&$ip_dst
		fi
		now_ms
		n=$((n + 1))
		down=$((down + NOW - t0))
		echo "$n $down" > "$tmp/flaps"
	done
	exec {tc_src}>&- {tc_dst}>&- {ip_dst}>&-
	wait "${pids[@]}"
}

# flap_start: outages from now on, until flap_stop.
flap_start()
{
	local i

	rm -f "$tmp/flap.stop" "$tmp/flap.ready"
	echo 0 0 > "$tmp/flaps"
	[ -p "$tmp/ip-dst" ] || mkfifo "$tmp/tc-src" "$tmp/tc-dst" "$tmp/ip-dst"
	flap_loop &
	FLAP_PID=$!
	for ((i = 0; i < 600; i++)); do
		[ -e "$tmp/flap.ready" ] && break
		nap 0.05
	done
}

flap_stop()
{
	touch "$tmp/flap.stop"
	wait "$FLAP_PID" 2>/dev/null
	# Whatever state the last round left, the link is whole again.
	ip -n "$PP_DST_NS" link set pp-dst up
	tc -n "$PP_SRC_NS" $(netem_cmd "$PP_SRC_NS" 0)
	tc -n "$PP_DST_NS" $(netem_cmd "$PP_DST_NS" 0)
}

# wait_pid PID SECS: wait for a child, at most SECS; kill it after that.
# Returns its status, or 124 if it had to be killed.
wait_pid()
{
	local pid=$1 i

	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		nap 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
}

# serve_all N OUT ARGS...: start N sources at once, "pagepush serve ARGS"
# with every @ in ARGS replaced by the source's number (and sargs[I]
# before them, if set), their output in OUT1, OUT2...; their pids in
# pids[], their addresses in addrs[] (empty for one that did not start). pp_serve_bg starts one at a time, which
# takes long in an emulated guest.
serve_all()
{
	local n=$1 out=$2 i j line

	shift 2
	for ((i = 1; i <= n; i++)); do
		ip netns exec "$PP_SRC_NS" "$PAGEPUSH" serve --listen "$PP_SRC_ADDR:0" \
			${sargs[i]:-} "${@//@/$i}" > "$out$i" 2>&1 &
		pids[i]=$!
		addrs[i]=
	done
	for ((i = 1; i <= n; i++)); do
		for ((j = 0; j < 300; j++)); do
			line=
			[ -s "$out$i" ] && read -r line < "$out$i"
			[[ $line == "listening on "* ]] && break
			kill -0 "${pids[i]}" 2>/dev/null || break
			nap 0.1
		done
		if [[ $line == "listening on "* ]]; then
			addrs[i]=${line#listening on }
		else
			pp_log "source $i did not start:"
			sed 's/^/#   /' "$out$i"
		fi
	done
}

# ---- checks ---------------------------------------------------------------

# counters_ok STATUS_JSON SERVE_JSON: a COMPLETE session's counters agree
# with each other and with the source's. Prints what disagrees.
counters_ok()
{
	local st=$1 sv=$2 bad= total present held sent sigbus now split
	local pre post pages dup bytes held_pre held_post lat recv

	total=$(jnum "$st" pages_total)
	present=$(jnum "$st" pages_present)
	held=$(jnum "$st" faults_held_total)
	now=$(jnum "$st" faults_held_now)
	sent=$(jnum "$st" requests_sent)
	sigbus=$(jnum "$st" faults_sigbus)
	split=$(jnum "$st" split_brain)
	pre=$(jobj "$st" precopy)
	post=$(jobj "$st" postcopy)
	pages=$(($(jnum "$pre" pages) + $(jnum "$post" pages)))
	dup=$(($(jnum "$pre" duplicates) + $(jnum "$post" duplicates)))
	bytes=$(($(jnum "$pre" bytes) + $(jnum "$post" bytes)))
	held_pre=$(jnum "$pre" held_faults)
	held_post=$(jnum "$post" held_faults)
	lat=$(jsum "$st" buckets)
	recv=$(jnum "$sv" requests_received)

	[ "$present" = "$total" ] || bad+=" present $present of $total;"
	[ "${held:-0}" -gt 0 ] || bad+=" no fault was held;"
	[ "${sent:-0}" -gt 0 ] || bad+=" no request was sent;"
	[ "$sigbus" = 0 ] || bad+=" $sigbus SIGBUS;"
	[ "$now" = 0 ] || bad+=" $now faults still held;"
	[ "$split" = 0 ] || bad+=" split brain $split;"
	[ "$pages" = "$total" ] || bad+=" channels placed $pages pages;"
	# Random data: no zero page, every page and duplicate came whole.
	[ "$bytes" = $(((total + dup) * 2097152)) ] ||
		bad+=" $bytes bytes for $total pages and $dup duplicates;"
	# Every hold ended with its page present, and was timed once.
	[ $((held_pre + held_post)) = "$held" ] ||
		bad+=" holds released by pages $held_pre+$held_post, held $held;"
	[ "$lat" = "$held" ] || bad+=" latency histogram counts $lat, held $held;"
	[ "$sent" -le "$total" ] || bad+=" $sent requests for $total pages;"
	# The source counts the requests it took from its queue; some may
	# still wait there when the last page goes out.
	[ "${recv:-0}" -gt 0 ] && [ "$recv" -le "$sent" ] ||
		bad+=" the source took ${recv:-0} of $sent requests;"
	if [ -n "$bad" ]; then
		pp_log "counters:$bad"
		return 1
	fi
}

# ---- 1. 64 threads, a flapping link ---------------------------------------

# flapping NAME SEED FILE SERVE_ARGS...
flapping()
{
	local name=$1 seed=$2 ref=$3 dev wrc src_rc st sv wl r0 r1 flaps down

	shift 3
	if ! pp_serve_bg "$tmp/serve.out" --page-size 2M \
		--stats-json "$tmp/stats.json" "$@" "$ref"; then
		pp_tap_fail "$name: serve starts"
		return
	fi
	dev=$(pp_dst "$PAGEPUSH" attach "$PP_SERVE_ADDR" 2> "$tmp/attach.err")
	if [ -z "$dev" ]; then
		sed 's/^/# /' "$tmp/attach.err"
		pp_tap_fail "$name: attach"
		kill "$PP_SERVE_PID"
		return
	fi
	r0=$(retrans)
	flap_start
	SECONDS=0
	pp_dst timeout -s KILL $((2 * TIMEOUT + 60)) "$PP_WORKLOAD" \
		--ref "$ref" --json --access random --threads "$THREADS" \
		--touches "$TOUCHES" --seed "$seed" --verify --verify-threads 8 \
		--timeout "$TIMEOUT" "$dev" > "$tmp/wl.json" 2>&1
	wrc=$?
	wait_pid "$PP_SERVE_PID" 60
	src_rc=$?
	flap_stop
	read -r flaps down < "$tmp/flaps"
	r1=$(retrans)
	st=$("$PAGEPUSH" status --json "$dev")
	"$PAGEPUSH" detach "$dev"
	wl=$(cat "$tmp/wl.json")
	sv=$(cat "$tmp/stats.json" 2>/dev/null)
	pp_log "$name: $SECONDS s, $flaps outages (${down:-0} ms in all), $((r1 - r0)) TCP segments retransmitted"

	if [ $wrc = 0 ] && [ "$(jnum "$wl" threads)" = "$THREADS" ] &&
	   [ "$(jnum "$wl" touches)" = $((THREADS * TOUCHES)) ]; then
		pp_tap_ok "$name: all $THREADS threads finished"
	else
		pp_log "workload exit $wrc: $wl"
		pp_tap_fail "$name: all $THREADS threads finished"
	fi
	if [[ $wl == *'"verified":true'* ]] && [ "$(jnum "$wl" bad_pages)" = 0 ]; then
		pp_tap_ok "$name: the region is byte-identical to the source"
	else
		pp_tap_fail "$name: the region is byte-identical to the source"
	fi
	if [[ $st == *'"state":"complete"'* ]] && [ $src_rc = 0 ] &&
	   [[ $sv == *'"complete":true'* ]]; then
		pp_tap_ok "$name: session complete, the source saw COMPLETE"
	else
		pp_log "source exit $src_rc; status: $st"
		sed 's/^/# /' "$tmp/serve.out"
		pp_tap_fail "$name: session complete, the source saw COMPLETE"
	fi
	if counters_ok "$st" "$sv"; then
		pp_tap_ok "$name: counters consistent ($(jnum "$st" faults_held_total) holds, $(jnum "$st" requests_sent) requests, 0 SIGBUS)"
	else
		pp_log "status: $st"
		pp_log "source: $sv"
		pp_tap_fail "$name: counters consistent"
	fi
	# The test is only worth something if the link really went away.
	if [ "${flaps:-0}" -ge 4 ] && [ $((r1 - r0)) -gt 0 ]; then
		pp_tap_ok "$name: the link flapped ($flaps outages) and TCP retransmitted"
	else
		pp_tap_fail "$name: the link flapped ($flaps outages) and TCP retransmitted ($((r1 - r0)))"
	fi
}

# ---- 2. many migrations at once -------------------------------------------

# attach_one I: attach session I; its device in $tmp/dev-I.
attach_one()
{
	pp_dst "$PAGEPUSH" attach --name "load-$1" "${addrs[$1]}" \
		> "$tmp/dev-$1" 2> "$tmp/attach$1.err"
}

# workload_one I: the workload of session I, its status.
workload_one()
{
	local dev

	read -r dev < "$tmp/dev-$1" && [ -n "$dev" ] || return 1
	pp_dst timeout -s KILL $((2 * TIMEOUT + 60)) "$PP_WORKLOAD" \
		--ref "$src/s$1.bin" --json --access random --threads 4 \
		--touches 8 --seed "$1" --verify --verify-threads 2 \
		--timeout "$TIMEOUT" "$dev" > "$tmp/wl$1.json" 2>&1
}

many_at_once()
{
	local i n rc ok=0 most=0 refused=0 st wl sv size alive connected
	local pids=() addrs=() runs=() sargs=()

	size=$(bytes "$SESSION_SIZE")
	# No delay, no rate: what limits them is the guest itself.
	pp_link_shape "" 0
	for i in $(seq "$SESSIONS"); do
		"$PP_WORKLOAD" --create-ref "$size" --seed $((100 + i)) \
			--ref "$src/s$i.bin" &
		pids[i]=$!
		# Half of them pure postcopy: those wait for their workloads,
		# however fast the others go. (--no-drain: there is no
		# background stream to hold back.)
		[ $((i % 2)) = 0 ] && sargs[i]="--no-background --no-drain"
	done
	for i in $(seq "$SESSIONS"); do
		wait "${pids[i]}" || pp_log "cannot write $src/s$i.bin"
		pids[i]=
	done
	serve_all "$SESSIONS" "$tmp/serve" --page-size 2M \
		--stats-json "$tmp/stats@.json" "$src/s@.bin"
	for i in $(seq "$SESSIONS"); do
		attach_one "$i" &
		runs[i]=$!
	done
	for i in $(seq "$SESSIONS"); do
		wait "${runs[i]}"
	done
	count_of "$("$PAGEPUSH" status --json)" '"state":"connected"'
	connected=$COUNT
	most=$COUNT
	pp_log "$SESSIONS at once: attached after $SECONDS s, $connected connected"
	# While they migrate, the module must stay.
	! rmmod pagepush 2>/dev/null && [ -d /sys/module/pagepush ] && refused=1
	for i in $(seq "$SESSIONS"); do
		workload_one "$i" &
		runs[i]=$!
	done
	while :; do
		alive=0
		for i in "${runs[@]}"; do
			kill -0 "$i" 2>/dev/null && alive=1
		done
		[ $alive = 1 ] || break
		count_of "$("$PAGEPUSH" status --json)" '"state":"connected"'
		[ "$COUNT" -gt "$most" ] && most=$COUNT
		nap 1
	done
	pp_log "$SESSIONS at once: workloads done after $SECONDS s"
	for i in $(seq "$SESSIONS"); do
		wait "${runs[i]}"
		rc=$?
		if [ -n "${pids[i]}" ]; then
			wait_pid "${pids[i]}" 60 || rc=2
		fi
		st=$("$PAGEPUSH" status --json "load-$i" 2>/dev/null)
		wl=$(cat "$tmp/wl$i.json" 2>/dev/null)
		sv=$(cat "$tmp/stats$i.json" 2>/dev/null)
		if [ "$rc" = 0 ] && [[ $wl == *'"verified":true'* ]] &&
		   [[ $st == *'"state":"complete"'* ]] &&
		   [[ $sv == *'"complete":true'* ]]; then
			ok=$((ok + 1))
		else
			pp_log "session $i: rc $rc"
			sed 's/^/#   /' "$tmp/attach$i.err" 2>/dev/null
			pp_log "  workload: $wl"
			pp_log "  status: $st"
			sed 's/^/#   /' "$tmp/serve$i"
		fi
		"$PAGEPUSH" detach "load-$i" 2>/dev/null
	done
	pp_link_shape "" "$RTT"
	rm -f "$src"/s*.bin "$tmp"/dev-*

	pp_check "$SESSIONS at once: they migrated together ($connected connected once attached, $most at most)" \
		test "$connected" -ge $((SESSIONS / 2))
	pp_check "$SESSIONS at once: rmmod refused while they migrate" test $refused = 1
	pp_check "$SESSIONS at once: all complete and byte-identical ($ok of $SESSIONS)" \
		test "$ok" = "$SESSIONS"
}

# ---- 3. deleting live sessions, then unloading -------------------------------

meminfo()
{
	local k v _

	while read -r k v _; do
		[ "$k" = "$1:" ] && echo "$v" && return
	done < /proc/meminfo
}

module_pages()
{
	cat /sys/kernel/debug/pagepush/pages 2>/dev/null || echo -1
}

# live_one I: attach live session I and run a workload on it; the
# workload's status, or 1 when attach failed.
live_one()
{
	local dev

	dev=$(pp_dst "$PAGEPUSH" attach --name "live-$1" "${addrs[$1]}")
	[ -n "$dev" ] || return 1
	# More touches than pages: its tasks keep faulting to the end.
	pp_dst "$PP_WORKLOAD" --access random --threads 8 --touches 100000 \
		--seed "$1" "$dev" > "$tmp/live-wl$1.out" 2>&1
}

delete_live_then_unload()
{
	local n=4 i size free0 free1 pages kthreads nodes refcnt sigbus=0 rc
	local pids=() addrs=() wls=() held=0 present=0 connected=0 st

	size=$(bytes "$LIVE_SIZE")
	# Slow enough that the sessions are still migrating when deleted.
	pp_link_shape 200mbit "$RTT"
	"$PP_WORKLOAD" --create-ref "$size" --seed 300 --ref "$src/live.bin" ||
		pp_log "cannot write $src/live.bin"
	sync
	echo 3 > /proc/sys/vm/drop_caches
	free0=$(meminfo MemFree)
	serve_all $n "$tmp/live" --page-size 2M "$src/live.bin"
	# All together, so that they progress alike and none completes.
	for i in $(seq $n); do
		[ -n "${addrs[i]}" ] || continue
		live_one "$i" &
		wls[i]=$!
	done
	# A quarter of every session's pages arrived (128 MiB in all: a leak
	# of them would show in MemFree); tasks are held waiting for others.
	for ((i = 0; i < 600; i++)); do
		st=$("$PAGEPUSH" status --json)
		jall "$st" pages_present
		[ ${#NUMS[@]} = $n ] && [ "$MIN" -ge $((size / 2097152 / 4)) ] && break
		nap 0.1
	done
	present=$SUM
	jall "$st" faults_held_now
	held=$SUM
	count_of "$st" '"state":"connected"'
	connected=$COUNT
	pp_check "live sessions: $connected connected, $present pages arrived, $held tasks held in faults" \
		test "$held" -ge $n -a "$connected" = $n
	pp_check "live sessions: rmmod refused" \
		bash -c '! rmmod pagepush 2>/dev/null && [ -d /sys/module/pagepush ]'

	for i in $(seq $n); do
		"$PAGEPUSH" detach "live-$i"
	done
	for i in $(seq $n); do
		[ -n "${wls[i]}" ] || continue
		wait_pid "${wls[i]}" 30
		rc=$?
		# Absent pages of a deleted session: SIGBUS (7).
		if [ "$rc" = $((128 + 7)) ]; then
			sigbus=$((sigbus + 1))
		else
			pp_log "workload $i: exit $rc"
		fi
		wait_pid "${pids[i]}" 30
	done
	pp_check "live sessions: deleted; every workload got SIGBUS ($sigbus of $n)" \
		test "$sigbus" = $n

	kthreads=$(ps -e -o comm= | grep -c '^pagepush[0-9]')
	nodes=$(ls /dev/pagepush* 2>/dev/null | wc -l)
	pages=$(module_pages)
	refcnt=$(cat /sys/module/pagepush/refcnt)
	sync
	echo 3 > /proc/sys/vm/drop_caches
	free1=$(meminfo MemFree)
	rm -f "$src/live.bin"
	pp_check "after DEL: no receive thread, no device node ($kthreads, $nodes)" \
		test "$kthreads$nodes" = 00
	pp_check "after DEL: the module holds no page ($pages) and no reference ($refcnt)" \
		test "$pages$refcnt" = 00
	# The same files exist as at the baseline: what the sessions held
	# (128 MiB at least) must be free again, give or take 32 MiB.
	pp_check "after DEL: MemFree back to its baseline ($free0 -> $free1 kB)" \
		test "$free1" -ge $((free0 - 32768))
	pp_check "after DEL: rmmod succeeds" rmmod pagepush
	pp_check "the module loads again" modprobe pagepush
	pp_link_shape "" "$RTT"
}

# Parts to run (all by default): flap postcopy many live.
PARTS=" ${PP_LOAD_PARTS:-flap postcopy many live} "
part()
{
	[[ "$PARTS" == *" $1 "* ]]
}
plan=0
part flap && plan=$((plan + 5))
part postcopy && plan=$((plan + 5))
part many && plan=$((plan + 3))
part live && plan=$((plan + 8))
pp_tap_plan $plan

pp_link_up "" "$RTT" || { echo "# cannot set up the link"; exit 1; }
mkdir -p "$src"
# Huge pages for the sources' files: fewer, larger allocations, and less
# fragmentation for the destination's own 2 MiB pages.
mount -t tmpfs -o huge=always,size=$(($(bytes "$SIZE") / 1048576 + 64))m tmpfs "$src" ||
	pp_log "no huge tmpfs; the sources' files are on $src"

if part flap; then
	SECONDS=0
	"$PP_WORKLOAD" --create-ref "$(bytes "$SIZE")" --seed 1 --ref "$src/ref.bin"
	pp_log "$SIZE source file written in $SECONDS s"
	flapping "$SIZE, flapping link, background stream" 11 "$src/ref.bin"
	rm -f "$src/ref.bin"
fi
if part postcopy; then
	# Smaller: every page comes through a fault, more threads share each.
	# --no-drain: there is no background stream to hold back.
	"$PP_WORKLOAD" --create-ref "$(bytes "$POSTCOPY_SIZE")" --seed 2 \
		--ref "$src/ref.bin"
	flapping "$POSTCOPY_SIZE, flapping link, pure postcopy" 12 "$src/ref.bin" \
		--no-background --no-drain
	rm -f "$src/ref.bin"
fi
if part many; then
	SECONDS=0
	many_at_once
	pp_log "$SESSIONS at once: $SECONDS s"
fi
if part live; then
	SECONDS=0
	delete_live_then_unload
	pp_log "live sessions, deletion, unloading: $SECONDS s"
fi
pp_tap_done
