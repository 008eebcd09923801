#!/usr/bin/env bash
# Runs docker-py's own integration suite (tests/integration of a checkout of
# docker/docker-py) against `berth daemon` and against Debian's dockerd 20.10
# on this machine, with the same images, and prints the two pass lists side
# by side with counts. The suite's code stays outside the project: this
# script only takes the checkout's path.
#
#   scripts/docker-py-suite.sh CHECKOUT [TEST_FILE...]
#
# Env: BERTH (the berth binary; default target/debug/berth), ENGINES
# ("berth dockerd", or one of them), FILE_TIMEOUT (seconds per test file,
# default 600), TEST_TIMEOUT (seconds per test, default 120), OUT (results
# dir; default /var/tmp/berth-docker-py-results).
#
# Tests that assert a dockerd 20.10 behaviour that Docker 25+ changed would be
# expected to differ (Berth follows Docker 28): none found so far. What still
# differs, and why, is in docs/docker-py-suite.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
checkout=$(cd "${1:?usage: docker-py-suite.sh CHECKOUT [TEST_FILE...]}" && pwd)
shift
files=("$@")
berth=${BERTH:-$root/target/debug/berth}
engines=${ENGINES:-berth dockerd}
file_timeout=${FILE_TIMEOUT:-600}
test_timeout=${TEST_TIMEOUT:-120}
out=${OUT:-/var/tmp/berth-docker-py-results}
mkdir -p "$out"

# The venv: pytest (+ pytest-timeout), the checkout installed with its
# requirements. hatch-vcs needs a version when the checkout has no .git.
venv=/var/cache/berth-test/docker-py-suite-venv
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c "import pytest_timeout, docker" 2>/dev/null \
  || [ "$(cat "$venv/.checkout" 2>/dev/null)" != "$checkout" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check pytest pytest-timeout paramiko websocket-client
  SETUPTOOLS_SCM_PRETEND_VERSION=7.1.0 "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall "$checkout[ssh,websockets]"
  echo "$checkout" > "$venv/.checkout"
fi

# Debian's dockerd 20.10 with its containerd and runc, unpacked, not
# installed (no service starts on the machine).
deb=/var/cache/berth-test/docker-20.10
if ! command -v dockerd >/dev/null 2>&1; then
  if [ ! -x "$deb/usr/sbin/dockerd" ] || [ ! -x "$deb/usr/bin/containerd" ] || [ ! -x "$deb/usr/sbin/runc" ]; then
    work=$(mktemp -d)
    (cd "$work" && { apt-get download docker.io containerd runc >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get download docker.io containerd runc >/dev/null; }; })
    mkdir -p "$deb"
    for p in "$work"/*.deb; do dpkg-deb -x "$p" "$deb"; done
    rm -rf "$work"
  fi
  export PATH="$deb/usr/sbin:$deb/usr/bin:$PATH"
fi

# The suite's images from one busybox rootfs (the host's static busybox),
# imported into both engines: alpine:3.10 (the suite's TEST_IMG), alpine,
# busybox and hello-world (tests pull or run those by name).
rootfs_tar=$out/rootfs.tar
if [ ! -s "$rootfs_tar" ]; then
  rf=$(mktemp -d /var/tmp/berth-dpy-rootfs.XXXXXX)
  mkdir -p "$rf"/{bin,etc,tmp,root,proc,sys,dev,var,home}
  chmod 1777 "$rf/tmp"
  cp "$(command -v busybox)" "$rf/bin/busybox"
  for a in $("$rf/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$rf/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$rf/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rf/etc/group"
  printf '#!/bin/sh\necho "Hello from Docker!"\n' > "$rf/hello"
  chmod 755 "$rf/hello"
  tar -C "$rf" -cf "$rootfs_tar" .
  rm -rf "$rf"
fi

run_dir=$(mktemp -d /var/tmp/berth-dpy-run.XXXXXX)
# Searchable: a remapped container root must reach its rootfs under it.
chmod 755 "$run_dir"
daemon_pid=
stop_daemon() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
  fi
}
unmount_under() {
  { findmnt -rn -o TARGET | grep "^$1/" || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
  stop_daemon
  unmount_under "$run_dir"
  rm -rf "$run_dir" 2>/dev/null || true
}
trap cleanup EXIT

start_engine() {
  local engine=$1 dir=$run_dir/$1
  mkdir -p "$dir"
  sock=$dir/docker.sock
  case $engine in
    berth)
      "$berth" --data-dir "$dir/data" daemon --socket "$sock" >"$dir/daemon.log" 2>&1 &
      daemon_pid=$!
      ;;
    dockerd)
      dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" --iptables=false \
        --containerd-namespace berth-dpy --containerd-plugins-namespace berth-dpy-p \
        >"$dir/daemon.log" 2>&1 &
      daemon_pid=$!
      ;;
  esac
  for _ in $(seq 1 300); do
    DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1 && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$dir/daemon.log"; return 1; }
    sleep 0.2
  done
  export DOCKER_HOST=unix://$sock
  local id
  id=$(docker import -c 'CMD ["/bin/sh"]' "$rootfs_tar" alpine:3.10 | tail -1)
  for t in alpine alpine:latest busybox busybox:latest; do docker tag "$id" "$t"; done
  docker import -c 'CMD ["/hello"]' "$rootfs_tar" hello-world:latest >/dev/null
}

if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(cd "$checkout/tests/integration" && ls ./*_test.py | sed 's|^\./||')
fi

for engine in $engines; do
  res=$out/$engine
  rm -rf "$res"
  mkdir -p "$res"
  for f in "${files[@]}"; do
    # A fresh daemon per file, so one file's leftovers (a swarm, a hung
    # attach) cannot fail the next.
    start_engine "$engine"
    echo "== $engine $f" >&2
    (cd "$checkout" && timeout -k 10 "$file_timeout" \
      "$venv/bin/pytest" -p no:cacheprovider -v -rA --timeout "$test_timeout" \
      "tests/integration/$f" >"$res/${f%.py}.log" 2>&1) || true
    # Containers outlive a daemon (Berth's by design): remove them first.
    docker swarm leave --force >/dev/null 2>&1 || true
    ids=$(docker ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    stop_daemon
    unmount_under "$run_dir/$engine"
    cp "$run_dir/$engine/daemon.log" "$res/${f%.py}.daemon.log" 2>/dev/null || true
    rm -rf "$run_dir/$engine"
    # A file the timeout cut off: its unreported tests count as failed.
    # (-v prints each result as it comes, so they survive a cut-off file.)
    grep -hE '^tests/\S+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)' "$res/${f%.py}.log" \
      | awk '{print $2, $1}' | sort -u >>"$res/results.txt" || true
  done
  grep -E '^(FAILED|ERROR) ' "$res/results.txt" | awk '{print $2}' | sort -u >"$res/failed.txt" || true
  # A test whose teardown errs after it passed counts as failed.
  grep '^PASSED ' "$res/results.txt" | awk '{print $2}' | sort -u | comm -23 - "$res/failed.txt" >"$res/passed.txt" || true
done

# Compare whenever both engines have results (one may come from an earlier
# run: ENGINES=berth after a fix reuses dockerd's).
if [ -s "$out/berth/results.txt" ] && [ -s "$out/dockerd/results.txt" ]; then
  b=$out/berth/passed.txt d=$out/dockerd/passed.txt
  all=$(sort -u "$out/berth/results.txt" "$out/dockerd/results.txt" | awk '{print $2}' | sort -u)
  printf '%-90s %-8s %-8s\n' TEST dockerd berth
  while read -r t; do
    [ -n "$t" ] || continue
    printf '%-90s %-8s %-8s\n' "$t" \
      "$(grep -qxF "$t" "$d" && echo pass || echo -)" "$(grep -qxF "$t" "$b" && echo pass || echo -)"
  done <<<"$all" | tee "$out/side-by-side.txt"
  both=$(comm -12 "$d" "$b" | wc -l)
  only_d=$(comm -23 "$d" "$b" | wc -l)
  only_b=$(comm -13 "$d" "$b" | wc -l)
  total=$(grep -c . <<<"$all" || true)
  neither=$((total - both - only_d - only_b))
  comm -23 "$d" "$b" >"$out/only-dockerd.txt"
  echo
  echo "tests: $total  dockerd passed: $(wc -l <"$d")  berth passed: $(wc -l <"$b")"
  echo "passed on both: $both  only dockerd: $only_d  only berth: $only_b  passed on neither: $neither"
  echo "results: $out (only-dockerd.txt lists what Berth still fails)"
fi
