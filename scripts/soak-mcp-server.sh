#!/usr/bin/env bash
# A web server started through `dcx mcp`'s start_command keeps running and serving for a long
# time (default 15 minutes): start_command has no built-in lifetime. Not part of the tests (too
# long); run by hand after scripts/setup.sh. Usage: scripts/soak-mcp-server.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-900}
cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
name=dcx-soak-$$
docker run -d --name "$name" dcx-test/busybox sleep 100000 >/dev/null
trap 'docker rm -f "$name" >/dev/null' EXIT
started=$(date +%s)
DCX_TEST_ALIVE_S=$seconds python3 "$root/tests/mcp/client.py" server "$root/target/release/dcx" \
  --container-id "$name" 2> >(grep -v '^\[' >&2)
echo "soak: the server started by start_command ran and served for $(( $(date +%s) - started )) s ($(date -u +%F))"
