#!/usr/bin/env bash
# Sets up what is missing, builds Berth and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --quiet
exec ./target/release/berth run --rm busybox sh "$@"
