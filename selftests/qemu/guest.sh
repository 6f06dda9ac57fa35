#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM, chrooted into the host's root (read-only).
# Gives the guest writable /tmp and /run, devtmpfs, debugfs and tracefs,
# points modprobe at a module index that includes the freshly built
# pagepush.ko, loads it, runs RUNDIR/cmd from the repository and leaves
# RUNDIR/status and RUNDIR/dmesg for the host.
#
# usage: guest.sh RUNDIR REPO
run=$1
repo=$2

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
# The repository and the run directory may live under /tmp or /run (a
# clone in /tmp): keep them visible through the tmpfs mounted there.
hold=/dev/.pp-hold
held=()
for path in "$repo" "$run"; do
	case "$path" in
	/tmp/*|/run/*)
		mkdir -p "$hold/${#held[@]}"
		mount --rbind "$path" "$hold/${#held[@]}"
		held+=("$path")
		;;
	esac
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
for i in "${!held[@]}"; do
	mkdir -p "${held[$i]}"
	mount --rbind "$hold/$i" "${held[$i]}"
done
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t hugetlbfs hugetlbfs /dev/hugepages 2>/dev/null
mkdir -p /run/netns

export HOME=/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export TMPDIR=/tmp LANG=C.UTF-8 PP_OUT=$run/out
hostname pagepush-vm
ip link set lo up

# modprobe reads /lib/modules/$(uname -r): show it the index the host built
# with pagepush.ko added, over the real module tree.
kver=$(uname -r)
if [ -f "$run/modules/modules.dep" ]; then
	mkdir -p /run/pagepush/orig-modules
	mount --bind "/lib/modules/$kver" /run/pagepush/orig-modules
	mount -t tmpfs -o mode=755 tmpfs "/lib/modules/$kver"
	cp -a "$run/modules/." "/lib/modules/$kver/"
	ln -s /run/pagepush/orig-modules/kernel "/lib/modules/$kver/kernel"
fi


status=0
if [ -z "${PP_NOLOAD:-}" ] && [ ! -f "$run/noload" ]; then
	if ! modprobe pagepush; then
		echo "pagepush-vm: modprobe pagepush failed"
		status=125
	fi
fi

if [ "$status" = 0 ]; then
	cd "$repo" || exit 1
	bash "$run/cmd"
	status=$?
fi

dmesg > "$run/dmesg" 2>&1
echo "$status" > "$run/status"
sync
