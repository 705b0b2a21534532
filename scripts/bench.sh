#!/usr/bin/env bash
# Benchmarks dcx against `docker exec` and the reference `devcontainer exec`, each pair on the
# same container, in one run, and prints the ratios:
#   1. --container-id:      dcx exec --container-id X true (warm probe cache)
#                           vs docker exec X true vs devcontainer exec --container-id X true;
#                           and cold (--no-probe-cache: the probe runs, two engine execs in
#                           all) vs docker exec X true, in rounds of their own
#   2. --workspace-folder:  dcx exec --workspace-folder F true (warm probe cache)
#                           vs docker exec -u vscode C true vs devcontainer exec --workspace-folder F true
#   3. crun:                dcx exec --runtime crun --container-id X true (dcx's own exec)
#                           vs crun exec X true vs docker exec Y true (Y: the same busybox rootfs
#                           as a Docker image); also with DCX_CRUN_DIRECT=0 (crun's exec, dcx
#                           passing signals on) and with --timeout (crun's, dcx relaying)
#   4. over TCP:            the same warm exec through $DCX_TCP_HOST (setup's), where dcx checks
#                           the shell's startup files with the daemon's stat calls (it cannot
#                           look at the container's root itself) vs docker -H tcp://… exec X true
#   5. through a server:    DCX_SERVER=S dcx exec --container-id X true, S a running `dcx serve`
#                           (warm: the helper placed by a first run) vs docker exec X true
#   6. remote, 0 and 10 ms: scripts/bench-remote.sh (also runs alone): the same warm exec over
#                           TCP, TLS ($DCX_TLS_HOST) and ssh ($DCX_SSH_HOST), straight and through
#                           scripts/latency-relay.py (5 ms each way: a 10 ms round trip), dcx vs
#                           docker exec through the same endpoint, in interleaved rounds
# Each group runs in interleaved rounds (scripts/bench-interleaved.py); crun's has 10x RUNS.
# Targets: dcx / docker <= 1.0 and reference / dcx >= 7 in 1 and 2; cold dcx / docker <= 1.7
# in 1; dcx / crun <= 1.1 in 3; through a server <= 0.15x docker exec and p50 <= 10 ms in 5;
# dcx / docker <= 0.8 at 10 ms and <= 1.0 at 0 ms in 6.
# Usage: scripts/bench.sh [RUNS]   (default 30 rounds)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-30}
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
cargo build --release --locked --quiet
dcx=${CARGO_TARGET_DIR:-$root/target}/release/dcx
ref=$DCX_REFERENCE_CLI

work=$(mktemp -d)
name=dcx-bench-$$
crun_root=$work/crun
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
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

# Interleaved rounds (scripts/bench-interleaved.py): every command once per round, in a random
# order, so that the machine's drift weighs on all of them alike.
bench() { python3 scripts/bench-interleaved.py "$@"; }
bench "$runs" "$work/id.json" \
  "dcx=$dcx exec --container-id $name true" \
  "docker=docker exec $name true" \
  "reference=$ref exec --container-id $name true"
bench "$runs" "$work/ws.json" \
  "dcx=$dcx exec --workspace-folder $work/ws true" \
  "docker=docker exec -u vscode $ws_id true" \
  "reference=$ref exec --workspace-folder $work/ws true"
# crun: more rounds, as a few percent is what is measured; docker exec on its own, as the
# daemon's work after each exec slows whatever runs next (dcx on crun doubled in time).
bench "$((runs * 10))" "$work/crun.json" \
  "dcx=$dcx exec --runtime crun --crun-root $crun_root --container-id $name true" \
  "dcx-crun=DCX_CRUN_DIRECT=0 $dcx exec --runtime crun --crun-root $crun_root --container-id $name true" \
  "dcx-relay=$dcx exec --runtime crun --crun-root $crun_root --container-id $name --timeout 1h true" \
  "crun=crun --root $crun_root exec $name true"
bench "$runs" "$work/crun-docker.json" "docker=docker exec $name-bb true"
# Cold: two engine execs against docker exec's one, so the pair runs without the reference's
# Node.js in the rounds (its load weighs on the daemon's work, of which dcx has twice as much).
bench "$runs" "$work/cold.json" \
  "dcx-cold=$dcx exec --no-probe-cache --container-id $name true" \
  "docker=docker exec $name true"
tcp=$DCX_TCP_HOST
env DOCKER_HOST=$tcp "$dcx" exec --container-id "$name" true # warms the cache for this endpoint
bench "$runs" "$work/tcp.json" \
  "dcx=env DOCKER_HOST=$tcp $dcx exec --container-id $name true" \
  "docker=docker -H $tcp exec $name true"
# Through a running server: its warm engine and helper, the client's fds passed over the socket.
"$dcx" serve --socket "$work/serve.sock" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do [ -S "$work/serve.sock" ] && break; sleep 0.1; done
env DCX_SERVER="$work/serve.sock" "$dcx" exec --container-id "$name" true # places the helper
bench "$runs" "$work/server.json" \
  "dcx-server=env DCX_SERVER=$work/serve.sock $dcx exec --container-id $name true" \
  "docker=docker exec $name true"

python3 - "$work/id.json" "$work/ws.json" "$work/crun.json" "$work/crun-docker.json" "$work/tcp.json" "$work/cold.json" <<'PY'
import json, sys
print()
for title, path in (("--container-id", sys.argv[1]), ("--workspace-folder (warm cache)", sys.argv[2])):
    r = json.load(open(path))
    m = {name: x["mean"] for name, x in r.items()}
    med = {name: x["median"] for name, x in r.items()}
    print(f"{title} ({r['dcx']['runs']} interleaved rounds): dcx {m['dcx']*1000:.1f} ms, "
          f"docker exec {m['docker']*1000:.1f} ms, devcontainer exec {m['reference']*1000:.1f} ms")
    print(f"  dcx / docker exec = {m['dcx']/m['docker']:.2f}x (median {med['dcx']/med['docker']:.2f}x; target <= 1.0); "
          f"reference / dcx = {m['reference']/m['dcx']:.1f}x (target >= 7)")
    if title == "--container-id":
        c = json.load(open(sys.argv[6]))
        print(f"  cold (no probe cache: the probe and the command, two engine execs; "
              f"{c['dcx-cold']['runs']} rounds of its own): dcx {c['dcx-cold']['mean']*1000:.1f} ms, "
              f"docker exec {c['docker']['mean']*1000:.1f} ms; dcx / docker exec = "
              f"{c['dcx-cold']['mean']/c['docker']['mean']:.2f}x "
              f"(median {c['dcx-cold']['median']/c['docker']['median']:.2f}x; target <= 1.7)")
r = json.load(open(sys.argv[3]))
mean = {k: v["mean"] for k, v in r.items()}
median = {k: v["median"] for k, v in r.items()}
d = json.load(open(sys.argv[4]))
print(f"--runtime crun ({r['dcx']['runs']} interleaved rounds): dcx {mean['dcx']*1000:.1f} ms "
      f"(median {median['dcx']*1000:.1f}), dcx with crun's exec (DCX_CRUN_DIRECT=0) "
      f"{mean['dcx-crun']*1000:.1f} ms (median {median['dcx-crun']*1000:.1f}), dcx relaying "
      f"(--timeout) {mean['dcx-relay']*1000:.1f} ms (median {median['dcx-relay']*1000:.1f}), "
      f"crun exec {mean['crun']*1000:.1f} ms (median {median['crun']*1000:.1f})")
print(f"  dcx / crun exec = {mean['dcx']/mean['crun']:.2f}x (median {median['dcx']/median['crun']:.2f}x; target <= 1.1); "
      f"with crun's exec: {mean['dcx-crun']/mean['crun']:.2f}x (median {median['dcx-crun']/median['crun']:.2f}x); "
      f"relaying: {mean['dcx-relay']/mean['crun']:.2f}x (median {median['dcx-relay']/median['crun']:.2f}x)")
print(f"  docker exec on the same rootfs ({d['docker']['runs']} runs): {d['docker']['mean']*1000:.1f} ms; "
      f"docker exec / dcx = {d['docker']['mean']/mean['dcx']:.1f}x")
t = json.load(open(sys.argv[5]))
print(f"over TCP, warm ({t['dcx']['runs']} interleaved rounds): dcx {t['dcx']['mean']*1000:.1f} ms "
      f"(the startup files checked with the daemon's stat calls), docker exec {t['docker']['mean']*1000:.1f} ms; "
      f"dcx / docker exec = {t['dcx']['mean']/t['docker']['mean']:.2f}x "
      f"(median {t['dcx']['median']/t['docker']['median']:.2f}x)")
PY
python3 - "$work/server.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d, x = s["docker"], s["dcx-server"]
print(f"through a running server ({x['runs']} interleaved rounds): dcx {x['mean']*1000:.1f} ms "
      f"(p50 {x['median']*1000:.1f}, p90 {x['p90']*1000:.1f}; target p50 <= 10 ms), docker exec "
      f"{d['mean']*1000:.1f} ms (p50 {d['median']*1000:.1f}); dcx / docker exec = "
      f"{x['mean']/d['mean']:.3f}x (median {x['median']/d['median']:.3f}x; target <= 0.15)")
PY
# 6. Remote transports at 0 and 10 ms round trips.
bash scripts/bench-remote.sh "$runs"
