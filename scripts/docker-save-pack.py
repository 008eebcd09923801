#!/usr/bin/env python3
"""Turns the two mmdebstrap rootfs tars of scripts/base-images.sh into
`docker save` tars (readable by `docker load` and `berth image load`):

  WORK/base.tar -> OUT/debian-bookworm-slim.tar   (one layer)
  WORK/gcc.tar  -> OUT/berth-gcc-12-bookworm.tar  (that layer + the difference)

The gcc image's second layer holds what the toolchain added or changed over
the base rootfs (and whiteouts for what it removed), so both images share
their first layer, as an image built FROM another does. Every timestamp is
clamped to SOURCE_DATE_EPOCH and entries keep mmdebstrap's order: the same
packages give the same bytes, the same layer digests and image IDs.
"""

import copy
import hashlib
import io
import json
import os
import posixpath
import sys
import tarfile
import time

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1717200000"))
CREATED = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def clean(name):
    name = name[2:] if name.startswith("./") else name
    return name.rstrip("/")


def members(path):
    """(name, TarInfo, content sha256 or None, bytes or None) of a rootfs tar,
    without devices (the runtime provides /dev) and without the root entry."""
    with tarfile.open(path) as tar:
        for info in tar:
            name = clean(info.name)
            if not name or info.ischr() or info.isblk():
                continue
            data = tar.extractfile(info).read() if info.isreg() else None
            digest = hashlib.sha256(data).hexdigest() if data is not None else None
            yield name, info, digest, data


def signature(info, digest):
    link = clean(info.linkname) if info.islnk() else info.linkname
    return (info.type, info.mode, info.uid, info.gid, link, digest,
            tuple(sorted(info.pax_headers.items())))


class Layer:
    """A layer tar written to a file while hashed: its diff ID is the sha256
    of its (uncompressed) bytes."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "wb")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name, info, data):
        info = copy.copy(info)
        info.name = name
        info.mtime = min(int(info.mtime), EPOCH)
        if info.islnk():
            info.linkname = clean(info.linkname)
        self.tar.addfile(info, io.BytesIO(data) if data is not None else None)

    def finish(self):
        self.tar.close()
        self.file.close()
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest(), os.path.getsize(self.path)


def write_base(work):
    layer = Layer(os.path.join(work, "base-layer.tar"))
    index = {}
    for name, info, digest, data in members(os.path.join(work, "base.tar")):
        index[name] = signature(info, digest)
        layer.add(name, info, data)
    return layer.finish(), index


def write_gcc_diff(work, base):
    """The gcc rootfs minus what the base layer already has, identically."""
    entries = list(members(os.path.join(work, "gcc.tar")))
    by_name = {name: (info, data) for name, info, _, data in entries}
    changed = set()
    for name, info, digest, _ in entries:
        if base.get(name) != signature(info, digest):
            changed.add(name)
    # A hard link whose target stays in the lower layer cannot be linked from
    # this one: the linked content comes in as a file of its own.
    # Every changed entry's directories come with it, as docker's diffs do.
    with_parents = set(changed)
    for name in changed:
        parent = posixpath.dirname(name)
        while parent and parent not in with_parents:
            with_parents.add(parent)
            parent = posixpath.dirname(parent)
    layer = Layer(os.path.join(work, "gcc-layer.tar"))
    for name, info, _, data in entries:
        if name not in with_parents:
            continue
        if info.islnk() and clean(info.linkname) not in with_parents:
            target, target_data = by_name[clean(info.linkname)]
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = tarfile.REGTYPE, target.mode, target.uid, target.gid
            info.uname, info.gname, info.mtime = target.uname, target.gname, target.mtime
            info.size, data = len(target_data), target_data
        layer.add(name, info, data)
    removed = sorted(set(base) - set(by_name))
    for name in removed:
        if posixpath.dirname(name) in removed:
            continue
        wh = tarfile.TarInfo(posixpath.join(posixpath.dirname(name), ".wh." + posixpath.basename(name)))
        wh.mtime = EPOCH
        layer.add(wh.name, wh, b"")
    return layer.finish(), len(with_parents), len(removed)


def dpkg_versions(path, packages):
    """Package versions from a rootfs tar's /var/lib/dpkg/status."""
    with tarfile.open(path) as tar:
        for info in tar:
            if clean(info.name) == "var/lib/dpkg/status":
                status = tar.extractfile(info).read().decode()
                break
        else:
            return {}
    found, count = {}, 0
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").endswith(" installed"):
            count += 1
            if fields.get("Package") in packages:
                found[fields["Package"]] = fields.get("Version", "")
    found["#packages"] = count
    return found


def config(diff_ids, history, labels, cmd):
    return {
        "architecture": ARCH,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": cmd, "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


def save(out_path, tag, cfg, layers):
    """A docker save tar: manifest.json and the config first (so a loader can
    tell from the first few kilobytes whether it has the image already), then
    the layers as blobs/sha256/<hex>."""
    cfg_bytes = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    cfg_hex = hashlib.sha256(cfg_bytes).hexdigest()
    manifest = [{
        "Config": "blobs/sha256/" + cfg_hex,
        "RepoTags": [tag],
        "Layers": ["blobs/sha256/" + d.split(":")[1] for d, _ in layers],
    }]
    repo, t = tag.rsplit(":", 1)
    small = [
        ("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()),
        ("repositories", json.dumps({repo: {t: cfg_hex}}, separators=(",", ":")).encode()),
        ("blobs/sha256/" + cfg_hex, cfg_bytes),
    ]
    tmp = out_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for dirname in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(dirname)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for name, data in small:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, EPOCH
            tar.addfile(info, io.BytesIO(data))
        for diff_id, path in layers:
            info = tarfile.TarInfo("blobs/sha256/" + diff_id.split(":")[1])
            info.size, info.mode, info.mtime = os.path.getsize(path), 0o644, EPOCH
            with open(path, "rb") as f:
                tar.addfile(info, f)
    os.replace(tmp, out_path)
    return "sha256:" + cfg_hex


def main():
    work, out = sys.argv[1], sys.argv[2]
    (base_id, base_size), base_index = write_base(work)
    (gcc_id, gcc_size), gcc_entries, gcc_removed = write_gcc_diff(work, base_index)
    base_pkgs = dpkg_versions(os.path.join(work, "base.tar"), {"base-files", "dpkg", "apt"})
    gcc_pkgs = dpkg_versions(os.path.join(work, "gcc.tar"), {"gcc-12", "libc6-dev", "binutils"})
    made = ("mmdebstrap --variant=minbase bookworm from the host's apt sources, "
            "docs/man/locales excluded as in Docker's slim images, SOURCE_DATE_EPOCH=%d" % EPOCH)
    base_step = {"created": CREATED, "created_by": "berth: " + made + " (%d packages)" % base_pkgs["#packages"]}
    cmd_step = {"created": CREATED, "created_by": 'CMD ["bash"]', "empty_layer": True}
    debian = config(
        [base_id],
        [base_step, cmd_step],
        {
            "org.opencontainers.image.description":
                "Debian 12 (bookworm) slim, built by Berth from the host's Debian packages; not Docker Hub's image",
            "org.opencontainers.image.version": "12 (base-files %s)" % base_pkgs.get("base-files", "?"),
            "org.opencontainers.image.created": CREATED,
            "berth.built-by": "scripts/base-images.sh: " + made,
        },
        ["bash"],
    )
    gcc = config(
        [base_id, gcc_id],
        [
            base_step,
            {"created": CREATED,
             "created_by": "berth: apt-get install gcc libc6-dev (mmdebstrap --include=gcc,libc6-dev; "
                           "this layer is what they add to debian:bookworm-slim)"},
            cmd_step,
        ],
        {
            "org.opencontainers.image.description":
                "Debian 12's gcc %s and libc6-dev on debian:bookworm-slim, built by Berth from the host's "
                "Debian packages; not Docker Hub's gcc image" % gcc_pkgs.get("gcc-12", "?"),
            "org.opencontainers.image.version": gcc_pkgs.get("gcc-12", "?"),
            "org.opencontainers.image.created": CREATED,
            "berth.built-by": "scripts/base-images.sh: " + made + "; plus --include=gcc,libc6-dev",
        },
        ["bash"],
    )
    base_path = os.path.join(work, "base-layer.tar")
    gcc_path = os.path.join(work, "gcc-layer.tar")
    a = save(os.path.join(out, "debian-bookworm-slim.tar"), "debian:bookworm-slim", debian, [(base_id, base_path)])
    b = save(os.path.join(out, "berth-gcc-12-bookworm.tar"), "berth/gcc:12-bookworm", gcc,
             [(base_id, base_path), (gcc_id, gcc_path)])
    print("debian:bookworm-slim  %s  layer %.1f MB, %d packages" % (a[7:19], base_size / 1e6, base_pkgs["#packages"]))
    print("berth/gcc:12-bookworm %s  + layer %.1f MB (%d entries, %d whiteouts), %d packages"
          % (b[7:19], gcc_size / 1e6, gcc_entries, gcc_removed, gcc_pkgs["#packages"]))


if __name__ == "__main__":
    main()
