//! `docker load` and pulls at the store: IDs from archives and registries
//! are checked before they become paths, and layers before they are
//! unpacked.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::image::unpack::tests::{file, symlink, tar_of};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A `docker save`-style archive of one image: `layers` as its layer tars,
/// `diff_ids` as its config says.
fn archive(layers: &[Vec<u8>], diff_ids: &[String]) -> Vec<u8> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        names.push(format!("l{i}/layer.tar"));
        add(&names[i], l);
    }
    add("config.json", &config);
    let manifest = json!([{"Config": "config.json", "RepoTags": ["evil:latest"], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap()
}

/// A root-only directory beside the store, as a host directory an attacker
/// would aim at.
fn host_dir(base: &Path) -> PathBuf {
    let dir = base.join("host-secret");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("secret"), "canary").unwrap();
    dir
}

#[test]
fn the_store_is_root_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("image");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    ImageStore::open(&root).unwrap();
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn a_diff_id_that_is_a_path_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_dir(dir.path());
    let store = ImageStore::open(&dir.path().join("image")).unwrap();
    let layer = tar_of(&[file("hello", b"hi")]);
    let evil = format!("sha256:../../../../../../../..{}", host.display());
    let e = store
        .load("s", &archive(&[layer], std::slice::from_ref(&evil))[..])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("invalid diff_id {evil:?}: not sha256 + 64 hex digits")
    );
    assert!(store.list("s").unwrap().is_empty());
    assert!(!store.has_layer(&evil));
    assert_eq!(fs::read_to_string(host.join("secret")).unwrap(), "canary");
    assert_eq!(
        fs::read_dir(store.root_dir().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_layer_is_unpacked_only_if_it_is_the_one_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let honest = tar_of(&[file("hello", b"hi")]);
    // A layer whose members would be refused, under another layer's diff ID.
    let hostile = tar_of(&[symlink("x", "/"), file("x/.wh.etc", b"")]);
    let e = store
        .load("s", &archive(&[hostile], &[sha(&honest)])[..])
        .unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 0);
    // Named rightly, the same layer loads and runs from its own directory.
    let ids = store
        .load(
            "s",
            &archive(std::slice::from_ref(&honest), &[sha(&honest)])[..],
        )
        .unwrap();
    assert_eq!(ids, vec!["evil:latest".to_string()]);
    let image = store.resolve("s", "evil").unwrap();
    assert_eq!(
        fs::read_to_string(image.layer_dirs[0].join("hello")).unwrap(),
        "hi"
    );
}

#[test]
fn a_hostile_layer_with_the_right_digest_is_refused_by_the_unpacker() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_dir(dir.path());
    let store = ImageStore::open(&dir.path().join("image")).unwrap();
    let target = host.display().to_string();
    let layer = tar_of(&[symlink("x", &target), file("x/.wh.secret", b"")]);
    let e = store
        .load(
            "s",
            &archive(std::slice::from_ref(&layer), &[sha(&layer)])[..],
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("refusing layer member \"x/.wh.secret\""),
        "{e}"
    );
    assert!(
        matches!(e, ImageError::Invalid(_)),
        "a learner's error: {e:?}"
    );
    assert_eq!(fs::read_to_string(host.join("secret")).unwrap(), "canary");
    assert_eq!(
        fs::read_dir(store.root_dir().join("layers"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn pulled_configs_and_blobs_with_path_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_dir(dir.path());
    let store = ImageStore::open(&dir.path().join("image")).unwrap();
    // A registry's config naming a host directory as its layer.
    let evil = format!("sha256:../../../../../../../..{}", host.display());
    let config =
        serde_json::to_vec(&json!({"rootfs": {"type": "layers", "diff_ids": [evil]}})).unwrap();
    let e = crate::image::parse_config_bytes(&config).unwrap_err();
    assert!(e.to_string().starts_with("invalid diff_id"), "{e}");
    let e = store
        .add_pulled_image("s", &config, &["evil:latest".into()])
        .unwrap_err();
    assert!(e.to_string().starts_with("invalid diff_id"), "{e}");
    // It exists as a path, yet is no layer of the store.
    assert!(!store.has_layer(&evil));
    assert!(store.ensure_layer(&evil).is_err());
    // A downloaded blob under a digest or diff ID that is a path.
    let download = store.download_path();
    fs::write(&download, tar_of(&[file("a", b"a")])).unwrap();
    let good = sha(b"x");
    let e = store
        .add_pulled_layer(&download, &evil, &good, "r")
        .unwrap_err();
    assert!(e.to_string().starts_with("invalid digest"), "{e}");
    let download = store.download_path();
    fs::write(&download, tar_of(&[file("a", b"a")])).unwrap();
    let e = store
        .add_pulled_layer(&download, &good, &evil, "r")
        .unwrap_err();
    assert!(e.to_string().starts_with("invalid diff_id"), "{e}");
    assert_eq!(fs::read_to_string(host.join("secret")).unwrap(), "canary");
    assert_eq!(fs::read_dir(host).unwrap().count(), 1);
}

#[test]
fn image_ids_from_callers_never_become_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    for text in [
        "sha256:../../..",
        "sha256:../blobs/sha256",
        "../../etc/passwd",
    ] {
        assert!(store.resolve_id("s", text).is_err(), "{text}");
        assert!(store.image(text).is_err(), "{text}");
        assert!(store.config_bytes(text).is_err(), "{text}");
        assert!(store.history("s", text).is_err(), "{text}");
        assert!(store.remove("s", text, true, &[]).is_err(), "{text}");
        assert!(store.save("s", &[text], std::io::sink()).is_err(), "{text}");
    }
    let e = store.image("sha256:../../..").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"invalid digest "sha256:../../..": not sha256 + 64 hex digits"#
    );
}

#[test]
fn an_oci_layout_blob_must_match_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let layer = tar_of(&[file("hello", b"hi")]);
    let config =
        serde_json::to_vec(&json!({"rootfs": {"type": "layers", "diff_ids": [sha(&layer)]}}))
            .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "config": {"digest": sha(&config)},
        "layers": [{"digest": sha(&layer)}],
    }))
    .unwrap();
    let build = |blobs: &[(&str, &[u8])], index_digest: &str| {
        let mut b = tar::Builder::new(Vec::new());
        let index = serde_json::to_vec(&json!({"manifests": [{"digest": index_digest}]})).unwrap();
        let mut all: Vec<(String, &[u8])> = blobs
            .iter()
            .map(|(d, data)| (blob_member(d), *data))
            .collect();
        all.push(("index.json".into(), &index));
        for (name, data) in all {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let (m, c, l) = (sha(&manifest), sha(&config), sha(&layer));
    // The manifest's bytes stored under another digest.
    let forged = build(&[(&c, &manifest), (&l, &layer)], &c);
    let e = store.load("s", &forged[..]).unwrap_err();
    assert!(e.to_string().contains("does not match its digest"), "{e}");
    let e = store
        .load("s", &build(&[], "sha256:../../x")[..])
        .unwrap_err();
    assert!(e.to_string().starts_with("invalid digest"), "{e}");
    let ok = build(&[(&m, &manifest), (&c, &config), (&l, &layer)], &m);
    assert_eq!(store.load("s", &ok[..]).unwrap().len(), 1);
}
