#!/bin/sh
# Long libFuzzer campaign over every harness in tests/fuzz (issue 10: >= 10 M executions per target; docs/SECURITY.md
# records the results). All targets run at once, as independent processes sharing one corpus per target; the cores
# are shared out by the core-seconds each target needs for RUNS (measured in a 10 s calibration run).
#
#   sh scripts/fuzz-long.sh [-n RUNS] [-t SECONDS] [-j CORES] [-e SPEED] [-b BINDIR] [-w WORKDIR] [TARGET[:RUNS]...]
#     -n  executions wanted per target (default 10000000); TARGET:RUNS sets one target's own
#     -e  speed of one process when all run at once, relative to the calibration run (default 1; the 64-thread
#         device host measured ~0.4: hyperthreads and shared memory bandwidth): the cores are shared out by it
#     -t  wall-clock limit of the campaign (default 3600); a target that has not reached RUNS by then stops there
#     -j  processes to keep busy (default: nproc)
#     -b  folder holding the fuzz_* binaries (default build-fuzz/tests/fuzz); when BINDIR/../lib exists it is put
#         on LD_LIBRARY_PATH (see --bundle)
#     -w  work folder (corpora, logs, crash files; default build-fuzz/long); the summary goes to WORKDIR/summary.txt
#   sh scripts/fuzz-long.sh --bundle DIR
#     copies the fuzz_* binaries to DIR/bin and the shared libraries they need (ldd; not the C library itself) to
#     DIR/lib, so the campaign can run on another x86-64 Linux machine with the same or a newer glibc:
#     sh scripts/fuzz-long.sh -b DIR/bin ...
#
# Per target it prints executions, seconds, coverage of the final corpus (cov = edges, ft = features, from one pass
# over the merged corpus) and the number of crash / leak / timeout / OOM files (kept in WORKDIR/<target>/artifacts).
# Exits non-zero when any target produced one. Seeds: tests/fuzz/corpus/<target>, dictionaries tests/fuzz/<t>.dict.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGETS_ALL="safetensors st_index config gguf tokenizer tok_encode image openai eval_parse datasets"

if [ "${1:-}" = "--bundle" ]; then
  DEST=${2:?usage: fuzz-long.sh --bundle DIR}
  mkdir -p "$DEST/bin" "$DEST/lib"
  for t in $TARGETS_ALL; do cp build-fuzz/tests/fuzz/fuzz_$t "$DEST/bin/"; done
  # every resolved library but glibc's own (libc, libm, libpthread, libdl, librt, the loader), which must come
  # from the machine that runs them
  for t in $TARGETS_ALL; do ldd build-fuzz/tests/fuzz/fuzz_$t; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
    sort -u | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' | while read -r l; do
      cp -L "$l" "$DEST/lib/"
    done
  du -sh "$DEST"
  exit 0
fi

RUNS=10000000
SPEED=1
LIMIT=3600
CORES=$(nproc)
BIN=build-fuzz/tests/fuzz
WORK=build-fuzz/long
while [ $# -gt 0 ]; do
  case "$1" in
  -n) RUNS=$2; shift 2 ;;
  -t) LIMIT=$2; shift 2 ;;
  -j) CORES=$2; shift 2 ;;
  -e) SPEED=$2; shift 2 ;;
  -b) BIN=$2; shift 2 ;;
  -w) WORK=$2; shift 2 ;;
  -*) echo "unknown option $1" >&2; exit 2 ;;
  *) break ;;
  esac
done
SPECS=${*:-$TARGETS_ALL}
TARGETS=""
for s in $SPECS; do TARGETS="$TARGETS ${s%%:*}"; done
runs_of() { # target -> its RUNS
  for s in $SPECS; do [ "${s%%:*}" = "$1" ] && [ "$s" != "$1" ] && { echo "${s#*:}"; return; }; done
  echo "$RUNS"
}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
case "$WORK" in /*) ;; *) WORK=$ROOT/$WORK ;; esac
if [ -d "$BIN/../lib" ]; then
  LD_LIBRARY_PATH=$(cd "$BIN/../lib" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$WORK"
START=$(date +%s)

# Common flags: -timeout 25 s per input (a slower input is reported as a timeout), 2 GB RSS limit per process;
# FUZZ_FLAGS adds libFuzzer flags (e.g. FUZZ_FLAGS=-entropic=0: its feature bookkeeping is a third of the time of
# fuzz_gguf).
flags() { # target
  f="-timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -reload=1 -artifact_prefix=$WORK/$1/artifacts/ ${FUZZ_FLAGS:-}"
  [ -f "tests/fuzz/$1.dict" ] && f="$f -dict=tests/fuzz/$1.dict"
  echo "$f"
}

# Preflight: LeakSanitizer needs ptrace-like thread suspension, which some sandboxes (gVisor) refuse; then the
# campaign runs without leak detection and the summary says so.
LEAKS=on
if ! "$BIN/fuzz_safetensors" -runs=1 tests/fuzz/corpus/safetensors > "$WORK/preflight.log" 2>&1; then
  if grep -q "LeakSanitizer has encountered a fatal error\|Tracer caught signal" "$WORK/preflight.log"; then
    ASAN_OPTIONS=$(echo "$ASAN_OPTIONS" | sed 's/detect_leaks=1/detect_leaks=0/'):detect_leaks=0
    LEAKS=off
  else
    cat "$WORK/preflight.log"; echo "the fuzz binaries do not run here"; exit 1
  fi
fi

# Calibration: every target alone on one core for a few seconds gives its executions per second.
echo "== calibration (${CORES} cores, speed $SPEED, runs:$(for t in $TARGETS; do printf ' %s:%s' $t $(runs_of $t); done), limit ${LIMIT} s)"
for t in $TARGETS; do
  mkdir -p "$WORK/$t/corpus" "$WORK/$t/artifacts"
  "$BIN/fuzz_$t" $(flags $t) -max_total_time=10 "$WORK/$t/corpus" "tests/fuzz/corpus/$t" > "$WORK/$t/calib.log" 2>&1 &
done
wait
NEED=""
TOTAL=0
for t in $TARGETS; do
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$WORK/$t/calib.log" | tail -1)
  [ -n "$rate" ] && [ "$rate" -gt 0 ] || rate=1
  need=$(( $(runs_of $t) / rate + 1 )) # core-seconds
  NEED="$NEED $t:$need"
  TOTAL=$(( TOTAL + need ))
  echo "   fuzz_$t: $rate exec/s on one core -> $need core-seconds"
done

# Launch: cheapest first, each target gets the processes it needs to reach RUNS within the limit while a core is
# left for every target still to place; the rest share the remaining cores in proportion to their need.
# Each process of a target does an equal part of RUNS.
ALLOC=$(for tn in $NEED; do echo "${tn%%:*} ${tn#*:}"; done | sort -k2 -n | awk -v C="$CORES" -v L="$LIMIT" -v S="$SPEED" '
  { t[NR] = $1; n[NR] = $2 }
  END {
    rem = C; left = NR
    for (i = 1; i <= NR; i++) {
      want = int(n[i] / (L * S) + 0.999); if (want < 1) want = 1
      if (want > rem - (left - 1)) break # keep a core for each target still to place
      j[i] = want; rem -= want; left--
    }
    tot = 0; for (k = i; k <= NR; k++) tot += n[k]
    for (k = i; k <= NR; k++) { j[k] = int(rem * n[k] / tot + 0.5); if (j[k] < 1) j[k] = 1 }
    for (k = 1; k <= NR; k++) print t[k] ":" j[k]
  }')
for tj in $ALLOC; do
  t=${tj%%:*}
  jobs=${tj#*:}
  per=$(( ($(runs_of $t) + jobs - 1) / jobs ))
  echo "$jobs" > "$WORK/$t/jobs"
  i=0
  while [ $i -lt $jobs ]; do
    "$BIN/fuzz_$t" $(flags $t) -runs=$per -max_total_time=$LIMIT -seed=$((1000 + i)) \
      "$WORK/$t/corpus" "tests/fuzz/corpus/$t" > "$WORK/$t/job$i.log" 2>&1 &
    i=$((i + 1))
  done
  echo "   fuzz_$t: $jobs processes x $per runs"
done
wait
END=$(date +%s)

# Summary: executions summed over the processes (calibration included), coverage of the final corpus.
SUM="$WORK/summary.txt"
{
  echo "date $(date -u +%Y-%m-%dT%H:%MZ)  host $(uname -m) $(nproc) cores  wall $((END - START)) s  runs wanted$(for t in $TARGETS; do printf ' %s:%s' $t $(runs_of $t); done)  leak detection $LEAKS"
  printf '%-18s %12s %8s %6s %8s %8s %8s\n' target executions seconds procs cov ft crashes
} > "$SUM"
BAD=0
for t in $TARGETS; do
  execs=$(cat "$WORK/$t"/calib.log "$WORK/$t"/job*.log | sed -n 's/^stat::number_of_executed_units: *//p' |
    awk '{s += $1} END {print s + 0}')
  secs=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$WORK/$t"/job*.log | sort -n | tail -1)
  cov=$("$BIN/fuzz_$t" -runs=0 "$WORK/$t/corpus" 2>&1 | sed -n 's/.*INITED cov: \([0-9]*\) ft: \([0-9]*\).*/\1 \2/p' | tail -1)
  crashes=$(find "$WORK/$t/artifacts" -type f | wc -l)
  [ "$crashes" -eq 0 ] || BAD=1
  grep -l "ERROR: \(AddressSanitizer\|LeakSanitizer\|libFuzzer\)\|runtime error:" "$WORK/$t"/job*.log > /dev/null 2>&1 && BAD=1
  printf '%-18s %12s %8s %6s %8s %8s %8s\n' "fuzz_$t" "$execs" "${secs:-?}" "$(cat "$WORK/$t/jobs")" \
    "${cov% *}" "${cov#* }" "$crashes" >> "$SUM"
done
cat "$SUM"
[ $BAD -eq 0 ] || { echo "crashes or sanitizer reports: see $WORK/*/artifacts and $WORK/*/job*.log"; exit 1; }
