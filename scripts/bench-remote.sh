#!/usr/bin/env bash
# Warm `dcx exec` against `docker exec` on remote transports, at 0 and 10 ms round trips: TCP
# ($DCX_TCP_HOST), TLS ($DCX_TLS_HOST) and ssh ($DCX_SSH_HOST), each straight and through
# scripts/latency-relay.py (every chunk held 5 ms each way: this kernel has no netem), the same
# endpoint for both, each transport and latency in interleaved rounds of its own
# (scripts/bench-interleaved.py). Prints medians and dcx / docker exec.
# Targets: <= 0.8x at 10 ms over TCP, TLS and ssh; <= 1.0x at 0 ms. Part of scripts/bench.sh.
# Usage: scripts/bench-remote.sh [RUNS]   (default 30 rounds)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=${1:-30}
bash scripts/setup.sh >/dev/null
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
cargo build --release --locked --quiet
dcx=${CARGO_TARGET_DIR:-$root/target}/release/dcx
work=$(mktemp -d)
name=dcx-bench-remote-$$
relays=()
cleanup() {
  for pid in "${relays[@]}"; do kill "$pid" 2>/dev/null || true; done
  docker rm -f "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
docker run -d --name "$name" --label dcx.test=1 dcx-test/debian:bookworm sleep 1000000 >/dev/null
export XDG_CACHE_HOME=$work/cache
bench() { python3 scripts/bench-interleaved.py "$@"; }

# Straight, and through a relay that holds each chunk 5 ms each way. Started here, not in a
# command substitution's subshell, so that the cleanup knows every relay's pid.
relay() { # relay NAME TARGET_HOST:PORT: starts it; `port_of NAME` then prints its port
  python3 scripts/latency-relay.py 0 "$2" 5 >"$work/relay-$1" 2>&1 &
  relays+=($!)
}
port_of() {
  for _ in $(seq 50); do grep -q '^ready' "$work/relay-$1" 2>/dev/null && break; sleep 0.1; done
  awk '/^ready/ {print $2}' "$work/relay-$1"
}
tcp_addr=${DCX_TCP_HOST#tcp://}
tls_addr=${DCX_TLS_HOST#tcp://}
ssh_port=$(awk '/^ *Port / {print $2; exit}' "${DCX_CACHE:-/var/cache/dcx}/ssh/ssh_config")
ssh_port=${ssh_port:-22}
ssh_host=${DCX_SSH_HOST#ssh://}
ssh_host=${ssh_host%%:*}
relay tcp "$tcp_addr"
relay tls "$tls_addr"
relay ssh "127.0.0.1:$ssh_port"
tcp_slow=$(port_of tcp)
tls_slow=$(port_of tls)
ssh_slow=$(port_of ssh)
tls_env="DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$DCX_TLS_DIR"
ssh_env="PATH=$DCX_SSH_PATH:$PATH"
remote_rows=()
for row in \
  "local-0|DOCKER_HOST=unix:///var/run/docker.sock" \
  "tcp-0|DOCKER_HOST=tcp://$tcp_addr" \
  "tcp-10|DOCKER_HOST=tcp://127.0.0.1:$tcp_slow" \
  "tls-0|DOCKER_HOST=tcp://$tls_addr $tls_env" \
  "tls-10|DOCKER_HOST=tcp://127.0.0.1:$tls_slow $tls_env" \
  "ssh-0|DOCKER_HOST=ssh://$ssh_host $ssh_env" \
  "ssh-10|DOCKER_HOST=ssh://${ssh_host%%@*}@127.0.0.1:$ssh_slow $ssh_env"; do
  label=${row%%|*}
  vars=${row#*|}
  # shellcheck disable=SC2086
  env $vars "$dcx" exec --container-id "$name" true # warms the cache for this endpoint
  bench "$runs" "$work/remote-$label.json" \
    "dcx=env $vars $dcx exec --container-id $name true" \
    "docker=env $vars docker exec $name true"
  remote_rows+=("$label=$work/remote-$label.json")
done
python3 - "${remote_rows[@]}" <<'PY'
import json, sys
print()
print("remote transports, warm (interleaved rounds; 10 ms: scripts/latency-relay.py, 5 ms each way):")
for arg in sys.argv[1:]:
    label, path = arg.split("=", 1)
    r = json.load(open(path))
    transport, rtt = label.split("-")
    target = 0.8 if rtt == "10" else 1.0
    print(f"  {transport:>3} at {rtt:>2} ms RTT ({r['dcx']['runs']} rounds): dcx {r['dcx']['median']*1000:.1f} ms, "
          f"docker exec {r['docker']['median']*1000:.1f} ms (medians); dcx / docker exec = "
          f"{r['dcx']['median']/r['docker']['median']:.2f}x (means {r['dcx']['mean']/r['docker']['mean']:.2f}x; target <= {target})")
PY

