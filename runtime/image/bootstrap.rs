//! The bootstrapped `busybox:latest`: made from the host's static busybox
//! (Debian's busybox-static), so a classroom runs with no registry at all.

use std::fs;
use std::io;
use std::sync::OnceLock;

use serde_json::json;

use super::store::ImageStore;
use super::ImageError;

/// Where Debian's busybox-static puts the binary.
pub const HOST_BUSYBOX: &str = "/bin/busybox";
/// A fixed timestamp: the same host binary always gives the same image ID.
const EPOCH: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";

/// Docker's name for the host's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn is_static_elf(bytes: &[u8]) -> bool {
    // An ELF file without a PT_INTERP program header needs no loader.
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at =
        |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        at + 4 > bytes.len()
            || u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4])) != 3
    })
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(EPOCH);
    h
}

/// The busybox rootfs as a deterministic layer tar.
fn rootfs_tar(busybox: &[u8], applets: &[String]) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sbin", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("var", 0o755),
        ("var/www", 0o755),
    ] {
        b.append_data(
            &mut header(tar::EntryType::Directory, mode, 0),
            dir,
            io::empty(),
        )?;
    }
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o755, busybox.len() as u64),
        "bin/busybox",
        busybox,
    )?;
    for applet in applets {
        let path = applet.trim_start_matches('/');
        if path == "bin/busybox" || path.is_empty() || path.contains("..") {
            continue;
        }
        let mut h = header(tar::EntryType::Link, 0o755, 0);
        b.append_link(&mut h, path, "bin/busybox")?;
    }
    let files: [(&str, &str); 3] = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        (
            "etc/group",
            "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:8:\nwww-data:x:33:\noperator:x:37:\nstaff:x:50:\nusers:x:100:\nnogroup:x:65534:\n",
        ),
        ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
    ];
    for (path, text) in files {
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o644, text.len() as u64),
            path,
            text.as_bytes(),
        )?;
    }
    b.into_inner()
}

/// The busybox image's config and layer, computed once per process.
struct Prepared {
    config: serde_json::Value,
    layer: Vec<u8>,
}

static PREPARED: OnceLock<Result<Prepared, String>> = OnceLock::new();

fn prepare() -> Result<&'static Prepared, ImageError> {
    PREPARED
        .get_or_init(|| {
            let binary = fs::read(HOST_BUSYBOX).map_err(|e| {
                format!("{HOST_BUSYBOX}: {e} (install Debian's busybox-static to bootstrap the busybox image)")
            })?;
            if !is_static_elf(&binary) {
                return Err(format!("{HOST_BUSYBOX} is not statically linked (install busybox-static)"));
            }
            let list = std::process::Command::new(HOST_BUSYBOX)
                .arg("--list-full")
                .output()
                .map_err(|e| format!("{HOST_BUSYBOX} --list-full: {e}"))?;
            let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
                .lines()
                .map(String::from)
                .collect();
            applets.sort();
            applets.dedup();
            let layer = rootfs_tar(&binary, &applets).map_err(|e| e.to_string())?;
            let diff_id = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&layer)));
            let version = String::from_utf8_lossy(&binary)
                .split("BusyBox v")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("unknown")
                .to_string();
            let config = json!({
                "architecture": host_arch(),
                "os": "linux",
                "created": CREATED,
                "config": {
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "Cmd": ["sh"],
                },
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [
                    {"created": CREATED, "created_by": format!("berth: bootstrapped from the host's busybox-static (BusyBox v{version}), {} applets", applets.len())},
                    {"created": CREATED, "created_by": "CMD [\"sh\"]", "empty_layer": true},
                ],
            });
            Ok(Prepared { config, layer })
        })
        .as_ref()
        .map_err(|e| ImageError::Invalid(e.clone()))
}

impl ImageStore {
    /// Makes sure `scope` has `busybox:latest`; cheap after the first call.
    /// Returns the image ID.
    pub fn ensure_busybox(&self, scope: &str) -> Result<String, ImageError> {
        let prepared = prepare()?;
        let bytes =
            serde_json::to_vec(&prepared.config).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let id = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        if self
            .busybox_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(scope)
        {
            return Ok(id);
        }
        if !self.has_blob(&id) {
            self.add_layer(&prepared.layer[..])?;
        }
        let already = self.with_scope(scope, |r| Ok(r.images.contains(&id)))?;
        if !already {
            self.create_image(scope, &prepared.config, &["busybox:latest".to_string()])?;
        }
        self.busybox_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.to_string());
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn busybox_is_deterministic_and_runs_sh_from_bin() {
        if !Path::new(HOST_BUSYBOX).exists() {
            eprintln!("skipping: no {HOST_BUSYBOX}");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let id_a = ImageStore::open(a.path())
            .unwrap()
            .ensure_busybox("s1")
            .unwrap();
        let store_b = ImageStore::open(b.path()).unwrap();
        let id_b = store_b.ensure_busybox("s2").unwrap();
        assert_eq!(id_a, id_b, "same host busybox, same image ID");
        let image = store_b.resolve("s2", "busybox").unwrap();
        let root = &image.layer_dirs[0];
        let sh = fs::metadata(root.join("bin/sh")).unwrap();
        let bb = fs::metadata(root.join("bin/busybox")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(sh.ino(), bb.ino(), "applets are hard links to busybox");
        assert!(fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .starts_with("root:x:0:0:"));
        assert!(
            store_b.resolve("s1", "busybox").is_err(),
            "scopes do not share names"
        );
        assert!(is_static_elf(&fs::read(HOST_BUSYBOX).unwrap()));
    }
}
