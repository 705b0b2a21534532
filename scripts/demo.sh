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
ws=fixtures/workspaces/demo
set +e
run exec --workspace-folder "$ws" sh -c 'echo "hello from $(hostname), $(. /etc/os-release; echo "$PRETTY_NAME")"'
run exec --workspace-folder "$ws" sh -c 'echo "$(id -un) in $(pwd): $DEMO_GREETING"'
run exec --workspace-folder "$ws" --user root --remote-env DEMO_GREETING=overridden sh -c 'echo "$(id -un): $DEMO_GREETING"'
run exec --container-id "$id" sh -c 'exit 7'
printf 'bytes through stdin\n' | run exec --workspace-folder "$ws" tr a-z A-Z
run exec --workspace-folder "$ws" --timeout 1s sleep 30
run exec --workspace-folder "$ws" --dry-run printenv DEMO_GREETING
set -e
