#!/usr/bin/env bash
# Checks that the crate's rust-version is true: no crate in the committed Cargo.lock asks for a
# newer Rust than dcx declares. Offline: reads `cargo metadata` of the locked graph.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo metadata --format-version 1 --locked --offline | python3 -c '
import json, sys

def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

def shown(parts):
    return ".".join(str(part) for part in parts)

meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
declared_text = next(p["rust_version"] for p in meta["packages"]
                     if p["id"] in members and p["name"] == "dcx")
declared = version(declared_text)
needs = [(version(p["rust_version"]), p["name"], p["version"])
         for p in meta["packages"] if p.get("rust_version") and p["id"] not in members]
highest = max(needs)
if highest[0] > declared:
    newer = sorted("%s %s (rust-version %s)" % (name, v, shown(r))
                   for r, name, v in needs if r > declared)
    sys.exit("rust-version %s is false: %s" % (declared_text, ", ".join(newer)))
print("rust-version %s holds: the locked crates need at most %s (%s %s)"
      % (declared_text, shown(highest[0]), highest[1], highest[2]))
'
