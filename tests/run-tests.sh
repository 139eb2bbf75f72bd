#!/usr/bin/env bash
# Runs every unit and integration test binary under BUILD (first argument), each with a time limit, and prints
# one closing line "N passed, N failed" counting test cases (cmocka's own per-binary summaries are summed).
# A binary that crashes or times out counts as one failed case. Logs: BUILD/test-logs/NAME.log.
set -u
build=${1:-build}
logs="$build/test-logs"
mkdir -p "$logs"
export IAC_TEST_BUILD="$build"
passed=0 failed=0 failed_names=()

run_one() { # binary, time limit in seconds
    local bin=$1 limit=$2 name log rc p f
    name=$(basename "$bin")
    log="$logs/$name.log"
    timeout -k 5 "$limit" "$bin" >"$log" 2>&1
    rc=$?
    # A binary may run several cmocka groups (push and pull mode): sum their summaries.
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crash, timeout or sanitizer abort
    passed=$((passed + p)) failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failed_names+=("$name")
        printf 'FAIL %-40s (%s passed, %s failed, exit %s) — %s\n' "$name" "$p" "$f" "$rc" "$log"
        grep -E '^\[  (ERROR|FAILED|  FAILED)|^\[  ERROR|Error|ERROR|error:|runtime error|Sanitizer' "$log" | head -n 15 | sed 's/^/    /'
    else
        printf 'ok   %-40s (%s passed)\n' "$name" "$p"
    fi
}

for t in "$build"/tests/unit/test_*; do [ -x "$t" ] && run_one "$t" 120; done
for t in "$build"/tests/integration/test_*; do [ -x "$t" ] && run_one "$t" 300; done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
