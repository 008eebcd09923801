//! Crafted trees and tars against the in-root helpers: whatever they hold,
//! nothing is read or written outside the tree.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;

/// A directory outside the trees under test, with a secret in it.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("secret"), "s3cret").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("secret")], "outside dir changed");
        assert_eq!(
            fs::read_to_string(self.path().join("secret")).unwrap(),
            "s3cret"
        );
    }
}

fn same(uid: u32, gid: u32) -> io::Result<(u32, u32)> {
    Ok((uid, gid))
}

fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h
}

/// Appends an entry with a raw name (the tar crate refuses `..` in
/// `append_data`, an attacker's tar does not).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: &str,
    data: &[u8],
) {
    let mut h = header(kind, data.len() as u64);
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    if !link.is_empty() {
        let l = link.as_bytes();
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn a_subtree_through_an_absolute_symlink_stays_in_the_tree() {
    let outside = Outside::new();
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("image");
    fs::create_dir(&image).unwrap();
    symlink("/", image.join("hostroot")).unwrap();
    let tree = Tree::open(&image).unwrap();
    let target = Path::new("/hostroot").join(outside.path().strip_prefix("/").unwrap());
    assert!(
        tree.subtree(&target).unwrap().is_none(),
        "the image's /hostroot is the image's root, where the host dir is missing"
    );
}

#[test]
fn copy_tree_copies_files_links_and_modes_and_reads_nothing_outside() {
    let outside = Outside::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/f"), "hello").unwrap();
    fs::set_permissions(src.join("sub/f"), Permissions::from_mode(0o640)).unwrap();
    symlink(outside.path(), src.join("out")).unwrap();
    symlink(outside.path().join("secret"), src.join("secret")).unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    copy_tree(
        &Tree::open(&src).unwrap(),
        &Tree::open(&dst).unwrap(),
        &same,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(dst.join("sub/f")).unwrap(), "hello");
    assert_eq!(
        fs::metadata(dst.join("sub/f")).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(fs::read_link(dst.join("out")).unwrap(), outside.path());
    assert!(fs::symlink_metadata(dst.join("secret"))
        .unwrap()
        .file_type()
        .is_symlink());
    outside.assert_untouched();
}

#[test]
fn copy_tree_into_a_tree_with_planted_links_writes_inside_it() {
    let outside = Outside::new();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/new"), "x").unwrap();
    fs::write(src.join("f"), "y").unwrap();
    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    // What a container on the same volume plants meanwhile.
    symlink(outside.path(), dst.join("d")).unwrap();
    symlink(outside.path().join("secret"), dst.join("f")).unwrap();
    copy_tree(
        &Tree::open(&src).unwrap(),
        &Tree::open(&dst).unwrap(),
        &same,
    )
    .unwrap();
    outside.assert_untouched();
    assert_eq!(fs::read_to_string(dst.join("d/new")).unwrap(), "x");
    assert_eq!(fs::read_to_string(dst.join("f")).unwrap(), "y");
}

#[test]
fn tar_entries_that_climb_out_are_refused() {
    let outside = Outside::new();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b");
    fs::create_dir_all(&root).unwrap();
    let body = tar_with(|b| raw_entry(b, tar::EntryType::Regular, "../../x", "", b"evil"));
    let err = extract_tar(
        &Tree::open(&root).unwrap(),
        Path::new("/"),
        &body[..],
        Extract::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("is outside of"), "{err}");
    outside.assert_untouched();
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn a_symlink_then_a_file_through_it_lands_in_the_tree() {
    let outside = Outside::new();
    let tmp = tempfile::tempdir().unwrap();
    let link = outside.path().to_string_lossy().into_owned();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    let tree = Tree::open(&root).unwrap();
    // The link's target is missing inside the tree: refused (a dangling
    // link is no directory), never followed on the host.
    let body = tar_with(|b| {
        raw_entry(b, tar::EntryType::Symlink, "x", &link, b"");
        raw_entry(b, tar::EntryType::Regular, "x/planted", "", b"evil");
    });
    assert!(extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).is_err());
    outside.assert_untouched();
    // A file entry over a symlink replaces the link.
    let body = tar_with(|b| {
        raw_entry(
            b,
            tar::EntryType::Symlink,
            "s",
            &format!("{link}/secret"),
            b"",
        );
        raw_entry(b, tar::EntryType::Regular, "s", "", b"overwrite");
    });
    extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).unwrap();
    assert_eq!(fs::read_to_string(root.join("s")).unwrap(), "overwrite");
    // A link that climbs to `/` is the tree's root.
    let body = tar_with(|b| {
        raw_entry(b, tar::EntryType::Symlink, "up", "../../../../../..", b"");
        raw_entry(b, tar::EntryType::Directory, "var/tmp/", "", b"");
        raw_entry(
            b,
            tar::EntryType::Regular,
            "up/var/tmp/planted",
            "",
            b"evil",
        );
    });
    extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("var/tmp/planted")).unwrap(),
        "evil"
    );
    outside.assert_untouched();
}

#[test]
fn hard_links_must_point_inside_and_devices_are_refused() {
    let outside = Outside::new();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    let tree = Tree::open(&root).unwrap();
    let secret = outside.path().join("secret").to_string_lossy().into_owned();

    // An absolute link name is taken inside the tree: nothing to link to.
    let body = tar_with(|b| raw_entry(b, tar::EntryType::Link, "h", &secret, b""));
    assert!(extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).is_err());
    // A link name that climbs out is Docker's "invalid hardlink".
    let body = tar_with(|b| raw_entry(b, tar::EntryType::Link, "h", "../../../etc/passwd", b""));
    let err = extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).unwrap_err();
    assert!(err.to_string().contains("invalid hardlink"), "{err}");
    // Through a symlink planted first: still resolved inside.
    let body = tar_with(|b| {
        raw_entry(
            b,
            tar::EntryType::Symlink,
            "o",
            &outside.path().to_string_lossy(),
            b"",
        );
        raw_entry(b, tar::EntryType::Link, "h2", "o/secret", b"");
    });
    assert!(extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).is_err());
    // An inside link works.
    let body = tar_with(|b| {
        raw_entry(b, tar::EntryType::Regular, "a", "", b"A");
        raw_entry(b, tar::EntryType::Link, "b", "a", b"");
    });
    extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).unwrap();
    assert_eq!(fs::read_to_string(root.join("b")).unwrap(), "A");
    // Devices.
    let body = tar_with(|b| raw_entry(b, tar::EntryType::Block, "sda", "", b""));
    let err = extract_tar(&tree, Path::new("/"), &body[..], Extract::default()).unwrap_err();
    assert!(err.to_string().contains("device node"), "{err}");
    assert!(!root.join("sda").exists());
    outside.assert_untouched();
    assert_eq!(
        fs::metadata(outside.path().join("secret")).unwrap().nlink(),
        1
    );
}

#[test]
fn extraction_below_a_destination_keeps_dotdot_inside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("dest")).unwrap();
    let body = tar_with(|b| {
        raw_entry(b, tar::EntryType::Regular, "a/../b", "", b"B");
        raw_entry(b, tar::EntryType::Regular, "../c", "", b"C");
    });
    let err = extract_tar(
        &Tree::open(&root).unwrap(),
        Path::new("/dest"),
        &body[..],
        Extract::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("is outside of"));
    assert_eq!(fs::read_to_string(root.join("dest/b")).unwrap(), "B");
    assert!(!root.join("c").exists());
}

mod random_tars {
    use super::*;
    use proptest::prelude::*;

    /// One crafted entry: a kind, a name and a link target drawn from pieces
    /// that attack (`..`, absolute paths, the outside directory).
    #[derive(Debug, Clone)]
    struct Spec {
        kind: u8,
        name: Vec<u8>,
        link: Vec<u8>,
    }

    /// Names and link targets that attack: through a link, above the root,
    /// straight at the outside directory.
    fn names() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "x",
            "x/new",
            "x/secret",
            "../x",
            "a/../../x",
            "y/z",
            "x/.",
        ])
        .prop_map(str::to_string)
    }

    fn links(outside: &'static str) -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", "/secret", "/..", "../../..", "/"]).prop_map(move |tail| {
            if tail == "../../.." || tail == "/" {
                tail.to_string()
            } else {
                format!("/{outside}{tail}")
            }
        })
    }

    fn spec(outside: &'static str) -> impl Strategy<Value = Spec> {
        (0u8..5, names(), links(outside)).prop_map(|(kind, name, link)| Spec {
            kind,
            name: name.into_bytes(),
            link: link.into_bytes(),
        })
    }

    fn outside_dir() -> &'static (tempfile::TempDir, String) {
        static DIR: std::sync::OnceLock<(tempfile::TempDir, String)> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("secret"), "s3cret").unwrap();
            let text = dir
                .path()
                .to_string_lossy()
                .trim_start_matches('/')
                .to_string();
            (dir, text)
        })
    }

    fn tar_of(specs: &[Spec]) -> Vec<u8> {
        tar_with(|b| {
            for s in specs {
                let kind = match s.kind {
                    0 => tar::EntryType::Regular,
                    1 => tar::EntryType::Directory,
                    2 => tar::EntryType::Symlink,
                    3 => tar::EntryType::Link,
                    _ => tar::EntryType::Regular,
                };
                let name = String::from_utf8_lossy(&s.name[..s.name.len().min(99)]).into_owned();
                let link = String::from_utf8_lossy(&s.link[..s.link.len().min(99)]).into_owned();
                let link = if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                    link
                } else {
                    String::new()
                };
                let data: &[u8] = if kind == tar::EntryType::Regular {
                    b"evil"
                } else {
                    b""
                };
                raw_entry(b, kind, &name, &link, data);
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn nothing_lands_outside_the_tree(specs in prop::collection::vec(spec(&outside_dir().1), 1..12)) {
            let (outside, _) = outside_dir();
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("a/root");
            fs::create_dir_all(&root).unwrap();
            let tree = Tree::open(&root).unwrap();
            let _ = extract_tar(&tree, Path::new("/"), &tar_of(&specs)[..], Extract::default());
            let names: Vec<_> = fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            prop_assert_eq!(names, vec![OsString::from("secret")]);
            prop_assert_eq!(fs::read_to_string(outside.path().join("secret")).unwrap(), "s3cret");
            prop_assert_eq!(fs::metadata(outside.path().join("secret")).unwrap().nlink(), 1);
            let beside: Vec<_> = fs::read_dir(tmp.path().join("a")).unwrap().map(|e| e.unwrap().file_name()).collect();
            prop_assert_eq!(beside, vec![OsString::from("root")]);
            let above: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            prop_assert_eq!(above, vec![OsString::from("a")]);
        }
    }
}
