//! The registry end to end: Berth's own registry (`berth registry` on a
//! loopback port) and engines (`berth daemon`) pushing and pulling through
//! the real docker CLI; the registry's HTTP answers as curl sees them; and
//! interoperability with registries and clients Berth did not write
//! (Debian's `docker-registry` and `skopeo`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::engine::Engine;
use common::Run;

/// A `berth registry` on 127.0.0.1, on a port the OS picked.
struct Registry {
    data: tempfile::TempDir,
    child: Child,
    addr: String,
}

impl Registry {
    fn start(args: &[&str]) -> Self {
        let data = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--data-dir")
            .arg(data.path())
            .args(["registry", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start berth registry");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("registry prints its address")
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        Self { data, child, addr }
    }

    /// `curl` against the registry: (status, headers, body).
    fn curl(&self, args: &[&str], path: &str) -> (u16, String, String) {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "--max-time", "20"])
            .args(args)
            .arg(format!("http://{}{path}", self.addr))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_lowercase(), body.to_string())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn engine_for(registry: &Registry, extra: &[&str]) -> Engine {
    let mut args = vec!["--registry", registry.addr.as_str()];
    args.extend_from_slice(extra);
    Engine::start_with(&args)
}

fn expect_ok(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what}: {}{}", run.stdout, run.stderr);
}

/// An image of busybox plus a layer holding `/data.txt` = `text`.
fn make_image(e: &Engine, name: &str, text: &str) {
    let c = format!("mk-{}", name.replace(['/', ':', '.'], "-"));
    e.ok(&[
        "run",
        "--name",
        &c,
        "busybox",
        "sh",
        "-c",
        &format!("echo {text} > /data.txt"),
    ]);
    e.ok(&["commit", &c, name]);
    e.ok(&["rm", &c]);
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[test]
fn tag_push_rmi_pull_run_by_tag_and_by_digest() {
    let r = Registry::start(&[]);
    let e = engine_for(&r, &[]);
    make_image(&e, "registry.local:5000/web:v1", "hello-from-v1");

    let push = e.docker(&["push", "registry.local:5000/web:v1"]);
    expect_ok(&push, "first push");
    assert!(
        push.stdout
            .contains("The push refers to repository [registry.local:5000/web]"),
        "{}",
        push.stdout
    );
    assert!(push.stdout.contains(": Pushed"), "{}", push.stdout);
    assert!(
        push.stdout.contains("v1: digest: sha256:"),
        "{}",
        push.stdout
    );
    let again = e.docker(&["push", "registry.local:5000/web:v1"]);
    expect_ok(&again, "second push");
    assert!(
        again.stdout.contains(": Layer already exists"),
        "{}",
        again.stdout
    );
    assert!(!again.stdout.contains(": Pushed"), "{}", again.stdout);

    let repo_digest = e.ok(&[
        "inspect",
        "-f",
        "{{index .RepoDigests 0}}",
        "registry.local:5000/web:v1",
    ]);
    let repo_digest = repo_digest.trim().to_string();
    assert!(
        repo_digest.starts_with("registry.local:5000/web@sha256:"),
        "{repo_digest}"
    );
    let digest = repo_digest.split_once('@').unwrap().1.to_string();
    let pushed_digest = push
        .stdout
        .split("digest: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(pushed_digest, digest);

    let rmi = e.ok(&["rmi", "registry.local:5000/web:v1"]);
    assert!(rmi.contains("Deleted: sha256:"), "{rmi}");
    let pull = e.docker(&["pull", "registry.local:5000/web:v1"]);
    expect_ok(&pull, "pull by tag");
    for words in [
        "v1: Pulling from web",
        ": Already exists",
        ": Pulling fs layer",
        ": Download complete",
        ": Pull complete",
        &format!("Digest: {digest}"),
        "Status: Downloaded newer image for registry.local:5000/web:v1",
    ] {
        assert!(pull.stdout.contains(words), "{words}: {}", pull.stdout);
    }
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "registry.local:5000/web:v1",
            "cat",
            "/data.txt"
        ])
        .trim(),
        "hello-from-v1"
    );
    let same = e.ok(&["pull", "registry.local:5000/web:v1"]);
    assert!(
        same.contains("Status: Image is up to date for registry.local:5000/web:v1"),
        "{same}"
    );
    let inspect = e.ok(&[
        "inspect",
        "-f",
        "{{json .RepoDigests}}",
        "registry.local:5000/web:v1",
    ]);
    assert!(inspect.contains(&repo_digest), "{inspect}");

    e.ok(&["rmi", "registry.local:5000/web:v1"]);
    let by_digest = e.docker(&["pull", &repo_digest]);
    expect_ok(&by_digest, "pull by digest");
    assert!(
        by_digest
            .stdout
            .contains(&format!("Status: Downloaded newer image for {repo_digest}")),
        "{}",
        by_digest.stdout
    );
    assert_eq!(
        e.ok(&["run", "--rm", &repo_digest, "cat", "/data.txt"])
            .trim(),
        "hello-from-v1"
    );
    let images = e.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert!(
        images.contains(&format!("registry.local:5000/web <none> {digest}")),
        "{images}"
    );
}

#[test]
fn run_of_a_missing_image_pulls_it() {
    let r = Registry::start(&[]);
    let e = engine_for(&r, &[]);
    make_image(&e, "registry.local:5000/auto:v1", "pulled-by-run");
    e.ok(&["push", "registry.local:5000/auto:v1"]);
    e.ok(&["rmi", "registry.local:5000/auto:v1"]);
    let run = e.docker(&[
        "run",
        "--rm",
        "registry.local:5000/auto:v1",
        "cat",
        "/data.txt",
    ]);
    expect_ok(&run, "run pulls");
    assert!(
        run.stderr
            .contains("Unable to find image 'registry.local:5000/auto:v1' locally"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Pull complete"), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "pulled-by-run");
}

#[test]
fn missing_tags_and_repositories_fail_with_dockers_words() {
    let r = Registry::start(&[]);
    let e = engine_for(&r, &[]);
    make_image(&e, "registry.local:5000/web:v1", "x");
    e.ok(&["push", "registry.local:5000/web:v1"]);
    let before = e.ok(&["images", "-q"]);

    let tag = e.docker(&["pull", "registry.local:5000/web:nope"]);
    assert_eq!(tag.code, 1);
    assert!(tag.stderr.contains(
        "Error response from daemon: manifest for registry.local:5000/web:nope not found: manifest unknown: manifest unknown"
    ), "{}", tag.stderr);
    let repo = e.docker(&["pull", "registry.local:5000/nothing-here"]);
    assert_eq!(repo.code, 1);
    assert!(repo.stderr.contains(
        "Error response from daemon: repository registry.local:5000/nothing-here not found: name unknown: repository name not known to registry"
    ), "{}", repo.stderr);
    let run = e.docker(&["run", "--rm", "registry.local:5000/web:nope"]);
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("manifest for registry.local:5000/web:nope not found"),
        "{}",
        run.stderr
    );
    let push = e.docker(&["push", "registry.local:5000/ghost:v1"]);
    assert_eq!(push.code, 1);
    assert!(
        push.stderr
            .contains("An image does not exist locally with the tag: registry.local:5000/ghost"),
        "{}",
        push.stderr
    );
    assert_eq!(
        e.ok(&["images", "-q"]),
        before,
        "a failed pull leaves nothing behind"
    );
}

#[test]
fn an_unreachable_registry_fails_fast_and_names_what_the_classroom_has() {
    let e = Engine::start_with(&["--registry", "127.0.0.1:1"]);
    let started = std::time::Instant::now();
    let pull = e.docker(&["pull", "registry.local:5000/app"]);
    assert_eq!(pull.code, 1);
    assert!(
        pull.stderr.contains("Error response from daemon: Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused"),
        "{}",
        pull.stderr
    );
    assert!(pull.stderr.contains("busybox:latest"), "{}", pull.stderr);
    let hub = e.docker(&["pull", "registry.invalid/lesson/app"]);
    assert_eq!(hub.code, 1);
    assert!(
        hub.stderr.contains(
            "Get \"https://registry.invalid/v2/\": dial tcp: lookup registry.invalid: no such host"
        ),
        "{}",
        hub.stderr
    );
    assert!(hub.stderr.contains("busybox:latest"), "{}", hub.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "fails fast");
}

#[test]
fn two_sessions_namespaces_are_apart() {
    let r = Registry::start(&["--token", "tok-a=sess-a", "--token", "tok-b=sess-b"]);
    let a = engine_for(
        &r,
        &[
            "--registry-namespace",
            "sess-a",
            "--registry-token",
            "tok-a",
        ],
    );
    let b = engine_for(
        &r,
        &[
            "--registry-namespace",
            "sess-b",
            "--registry-token",
            "tok-b",
        ],
    );
    make_image(&a, "registry.local:5000/app:v1", "from-a");
    a.ok(&["push", "registry.local:5000/app:v1"]);

    // B does not see A's image under the same name...
    let pull = b.docker(&["pull", "registry.local:5000/app:v1"]);
    assert_eq!(pull.code, 1);
    assert!(
        pull.stderr
            .contains("repository registry.local:5000/app not found"),
        "{}",
        pull.stderr
    );
    // ...and pushing its own does not overwrite A's.
    make_image(&b, "registry.local:5000/app:v1", "from-b");
    b.ok(&["push", "registry.local:5000/app:v1"]);
    a.ok(&["rmi", "registry.local:5000/app:v1"]);
    a.ok(&["pull", "registry.local:5000/app:v1"]);
    assert_eq!(
        a.ok(&[
            "run",
            "--rm",
            "registry.local:5000/app:v1",
            "cat",
            "/data.txt"
        ])
        .trim(),
        "from-a"
    );

    // The registry itself refuses a token outside its namespace.
    let (status, _, body) = r.curl(
        &["-H", "Authorization: Bearer tok-b"],
        "/v2/sess-a/app/manifests/v1",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"DENIED\""), "{body}");
    let (status, head, _) = r.curl(&[], "/v2/sess-a/app/tags/list");
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    let (_, _, catalog) = r.curl(&["-H", "Authorization: Bearer tok-b"], "/v2/_catalog");
    assert_eq!(catalog, r#"{"repositories":["sess-b/app"]}"#);
    // docker login checks credentials against the registry.
    let bad = a.docker(&["login", "-u", "x", "-p", "wrong", &r.addr]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("401 Unauthorized"), "{}", bad.stderr);
    let good = a.docker(&["login", "-u", "x", "-p", "tok-a", &r.addr]);
    assert!(
        good.stdout.contains("Login Succeeded"),
        "{}{}",
        good.stdout,
        good.stderr
    );
    let direct = a.docker(&["pull", &format!("{}/sess-a/app:v1", r.addr)]);
    expect_ok(&direct, "pull with login");
    a.ok(&["logout", &r.addr]);
    let denied = a.docker(&["pull", &format!("{}/sess-a/app:v1", r.addr)]);
    assert_eq!(denied.code, 1);
    assert!(
        denied
            .stderr
            .contains("unauthorized: authentication required"),
        "{}",
        denied.stderr
    );
}

#[test]
fn the_registry_answers_with_oci_error_codes_and_never_shows_half_an_upload() {
    let r = Registry::start(&[]);
    let (status, head, body) = r.curl(&[], "/v2/");
    assert_eq!((status, body.as_str()), (200, "{}"));
    assert!(
        head.contains("docker-distribution-api-version: registry/2.0"),
        "{head}"
    );

    // A chunked upload: POST, two PATCHes, PUT with the digest.
    let (status, head, _) = r.curl(&["-X", "POST"], "/v2/ns/app/blobs/uploads/");
    assert_eq!(status, 202);
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_string();
    let (status, head, _) = r.curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Range: 0-5",
            "--data-binary",
            "hello ",
        ],
        &location,
    );
    assert_eq!(status, 202);
    assert!(head.contains("range: 0-5"), "{head}");
    let (status, _, body) = r.curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Range: 0-5",
            "--data-binary",
            "again",
        ],
        &location,
    );
    assert_eq!(status, 416, "{body}");
    r.curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Range: 6-10",
            "--data-binary",
            "world",
        ],
        &location,
    );
    let digest = format!("sha256:{}", sha256_hex(b"hello world"));
    let (status, head, _) = r.curl(&["-X", "PUT"], &format!("{location}?digest={digest}"));
    assert_eq!(status, 201);
    assert!(
        head.contains(&format!("docker-content-digest: {digest}")),
        "{head}"
    );
    let (status, head, body) = r.curl(&[], &format!("/v2/ns/app/blobs/{digest}"));
    assert_eq!((status, body.as_str()), (200, "hello world"));
    assert!(head.contains("content-length: 11"), "{head}");

    // A wrong digest is refused and nothing becomes visible.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let (status, _, body) = r.curl(
        &["-X", "POST", "--data-binary", "other"],
        &format!("/v2/ns/app/blobs/uploads/?digest={wrong}"),
    );
    assert_eq!(status, 400);
    assert!(body.contains("\"DIGEST_INVALID\""), "{body}");
    let (status, _, body) = r.curl(&["-I"], &format!("/v2/ns/app/blobs/{wrong}"));
    assert_eq!(status, 404, "{body}");
    let (_, _, body) = r.curl(&[], &format!("/v2/ns/app/blobs/{wrong}"));
    assert!(body.contains("\"BLOB_UNKNOWN\""), "{body}");

    // An interrupted upload keeps what arrived in the upload, not as a blob.
    let (_, head, _) = r.curl(&["-X", "POST"], "/v2/ns/app/blobs/uploads/");
    let upload = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_string();
    let mut s = TcpStream::connect(&r.addr).unwrap();
    write!(
        s,
        "PATCH {upload} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"
    )
    .unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    let (status, head, _) = r.curl(&[], &upload);
    assert_eq!(status, 204);
    assert!(head.contains("range: 0-9"), "{head}");
    let partial = format!("sha256:{}", sha256_hex(b"0123456789"));
    assert_eq!(
        r.curl(&["-I"], &format!("/v2/ns/app/blobs/{partial}")).0,
        404
    );

    // A manifest naming a missing blob, then a good one; tags, catalog, mount, delete.
    let config = format!("sha256:{}", sha256_hex(b"hello world"));
    let missing = format!("sha256:{}", "1".repeat(64));
    let manifest = |layer: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":11}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":11}}]}}"#
        )
    };
    let ct = "Content-Type: application/vnd.oci.image.manifest.v1+json";
    let (status, _, body) = r.curl(
        &["-X", "PUT", "-H", ct, "--data-binary", &manifest(&missing)],
        "/v2/ns/app/manifests/v1",
    );
    assert_eq!(status, 400);
    assert!(body.contains("\"MANIFEST_BLOB_UNKNOWN\""), "{body}");
    let good = manifest(&config);
    let (status, head, _) = r.curl(
        &["-X", "PUT", "-H", ct, "--data-binary", &good],
        "/v2/ns/app/manifests/v1",
    );
    assert_eq!(status, 201);
    let mdigest = format!("sha256:{}", sha256_hex(good.as_bytes()));
    assert!(head.contains(&mdigest), "{head}");
    let (status, head, body) = r.curl(&[], &format!("/v2/ns/app/manifests/{mdigest}"));
    assert_eq!((status, body.as_str()), (200, good.as_str()));
    assert!(
        head.contains("content-type: application/vnd.oci.image.manifest.v1+json"),
        "{head}"
    );
    let (status, _, body) = r.curl(
        &["-X", "PUT", "-H", ct, "--data-binary", &good],
        &format!("/v2/ns/app/manifests/{wrong}"),
    );
    assert_eq!(status, 400);
    assert!(body.contains("\"DIGEST_INVALID\""), "{body}");
    assert_eq!(
        r.curl(&[], "/v2/ns/app/tags/list").2,
        r#"{"name":"ns/app","tags":["v1"]}"#
    );
    let (status, _, body) = r.curl(&[], "/v2/ns/other/tags/list");
    assert_eq!(status, 404);
    assert!(body.contains("\"NAME_UNKNOWN\""), "{body}");
    let (status, _, body) = r.curl(&[], "/v2/ns/app/manifests/v9");
    assert_eq!(status, 404);
    assert!(body.contains("\"MANIFEST_UNKNOWN\""), "{body}");
    let (status, _, body) = r.curl(&[], "/v2/NS/app/tags/list");
    assert_eq!(status, 400);
    assert!(body.contains("\"NAME_INVALID\""), "{body}");

    let (status, _, _) = r.curl(
        &["-X", "POST"],
        &format!("/v2/ns/copy/blobs/uploads/?mount={config}&from=ns/app"),
    );
    assert_eq!(status, 201, "cross-repository mount");
    assert_eq!(
        r.curl(&["-I"], &format!("/v2/ns/copy/blobs/{config}")).0,
        200
    );
    r.curl(
        &["-X", "PUT", "-H", ct, "--data-binary", &good],
        "/v2/ns/copy/manifests/latest",
    );
    assert_eq!(
        r.curl(&[], "/v2/_catalog").2,
        r#"{"repositories":["ns/app","ns/copy"]}"#
    );

    assert_eq!(
        r.curl(
            &["-X", "DELETE"],
            &format!("/v2/ns/app/manifests/{mdigest}")
        )
        .0,
        202
    );
    assert_eq!(r.curl(&[], "/v2/ns/app/manifests/v1").0, 404);
    assert_eq!(
        r.curl(&[], &format!("/v2/ns/copy/manifests/{mdigest}")).0,
        200
    );
    // Nothing temporary is left where blobs live.
    let tmp = std::fs::read_dir(r.data.path().join("registry/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 0);
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Debian's `docker-registry` (distribution 2.8) on a loopback port.
struct Distribution {
    _dir: tempfile::TempDir,
    child: Child,
    addr: String,
}

impl Distribution {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let ok = common::engine::eventually(Duration::from_secs(20), || {
            TcpStream::connect(&addr).is_ok()
        });
        assert!(ok, "docker-registry did not listen");
        Self {
            _dir: dir,
            child,
            addr,
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn berth_pushes_to_and_pulls_from_debians_docker_registry() {
    if !have("docker-registry") {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh installs it"
        );
        eprintln!("skipped: docker-registry is not installed (apt install docker-registry)");
        return;
    }
    let reg = Distribution::start();
    let e = Engine::start();
    let name = format!("{}/lesson/web:v1", reg.addr);
    make_image(&e, &name, "via-distribution");
    let push = e.docker(&["push", &name]);
    expect_ok(&push, "push to docker-registry");
    assert!(
        push.stdout.contains("v1: digest: sha256:"),
        "{}",
        push.stdout
    );
    let again = e.ok(&["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");
    e.ok(&["rmi", &name]);
    let pull = e.docker(&["pull", &name]);
    expect_ok(&pull, "pull from docker-registry");
    assert!(pull.stdout.contains("Pull complete"), "{}", pull.stdout);
    assert_eq!(
        e.ok(&["run", "--rm", &name, "cat", "/data.txt"]).trim(),
        "via-distribution"
    );
    let missing = e.docker(&["pull", &format!("{}/lesson/web:nope", reg.addr)]);
    assert!(
        missing.stderr.contains("manifest unknown"),
        "{}",
        missing.stderr
    );
}

#[test]
fn skopeo_copies_through_berths_registry() {
    if !have("skopeo") {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh installs it"
        );
        eprintln!("skipped: skopeo is not installed (apt install skopeo)");
        return;
    }
    let r = Registry::start(&[]);
    let e = engine_for(&r, &["--registry-namespace", "team"]);
    make_image(&e, "registry.local:5000/web:v1", "copied-by-skopeo");
    e.ok(&["push", "registry.local:5000/web:v1"]);
    let skopeo = |args: &[&str]| -> Run {
        Command::new("skopeo")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run skopeo")
            .into()
    };
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/team/web:v1", r.addr),
    ]);
    expect_ok(&inspect, "skopeo inspect");
    assert!(inspect.stdout.contains("\"Layers\""), "{}", inspect.stdout);
    // skopeo reads from Berth's registry and writes back to it (another repository).
    let copy = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/team/web:v1", r.addr),
        &format!("docker://{}/team/copy:v2", r.addr),
    ]);
    expect_ok(&copy, "skopeo copy");
    let pull = e.docker(&["pull", "registry.local:5000/copy:v2"]);
    expect_ok(&pull, "pull what skopeo wrote");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "registry.local:5000/copy:v2",
            "cat",
            "/data.txt"
        ])
        .trim(),
        "copied-by-skopeo"
    );
    // And an OCI layout written by skopeo from Berth's registry holds the layers.
    let oci = tempfile::tempdir().unwrap();
    let out = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/team/web:v1", r.addr),
        &format!("oci:{}:v1", oci.path().display()),
    ]);
    expect_ok(&out, "skopeo copy to an OCI layout");
    assert!(Path::new(&oci.path().join("index.json")).exists());
    let mut index = String::new();
    std::fs::File::open(oci.path().join("index.json"))
        .unwrap()
        .read_to_string(&mut index)
        .unwrap();
    assert!(index.contains("sha256:"), "{index}");
}

/// Base64 (standard alphabet with padding, or URL-safe without).
fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn openssl(dir: &Path, args: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("openssl {args}"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl {args}");
}

/// A token issuer as Docker Hub's: Basic credentials in, a signed JWT out.
fn serve_tokens(dir: std::path::PathBuf, listener: std::net::TcpListener) {
    let cert = std::fs::read_to_string(dir.join("token.crt")).unwrap();
    let der: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
    let good = format!("Basic {}", base64(b"learner:secret", false));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let path = head
            .first()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_string();
        let authorized = head
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&format!("authorization: {good}")));
        if !authorized {
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scope = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("scope="))
            .map(|s| {
                s.replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",")
            })
            .unwrap_or_default();
        let access = match scope.splitn(3, ':').collect::<Vec<_>>().as_slice() {
            ["repository", name, actions] => format!(
                r#"[{{"type":"repository","name":"{name}","actions":[{}]}}]"#,
                actions
                    .split(',')
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => "[]".to_string(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = format!(r#"{{"typ":"JWT","alg":"RS256","x5c":["{der}"]}}"#);
        let claims = format!(
            r#"{{"iss":"berth-test-issuer","sub":"learner","aud":"berth-test","exp":{},"nbf":{},"iat":{},"jti":"{now}-{}","access":{access}}}"#,
            now + 600,
            now - 60,
            now - 60,
            std::process::id()
        );
        let signing = format!(
            "{}.{}",
            base64(header.as_bytes(), true),
            base64(claims.as_bytes(), true)
        );
        let sig = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(dir.join("token.key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(signing.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap()
            .stdout;
        let jwt = format!("{signing}.{}", base64(&sig, true));
        let body = format!(r#"{{"token":"{jwt}","access_token":"{jwt}","expires_in":600}}"#);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

#[test]
fn berth_logs_in_pushes_and_pulls_over_tls_with_token_auth() {
    if !have("docker-registry") || !have("openssl") {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh installs it"
        );
        eprintln!("skipped: needs docker-registry and openssl");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=berth-test-ca");
    openssl(
        d,
        "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.2",
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(d, "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile ext.cnf");
    openssl(d, "req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt -days 1 -subj /CN=berth-test-tokens");

    let tokens = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", tokens.local_addr().unwrap());
    let issuer_dir = d.to_path_buf();
    std::thread::spawn(move || serve_tokens(issuer_dir, tokens));

    let port = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.2:{port}");
    std::fs::write(
        d.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {dir}/server.crt\n    key: {dir}/server.key\nauth:\n  token:\n    realm: {realm}\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: {dir}/token.crt\n",
            data = d.join("data").display(),
            dir = d.display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(d.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reg = Distribution {
        _dir: tempfile::tempdir().unwrap(),
        child,
        addr: addr.clone(),
    };
    assert!(common::engine::eventually(Duration::from_secs(20), || {
        TcpStream::connect(&reg.addr).is_ok()
    }));

    let certs = d.join("certs.d").join(&addr);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(d.join("ca.crt"), certs.join("ca.crt")).unwrap();
    let certs_dir = d.join("certs.d");
    let e = Engine::start_with(&["--registry-certs", certs_dir.to_str().unwrap()]);
    let name = format!("{addr}/lesson/web:v1");
    make_image(&e, &name, "over-tls");

    let anonymous = e.docker(&["push", &name]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.stdout);
    let bad = e.docker(&["login", "-u", "learner", "-p", "wrong", &addr]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("401 Unauthorized"), "{}", bad.stderr);
    let login = e.docker(&["login", "-u", "learner", "-p", "secret", &addr]);
    assert!(
        login.stdout.contains("Login Succeeded"),
        "{}{}",
        login.stdout,
        login.stderr
    );

    let push = e.docker(&["push", &name]);
    expect_ok(&push, "push over TLS with a token");
    assert!(
        push.stdout.contains("v1: digest: sha256:"),
        "{}",
        push.stdout
    );
    e.ok(&["rmi", &name]);
    let pull = e.docker(&["pull", &name]);
    expect_ok(&pull, "pull over TLS with a token");
    assert!(pull.stdout.contains("Pull complete"), "{}", pull.stdout);
    assert_eq!(
        e.ok(&["run", "--rm", &name, "cat", "/data.txt"]).trim(),
        "over-tls"
    );

    e.ok(&["logout", &addr]);
    let denied = e.docker(&["pull", &name]);
    assert_eq!(denied.code, 1);
    assert!(
        denied.stderr.contains("pull access denied for 127.0.0.2"),
        "{}",
        denied.stderr
    );
}

/// The reference dockerd (Debian's docker.io, 20.10) on its own paths.
struct RefDockerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl RefDockerd {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ref-reg-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = |s: &str| dir.path().join(s).display().to_string();
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", p("docker.sock")))
            .args([
                "--data-root",
                &p("root"),
                "--exec-root",
                &p("exec"),
                "--pidfile",
                &p("pid"),
            ])
            .args(["--iptables=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dockerd");
        let d = Self { dir, child };
        let up = common::engine::eventually(Duration::from_secs(60), || {
            d.docker(&["version"]).code == 0
        });
        assert!(up, "dockerd did not start");
        d
    }

    fn cli(&self) -> Command {
        let mut c = Command::new("docker");
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", self.dir.path().join("cli"))
        .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> Run {
        self.cli().args(args).output().unwrap().into()
    }
}

impl Drop for RefDockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("root"))
            .output();
    }
}

#[test]
fn reference_dockerd_pushes_to_and_pulls_from_berths_registry() {
    if !have("dockerd") {
        eprintln!("skipped: dockerd is not installed (apt install docker.io)");
        return;
    }
    let r = Registry::start(&[]);
    let e = engine_for(&r, &[]);
    let d = RefDockerd::start();
    // dockerd gets busybox from Berth (docker save | docker load).
    let saved = e.cli().args(["save", "busybox"]).output().unwrap().stdout;
    let mut load = d
        .cli()
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin.take().unwrap().write_all(&saved).unwrap();
    assert!(load.wait_with_output().unwrap().status.success());
    let name = format!("{}/ref/app:v1", r.addr);
    assert_eq!(
        d.docker(&[
            "run",
            "--name",
            "rc",
            "busybox",
            "sh",
            "-c",
            "echo from-dockerd > /d.txt"
        ])
        .code,
        0
    );
    assert_eq!(d.docker(&["commit", "rc", &name]).code, 0);
    let push = d.docker(&["push", &name]);
    assert_eq!(push.code, 0, "{}{}", push.stdout, push.stderr);
    assert!(
        push.stdout.contains("v1: digest: sha256:"),
        "{}",
        push.stdout
    );

    let pull = e.docker(&["pull", &name]);
    expect_ok(&pull, "berth pulls what dockerd pushed");
    assert_eq!(
        e.ok(&["run", "--rm", &name, "cat", "/d.txt"]).trim(),
        "from-dockerd"
    );
    let back = format!("{}/ref/back:v2", r.addr);
    e.ok(&["tag", &name, &back]);
    let push = e.ok(&["push", &back]);
    assert!(push.contains("Mounted from ref/app"), "{push}");

    d.docker(&["rm", "-f", "rc"]);
    d.docker(&["rmi", &name]);
    let pull = d.docker(&["pull", &back]);
    assert_eq!(pull.code, 0, "{}{}", pull.stdout, pull.stderr);
    let run = d.docker(&["run", "--rm", &back, "cat", "/d.txt"]);
    assert_eq!(run.stdout.trim(), "from-dockerd", "{}", run.stderr);
}
