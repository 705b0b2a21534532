#!/usr/bin/env bash
# Runs dcx's fuzz targets (cargo fuzz, libFuzzer, nightly) for SECONDS each (default 60), or
# only the TARGETs named: bash scripts/fuzz.sh [SECONDS] [TARGET...]. With FUZZ_RUNS=N each
# target stops after N executions instead (SECONDS is then a ceiling). Seeds come from
# fuzz/corpus/<target> (committed); what the fuzzer finds goes to target/fuzz-corpus/<target>,
# so the committed corpora stay as they are. Prints each target's executions and fails on a
# crash (its input is kept under fuzz/artifacts/<target>/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config substitute probe_output argv values)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz build --release >/dev/null
status=0
printf '%-14s %14s %8s  %s\n' target executions seconds result
for target in "${targets[@]}"; do
  work=target/fuzz-corpus/$target
  mkdir -p "$work"
  log=target/fuzz-$target.log
  if cargo +nightly fuzz run --release "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-65536}" \
    -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log)"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  printf '%-14s %14s %8s  %s\n' "$target" "${runs:-?}" "${took:-?}" "$result"
done
exit $status
