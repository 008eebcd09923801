//! The unpacker against crafted tars: each class of hostile member, judged
//! by the state of the tree *around* the layer directory, and a property
//! test feeding random tar streams.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

/// A tar member written raw, so names the tar crate refuses to build (`..`,
/// absolute) can be tested.
pub(crate) struct Raw<'a> {
    pub kind: tar::EntryType,
    pub name: &'a [u8],
    pub link: &'a [u8],
    pub data: &'a [u8],
    pub mode: u32,
}

pub(crate) fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        kind: tar::EntryType::Regular,
        name: name.as_bytes(),
        link: b"",
        data,
        mode: 0o644,
    }
}
pub(crate) fn dir(name: &str) -> Raw<'_> {
    Raw {
        kind: tar::EntryType::Directory,
        name: name.as_bytes(),
        link: b"",
        data: b"",
        mode: 0o755,
    }
}
pub(crate) fn symlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        kind: tar::EntryType::Symlink,
        name: name.as_bytes(),
        link: target.as_bytes(),
        data: b"",
        mode: 0o777,
    }
}
pub(crate) fn hardlink<'a>(name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        kind: tar::EntryType::Link,
        name: name.as_bytes(),
        link: target.as_bytes(),
        data: b"",
        mode: 0o644,
    }
}

pub(crate) fn tar_of(members: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(m.kind);
        h.set_size(m.data.len() as u64);
        h.set_mode(m.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        let old = h.as_old_mut();
        old.name[..m.name.len()].copy_from_slice(m.name);
        old.linkname[..m.link.len()].copy_from_slice(m.link);
        h.set_cksum();
        b.append(&h, m.data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Everything under `dir` but `skip`: path → (type, mode, owner, size, mtime,
/// content or link target). Never follows a symlink.
pub(crate) fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == skip {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let detail = if m.file_type().is_symlink() {
                fs::read_link(&p).unwrap().display().to_string()
            } else if m.is_file() {
                String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
            } else {
                String::new()
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(
                p,
                format!(
                    "{:?} {:o} {}:{} {} {} {detail}",
                    m.file_type(),
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.len(),
                    m.mtime()
                ),
            );
        }
    }
    out
}

/// A temp world: `outside/` holds a victim file and directory; the layer is
/// unpacked into `a/b/layer` so `../..` still lands in the world.
pub(crate) struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("outside");
        fs::create_dir_all(out.join("victim-dir")).unwrap();
        fs::write(out.join("victim"), "precious").unwrap();
        fs::write(out.join("victim-dir/inner"), "precious too").unwrap();
        // The layer directory exists first: making it is no change outside.
        fs::create_dir_all(dir.path().join("a/b/layer")).unwrap();
        Self { dir }
    }
    pub fn layer(&self) -> PathBuf {
        self.dir.path().join("a/b/layer")
    }
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        snapshot(self.dir.path(), &self.layer())
    }
    /// Unpacks `members`; asserts nothing outside the layer changed.
    pub fn unpack(&self, members: &[Raw]) -> Result<(), UnpackError> {
        let before = self.snapshot();
        let result = unpack(&tar_of(members)[..], &self.layer());
        assert_eq!(
            before,
            self.snapshot(),
            "the world outside the layer changed"
        );
        result
    }
}

fn refused(r: Result<(), UnpackError>, why: &str) {
    match r {
        Err(e @ UnpackError::Refused { .. }) => assert!(e.to_string().contains(why), "{e}"),
        other => panic!("expected a refusal ({why}), got {other:?}"),
    }
}

#[test]
fn a_whiteout_through_a_symlink_to_a_host_directory_is_refused() {
    let w = World::new();
    let host = w.outside().display().to_string();
    refused(
        w.unpack(&[symlink("x", &host), file("x/.wh.victim", b"")]),
        "symlink or not a directory",
    );
    assert_eq!(
        fs::read_to_string(w.outside().join("victim")).unwrap(),
        "precious"
    );
    // An opaque marker through the link does not reach the host either.
    refused(
        w.unpack(&[symlink("x", &host), file("x/victim-dir/.wh..wh..opq", b"")]),
        "symlink or not a directory",
    );
    assert!(xattr::get(w.outside().join("victim-dir"), OPAQUE_XATTR)
        .unwrap()
        .is_none());
}

#[test]
fn files_through_a_relative_symlink_out_of_the_layer_are_refused() {
    let w = World::new();
    refused(
        w.unpack(&[
            symlink("up", "../../../outside"),
            file("up/victim", b"owned"),
        ]),
        "symlink or not a directory",
    );
    refused(
        w.unpack(&[symlink("up", "../../.."), dir("up/new")]),
        "symlink or not a directory",
    );
    assert!(!w.dir.path().join("new").exists());
}

#[test]
fn a_member_replaces_a_symlink_at_its_name_without_following_it() {
    let w = World::new();
    let victim = w.outside().join("victim").display().to_string();
    w.unpack(&[symlink("f", &victim), file("f", b"mine")])
        .unwrap();
    assert_eq!(fs::read_to_string(w.layer().join("f")).unwrap(), "mine");
    let victim_dir = w.outside().join("victim-dir").display().to_string();
    w.unpack(&[
        symlink("d", &victim_dir),
        dir("d"),
        file("d/inner", b"mine"),
    ])
    .unwrap();
    assert!(fs::symlink_metadata(w.layer().join("d")).unwrap().is_dir());
    // A whiteout at a symlink's own name removes the link, not its target.
    w.unpack(&[symlink("v", &victim_dir), file(".wh.v", b"")])
        .unwrap();
    let meta = fs::symlink_metadata(w.layer().join("v")).unwrap();
    assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
}

#[test]
fn whiteouts_that_name_a_parent_or_nothing_are_refused() {
    let w = World::new();
    for name in [".wh...", ".wh..", ".wh.", "sub/.wh...", "sub/.wh.."] {
        refused(w.unpack(&[dir("sub"), file(name, b"")]), "names no file");
        assert!(w.layer().join("sub").is_dir(), "{name} removed a parent");
    }
}

#[test]
fn dot_dot_members_are_refused_and_absolute_ones_land_inside() {
    let w = World::new();
    refused(w.unpack(&[file("../escape", b"x")]), "leaves the layer");
    refused(
        w.unpack(&[file("ok/../../escape", b"x")]),
        "leaves the layer",
    );
    let abs = w.outside().join("victim").display().to_string();
    w.unpack(&[file(&abs, b"inside")]).unwrap();
    let inside = w.layer().join(abs.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(inside).unwrap(), "inside");
}

#[test]
fn hard_links_must_name_a_file_of_this_layer() {
    let w = World::new();
    let victim = w.outside().join("victim").display().to_string();
    // Absolute: taken inside the layer, where there is no such file.
    refused(
        w.unpack(&[hardlink("h", &victim)]),
        "not a file in the layer",
    );
    refused(
        w.unpack(&[hardlink("h", "../../../outside/victim")]),
        "leaves the layer",
    );
    refused(
        w.unpack(&[hardlink("h", "missing")]),
        "not a file in the layer",
    );
    refused(
        w.unpack(&[dir("d"), hardlink("h", "d")]),
        "not a file in the layer",
    );
    let host = w.outside().display().to_string();
    refused(
        w.unpack(&[symlink("x", &host), hardlink("h", "x/victim")]),
        "not a file in the layer",
    );
    refused(
        w.unpack(&[file("h", b""), hardlink("h", "h")]),
        "links to itself",
    );
    // A link to a symlink is a second name for the symlink, not its target.
    w.unpack(&[symlink("s", &victim), hardlink("h", "s")])
        .unwrap();
    assert!(fs::symlink_metadata(w.layer().join("h"))
        .unwrap()
        .file_type()
        .is_symlink());
    w.unpack(&[file("f", b"data"), hardlink("g", "f")]).unwrap();
    let (f, g) = (w.layer().join("f"), w.layer().join("g"));
    assert_eq!(
        fs::metadata(f).unwrap().ino(),
        fs::metadata(g).unwrap().ino()
    );
    assert_eq!(fs::metadata(w.outside().join("victim")).unwrap().nlink(), 1);
}

#[test]
fn devices_are_skipped_fifos_made_and_setuid_kept() {
    let w = World::new();
    let mut null = tar::Header::new_gnu();
    null.set_entry_type(tar::EntryType::Char);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    let mut disk = tar::Header::new_gnu();
    disk.set_entry_type(tar::EntryType::Block);
    disk.set_device_major(8).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (h, name) in [(&mut null, "null"), (&mut disk, "sda")] {
        h.set_size(0);
        h.set_mode(0o666);
        b.append_data(h, name, std::io::empty()).unwrap();
    }
    let mut fifo = tar::Header::new_gnu();
    fifo.set_entry_type(tar::EntryType::Fifo);
    fifo.set_size(0);
    fifo.set_mode(0o640);
    b.append_data(&mut fifo, "pipe", std::io::empty()).unwrap();
    let mut su = tar::Header::new_gnu();
    su.set_entry_type(tar::EntryType::Regular);
    su.set_size(2);
    su.set_mode(0o4755);
    b.append_data(&mut su, "su", &b"#!"[..]).unwrap();
    unpack(&b.into_inner().unwrap()[..], &w.layer()).unwrap();
    assert!(!w.layer().join("null").exists());
    assert!(!w.layer().join("sda").exists());
    let pipe = fs::symlink_metadata(w.layer().join("pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.permissions().mode() & 0o7777, 0o640);
    let su = fs::metadata(w.layer().join("su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
}

#[test]
fn only_harmless_xattrs_are_kept() {
    let w = World::new();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/outside"[..]),
        (
            "SCHILY.xattr.security.selinux",
            &b"system_u:object_r:shadow_t:s0"[..],
        ),
        ("SCHILY.xattr.user.note", &b"kept"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    b.append_data(&mut h, "d", std::io::empty()).unwrap();
    unpack(&b.into_inner().unwrap()[..], &w.layer()).unwrap();
    let d = w.layer().join("d");
    let names: Vec<String> = xattr::list(&d)
        .unwrap()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("security.selinux") || n.is_empty())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("trusted.")),
        "{names:?}"
    );
    // user xattrs need a filesystem that has them; where it does, kept.
    if xattr::SUPPORTED_PLATFORM && !names.is_empty() {
        assert_eq!(
            xattr::get(&d, "user.note").unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }
}

#[test]
fn opaque_markers_and_whiteouts_become_overlay_form_inside_the_layer() {
    let w = World::new();
    w.unpack(&[
        dir("etc"),
        file("etc/.wh.motd", b""),
        dir("var"),
        file("var/.wh..wh..opq", b""),
        file("new/deep/.wh.x", b""),
    ])
    .unwrap();
    let motd = fs::symlink_metadata(w.layer().join("etc/motd")).unwrap();
    assert!(motd.file_type().is_char_device() && motd.rdev() == 0);
    assert_eq!(
        xattr::get(w.layer().join("var"), OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(w.layer().join("new/deep").is_dir());
}

mod property {
    //! Random tar streams: whatever they hold, nothing outside the layer
    //! directory appears, changes or goes.

    use proptest::prelude::*;

    use super::*;

    /// Name components that matter: plain names shared between members (so
    /// links and whiteouts hit earlier members), `.`, `..`, whiteouts.
    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => prop::sample::select(vec!["a", "x", "victim"]),
            2 => prop::sample::select(vec![".wh.a", ".wh.x", ".wh.victim", ".wh..wh..opq"]),
            1 => prop::sample::select(vec![".", "..", "", ".wh..", ".wh...", "b", "victim-dir", "outside"]),
        ]
        .prop_map(String::from)
    }

    /// Names from a small pool most of the time, so members often meet at
    /// one path (a link, then a member through it or over it); otherwise
    /// random ones.
    fn name() -> impl Strategy<Value = String> {
        let random = (
            prop::bool::weighted(0.2),
            prop::collection::vec(component(), 1..4),
        )
            .prop_map(|(abs, parts)| format!("{}{}", if abs { "/" } else { "" }, parts.join("/")));
        prop_oneof![
            3 => prop::sample::select(vec!["x", "a", "x/victim", "x/.wh.victim", "x/.wh..wh..opq", "x/victim-dir/inner", "a/x", "/x"])
                .prop_map(String::from),
            2 => random,
        ]
    }

    /// Link targets: into the layer, up and out of it, at the world's
    /// outside (an absolute path filled in per case), at `/`.
    fn target() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => name(),
            2 => prop::sample::select(vec!["/", "@OUT", "@OUT/victim", "@OUT/victim-dir", "..", "../..", "../../..", "../../../outside", "../../../outside/victim"])
                .prop_map(String::from),
        ]
    }

    #[derive(Debug, Clone)]
    enum Member {
        File(String),
        Dir(String),
        Symlink(String, String),
        Hardlink(String, String),
    }

    fn member() -> impl Strategy<Value = Member> {
        prop_oneof![
            name().prop_map(Member::File),
            name().prop_map(Member::Dir),
            (name(), target()).prop_map(|(n, t)| Member::Symlink(n, t)),
            (name(), target()).prop_map(|(n, t)| Member::Hardlink(n, t)),
        ]
    }

    /// Runs one random layer in a fresh world; panics if the world changed.
    fn check(members: &[Member]) {
        let w = World::new();
        let out = w.outside().display().to_string();
        let fill = |s: &str| s.replace("@OUT", &out);
        let owned: Vec<(tar::EntryType, String, String)> = members
            .iter()
            .map(|m| match m {
                Member::File(n) => (tar::EntryType::Regular, fill(n), String::new()),
                Member::Dir(n) => (tar::EntryType::Directory, fill(n), String::new()),
                Member::Symlink(n, t) => (tar::EntryType::Symlink, fill(n), fill(t)),
                Member::Hardlink(n, t) => (tar::EntryType::Link, fill(n), fill(t)),
            })
            .filter(|(_, n, t)| !n.is_empty() && n.len() < 100 && t.len() < 100)
            .collect();
        let raws: Vec<Raw> = owned
            .iter()
            .map(|(kind, n, t)| Raw {
                kind: *kind,
                name: n.as_bytes(),
                link: t.as_bytes(),
                data: b"pwned",
                mode: 0o755,
            })
            .collect();
        let before_parent = snapshot_names(w.dir.path().parent().unwrap());
        // Refused or not, the world outside the layer must be as it was.
        let _ = w.unpack(&raws);
        assert_eq!(
            before_parent,
            snapshot_names(w.dir.path().parent().unwrap())
        );
    }

    /// The names directly in `dir` (the temp directory holding the world):
    /// nothing may appear beside the world either.
    fn snapshot_names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| {
                ["a", "b", "x", "victim", "victim-dir", "outside"]
                    .iter()
                    .any(|c| n == c)
            })
            .collect();
        names.sort();
        names
    }

    /// Cases per run: 256 in CI; `BERTH_UNPACK_CASES` for a longer run.
    fn cases() -> u32 {
        std::env::var("BERTH_UNPACK_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_layers_never_touch_anything_outside_the_layer(members in prop::collection::vec(member(), 1..12)) {
            check(&members);
        }
    }
}
