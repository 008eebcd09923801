//! The editor's file API over HTTP against a real `berth serve`: files in
//! the lab's home listed, read, written (as the lab's user), renamed,
//! removed, uploaded as a tar and downloaded; and a learner's attacks on it
//! (symlinks to the host's files, `..`, hostile tars, a swap race, a disk
//! filled by an upload), each judged by the host's own files.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::classroom::{Classroom, Term};

const PROMPT: &str = "root@node1:~# ";
const LONG: Duration = Duration::from_secs(60);

/// An HTTP answer: status and body bytes.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request with a binary body, sent in pieces from `body`.
fn send(
    c: &Classroom,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: &mut dyn Read,
    len: u64,
) -> Answer {
    let mut s = TcpStream::connect(&c.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {len}\r\n",
        c.addr
    );
    if let Some(t) = token {
        head.push_str(&format!("Cookie: berth_session={t}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before the whole body is sent.
    let _ = std::io::copy(body, &mut s);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = raw[(split + 4).min(raw.len())..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer { status, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < eol + 4 + n {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

fn q(path: &str) -> String {
    path.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_./".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Files<'a> {
    c: &'a Classroom,
    token: String,
}

impl Files<'_> {
    fn call(&self, method: &str, op: &str, query: &str, body: &[u8]) -> Answer {
        let path = format!("/api/files/node1/{op}?{query}");
        send(
            self.c,
            method,
            &path,
            Some(&self.token),
            &[],
            &mut &body[..],
            body.len() as u64,
        )
    }
    fn get(&self, op: &str, path: &str) -> Answer {
        self.call("GET", op, &format!("path={}", q(path)), b"")
    }
    fn post(&self, op: &str, query: &str, body: &[u8]) -> Answer {
        self.call("POST", op, query, body)
    }
    fn write(&self, path: &str, content: &str) -> Answer {
        self.post("write", &format!("path={}", q(path)), content.as_bytes())
    }
    fn upload(&self, dir: &str, tar: &[u8]) -> Answer {
        self.post("upload", &format!("path={}", q(dir)), tar)
    }
}

async fn lab(c: &Classroom) -> (Files<'_>, Term) {
    let (token, _) = c.new_session();
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    (Files { c, token }, t)
}

fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        // Names set raw, so `../` reaches the server as written.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Files under `dir` (not following symlinks) whose name is `name`.
fn find_named(dir: &Path, name: &str, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if e.file_name() == name {
            out.push(p.clone());
        }
        if ft.is_dir() {
            find_named(&p, name, out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_reads_and_writes_the_labs_home_as_the_labs_user() {
    let c = Classroom::start(&[]);
    let (f, mut t) = lab(&c).await;

    let r = f.post("mkdir", "path=app", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = f.post(
        "write",
        "path=app/Dockerfile&new=true",
        b"FROM busybox\nCMD [\"echo\", \"from-the-editor\"]\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json();
    // A second "new file" with that name is refused, not overwritten.
    let r = f.post("write", "path=app/Dockerfile&new=true", b"x");
    assert_eq!(r.status, 409, "{}", r.text());

    // The shell sees it, owned by its root (uid 0 in the lab).
    let out = t
        .run(
            "cat app/Dockerfile; stat -c '%u:%g %a' app/Dockerfile",
            LONG,
        )
        .await
        .unwrap();
    assert!(out.contains("from-the-editor"), "{out}");
    assert!(out.contains("0:0 644"), "{out}");
    // On the host it belongs to the session's unprivileged range.
    let mut found = Vec::new();
    find_named(&c.data_dir().join("sessions"), "Dockerfile", &mut found);
    assert!(!found.is_empty(), "the Dockerfile is on the session's disk");
    for p in &found {
        let uid = std::fs::symlink_metadata(p).unwrap().uid();
        assert_ne!(uid, 0, "{} belongs to host root", p.display());
    }

    // Listing: directories first, with sizes.
    let r = f.get("list", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"app".to_string()), "{names:?}");
    let r = f.get("list", "app");
    assert_eq!(r.json()["entries"][0]["name"], "Dockerfile");
    assert_eq!(r.json()["entries"][0]["kind"], "file");

    // Read, then the terminal changes it: a save with the old version is
    // refused, the stat shows the new version.
    let r = f.get("read", "app/Dockerfile");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json()["info"]["version"].as_str().unwrap().to_string();
    assert_eq!(first["version"], v);
    t.run("echo '# from the terminal' >> app/Dockerfile", LONG)
        .await
        .unwrap();
    let r = f.post(
        "write",
        &format!("path=app/Dockerfile&version={}", q(&v)),
        b"FROM busybox\n",
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("changed on disk"), "{}", r.text());
    let now = f.get("stat", "app/Dockerfile").json();
    assert_ne!(now["version"], v);
    let out = t.run("cat app/Dockerfile", LONG).await.unwrap();
    assert!(
        out.contains("# from the terminal"),
        "the refused save wrote: {out}"
    );
    // Saving with the current version works.
    let r = f.post(
        "write",
        &format!(
            "path=app/Dockerfile&version={}",
            q(now["version"].as_str().unwrap())
        ),
        b"FROM busybox\nCMD echo saved\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Rename (never over something), download, delete.
    let r = f.post("rename", "path=app/Dockerfile&to=app/Dockerfile.old", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    f.write("app/other", "x");
    let r = f.post("rename", "path=app/Dockerfile.old&to=app/other", b"");
    assert_eq!(r.status, 409, "{}", r.text());
    let r = f.get("download", "app/Dockerfile.old");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "FROM busybox\nCMD echo saved\n");
    let r = f.get("download", "app");
    let mut names = Vec::new();
    for e in tar::Archive::new(&r.body[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(
        names.iter().any(|n| n.ends_with("Dockerfile.old")),
        "{names:?}"
    );
    let r = f.post("delete", "path=app", b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let out = t.run("ls app 2>&1", LONG).await.unwrap();
    assert!(out.contains("No such file"), "{out}");

    // Too large for the editor, and binary: clear refusals.
    t.run(
        "dd if=/dev/zero of=big bs=1024 count=1100 2>/dev/null; printf '\\377\\376' > bin",
        LONG,
    )
    .await
    .unwrap();
    let r = f.get("read", "big");
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().contains("larger than the editor opens"),
        "{}",
        r.text()
    );
    let r = f.get("read", "bin");
    assert_eq!(r.status, 415, "{}", r.text());
    let r = f.post("write", "path=big", &vec![b'a'; 1_100_000]);
    assert_eq!(r.status, 413, "{}", r.text());

    // A FIFO under a file's name answers at once instead of hanging.
    t.run("mkfifo pipe", LONG).await.unwrap();
    let r = f.get("read", "pipe");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a regular file"), "{}", r.text());
    let r = f.write("pipe", "x");
    assert_eq!(r.status, 400, "{}", r.text());

    // An upload: a folder, unpacked in the lab.
    let tar = tar_of(&[
        ("site/", tar::EntryType::Directory, b"", None),
        (
            "site/index.html",
            tar::EntryType::Regular,
            b"<h1>up</h1>",
            None,
        ),
    ]);
    let r = f.upload("", &tar);
    assert_eq!(r.status, 204, "{}", r.text());
    let out = t
        .run("cat site/index.html; stat -c '%u' site/index.html", LONG)
        .await
        .unwrap();
    assert!(out.contains("<h1>up</h1>0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_api_needs_the_session_and_its_origin() {
    let c = Classroom::start(&[]);
    let (f, _t) = lab(&c).await;
    let r = send(
        &c,
        "GET",
        "/api/files/node1/list?path=",
        None,
        &[],
        &mut &b""[..],
        0,
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = send(
        &c,
        "POST",
        "/api/files/node1/write?path=x",
        Some(&f.token),
        &[("Origin", "http://evil.example")],
        &mut &b"x"[..],
        1,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = f.get("list", "").status;
    assert_eq!(r, 200);
    let r = send(
        &c,
        "GET",
        "/api/files/node9/list?path=",
        Some(&f.token),
        &[],
        &mut &b""[..],
        0,
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_dotdot_and_hostile_tars_in_the_lab_never_reach_the_host() {
    let c = Classroom::start(&[]);
    let (f, mut t) = lab(&c).await;
    let canary_dir = tempfile::Builder::new()
        .prefix("editor-canary-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let canary = canary_dir.path().join("canary");
    std::fs::write(&canary, "host file").unwrap();
    let cdir = canary_dir.path().display().to_string();
    let host_passwd = std::fs::read("/etc/passwd").unwrap();

    t.run(
        &format!(
            "ln -s /etc/passwd pw; ln -s / rootlink; ln -s {cdir} cdir; ln -s {cdir}/canary canary"
        ),
        LONG,
    )
    .await
    .unwrap();

    // `..`, absolute paths, NUL bytes: refused before anything runs.
    for bad in ["../etc/passwd", "/etc/passwd", "a/../../x", "a%00b"] {
        let r = f.call("GET", "read", &format!("path={bad}"), b"");
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        let r = f.post("write", &format!("path={bad}"), b"x");
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }

    // Through a link to /etc/passwd: the lab's own file, never the host's.
    let r = f.get("read", "pw");
    assert_eq!(r.status, 200, "{}", r.text());
    let lab_passwd = r.json()["content"].as_str().unwrap().to_string();
    assert!(lab_passwd.contains("root:"), "{lab_passwd}");
    assert_ne!(
        lab_passwd.as_bytes(),
        &host_passwd[..],
        "the host's /etc/passwd was read"
    );
    let r = f.write("pw", "hacked:x:0:0::/:/bin/sh\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);
    let out = t.run("cat /etc/passwd", LONG).await.unwrap();
    assert!(
        out.contains("hacked:"),
        "the write went to the lab's file: {out}"
    );

    // A link to a host-only path does not exist in the lab.
    let r = f.get("read", "canary");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f.get("list", "cdir");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f.write("cdir/planted", "x");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f.write("rootlink/tmp/planted-by-editor", "x");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!Path::new("/tmp/planted-by-editor").exists());
    let r = f.post("delete", "path=canary", b"");
    assert_eq!(r.status, 204, "{}", r.text()); // the link itself, in the lab
    let r = f.post(
        "delete",
        &format!("path=rootlink{}", q(&canary.display().to_string())),
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = f.post(
        "rename",
        &format!("path=pw&to=rootlink{}", q(&format!("{cdir}/moved"))),
        b"",
    );
    assert_ne!(r.status, 204, "{}", r.text());
    let r = f.get("download", "rootlink/etc");
    assert_eq!(r.status, 200);
    let mut passwd_in_tar = None;
    for e in tar::Archive::new(&r.body[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("passwd") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            passwd_in_tar = Some(s);
        }
    }
    assert!(
        passwd_in_tar.unwrap().contains("hacked:"),
        "the download is the lab's /etc"
    );

    // Uploads: into a link to `/` lands in the lab; `../` and links refused.
    let tar = tar_of(&[("planted-by-upload", tar::EntryType::Regular, b"x", None)]);
    let r = f.upload("rootlink/tmp", &tar);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!Path::new("/tmp/planted-by-upload").exists());
    let tar = tar_of(&[(
        "../../../../var/tmp/escaped-by-dotdot",
        tar::EntryType::Regular,
        b"x",
        None,
    )]);
    let r = f.upload("", &tar);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!Path::new("/var/tmp/escaped-by-dotdot").exists());
    let tar = tar_of(&[
        ("up", tar::EntryType::Symlink, b"", Some(&cdir)),
        ("up/planted", tar::EntryType::Regular, b"x", None),
    ]);
    let r = f.upload("", &tar);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("only files and folders"), "{}", r.text());
    let tar = tar_of(&[("hl", tar::EntryType::Link, b"", Some("/etc/shadow"))]);
    assert_eq!(f.upload("", &tar).status, 400);

    // A race: the shell swaps `race` between a directory and a link to the
    // host's canary directory while the editor writes into it.
    t.type_text(&format!(
        "while :; do rm -rf race; mkdir race; rm -rf race; ln -s {cdir} race; done &\r"
    ))
    .await;
    for i in 0..60 {
        let _ = f.write(&format!("race/raced-{i}"), "x");
        let _ = f.upload(
            "race",
            &tar_of(&[(&format!("up-{i}"), tar::EntryType::Regular, b"x", None)]),
        );
    }
    let _ = t.run("kill %1", LONG).await;
    let left: Vec<_> = std::fs::read_dir(canary_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("canary")],
        "the host directory was written"
    );
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "host file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_larger_than_the_disk_budget_fails_with_no_space_left() {
    let c = Classroom::start(&["--session-disk-mb", "64"]);
    let (f, mut t) = lab(&c).await;
    // 80 MiB of file in a tar, streamed.
    let size: u64 = 80 << 20;
    let mut h = tar::Header::new_gnu();
    h.set_path("huge").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let header = h.as_bytes().to_vec();
    let total = 512 + size + 1024;
    let mut body = std::io::Read::chain(&header[..], std::io::repeat(b'z').take(size + 1024));
    let r = send(
        &c,
        "POST",
        "/api/files/node1/upload?path=",
        Some(&f.token),
        &[],
        &mut body,
        total,
    );
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.text().contains("no space left on device"), "{}", r.text());
    // The lab lives on: remove the remains, write a file.
    t.run("rm -f huge", LONG).await.unwrap();
    let r = f.write("small", "still works");
    assert_eq!(r.status, 200, "{}", r.text());
    let out = t.run("cat small", LONG).await.unwrap();
    assert!(out.contains("still works"), "{out}");
}
