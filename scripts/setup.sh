#!/usr/bin/env bash
# Installs what Berth needs on a Debian/Ubuntu host, skipping what is present.
# Idempotent: safe to run before every start and every test run.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

# The static busybox that the bootstrapped busybox image is made from.
if ! [ -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q "statically linked"; then
  dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
fi
have file || need_apt+=(file)
# A C toolchain for crates that build C and the tests' static probe binary.
have gcc || need_apt+=(build-essential)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
have ip || need_apt+=(iproute2)
have tar || need_apt+=(tar)
# The docker CLI that learners and the tests use (Debian's brings 20.10).
have docker || need_apt+=(docker.io)

if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! have cargo; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
