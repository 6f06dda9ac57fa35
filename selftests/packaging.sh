#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-packaging: pagepush as a user installs it, on the host (as
# root): 'make install' into a staging tree and 'make uninstall', 'make
# sign', and dkms: 'make dkms-install', 'dkms add', 'dkms build' and
# 'dkms install' for the kernel the test VM boots; then the VM boots with
# that module, loaded from /lib/modules/KVER/updates/dkms, and runs
# selftests/pagepush/smoke.sh (a migration, the udev rule); 'dkms remove'
# at the end. TAP; the last line is "N passed, N failed, N skipped".
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo" || exit 1
kver=${KVER:-$(selftests/qemu/kernel.sh)} || exit 1
version=$(cat VERSION)
tmp=$(mktemp -d)
pass=0 fail=0 skip=0 n=0
log=build/packaging.log
mkdir -p build
: > "$log"

ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n $*"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n $*"; }
check() { local d=$1; shift; if "$@" >> "$log" 2>&1; then ok "$d"; else not_ok "$d"; fi; }

cleanup()
{
	dkms remove "pagepush/$version" --all >> "$log" 2>&1
	rm -rf "/usr/src/pagepush-$version" "$tmp"
}

if [ "$(id -u)" != 0 ]; then
	echo "packaging.sh: needs root (dkms, /usr/src)" >&2
	exit 4
fi
for tool in dkms depmod modinfo man; do
	command -v $tool > /dev/null || { echo "packaging.sh: no $tool: run 'make deps'" >&2; exit 1; }
done
trap cleanup EXIT
echo "TAP version 13"
echo "1..12"

# ---- make install / uninstall / sign -----------------------------------
dest=$tmp/dest
make -s install DESTDIR="$dest" PREFIX=/usr >> "$log" 2>&1
want="etc/udev/rules.d/60-pagepush.rules lib/modules/$kver/extra/pagepush.ko
usr/include/linux/pagepush.h usr/sbin/pagepush usr/share/man/man8/pagepush.8"
got=$(cd "$dest" 2>/dev/null && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')
if [ "$got" = "$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')" ]; then
	ok "make install DESTDIR lays out module, helper, man page, udev rule, header"
else
	echo "# got: $got"
	not_ok "make install DESTDIR lays out module, helper, man page, udev rule, header"
fi
check "the installed module is built for $kver" \
	bash -c "modinfo -F vermagic '$dest/lib/modules/$kver/extra/pagepush.ko' | grep -q '^$kver '"
check "the man page renders without warnings" \
	bash -c "! man --warnings -l '$dest/usr/share/man/man8/pagepush.8' 2>&1 >/dev/null | grep ."
make -s uninstall DESTDIR="$dest" PREFIX=/usr >> "$log" 2>&1
check "make uninstall removes all of it" \
	bash -c "[ -z \"\$(find '$dest' -type f)\" ]"
openssl req -new -x509 -nodes -days 1 -subj "/CN=pagepush packaging test" \
	-newkey rsa:2048 -keyout "$tmp/mok.key" -outform DER -out "$tmp/mok.der" >> "$log" 2>&1
cp kernel/pagepush.ko "$tmp/unsigned.ko"
check "make sign signs the module with the MOK key" \
	bash -c "make -s sign MOK_KEY='$tmp/mok.key' MOK_CERT='$tmp/mok.der' &&
		 modinfo -F signer kernel/pagepush.ko | grep -qx 'pagepush packaging test'"
# Leave the tree's module as it was.
cp "$tmp/unsigned.ko" kernel/pagepush.ko

# ---- dkms ---------------------------------------------------------------
dkms remove "pagepush/$version" --all >> "$log" 2>&1
rm -rf "/usr/src/pagepush-$version"
make -s dkms-install >> "$log" 2>&1
check "make dkms-install copies the module sources only" \
	bash -c "cd /usr/src/pagepush-$version && [ -f dkms.conf ] && [ -f kernel/uapi/linux/pagepush.h ] &&
		 ! find . -path ./kernel -prune -o -type f -print | grep -vE '^\./(Kbuild|VERSION|dkms.conf)$' | grep . &&
		 ! find . -name '*.o' -o -name '*.ko' -o -name '*test*' | grep ."
check "dkms add" dkms add "pagepush/$version"
check "dkms build -k $kver" dkms build "pagepush/$version" -k "$kver"
check "dkms install -k $kver" dkms install "pagepush/$version" -k "$kver" --force
check "the module is in /lib/modules/$kver/updates/dkms" \
	test -f "/lib/modules/$kver/updates/dkms/pagepush.ko"

# ---- the VM loads the dkms module --------------------------------------
if VM_TIMEOUT=${VM_TIMEOUT:-600} KVER=$kver selftests/qemu/run.sh --system-modules \
	--log "$tmp/vm.log" -- 'EXPECT_MODULE_DIR=updates/dkms selftests/pagepush/smoke.sh' >> "$log" 2>&1 &&
   grep -aq '^# 5 passed, 0 failed' "$tmp/vm.log"; then
	ok "the test VM loads the dkms module and migrates with it (smoke.sh)"
else
	grep -aE '^(not )?ok|^#' "$tmp/vm.log" | sed 's/^/# /'
	not_ok "the test VM loads the dkms module and migrates with it (smoke.sh)"
fi

dkms remove "pagepush/$version" --all >> "$log" 2>&1
check "dkms remove takes it away" \
	bash -c "[ ! -e /lib/modules/$kver/updates/dkms/pagepush.ko ] && ! dkms status | grep -q pagepush"

[ $fail = 0 ] || echo "# details: $log"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
