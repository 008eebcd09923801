#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all --quiet -- --test-threads 4
