#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Print the kernel release the test VM boots and the module is built
# against: the one Debian's linux-image-amd64 stands for (6.1 on Debian
# 12), if its image (/boot/vmlinuz-REL), modules and build tree (the
# matching linux-headers package) are installed. Otherwise the newest
# release of the generic flavour for which all three are. Other kernels
# (6.12 from 'make deps-kernels', cloud and rt flavours) are only built
# for ('make kernels'), never booted. KVER overrides all of this.
set -eu

usable()
{
	[ -f "/boot/vmlinuz-$1" ] && [ -f "/lib/modules/$1/build/Makefile" ] &&
		[ -d "/lib/modules/$1/kernel" ]
}

meta=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null |
	grep -o 'linux-image-[^ ,]*' | head -n 1 | sed 's/^linux-image-//') || meta=
if [ -n "$meta" ] && usable "$meta"; then
	echo "$meta"
	exit 0
fi

best=
for img in /boot/vmlinuz-*; do
	[ -e "$img" ] || continue
	rel=${img#/boot/vmlinuz-}
	case $rel in
	*-cloud-amd64|*-rt-amd64) continue ;;
	esac
	usable "$rel" || continue
	best=$(printf '%s\n%s\n' "$best" "$rel" | sed '/^$/d' | sort -V | tail -n 1)
done

if [ -z "$best" ]; then
	echo "kernel.sh: no kernel has both /boot/vmlinuz-REL and /lib/modules/REL/build;" >&2
	echo "kernel.sh: run 'make deps' (installs linux-image-amd64 and linux-headers-amd64)" >&2
	exit 1
fi
echo "$best"
