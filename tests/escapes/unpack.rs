//! Escapes through layer unpacking and IDs that become paths: a learner
//! crafts image archives for `docker load` and rootfs tars for `docker
//! import`, and names images by path-shaped IDs. Judged by a host canary.

use std::io::Write;

use berth_runtime::image::layer::HashingWriter;
use serde_json::json;

use super::{Canary, Lab};

/// One member of a learner's tar, written raw (any name, any link).
struct Member<'a> {
    kind: tar::EntryType,
    name: &'a str,
    link: &'a str,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        kind: tar::EntryType::Regular,
        name,
        link: "",
        data,
    }
}

fn symlink<'a>(name: &'a str, link: &'a str) -> Member<'a> {
    Member {
        kind: tar::EntryType::Symlink,
        name,
        link,
        data: b"",
    }
}

fn hardlink<'a>(name: &'a str, link: &'a str) -> Member<'a> {
    Member {
        kind: tar::EntryType::Link,
        name,
        link,
        data: b"",
    }
}

fn tar_of(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(m.kind);
        h.set_size(m.data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let old = h.as_old_mut();
        old.name[..m.name.len()].copy_from_slice(m.name.as_bytes());
        old.linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
        h.set_cksum();
        b.append(&h, m.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    let mut h = HashingWriter::new(std::io::sink());
    h.write_all(bytes).unwrap();
    h.finish().0
}

/// A `docker save` archive of `tag` with one layer, its config naming
/// `diff_id` (the layer's true digest unless a learner says otherwise).
fn image_archive(tag: &str, layer: &[u8], diff_id: &str) -> Vec<u8> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["cat", "/secret"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!([
        {"Config": "config.json", "RepoTags": [tag], "Layers": ["layer/layer.tar"]}
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer/layer.tar", layer),
        ("config.json", &config[..]),
        ("manifest.json", &manifest[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `docker load` of `archive` must fail, saying `why`, and leave no image.
fn load_refused(lab: &Lab, canary: &Canary, tag: &str, archive: &[u8], why: &str) {
    let run = lab.docker_stdin(&["load"], archive);
    assert_ne!(run.code, 0, "docker load took it: {}", run.stdout);
    assert!(run.stderr.contains(why), "expected {why:?}: {}", run.stderr);
    canary.assert_untouched();
    let images = lab.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains(tag), "{images}");
    // Had it loaded, running it would show what it reached.
    let run = lab.docker(&["run", "--rm", tag, "cat", "/secret"]);
    canary.assert_not_in(&run.stdout);
    canary.assert_not_in(&run.stderr);
}

#[test]
fn docker_load_of_hostile_layers_touches_nothing_on_the_host() {
    let lab = Lab::new();
    let canary = Canary::new();
    let host_dir = canary.path().display().to_string();
    let host_file = canary.file.display().to_string();

    // A symlink to a host directory, then a whiteout and a file through it.
    let layer = tar_of(&[
        symlink("x", &host_dir),
        file("x/.wh.secret", b""),
        file("x/planted", b"pwned"),
    ]);
    let archive = image_archive("wh-through-link", &layer, &sha(&layer));
    load_refused(
        &lab,
        &canary,
        "wh-through-link",
        &archive,
        "refusing layer member \"x/.wh.secret\"",
    );

    // The same by a relative link climbing out of the layer directory.
    let up = format!("../../../../../../../../..{host_dir}");
    let layer = tar_of(&[symlink("up", &up), file("up/secret", b"pwned")]);
    let archive = image_archive("up-through-link", &layer, &sha(&layer));
    load_refused(
        &lab,
        &canary,
        "up-through-link",
        &archive,
        "refusing layer member \"up/secret\"",
    );

    // A whiteout naming the parent directory.
    let layer = tar_of(&[file("etc/.wh...", b"")]);
    let archive = image_archive("wh-parent", &layer, &sha(&layer));
    load_refused(
        &lab,
        &canary,
        "wh-parent",
        &archive,
        "the whiteout names no file",
    );

    // A hard link to the host's secret, absolute and relative.
    for (tag, target) in [
        ("link-abs", host_file.clone()),
        ("link-rel", format!("../../../../../../../../..{host_file}")),
    ] {
        let layer = tar_of(&[hardlink("secret", &target)]);
        let archive = image_archive(tag, &layer, &sha(&layer));
        load_refused(
            &lab,
            &canary,
            tag,
            &archive,
            "refusing layer member \"secret\"",
        );
    }

    // A diff ID that is a path to the host directory (the layer would be
    // the host directory itself).
    let layer = tar_of(&[file("hello", b"hi")]);
    let evil = format!("sha256:../../../../../../../../..{host_dir}");
    let archive = image_archive("diff-id-path", &layer, &evil);
    load_refused(
        &lab,
        &canary,
        "diff-id-path",
        &archive,
        &format!("invalid diff_id {evil:?}: not sha256 + 64 hex digits"),
    );

    // Nothing above broke the session: an honest archive still loads.
    let layer = tar_of(&[file("secret", b"not the canary")]);
    let archive = image_archive("honest:latest", &layer, &sha(&layer));
    let run = lab.docker_stdin(&["load"], &archive);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("Loaded image: honest:latest"),
        "{}",
        run.stdout
    );
}

#[test]
fn docker_import_of_a_hostile_rootfs_touches_nothing_on_the_host() {
    let lab = Lab::new();
    let canary = Canary::new();
    let host_dir = canary.path().display().to_string();
    let host_file = canary.file.display().to_string();
    for (tag, rootfs) in [
        (
            "imp-wh",
            tar_of(&[symlink("x", &host_dir), file("x/.wh.secret", b"")]),
        ),
        (
            "imp-write",
            tar_of(&[symlink("x", &host_dir), file("x/secret", b"pwned")]),
        ),
        ("imp-link", tar_of(&[hardlink("secret", &host_file)])),
        ("imp-parent", tar_of(&[file(".wh..", b"")])),
    ] {
        let run = lab.docker_stdin(&["import", "-", tag], &rootfs);
        assert_ne!(run.code, 0, "docker import took {tag}: {}", run.stdout);
        assert!(
            run.stderr.contains("refusing layer member"),
            "{tag}: {}",
            run.stderr
        );
        canary.assert_untouched();
        let run = lab.docker(&["run", "--rm", tag, "cat", "/secret"]);
        canary.assert_not_in(&run.stdout);
    }
}

#[test]
fn image_ids_that_are_paths_name_nothing() {
    let lab = Lab::new();
    let canary = Canary::new();
    let host_dir = canary.path().display().to_string();
    let evil = format!("sha256:../../../../../../../../..{host_dir}");
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("saved.tar").display().to_string();
    for args in [
        vec!["rmi", "-f", evil.as_str()],
        vec!["rmi", "sha256:../.."],
        vec!["history", evil.as_str()],
        vec!["image", "inspect", evil.as_str()],
        vec!["save", "-o", tar.as_str(), evil.as_str()],
        vec!["run", "--rm", evil.as_str()],
    ] {
        let run = lab.docker(&args);
        // `rmi -f` of an image that is not there succeeds quietly, as in Docker.
        if args[..2] != ["rmi", "-f"] {
            assert_ne!(run.code, 0, "docker {args:?}: {}", run.stdout);
        }
        eprintln!("docker {args:?}: {}", run.stderr.trim());
        assert!(!run.stderr.contains("panic"), "{}", run.stderr);
        canary.assert_not_in(&run.stdout);
        canary.assert_not_in(&run.stderr);
        canary.assert_untouched();
    }
    // The same IDs sent escaped, so they reach the engine's image lookup
    // whole rather than being cut up as a URL path.
    let escaped = evil.replace('/', "%2F");
    for (method, path) in [
        ("DELETE", format!("/images/{escaped}?force=1")),
        ("GET", format!("/images/{escaped}/json")),
        ("GET", format!("/images/{escaped}/history")),
        ("GET", format!("/images/{escaped}/get")),
        ("GET", format!("/images/get?names={escaped}")),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-X", method, "--unix-socket"])
            .arg(&lab.socket)
            .arg(format!("http://docker{path}"))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let code = text.lines().last().unwrap_or_default().to_string();
        assert!(code.starts_with('4'), "{method} {path}: {text}");
        canary.assert_not_in(&text);
        canary.assert_untouched();
    }
}
