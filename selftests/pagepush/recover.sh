#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Recovery from lost connections, end to end with the helper: the session
# pauses (tasks stay held, nothing is lost), 'pagepush recover' or
# 'attach --persist' resumes it on new connections, and the migration
# ends byte-identical. Cuts: the source killed and restarted with the same
# cookie, connections aborted (ss -K) again and again, the link black-holed
# for longer than the link timeout. Also the give-up policy (pause
# timeout: then, and only then, SIGBUS).
#
#   source host (pp-src)  ===== 100 Mbit/s, 2 ms RTT =====  destination
. "$(dirname "$0")/lib.sh"
pp_require_root

SIZE=${PP_RECOVER_SIZE:-96M}
CUTS=${PP_RECOVER_CUTS:-12}
tmp=$(mktemp -d)
trap 'pp_cleanup; rm -rf "$tmp"' EXIT

pp_link_up 100mbit 2 || { echo "# cannot set up the link"; exit 1; }
head -c "$SIZE" /dev/urandom > "$tmp/src.bin"
dd if=/dev/zero of="$tmp/src.bin" bs=2M count=2 seek=5 conv=notrunc status=none

# field JSON KEY: a number from 'pagepush status --json'.
field()
{
	echo "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2
}

state()
{
	"$PAGEPUSH" status --json "$1" | grep -o '"state":"[a-z]*"' | cut -d'"' -f4
}

# wait_state DEV STATE [TENTHS]
wait_state()
{
	local i

	for i in $(seq "${3:-300}"); do
		[ "$(state "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_held DEV: some task is held on the session.
wait_held()
{
	local i

	for i in $(seq 300); do
		[ "$(field "$("$PAGEPUSH" status --json "$1")" faults_held_now)" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# first_line FILE: the first line a background command writes there.
first_line()
{
	local i line

	for i in $(seq 100); do
		line=$(head -n 1 "$1")
		[ -n "$line" ] && break
		sleep 0.1
	done
	echo "$line"
}

pp_tap_plan 14

# ---- 1. the source is killed, restarted with the same cookie -----------
COOKIE=0x5eed0001
pp_serve_bg "$tmp/serve1.out" --page-size 2M --cookie $COOKIE "$tmp/src.bin"
addr=$PP_SERVE_ADDR
dev=$(pp_dst "$PAGEPUSH" attach --link-timeout 3 "$addr")
pp_dst "$PP_WORKLOAD" --access random --touches 24 --seed 3 --verify \
	--ref "$tmp/src.bin" --json "$dev" > "$tmp/wl1.json" 2>&1 &
wl=$!
sleep 1
kill -9 "$PP_SERVE_PID"
wait "$PP_SERVE_PID" 2>/dev/null
pp_check "source killed: the session pauses" wait_state "$dev" paused
json=$("$PAGEPUSH" status --json "$dev")
if echo "$json" | grep -q 'connection lost' && [ "$(field "$json" faults_sigbus)" = 0 ] &&
   kill -0 "$wl" 2>/dev/null; then
	pp_tap_ok "paused: a reason, no SIGBUS, the workload waits"
else
	pp_log "status: $json"
	pp_tap_fail "paused: a reason, no SIGBUS, the workload waits"
fi
sleep 1
pp_check "paused: still paused, the workload still waits" \
	bash -c "[ \"\$('$PAGEPUSH' status --json $dev | grep -o '\"state\":\"[a-z]*\"')\" = '\"state\":\"paused\"' ] && kill -0 $wl"
# A source that does not know the migration is refused.
pp_serve_bg "$tmp/other.out" --page-size 2M "$tmp/src.bin"
if ! pp_dst "$PAGEPUSH" recover --connect-timeout 2 "$dev" "$PP_SERVE_ADDR" 2> "$tmp/other.err" &&
   grep -q 'unknown migration cookie' "$tmp/other.err" && [ "$(state "$dev")" = paused ]; then
	pp_tap_ok "recover to a source with another cookie is refused"
else
	sed 's/^/# /' "$tmp/other.err"
	pp_tap_fail "recover to a source with another cookie is refused"
fi
kill "$PP_SERVE_PID" 2>/dev/null
wait "$PP_SERVE_PID" 2>/dev/null
# The same migration, from a restarted source, on the same port.
pp_serve_bg "$tmp/serve2.out" --page-size 2M --cookie $COOKIE \
	--stats-json "$tmp/stats2.json" "$tmp/src.bin" --listen "$addr"
pp_check "recover to the restarted source" pp_dst "$PAGEPUSH" recover "$dev" "$addr"
wait "$wl"
wrc=$?
wait "$PP_SERVE_PID"
src=$?
json=$("$PAGEPUSH" status --json "$dev")
if [ $wrc = 0 ] && [ $src = 0 ] && grep -q '"verified":true' "$tmp/wl1.json" &&
   [ "$(state "$dev")" = complete ] && [ "$(field "$json" pauses)" = 1 ] &&
   [ "$(field "$json" recoveries)" = 1 ] && [ "$(field "$json" faults_sigbus)" = 0 ]; then
	pp_tap_ok "restarted source: complete, byte-identical, 1 pause, 1 recovery"
else
	pp_log "workload $wrc source $src: $(cat "$tmp/wl1.json")"
	pp_log "status: $json"
	sed 's/^/# /' "$tmp/serve2.out"
	pp_tap_fail "restarted source: complete, byte-identical, 1 pause, 1 recovery"
fi
# What the destination already had was not sent again.
present=$(grep -o '"recoveries":[0-9]*' "$tmp/stats2.json" | cut -d: -f2)
sent=$(grep -o '"pages":{"precopy":[0-9]*,"postcopy":[0-9]*' "$tmp/stats2.json" |
	grep -o '[0-9]*' | paste -sd+ | bc)
total=$(( $(stat -c %s "$tmp/src.bin") >> 21 ))
if [ "${present:-0}" = 1 ] && [ -n "$sent" ] && [ "$sent" -lt "$total" ]; then
	pp_tap_ok "the restarted source sent only what was missing ($sent of $total pages)"
else
	pp_tap_fail "the restarted source sent only what was missing (${sent:-?} of $total pages)"
fi
"$PAGEPUSH" detach "$dev"

# ---- 2. connections aborted again and again; attach --persist ----------
# Between cuts the link also flaps (down for 300 ms): TCP rides that out
# (the link timeout is long enough), so every pause is a cut.
pp_link_shape 10mbit 2
head -c 32M "$tmp/src.bin" > "$tmp/small.bin"
t0=$(date +%s)
pp_serve_bg "$tmp/serve3.out" --page-size 2M --stats-json "$tmp/stats3.json" \
	--link-timeout 15 "$tmp/small.bin"
pp_dst "$PAGEPUSH" attach --persist --link-timeout 15 "$PP_SERVE_ADDR" \
	> "$tmp/attach3.out" 2> "$tmp/attach3.err" &
att=$!
dev=$(first_line "$tmp/attach3.out")
pp_dst "$PP_WORKLOAD" --access random --threads 4 --touches 8 --seed 5 --verify \
	--ref "$tmp/small.bin" --json "$dev" > "$tmp/wl3.json" 2>&1 &
wl=$!
tried=0
cut=0
flaps=0
seed=${PP_RECOVER_SEED:-$RANDOM}
RANDOM=$seed
pp_log "cut seed $seed"
while [ $tried -lt "$CUTS" ] && [ "$(state "$dev")" != complete ]; do
	sleep "0.$((RANDOM % 7 + 3))"
	if [ $((RANDOM % 3)) = 0 ]; then
		pp_dst ip link set pp-dst down
		sleep 0.3
		pp_dst ip link set pp-dst up
		flaps=$((flaps + 1))
		continue
	fi
	# Only while connected: a cut during a recovery just fails that attempt.
	[ "$(state "$dev")" = connected ] || continue
	tried=$((tried + 1))
	# ss prints the sockets it killed: some, or the cut missed.
	[ "$(pp_dst ss -H -K -t dst "$PP_SRC_ADDR" | wc -l)" -gt 0 ] && cut=$((cut + 1))
done
wait "$wl"
wrc=$?
wait "$att"
arc=$?
wait "$PP_SERVE_PID"
src=$?
json=$("$PAGEPUSH" status --json "$dev")
pauses=$(field "$json" pauses)
recovered=$(field "$json" recoveries)
pp_log "cuts tried $tried, cut $cut, link flaps $flaps, pauses $pauses, recovered $recovered in $(( $(date +%s) - t0 )) s"
if [ $wrc = 0 ] && [ $arc = 0 ] && [ $src = 0 ] && grep -q '"verified":true' "$tmp/wl3.json" &&
   [ "$pauses" = "$recovered" ] && [ "$pauses" -ge 1 ] && [ "$pauses" -le "$cut" ]; then
	pp_tap_ok "$cut cuts: every pause recovered ($recovered), byte-identical"
else
	pp_log "workload $wrc attach $arc source $src: $(cat "$tmp/wl3.json")"
	pp_log "status: $json"
	sed 's/^/# /' "$tmp/attach3.err" | tail -n 20
	tail -n 20 "$tmp/serve3.out" | sed 's/^/# /'
	pp_tap_fail "$cut cuts: every pause recovered (${recovered:-?}), byte-identical"
fi
pp_check "no SIGBUS through the cuts" test "$(field "$json" faults_sigbus)" = 0
"$PAGEPUSH" detach "$dev"

# ---- 3. the link black-holed for longer than the link timeout ----------
pp_link_shape 100mbit 2
pp_serve_bg "$tmp/serve4.out" --page-size 2M --link-timeout 2 "$tmp/src.bin"
pp_dst "$PAGEPUSH" attach --persist --link-timeout 2 "$PP_SERVE_ADDR" \
	> "$tmp/attach4.out" 2> "$tmp/attach4.err" &
att=$!
dev=$(first_line "$tmp/attach4.out")
sleep 1
for ns in "$PP_SRC_NS" "$PP_DST_NS"; do
	d=pp-src; [ "$ns" = "$PP_DST_NS" ] && d=pp-dst
	tc -n "$ns" qdisc change dev "$d" root handle 1: netem delay 1ms loss 100%
done
paused=no
wait_state "$dev" paused 150 && paused=yes
for ns in "$PP_SRC_NS" "$PP_DST_NS"; do
	d=pp-src; [ "$ns" = "$PP_DST_NS" ] && d=pp-dst
	tc -n "$ns" qdisc change dev "$d" root handle 1: netem delay 1ms loss 0%
done
wait "$att"
arc=$?
wait "$PP_SERVE_PID"
src=$?
pp_dst "$PP_WORKLOAD" --access seq --verify --ref "$tmp/src.bin" --json "$dev" > "$tmp/wl4.json" 2>&1
if [ $paused = yes ] && [ $arc = 0 ] && [ $src = 0 ] && grep -q '"verified":true' "$tmp/wl4.json"; then
	pp_tap_ok "black hole: paused after the link timeout, recovered, byte-identical"
else
	pp_log "paused $paused attach $arc source $src"
	tail -n 5 "$tmp/attach4.err" | sed 's/^/# /'
	tail -n 5 "$tmp/serve4.out" | sed 's/^/# /'
	pp_tap_fail "black hole: paused after the link timeout, recovered, byte-identical"
fi
"$PAGEPUSH" detach "$dev"

# ---- 4. giving up: the pause timeout fails the session, then SIGBUS ----
pp_link_shape 20mbit 2
pp_serve_bg "$tmp/serve5.out" --page-size 2M --recover-timeout 0 "$tmp/src.bin"
dev=$(pp_dst "$PAGEPUSH" attach --pause-timeout 2 "$PP_SERVE_ADDR")
pp_dst "$PP_WORKLOAD" --access seq --verify --ref "$tmp/src.bin" "$dev" > "$tmp/wl5.out" 2>&1 &
wl=$!
wait_held "$dev"
kill -9 "$PP_SERVE_PID"
wait "$PP_SERVE_PID" 2>/dev/null
pp_check "pause timeout: paused first" wait_state "$dev" paused 100
wait "$wl"
wrc=$?
json=$("$PAGEPUSH" status --json "$dev")
if [ $wrc = $((128 + 7)) ] && echo "$json" | grep -q '"state":"failed"' &&
   echo "$json" | grep -q 'not recovered within 2 s'; then
	pp_tap_ok "pause timeout: failed with a reason, the held task got SIGBUS"
else
	pp_log "workload exit $wrc; status $json"
	pp_tap_fail "pause timeout: failed with a reason, the held task got SIGBUS"
fi
"$PAGEPUSH" detach "$dev"

# ---- 5. detach: the source is told (ABORT) and exits at once -----------
pp_serve_bg "$tmp/serve6.out" --page-size 2M "$tmp/src.bin"
dev=$(pp_dst "$PAGEPUSH" attach "$PP_SERVE_ADDR")
sleep 0.5
"$PAGEPUSH" detach "$dev"
for i in $(seq 50); do
	kill -0 "$PP_SERVE_PID" 2>/dev/null || break
	sleep 0.1
done
if ! kill -0 "$PP_SERVE_PID" 2>/dev/null && wait "$PP_SERVE_PID"; [ $? = 3 ] &&
   grep -q 'gave up' "$tmp/serve6.out"; then
	pp_tap_ok "detach: the source learns it (ABORT) and exits 3"
else
	sed 's/^/# /' "$tmp/serve6.out"
	kill "$PP_SERVE_PID" 2>/dev/null
	pp_tap_fail "detach: the source learns it (ABORT) and exits 3"
fi

pages=$(cat /sys/kernel/debug/pagepush/pages 2>/dev/null || echo 0)
pp_check "no page left behind ($pages)" test "$pages" = 0
pp_tap_done
