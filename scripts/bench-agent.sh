#!/usr/bin/env bash
# Benchmarks `dcx serve` against the commands an agent would run instead, in one run
# (scripts/bench-agent.py): warm exec.run of `true` on a Docker session (through the
# in-container helper, and by plain engine exec) vs `docker exec` and `dcx exec`, a session's
# first command, on a crun session vs bare `crun exec`, the helper's memory, 32 concurrent
# sessions' throughput, `system.ping` p99 under that load, and the server's memory; then
# (scripts/bench-agent-bounds.py) `system.ping` with 1,000 idle HTTP connections open, and the
# server's RSS over a mixed soak of DCX_BENCH_SOAK seconds (default 600).
# Goals: helper exec.run p50 <= 5 ms and <= 0.1x docker exec; <= 0.5x crun exec; the first
# command <= 250 ms more than a warm one; the helper's RSS <= 2 MiB; ping p99 <= 10 ms with
# 1,000 idle connections; soak RSS growth <= 32 MiB.
# Usage: scripts/bench-agent.sh [ROUNDS]   (default 30; crun gets 10x)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
rounds=${1:-30}
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
cargo build --release --locked --quiet
dcx=${CARGO_TARGET_DIR:-$root/target}/release/dcx

work=$(mktemp -d)
name=dcx-bench-agent-$$
crun_root=$work/crun
server=
cleanup() {
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  docker rm -f "$name" >/dev/null 2>&1 || true
  crun --root "$crun_root" delete -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

docker run -d --name "$name" --label dcx.test=1 dcx-test/busybox sleep 1000000 >/dev/null
# A writable copy of its root filesystem: the helper is placed in it.
cp -a "${DCX_CACHE:-/var/cache/dcx}/rootfs/busybox" "$work/rootfs"
DCX_CRUN_WRITABLE=1 bash fixtures/crun/run.sh "$crun_root" "$name" "$work/rootfs"
export XDG_CACHE_HOME=$work/cache
"$dcx" exec --container-id "$name" true # warms dcx exec's probe cache
# HTTP too, on a free port, for the idle-connection row.
http_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=bench-$$-$RANDOM
DCX_AUTH_TOKEN=$token "$dcx" serve --socket "$work/agent.sock" --http "127.0.0.1:$http_port" \
  --max-execs 256 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do [ -S "$work/agent.sock" ] && break; sleep 0.05; done
python3 scripts/bench-agent.py "$work/agent.sock" "$name" "$crun_root" "$name" "$dcx" "$server" "$rounds"
# Issue 25's rows: 1,000 idle HTTP connections, and a soak of DCX_BENCH_SOAK seconds (600).
python3 scripts/bench-agent-bounds.py "$work/agent.sock" "$http_port" "$token" "$name" "$server" \
  "${DCX_BENCH_SOAK:-600}"
