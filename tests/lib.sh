# Shared by the shell tests (tests/cli, tests/eval, tests/report), sourced after their arguments are read:
# a scratch folder $T removed at exit (a test that starts processes defines cleanup() to stop them first),
# pass/fail counters with ok/bad, expect_fail, and finish, which prints "N passed, N failed" and is the exit status.
T=$(mktemp -d)
cleanup() { :; }
trap 'cleanup; rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
expect_fail() { # name, needle, command...: the command must exit non-zero with needle in its output
  name=$1; needle=$2; shift 2
  out=$("$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -q -- "$needle"; then ok "$name"; else bad "$name (rc=$rc: $out)"; fi
}
finish() {
  echo "$pass passed, $fail failed"
  [ $fail -eq 0 ]
}
