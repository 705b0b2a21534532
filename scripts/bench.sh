#!/usr/bin/env bash
# Benchmarks dcx against `docker exec` and the reference `devcontainer exec`, each pair on the
# same container, in one run, and prints the ratios:
#   1. --container-id:      dcx exec --container-id X true   vs docker exec X true
#                           vs devcontainer exec --container-id X true
#   2. --workspace-folder:  dcx exec --workspace-folder F true (warm probe cache)
#                           vs docker exec -u vscode C true vs devcontainer exec --workspace-folder F true
#   3. crun:                dcx exec --runtime crun --container-id X true vs crun exec X true
#                           vs docker exec Y true (Y: the same busybox rootfs as a Docker image);
#                           also dcx with --timeout, which keeps dcx in between (the relay path);
#                           interleaved rounds, 10x RUNS (scripts/bench-interleaved.py)
# Targets: dcx / docker <= 1.0 and reference / dcx >= 7 in 1 and 2; dcx / crun <= 1.2 in 3.
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
ref=$DCX_REFERENCE_CLI

work=$(mktemp -d)
name=dcx-bench-$$
crun_root=$work/crun
cleanup() {
  docker rm -f "$name" "$name-bb" >/dev/null 2>&1 || true
  crun --root "$crun_root" delete -f "$name" >/dev/null 2>&1 || true
  [ -n "${ws_id:-}" ] && docker rm -f "$ws_id" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

docker run -d --name "$name" --label dcx.test=1 dcx-test/debian:bookworm sleep 1000000 >/dev/null
cp -r fixtures/workspaces/rootfile "$work/ws"
ws_id=$("$ref" up --workspace-folder "$work/ws" 2>/dev/null | sed -n 's/.*"containerId":"\([0-9a-f]*\)".*/\1/p')
[ -n "$ws_id" ] || { echo "bench: devcontainer up failed" >&2; exit 1; }
export XDG_CACHE_HOME=$work/cache
"$dcx" exec --workspace-folder "$work/ws" true # warms the probe cache
docker run -d --name "$name-bb" --label dcx.test=1 dcx-test/busybox sleep 1000000 >/dev/null
bash fixtures/crun/run.sh "$crun_root" "$name" "${DCX_CACHE:-/var/cache/dcx}/rootfs/busybox"
"$dcx" exec --runtime crun --crun-root "$crun_root" --container-id "$name" true # warms the cache

hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$work/id.json" \
  -n dcx "$dcx exec --container-id $name true" \
  -n docker "docker exec $name true" \
  -n reference "$ref exec --container-id $name true"
hyperfine --style basic --warmup 3 --runs "$runs" --export-json "$work/ws.json" \
  -n dcx "$dcx exec --workspace-folder $work/ws true" \
  -n docker "docker exec -u vscode $ws_id true" \
  -n reference "$ref exec --workspace-folder $work/ws true"

# crun: interleaved rounds (scripts/bench-interleaved.py), as a few percent is what is measured.
python3 scripts/bench-interleaved.py "$((runs * 10))" "$work/crun.json" \
  "dcx=$dcx exec --runtime crun --crun-root $crun_root --container-id $name true" \
  "dcx-relay=$dcx exec --runtime crun --crun-root $crun_root --container-id $name --timeout 1h true" \
  "crun=crun --root $crun_root exec $name true" \
  "docker=docker exec $name-bb true"

python3 - "$work/id.json" "$work/ws.json" "$work/crun.json" <<'PY'
import json, sys
print()
for title, path in (("--container-id", sys.argv[1]), ("--workspace-folder (warm cache)", sys.argv[2])):
    m = {r["command"]: r["mean"] for r in json.load(open(path))["results"]}
    print(f"{title}: dcx {m['dcx']*1000:.1f} ms, docker exec {m['docker']*1000:.1f} ms, "
          f"devcontainer exec {m['reference']*1000:.1f} ms")
    print(f"  dcx / docker exec = {m['dcx']/m['docker']:.2f}x (target <= 1.0); "
          f"reference / dcx = {m['reference']/m['dcx']:.1f}x (target >= 7)")
r = json.load(open(sys.argv[3]))
mean = {k: v["mean"] for k, v in r.items()}
median = {k: v["median"] for k, v in r.items()}
print(f"--runtime crun ({r['dcx']['runs']} interleaved rounds): dcx {mean['dcx']*1000:.1f} ms "
      f"(median {median['dcx']*1000:.1f}), dcx relaying (--timeout) {mean['dcx-relay']*1000:.1f} ms, "
      f"crun exec {mean['crun']*1000:.1f} ms (median {median['crun']*1000:.1f}), "
      f"docker exec {mean['docker']*1000:.1f} ms")
print(f"  dcx / crun exec = {mean['dcx']/mean['crun']:.2f}x (median {median['dcx']/median['crun']:.2f}x; target <= 1.2); "
      f"relaying: {mean['dcx-relay']/mean['crun']:.2f}x; docker exec / dcx = {mean['docker']/mean['dcx']:.1f}x")
PY
