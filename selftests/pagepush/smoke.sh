#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A short check of an installed pagepush: where the module came from,
# one migration between two emulated hosts, every byte compared, and the
# udev rule (mode, /dev/pagepush/by-name/NAME). Run in the test VM by
# selftests/packaging.sh after 'dkms install'; also usable on a real host
# with pagepush installed. EXPECT_MODULE_DIR, if set, is where modinfo
# must find the module (e.g. updates/dkms).
. "$(dirname "$0")/lib.sh"
pp_require_root

tmp=$(mktemp -d)
trap 'pp_cleanup; rm -rf "$tmp"' EXIT
rules=${PP_UDEV_RULES:-$PP_ROOT/udev/60-pagepush.rules}

pp_tap_plan 5

path=$(modinfo -n pagepush 2>/dev/null)
pp_log "module: $path"
if [ -d /sys/module/pagepush ] && [ -n "$path" ] &&
   case "$path" in *"${EXPECT_MODULE_DIR:-}"/pagepush.ko) true ;; *) false ;; esac; then
	pp_tap_ok "the module is loaded from ${EXPECT_MODULE_DIR:-the module tree}"
else
	pp_tap_fail "the module is loaded from ${EXPECT_MODULE_DIR:-the module tree}"
fi

pp_link_up 200mbit 2 || { echo "# cannot set up the link"; exit 1; }
head -c 16M /dev/urandom > "$tmp/src.bin"
pp_serve_bg "$tmp/serve.out" --page-size 2M "$tmp/src.bin"
dev=$(pp_dst "$PAGEPUSH" attach --name smoke "$PP_SERVE_ADDR")
pp_dst "$PP_WORKLOAD" --access random --touches 8 --verify --ref "$tmp/src.bin" \
	--json "$dev" > "$tmp/wl.json" 2>&1
wait "$PP_SERVE_PID"
src=$?
if [ $src = 0 ] && grep -q '"verified":true' "$tmp/wl.json"; then
	pp_tap_ok "a migration, byte-identical"
else
	pp_log "source $src: $(cat "$tmp/wl.json")"
	pp_tap_fail "a migration, byte-identical"
fi

sys=/sys/class/pagepush/${dev#/dev/}
pp_check "the device announces its session to udev" \
	grep -qx 'PAGEPUSH_NAME=smoke' "$sys/uevent"
if command -v udevadm > /dev/null && [ -f "$rules" ]; then
	mkdir -p /run/udev/rules.d
	cp "$rules" /run/udev/rules.d/
	udevadm test --action=add "$sys" > "$tmp/udev.out" 2>&1
	pp_check "udev links /dev/pagepush/by-name/smoke" \
		grep -q 'pagepush/by-name/smoke' "$tmp/udev.out"
	pp_check "udev keeps the node 0600 root" \
		grep -qE "(MODE|mode).*0600" "$tmp/udev.out"
	rm -f /run/udev/rules.d/60-pagepush.rules
else
	pp_tap_skip "udev links /dev/pagepush/by-name/smoke (no udevadm)"
	pp_tap_skip "udev keeps the node 0600 root (no udevadm)"
fi
"$PAGEPUSH" detach "$dev"
pp_tap_done
