#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Build the test VM's initramfs: a static busybox, the guest's PID 1
# (selftests/qemu/init) and the modules needed to reach the host's root
# over virtio-9p, listed in load order. Everything else the guest runs
# comes from the host's root, shared read-only.
#
# usage: initramfs.sh KERNELRELEASE OUTPUT.cpio.gz
set -eu

kver=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || busybox=/bin/busybox

if ! "$busybox" 2>&1 | grep -q 'statically linked' && ! file "$busybox" 2>/dev/null | grep -q static; then
	# Debian's busybox-static is static; a dynamic one would need its libs.
	if ! ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
		echo "initramfs.sh: $busybox is not static; run 'make deps' (busybox-static)" >&2
		exit 1
	fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/dev" "$tmp/proc" "$tmp/sys" "$tmp/host" "$tmp/modules"
cp "$busybox" "$tmp/bin/busybox"
cp "$here/init" "$tmp/init"
chmod 755 "$tmp/init"

: > "$tmp/modules/order"
for mod in virtio_pci 9pnet_virtio 9p; do
	modprobe --show-depends -S "$kver" "$mod" | while read -r cmd path _; do
		[ "$cmd" = insmod ] || continue
		name=$(basename "$path")
		grep -qx "$name" "$tmp/modules/order" && continue
		cp "$path" "$tmp/modules/$name"
		echo "$name" >> "$tmp/modules/order"
	done
done

mkdir -p "$(dirname "$out")"
(cd "$tmp" && find . | cpio --quiet -o -H newc) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
