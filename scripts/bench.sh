#!/usr/bin/env bash
# Benchmarks `dcx exec --container-id X true` against `docker exec X true` and the reference
# `devcontainer exec --container-id X true` on the same container, in one hyperfine run, and
# prints the ratios. Targets: dcx/docker <= 1.0, reference/dcx >= 7.
# Usage: scripts/bench.sh [RUNS]   (default 30 runs per command)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-30}
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
cargo build --release --locked --quiet
dcx=$root/target/release/dcx

name=dcx-bench-$$
docker run -d --name "$name" --label dcx.test=1 dcx-test/debian:bookworm sleep 1000000 >/dev/null
trap 'docker rm -f "$name" >/dev/null; rm -f "$report"' EXIT
report=$(mktemp)

hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$report" \
  -n dcx "$dcx exec --container-id $name true" \
  -n docker "docker exec $name true" \
  -n reference "$DCX_REFERENCE_CLI exec --container-id $name true"

python3 - "$report" <<'PY'
import json, sys
means = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
dcx, docker, ref = means["dcx"], means["docker"], means["reference"]
print()
print(f"dcx exec true:          {dcx * 1000:7.1f} ms")
print(f"docker exec true:       {docker * 1000:7.1f} ms")
print(f"devcontainer exec true: {ref * 1000:7.1f} ms")
print(f"dcx / docker exec:       {dcx / docker:.2f}x  (target <= 1.0)")
print(f"reference / dcx:         {ref / dcx:.1f}x faster  (target >= 7)")
PY
