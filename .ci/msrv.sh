#!/usr/bin/env bash
# The stated minimum Rust version is the real one: Cargo.toml's rust-version must equal the
# highest rust-version any locked dependency declares (so it is neither too low, as 1.88 was,
# nor higher than needed), and rust-toolchain.toml must pin that same version, which the rest
# of .ci/run then builds with.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --locked --format-version 1 | python3 -c '
import json, re, sys, tomllib

metadata = json.load(sys.stdin)
locked = {node["id"] for node in metadata["resolve"]["nodes"]}
ours = {member for member in metadata["workspace_members"]}
def version(text):
    return tuple(int(part) for part in text.split("."))[:2]
needed = max(
    (version(p["rust_version"]), p["name"], p["version"])
    for p in metadata["packages"]
    if p["id"] in locked and p["id"] not in ours and p.get("rust_version")
)
with open("Cargo.toml", "rb") as f:
    stated = version(tomllib.load(f)["package"]["rust-version"])
with open("rust-toolchain.toml", "rb") as f:
    pinned = version(tomllib.load(f)["toolchain"]["channel"])
show = lambda v: ".".join(map(str, v))
print(f"locked dependencies need Rust {show(needed[0])} ({needed[1]} {needed[2]}); "
      f"Cargo.toml states {show(stated)}; rust-toolchain.toml pins {show(pinned)}")
if not (needed[0] == stated == pinned):
    sys.exit("the stated minimum Rust version, the pinned toolchain and the locked dependencies disagree")
'
rustc --version
