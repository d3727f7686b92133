#!/bin/sh
# Runs the browser project N times in a row (default 20) and stops at the first failing run, to tell a
# flaky browser test from a fixed one. Not part of CI: 20 runs take well over an hour on two cores.
#
#   npm run test:browser:repeat                    # 20 runs of every browser file
#   npm run test:browser:repeat -- 5 test/browser/fleet.test.ts
#
# Set NIXFLEET_REQUIRE_BROWSER=1 (and NIXFLEET_REQUIRE_NIX=1) as CI does, or a missing Chromium or Nix
# skips instead of failing. Each run's output is kept in a temporary folder, printed at the end.
# Run no other vitest in this tree meanwhile: each one's global setup rebuilds dist/ui and dist/agent, which
# the control planes and agents of a running browser file are started from.
set -u

runs=${1:-20}
case $runs in
  '' | *[!0-9]* | 0)
    echo "usage: $0 [RUNS] [VITEST ARGS...]: RUNS is a positive whole number, not '$runs'" >&2
    exit 2
    ;;
esac
[ $# -gt 0 ] && shift

logs=$(mktemp -d "${TMPDIR:-/tmp}/nixfleet-browser-repeat-XXXXXX")
i=1
while [ "$i" -le "$runs" ]; do
  log="$logs/run-$i.log"
  echo "browser run $i of $runs (log: $log)"
  if ! NO_COLOR=1 npx vitest run --project browser "$@" >"$log" 2>&1; then
    grep -E '(FAIL|×|AssertionError|Error:)' "$log" | head -n 40
    echo "FAILED on run $i of $runs after $((i - 1)) passing run(s); the whole output: $log"
    exit 1
  fi
  grep -E '^ *(Tests|Duration) ' "$log"
  i=$((i + 1))
done
echo "passed $runs of $runs runs; logs in $logs"
