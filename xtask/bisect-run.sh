#!/bin/sh
# Judges the commit `git bisect run` checked out: builds it, runs one scenario over several
# seeds, and exits 0 (good: every seed passed), 1 (bad: some seed failed) or 125 (skip: the
# commit does not build, or cannot load or run the scenario). Anything else aborts the bisection.
#
# Older commits may lack this script, the scenario file and `cargo xtask bisect`: copy the
# script and the scenario out of the tree before you start (README, "Finding the commit that
# broke a run"):
#
#   cp xtask/bisect-run.sh scenarios/failure-recovery-exactly-once.toml /tmp/
#   git bisect start <bad> <good>
#   git bisect run /tmp/bisect-run.sh /tmp/failure-recovery-exactly-once.toml 1 2 3
#
# The scenario must give every step a fixed time (`at = "2m"`, not `{ min, max }`): a range draws the
# step's time from the seed, and the same seed on two builds must face the same faults. A seed's
# interleaving changes with the build anyway, which is why several seeds judge each commit.
set -u

if [ $# -lt 2 ]; then
    echo "usage: bisect-run.sh <scenario.toml> <seed>..." >&2
    exit 255
fi
scenario=$1
shift
if [ ! -f "$scenario" ]; then
    echo "bisect-run.sh: $scenario is not a file (copy it out of the tree first)" >&2
    exit 255
fi
if grep -Eq '^[[:space:]]*at[[:space:]]*=[[:space:]]*[{]' "$scenario"; then
    echo "bisect-run.sh: $scenario draws some step times from the seed (at = { min, max }); give every step a fixed time" >&2
    exit 255
fi

commit=$(git rev-parse --short HEAD)
if ! cargo build --quiet --package xtask >/dev/null 2>&1; then
    echo "$commit: skip (does not build)"
    exit 125
fi
xtask=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/xtask
if [ ! -x "$xtask" ]; then
    echo "$commit: skip (no xtask binary at $xtask)"
    exit 125
fi

for seed in "$@"; do
    if "$xtask" bisect --help >/dev/null 2>&1; then
        # The commit has `bisect --git`: it judges the trace's invariants too.
        out=$("$xtask" bisect "$scenario" --seed "$seed" --git 2>&1)
        code=$?
        line=$(printf '%s\n' "$out" | tail -n 1)
    else
        # An older commit: its run-scenario's exit code (0 passed, 2 bad input, other failures).
        "$xtask" run-scenario "$scenario" --seed "$seed" >/dev/null 2>&1
        case $? in
            0) code=0 ;;
            2) code=125 ;;
            *) code=1 ;;
        esac
        line="run-scenario exit code mapped to $code"
    fi
    case $code in
        0) ;;
        125)
            echo "$commit: skip (seed $seed: the scenario cannot run here: $line)"
            exit 125
            ;;
        *)
            echo "$commit: bad (seed $seed: $line)"
            exit 1
            ;;
    esac
done
echo "$commit: good (seeds $*)"
exit 0
