//! The `lab` image: busybox plus the host's docker CLI (and its Compose
//! plugin when the host has one; never buildx), made at startup from host
//! files so a classroom needs no registry.
//!
//! Two layers: the bootstrapped busybox layer, then one with
//! `/usr/local/bin/docker`, the shared libraries it needs when it is not
//! static, `/etc/profile` (prompt, `DOCKER_HOST` default) and the plugin.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::image::{ImageError, ImageStore};

/// The reference the lab image has in each lab scope.
pub const LAB_IMAGE: &str = "berth-lab:latest";
const EPOCH: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";

/// Where the host's docker CLI is looked for, first found wins.
const DOCKER_CANDIDATES: &[&str] = &["/usr/local/bin/docker", "/usr/bin/docker"];
/// Where the host's Compose plugin is looked for.
const COMPOSE_CANDIDATES: &[&str] = &[
    "/usr/local/lib/docker/cli-plugins/docker-compose",
    "/usr/libexec/docker/cli-plugins/docker-compose",
    "/usr/lib/docker/cli-plugins/docker-compose",
    "/root/.docker/cli-plugins/docker-compose",
];

const PROFILE: &str = "\
export PS1='\\u@\\h:\\w\\$ '
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export TERM=${TERM:-xterm-256color}
alias ls='ls --color=auto'
cd ~ 2>/dev/null
";

/// The lab image's second layer and what went into it.
struct Prepared {
    layer: Vec<u8>,
    /// `sha256:` digest of `layer` (hashing 40 MB once, not per node).
    digest: String,
    what: String,
}

static PREPARED: OnceLock<Result<Prepared, String>> = OnceLock::new();

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

/// The shared libraries `binary` loads (with its loader), from `ldd`;
/// empty for a static binary.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(binary).output() else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = BTreeSet::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.insert(PathBuf::from(p));
        }
    }
    libs.into_iter().collect()
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, host: &Path, inside: &str) -> io::Result<()> {
    let bytes = fs::read(host)?;
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o755, bytes.len() as u64),
        inside.trim_start_matches('/'),
        &bytes[..],
    )
}

fn add_dirs(
    b: &mut tar::Builder<Vec<u8>>,
    made: &mut BTreeSet<String>,
    path: &str,
) -> io::Result<()> {
    let mut so_far = String::new();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        if made.insert(so_far.clone()) {
            b.append_data(
                &mut header(tar::EntryType::Directory, 0o755, 0),
                &so_far,
                io::empty(),
            )?;
        }
    }
    Ok(())
}

fn prepare() -> Result<&'static Prepared, ImageError> {
    PREPARED
        .get_or_init(|| {
            let docker = DOCKER_CANDIDATES
                .iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .ok_or("no docker CLI on this host (/usr/local/bin/docker or /usr/bin/docker); install docker.io")?;
            let mut files: Vec<(PathBuf, String)> =
                vec![(docker.to_path_buf(), "usr/local/bin/docker".into())];
            for lib in shared_libraries(docker) {
                let inside = lib.to_string_lossy().trim_start_matches('/').to_string();
                files.push((lib, inside));
            }
            let compose = COMPOSE_CANDIDATES.iter().map(Path::new).find(|p| p.is_file());
            if let Some(c) = compose {
                files.push((
                    c.to_path_buf(),
                    "usr/local/lib/docker/cli-plugins/docker-compose".into(),
                ));
                for lib in shared_libraries(c) {
                    let inside = lib.to_string_lossy().trim_start_matches('/').to_string();
                    if !files.iter().any(|(_, i)| *i == inside) {
                        files.push((lib, inside));
                    }
                }
            }
            let mut b = tar::Builder::new(Vec::new());
            let mut made = BTreeSet::new();
            let build = (|| -> io::Result<()> {
                for (dir, mode) in [("root", 0o700), ("var", 0o755), ("var/run", 0o755)] {
                    made.insert(dir.to_string());
                    b.append_data(&mut header(tar::EntryType::Directory, mode, 0), dir, io::empty())?;
                }
                for (host, inside) in &files {
                    add_dirs(&mut b, &mut made, inside)?;
                    add_file(&mut b, host, inside)?;
                }
                add_dirs(&mut b, &mut made, "etc/profile")?;
                b.append_data(
                    &mut header(tar::EntryType::Regular, 0o644, PROFILE.len() as u64),
                    "etc/profile",
                    PROFILE.as_bytes(),
                )?;
                Ok(())
            })();
            build.map_err(|e| format!("lab layer: {e}"))?;
            let layer = b.into_inner().map_err(|e| format!("lab layer: {e}"))?;
            let what = format!(
                "docker CLI from {}{}",
                docker.display(),
                if compose.is_some() { " with the Compose plugin" } else { "" }
            );
            let digest = format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&layer))
            );
            Ok(Prepared { layer, digest, what })
        })
        .as_ref()
        .map_err(|e| ImageError::Invalid(e.clone()))
}

impl ImageStore {
    /// Builds the lab layer now (reading and hashing the docker CLI takes a
    /// moment), so the first learner does not wait for it.
    pub fn prepare_lab(&self) -> Result<(), ImageError> {
        let prepared = prepare()?;
        if !self.has_blob(&prepared.digest) {
            self.add_layer(&prepared.layer[..])?;
        }
        Ok(())
    }

    /// Makes sure `scope` has the lab image ([`LAB_IMAGE`]); returns its ID.
    pub fn ensure_lab(&self, scope: &str) -> Result<String, ImageError> {
        if let Ok(id) = self.resolve_id(scope, LAB_IMAGE) {
            return Ok(id);
        }
        let prepared = prepare()?;
        self.ensure_busybox(scope)?;
        let busybox = self.resolve(scope, "busybox:latest")?;
        let mut diff_ids: Vec<String> = busybox.config.rootfs().diff_ids().to_vec();
        let diff_id = if self.has_blob(&prepared.digest) {
            prepared.digest.clone()
        } else {
            self.add_layer(&prepared.layer[..])?
        };
        diff_ids.push(diff_id);
        let config = json!({
            "architecture": super::super::image::host_arch(),
            "os": "linux",
            "created": CREATED,
            "config": {
                "Env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm-256color",
                    "HOME=/root",
                    // Compose builds with BuildKit unless told otherwise,
                    // and the engine has the classic builder only.
                    "DOCKER_BUILDKIT=0",
                ],
                "WorkingDir": "/root",
                "Cmd": ["sh"],
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": CREATED, "created_by": "berth: busybox"},
                {"created": CREATED, "created_by": format!("berth: {}", prepared.what)},
            ],
        });
        self.create_image(scope, &config, &[LAB_IMAGE.to_string()])
    }
}
