#!/usr/bin/env bash
# The main job, end to end: provision if needed, build dcx, bring up the demo dev container
# from fixtures/workspaces/demo with the reference `devcontainer up`, and run commands in it
# with `dcx exec`. The container is removed at the end.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${DCX_CACHE:-/var/cache/dcx}/env"
cargo build --release --locked --quiet
dcx=$root/target/release/dcx
workspace=$root/fixtures/workspaces/demo

echo "==> devcontainer up --workspace-folder fixtures/workspaces/demo"
id=$("$DCX_REFERENCE_CLI" up --workspace-folder "$workspace" --log-level info 2>/dev/null |
  sed -n 's/.*"containerId":"\([0-9a-f]*\)".*/\1/p')
[ -n "$id" ] || { echo "demo: devcontainer up did not report a container" >&2; exit 1; }
trap 'docker rm -f "$id" >/dev/null' EXIT

run() {
  printf '\n$ dcx %s\n' "$*"
  "$dcx" "$@"
  printf '(exit %s)\n' "$?"
}
set +e
run exec --container-id "$id" sh -c 'echo "hello from $(hostname), $(. /etc/os-release; echo "$PRETTY_NAME")"'
run exec --container-id "$id" id
run exec --container-id "$id" sh -c 'exit 7'
printf 'bytes through stdin\n' | run exec --container-id "$id" tr a-z A-Z
set -e
