#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs preempt_test between two emulated hosts joined by a slow link, so a
# 2 MiB page takes hundreds of milliseconds on the wire:
#
#   source (pp-src) ---- 40 Mbit/s, 2 ms RTT ---- destination (pp-dst)
#   pagepush serve                                attach, faulting tasks
. "$(dirname "$0")/lib.sh"
pp_require_root

pp_link_up "${PP_PREEMPT_RATE:-40mbit}" "${PP_PREEMPT_RTT:-2}" || exit 1
export PP_SRC_NS PP_DST_NS PP_SRC_ADDR PAGEPUSH
"$(dirname "$0")/preempt_test"
