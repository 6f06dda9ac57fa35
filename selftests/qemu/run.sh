#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the test VM and run one shell command in it as root.
#
#   run.sh [--no-load] [--system-modules] [--log FILE] [--out DIR] -- COMMAND...
#
# The guest sees the host's root read-only (the repository at the same
# path), has writable tmpfs on /tmp and /run, and has kernel/pagepush.ko
# loaded (modprobe finds it, so autoload works too). With --system-modules
# the guest loads the pagepush module installed on the host instead (dkms,
# make install), from /lib/modules as it is. The console is
# streamed. COMMAND may write files to $PP_OUT; with --out they are copied
# to DIR on the host. The exit status is COMMAND's, or:
#   124  the guest did not finish within VM_TIMEOUT seconds
#   125  the guest never ran the command (boot or module load failed)
#   126  the command finished but the kernel log shows BUG:, WARNING:,
#        Oops, general protection, KASAN, lockdep or kmemleak reports
#
# Environment: KVER (kernel release, default: selftests/qemu/kernel.sh),
# VM_ACCEL (kvm|tcg, default: probe KVM once, fall back to TCG), VM_CPU
# (TCG CPU model, default max,-erms,-fsrm), VM_MEM
# (default 4G), VM_SMP (default 2), VM_TIMEOUT (default 1800),
# VM_APPEND (extra kernel command line).
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${VM_BUILD:-$repo/build/qemu}
noload=
sysmods=
log=
out=

while [ $# -gt 0 ]; do
	case "$1" in
	--no-load) noload=1; shift ;;
	--system-modules) sysmods=1; shift ;;
	--log) log=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
if [ $# -eq 0 ]; then
	echo "usage: run.sh [--no-load] [--log FILE] -- COMMAND..." >&2
	exit 2
fi

kver=${KVER:-$("$here/kernel.sh")} || exit 125
vmlinuz=/boot/vmlinuz-$kver
initrd=$build/initramfs-$kver.cpio.gz
ko=$repo/kernel/pagepush.ko

if [ ! -f "$initrd" ] || [ "$here/init" -nt "$initrd" ] || [ "$here/initramfs.sh" -nt "$initrd" ]; then
	"$here/initramfs.sh" "$kver" "$initrd" || exit 125
fi
if [ -z "$noload" ] && [ -z "$sysmods" ] && [ ! -f "$ko" ]; then
	echo "run.sh: $ko is missing; run 'make' first" >&2
	exit 125
fi

qemu=(qemu-system-x86_64 -nodefaults -nographic -no-reboot
	-m "${VM_MEM:-4G}" -smp "${VM_SMP:-2}"
	-kernel "$vmlinuz" -initrd "$initrd"
	-serial stdio -nic none
	-device virtio-rng-pci)
# qboot starts the kernel faster than SeaBIOS under TCG.
[ -f /usr/share/qemu/qboot.rom ] && qemu+=(-bios qboot.rom)
cmdline="console=ttyS0 panic=-1 loglevel=5 printk.time=1 log_buf_len=8M"
cmdline+=" transparent_hugepage=always ${VM_APPEND:-}"

# KVM is tried once per build tree: a nested KVM that hangs at the kernel
# entry is common, and TCG is always there.
accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
	if [ -f "$build/accel" ]; then
		accel=$(cat "$build/accel")
	else
		accel=tcg
		if [ -w /dev/kvm ] && timeout 15 "${qemu[@]}" -accel kvm -cpu host \
			-append "$cmdline pp.probe=1" 2>/dev/null | grep -q 'pagepush-vm: probe ok'; then
			accel=kvm
		fi
		mkdir -p "$build"
		echo "$accel" > "$build/accel"
	fi
fi
if [ "$accel" = kvm ]; then
	qemu+=(-accel kvm -cpu host)
else
	# Without ERMS/FSRM the guest kernel copies with plain moves, which TCG
	# runs several times faster than "rep movsb": every copy from a socket
	# (pagepush's and user space's alike) would be dominated by it.
	qemu+=(-accel tcg -cpu "${VM_CPU:-max,-erms,-fsrm}")
fi

mkdir -p "$build"
rundir=$(mktemp -d "$build/run.XXXXXX")
trap 'rm -rf "$rundir"' EXIT
printf '%s\n' "$*" > "$rundir/cmd"
mkdir -p "$rundir/out"
[ -n "$noload" ] && : > "$rundir/noload"

# A module index for modprobe with pagepush.ko added (see guest.sh).
if [ -z "$sysmods" ] && [ -f "$ko" ]; then
	modroot=$rundir/modroot
	mods=$modroot/lib/modules/$kver
	mkdir -p "$mods/updates"
	ln -s "/lib/modules/$kver/kernel" "$mods/kernel"
	cp "/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$mods/"
	cp "$ko" "$mods/updates/"
	if depmod -b "$modroot" "$kver"; then
		rm "$mods/kernel"
		mv "$mods" "$rundir/modules"
	fi
	rm -rf "$modroot"
fi

qemu+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$rundir,mount_tag=rundir,security_model=none,multidevs=remap"
	-append "$cmdline pp.run=$rundir pp.repo=$repo")

echo "run.sh: booting $kver ($accel) for: $*" >&2
console=$rundir/console
timeout --foreground -k 5 "${VM_TIMEOUT:-1800}" "${qemu[@]}" < /dev/null 2>&1 | tee "$console"
qrc=${PIPESTATUS[0]}
[ -n "$log" ] && cp "$console" "$log"
if [ -n "$out" ]; then
	mkdir -p "$out"
	cp -r "$rundir/out/." "$out/"
fi

if [ ! -f "$rundir/status" ]; then
	if [ "$qrc" = 124 ]; then
		echo "run.sh: the guest did not finish within ${VM_TIMEOUT:-1800} s" >&2
		exit 124
	fi
	echo "run.sh: the guest stopped before the command finished (qemu exit $qrc)" >&2
	exit 125
fi
status=$(cat "$rundir/status")

# Kernel lines only: they carry a printk timestamp, test output does not.
pattern='BUG:|WARNING:|Oops|general protection|KASAN|lockdep|possible circular locking|kmemleak'
bad=$(cat "$console" "$rundir/dmesg" 2>/dev/null |
	grep -aE '^\[ *[0-9]+\.[0-9]+\]' | grep -aE "$pattern" | sort -u)
if [ -n "$bad" ]; then
	echo "run.sh: the kernel log reports problems:" >&2
	echo "$bad" >&2
	[ "$status" = 0 ] && status=126
fi
exit "$status"
