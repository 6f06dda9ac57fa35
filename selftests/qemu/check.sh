#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: boot the test VM once, run every kselftest suite under
# selftests/ in it (make -C selftests run_tests, as on a real host), and
# count the results from the TAP on the console. The last line is
# "N passed, N failed, N skipped". Exits non-zero on any failed test, a
# guest that did not finish, or kernel warnings on the console.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
log=${CHECK_LOG:-$repo/build/check.log}
mkdir -p "$(dirname "$log")"

"$here/run.sh" --log "$log" -- 'make --no-print-directory -C selftests run_tests 2>&1 | cat; exit ${PIPESTATUS[0]}'
rc=$?

# Test cases are the TAP lines one level down ("# ok N name"); a suite
# program that failed without reporting a failed case (it crashed or
# timed out) counts as one more failure.
counts=$(tr -d '\r' < "$log" | awk '
	/^# ok [0-9]+ / { if ($0 ~ /# SKIP/) skip++; else pass++; next }
	/^# not ok [0-9]+ / { fail++; suite_fail++; next }
	/^# selftests: / { suite_fail = 0; next }
	/^not ok [0-9]+ selftests: / { if (!suite_fail) fail++; next }
	END { printf "%d %d %d\n", pass, fail, skip }')
read -r pass fail skip <<< "$counts"

case $rc in
0) ;;
124) echo "check: the guest timed out"; fail=$((fail + 1)) ;;
125) echo "check: the guest did not run the tests"; fail=$((fail + 1)) ;;
126) echo "check: the kernel log reports problems (see above)"; fail=$((fail + 1)) ;;
*) [ "$fail" = 0 ] && { echo "check: the test run exited $rc"; fail=1; } ;;
esac

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
