#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Print the newest kernel release for which both the image
# (/boot/vmlinuz-REL) and the build tree (/lib/modules/REL/build, from the
# matching linux-headers package) are installed. The test VM boots that
# kernel and the module is built against those headers, so a point release
# that brings one without the other never splits the pair.
set -eu

best=
for img in /boot/vmlinuz-*; do
	[ -e "$img" ] || continue
	rel=${img#/boot/vmlinuz-}
	[ -f "/lib/modules/$rel/build/Makefile" ] || continue
	[ -d "/lib/modules/$rel/kernel" ] || continue
	best=$(printf '%s\n%s\n' "$best" "$rel" | sed '/^$/d' | sort -V | tail -n 1)
done

if [ -z "$best" ]; then
	echo "kernel.sh: no kernel has both /boot/vmlinuz-REL and /lib/modules/REL/build;" >&2
	echo "kernel.sh: run 'make deps' (installs linux-image-amd64 and linux-headers-amd64)" >&2
	exit 1
fi
echo "$best"
