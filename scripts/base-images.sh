#!/usr/bin/env bash
# Builds Berth's real base images from the host's own Debian packages (no
# image is downloaded from a registry) and caches them as `docker save` tars
# under /var/cache/berth/images, which `berth serve` loads at start:
#
#   debian:bookworm-slim   Debian 12 minbase made by mmdebstrap, with the
#                          docs/man/locales excludes of Docker's slim images
#   berth/gcc:12-bookworm  the same first layer plus Debian's gcc and
#                          libc6-dev as a second layer (shared with the first)
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (the same package
# versions give the same image IDs). Cached: a second run checks the tars
# against their .sha256 files and does nothing else.
set -euo pipefail

out=${BERTH_IMAGE_CACHE:-/var/cache/berth/images}
here="$(cd "$(dirname "$0")" && pwd)"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1717200000} # 2024-06-01, bookworm 12.5 era
mkdir -p "$out"

valid() {
  [ -s "$out/$1" ] && [ -s "$out/$1.sha256" ] && (cd "$out" && sha256sum --quiet -c "$1.sha256" >/dev/null 2>&1)
}
if valid debian-bookworm-slim.tar && valid berth-gcc-12-bookworm.tar; then
  echo "base images: cached in $out"
  exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
fi

work=$(mktemp -d /var/tmp/berth-base-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# What Docker's debian:*-slim images leave out (debuerreotype's slimify):
# documentation, manuals and translations, keeping the copyright files.
slim=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/linda/*'
)
# The host's own apt sources (deb822 or one-line), mirror and keyring.
common=(
  --variant=minbase --mode=root --format=tar --quiet
  # /bin, /lib, /sbin as links into /usr made by a hook, as debootstrap does,
  # instead of the usrmerge package (which brings all of perl along).
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='APT::Install-Recommends "false"'
  --aptopt='Acquire::Languages "none"'
  # As in Docker's images: the files dpkg keeps for a package it removes, the
  # apt lists and caches and the logs, all dropped.
  --customize-hook='rm -rf "$1"/var/cache/apt/*.bin "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/cache/ldconfig/aux-cache'
  "${slim[@]}"
)
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && sources+=("$f")
done

echo "base images: mmdebstrap debian:bookworm-slim (minbase)…"
mmdebstrap "${common[@]}" bookworm "$work/base.tar" "${sources[@]}"
echo "base images: mmdebstrap the gcc build image (minbase + gcc libc6-dev)…"
mmdebstrap "${common[@]}" --include=gcc,libc6-dev bookworm "$work/gcc.tar" "${sources[@]}"

python3 "$here/docker-save-pack.py" "$work" "$out"
(cd "$out" && sha256sum debian-bookworm-slim.tar >debian-bookworm-slim.tar.sha256 \
  && sha256sum berth-gcc-12-bookworm.tar >berth-gcc-12-bookworm.tar.sha256)
echo "base images: built in $(( $(date +%s) - start )) s into $out"
ls -l "$out"
