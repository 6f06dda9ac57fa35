#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module life: unload, load, autoload through the netlink family, and
# unloading refused while a session or a mapping holds the module.
# Leaves the module loaded.
. "$(dirname "$0")/lib.sh"
pp_require_root

loaded()
{
	[ -d /sys/module/pagepush ]
}

refcnt()
{
	cat /sys/module/pagepush/refcnt
}

pp_tap_plan 9

if ! loaded; then
	modprobe pagepush || insmod "$PP_ROOT/kernel/pagepush.ko"
fi

pp_check "module is loaded" loaded
pp_check "unload with no session" rmmod pagepush
pp_check "dmesg says unloaded" bash -c 'dmesg | tail -n 20 | grep -q "pagepush: unloaded"'
pp_check "load again" modprobe pagepush

rmmod pagepush
"$PAGEPUSH" status > /dev/null 2>&1
pp_check "resolving the family autoloads the module" loaded

dev=$("$PAGEPUSH" new --size 4M --page-size 2M)
if ! rmmod pagepush 2>/dev/null && loaded; then
	pp_tap_ok "unload refused while a session exists"
else
	pp_tap_fail "unload refused while a session exists"
	modprobe pagepush
	dev=$("$PAGEPUSH" new --size 4M --page-size 2M)
fi

"$PP_WORKLOAD" --hold 30 "$dev" > /tmp/pp-module-hold.$$ &
holder=$!
for i in $(seq 100); do
	grep -q holding /tmp/pp-module-hold.$$ 2>/dev/null && break
	sleep 0.05
done
"$PAGEPUSH" detach "$dev"
if ! rmmod pagepush 2>/dev/null && loaded; then
	pp_tap_ok "unload refused while a deleted session is still mapped"
else
	pp_tap_fail "unload refused while a deleted session is still mapped"
fi
kill "$holder"
wait "$holder" 2>/dev/null
rm -f /tmp/pp-module-hold.$$

pp_check "unload once the last mapping is gone" rmmod pagepush
pp_check "load again after all that" modprobe pagepush
pp_tap_done
