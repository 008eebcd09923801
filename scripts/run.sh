#!/usr/bin/env bash
# Sets up what is missing, builds Berth and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --quiet
# The classroom on http://127.0.0.1:8080 (extra arguments go to `berth serve`).
exec ./target/release/berth serve --listen 127.0.0.1:8080 "$@"
