# SPDX-License-Identifier: GPL-2.0
#
# pagepush: the kernel module, the helper, the selftests, the test VM.
#
#   make              module (kernel/pagepush.ko), helper (user/pagepush),
#                     selftests
#   make deps         install what building and testing need (Debian apt)
#   make check        run every selftest suite in the test VM
#   make check-packaging  install, uninstall, sign and dkms on this host (root),
#                     then the test VM with the dkms-built module
#   make demo         a migration between two emulated hosts, verified
#   make vm-run CMD=  run a command as root in the test VM
#   make bench        benchmarks in the test VM: bench/results/, tables, plots
#   make style        checkpatch --strict, sparse, W=1
#   make install      module (+depmod), helper, man page, udev rule, uapi
#                     header (DESTDIR, PREFIX, UDEVDIR, MANDIR)
#   make uninstall    what make install put in place
#   make sign         sign kernel/pagepush.ko with the DKMS MOK key
#   make dkms-install sources into /usr/src/pagepush-VERSION for dkms
#   make kernels      build the module against every installed kernel tree
#   make deps-kernels install the newest headers of each kernel series and
#                     flavour Debian's apt offers (for make kernels)
#
# KDIR is the kernel build tree; by default the headers of the kernel the
# test VM boots. On a real host: make KDIR=/lib/modules/$(uname -r)/build

VERSION := $(shell cat VERSION)
KVER ?= $(shell selftests/qemu/kernel.sh 2>/dev/null)
KDIR ?= /lib/modules/$(KVER)/build
DESTDIR ?=
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
UDEVDIR ?= /etc/udev/rules.d
KSRC_TAR ?= $(lastword $(sort $(wildcard /usr/src/linux-source-*.tar.xz)))

# Debian packages: build, test VM, tests, benchmarks, style, packaging.
DEPS := build-essential pkg-config kmod linux-headers-amd64 linux-image-amd64 \
	libnl-3-dev libnl-genl-3-dev qemu-system-x86 busybox-static cpio \
	iproute2 iperf3 procps linux-source-6.1 xz-utils sparse gnuplot-nox dkms

all: module user selftests

module:
	@[ -f "$(KDIR)/Makefile" ] || { echo "no kernel build tree at '$(KDIR)': run 'make deps', or set KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) PAGEPUSH_VERSION=$(VERSION) modules

user:
	$(MAKE) -C user

selftests: build/ksrc/.stamp
	$(MAKE) -C selftests KSFT_SRC=$(CURDIR)/build/ksrc/tools/testing/selftests

# Files taken from the kernel source tarball, in one pass: the kselftest
# framework and checkpatch. Never committed.
KSRC_FILES := scripts/checkpatch.pl scripts/spelling.txt \
	scripts/const_structs.checkpatch \
	tools/testing/selftests/lib.mk tools/testing/selftests/kselftest_harness.h \
	tools/testing/selftests/kselftest.h \
	tools/testing/selftests/kselftest/runner.sh \
	tools/testing/selftests/kselftest/prefix.pl

build/ksrc/.stamp:
	@[ -n "$(KSRC_TAR)" ] || { echo "no /usr/src/linux-source-*.tar.xz: run 'make deps'" >&2; exit 1; }
	@mkdir -p build/ksrc
	tar -xJf $(KSRC_TAR) -C build/ksrc --strip-components=1 --wildcards \
		$(foreach f,$(KSRC_FILES),'*/$(f)')
	@touch $@

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps needs root (apt-get)" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

check: deps
	$(MAKE) all
	selftests/qemu/check.sh

check-packaging: deps
	$(MAKE) all
	selftests/packaging.sh

vm-run: deps
	$(MAKE) all
	selftests/qemu/run.sh -- '$(CMD)'

demo: deps
	$(MAKE) all
	selftests/qemu/run.sh -- 'selftests/pagepush/demo.sh'

CHECKPATCH := build/ksrc/scripts/checkpatch.pl --strict --no-tree --show-types \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG

# Installing on a real host: the module (then depmod), the helper, its
# man page, the udev rule, the uapi header. DESTDIR stages it (no depmod,
# no udev reload then); KVER names the kernel to install for.
INSTALL_MOD_DIR ?= extra
install: module user
	install -D -m 0644 kernel/pagepush.ko \
		$(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/pagepush.ko
	[ -n "$(DESTDIR)" ] || depmod -a $(KVER)
	$(MAKE) -C user install DESTDIR=$(DESTDIR) PREFIX=$(PREFIX)
	install -D -m 0644 man/pagepush.8 $(DESTDIR)$(MANDIR)/man8/pagepush.8
	install -D -m 0644 udev/60-pagepush.rules \
		$(DESTDIR)$(UDEVDIR)/60-pagepush.rules
	[ -n "$(DESTDIR)" ] || udevadm control --reload 2>/dev/null || true
	install -D -m 0644 kernel/uapi/linux/pagepush.h \
		$(DESTDIR)$(PREFIX)/include/linux/pagepush.h

uninstall:
	rm -f $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/pagepush.ko
	[ -n "$(DESTDIR)" ] || depmod -a $(KVER)
	rm -f $(DESTDIR)$(PREFIX)/sbin/pagepush \
		$(DESTDIR)$(MANDIR)/man8/pagepush.8 \
		$(DESTDIR)$(UDEVDIR)/60-pagepush.rules \
		$(DESTDIR)$(PREFIX)/include/linux/pagepush.h

# Secure Boot hosts load only signed modules: sign with the machine owner
# key DKMS uses (it creates one at its first signed build), enrolled once
# with 'mokutil --import $(MOK_CERT)' and a reboot.
MOK_KEY ?= /var/lib/dkms/mok.key
MOK_CERT ?= /var/lib/dkms/mok.pub
sign: module
	@[ -r "$(MOK_KEY)" ] && [ -r "$(MOK_CERT)" ] || { \
		echo "no MOK key pair at $(MOK_KEY) and $(MOK_CERT): build any dkms module once" >&2; \
		echo "(dkms creates them), or set MOK_KEY and MOK_CERT; then enrol the" >&2; \
		echo "certificate: mokutil --import $(MOK_CERT), and reboot" >&2; exit 1; }
	$(KDIR)/scripts/sign-file \
		$$(sed -n 's/^CONFIG_MODULE_SIG_HASH="\(.*\)"/\1/p' $(KDIR)/.config | grep . || echo sha256) \
		$(MOK_KEY) $(MOK_CERT) kernel/pagepush.ko
	@echo "signed kernel/pagepush.ko: $$(modinfo -F signer kernel/pagepush.ko)"


# The sources dkms builds from, and nothing else (no tests, no helper).
DKMS_SOURCES := Kbuild VERSION dkms.conf kernel/Kbuild \
	$(wildcard kernel/*.c kernel/*.h) kernel/compat/compat.h \
	kernel/uapi/linux/pagepush.h
dkms-install:
	@for f in $(filter-out %.mod.c,$(DKMS_SOURCES)); do \
		install -D -m 0644 $$f $(DESTDIR)/usr/src/pagepush-$(VERSION)/$$f || exit; \
	done
	@echo "sources in $(DESTDIR)/usr/src/pagepush-$(VERSION); now: dkms install pagepush/$(VERSION)"

# Portability: the module builds, warning-free (W=1), against every kernel
# tree installed here, each in its own copy of the sources.
kernels:
	@trees=$$(ls -d /lib/modules/*/build 2>/dev/null); \
	[ -n "$$trees" ] || { echo "no kernel trees in /lib/modules: make deps-kernels" >&2; exit 1; }; \
	fail=0; for t in $$trees; do \
		k=$$(basename $$(dirname $$t)); d=build/kernels/$$k; \
		rm -rf $$d; mkdir -p $$d; \
		cp -r Kbuild VERSION kernel $$d/; \
		find $$d -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd' | xargs rm -f; \
		if $(MAKE) -s -C $$t M=$(CURDIR)/$$d W=1 PAGEPUSH_VERSION=$(VERSION) modules > $$d.log 2>&1 && \
		   ! grep -qE 'warning|error' $$d.log; then \
			echo "kernels: $$k ok"; \
		else \
			echo "kernels: $$k FAILED:"; sed 's/^/  /' $$d.log; fail=1; \
		fi; \
	done; exit $$fail

# The newest headers of each series (6.1, 6.12, ...) and flavour (amd64,
# cloud-amd64, rt-amd64) that apt offers: what 'make kernels' builds for.
deps-kernels:
	@pkgs=$$(apt-cache search --names-only '^linux-headers-[0-9][0-9.+a-z-]*-(amd64|cloud-amd64|rt-amd64)$$' | \
		awk '{ print $$1 }' | \
		awk '{ flav = $$0; sub(/^linux-headers-[0-9]+\.[0-9]+[^-]*-([0-9]+-)?/, "", flav); \
		       ser = $$0; sub(/^linux-headers-/, "", ser); split(ser, v, "."); \
		       print v[1] "." v[2] " " flav " " $$0 }' | \
		sort -k1,1 -k2,2 -k3,3V | awk '{ last[$$1 " " $$2] = $$3 } END { for (k in last) print last[k] }'); \
	echo "installing:" $$pkgs; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs

bench: deps
	$(MAKE) all
	$(MAKE) -C bench
	rm -rf bench/results/runs bench/results/rows.tsv
	VM_MEM=6G VM_TIMEOUT=1500 selftests/qemu/run.sh --out bench/results -- 'bench/run.sh'
	bench/report.sh bench/results

style: build/ksrc/.stamp module
	$(CHECKPATCH) -f $(filter-out %.mod.c,$(wildcard kernel/*.c)) \
		$(filter-out kernel/trace.h,$(wildcard kernel/*.h)) kernel/uapi/linux/*.h
	@# TRACE_EVENT() bodies have their own layout.
	$(CHECKPATCH) --ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT -f kernel/trace.h
	$(CHECKPATCH) --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON \
		-f kernel/compat/*.h
	$(MAKE) -C $(KDIR) M=$(CURDIR) C=2 W=1 modules 2>&1 | \
		tee build/sparse.log; ! grep -E 'warning|error' build/sparse.log

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	$(MAKE) -C user clean
	$(MAKE) -C bench clean
	-$(MAKE) -C selftests clean
	rm -rf build

.PHONY: all module user selftests deps check check-packaging vm-run demo bench style clean \
	install uninstall sign dkms-install kernels deps-kernels
