//! The classroom's pull-through cache against a registry Berth did not
//! write: Debian's `docker-registry` over TLS (its CA trusted through a
//! `certs.d` directory) with htpasswd basic auth, the class pulling with the
//! operator's credentials (`--registry-auth`). Judged by the upstream's own
//! access log: how often each blob and manifest was fetched.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::engine::{eventually, Engine};
use common::lab::Lab;
use common::Run;

/// bcrypt (cost 4, cheap for the registry to check) of `secret`.
const HTPASSWD: &str = "learner:$2b$04$DhV68dBIKtYV3k6dQyO49OFYitu/u6J1mrXvwGtMeMfJRBaUPk4gm\n";

fn registry_binary() -> Option<PathBuf> {
    let unpacked = Path::new("/var/cache/berth-test/docker-registry/usr/bin/docker-registry");
    if unpacked.exists() {
        return Some(unpacked.into());
    }
    Command::new("sh")
        .args(["-c", "command -v docker-registry"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
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

/// Debian's `docker-registry` on 127.0.0.2 over TLS with htpasswd auth;
/// its access log goes to `access.log`.
struct Upstream {
    dir: tempfile::TempDir,
    child: Child,
    addr: String,
}

impl Upstream {
    /// With htpasswd basic auth.
    fn start(binary: &Path) -> Self {
        Self::start_with(binary, |d| {
            std::fs::write(d.join("htpasswd"), HTPASSWD).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}/htpasswd\n",
                d.display()
            )
        })
    }

    /// With a bearer-token realm this test serves (Basic in, a JWT out).
    fn start_with_tokens(binary: &Path) -> Self {
        Self::start_with(binary, |d| {
            openssl(d, "req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt -days 1 -subj /CN=berth-test-tokens");
            let tokens = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let realm = format!("http://{}/token", tokens.local_addr().unwrap());
            let dir = d.to_path_buf();
            std::thread::spawn(move || serve_tokens(dir, tokens));
            format!(
                "auth:\n  token:\n    realm: {realm}\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: {}/token.crt\n",
                d.display()
            )
        })
    }

    /// The realm's `host:port`, once started with tokens.
    fn realm(&self) -> Option<String> {
        let config = std::fs::read_to_string(self.dir.path().join("config.yml")).ok()?;
        let line = config.lines().find(|l| l.contains("realm: http://"))?;
        Some(line.split("http://").nth(1)?.split('/').next()?.to_string())
    }

    fn start_with(binary: &Path, auth: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-upstream-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let d = dir.path();
        let auth = auth(d);
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
        let port = std::net::TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.2:{port}");
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {dir}/server.crt\n    key: {dir}/server.key\n{auth}",
                dir = d.display()
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("access.log"))
            .unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        assert!(eventually(Duration::from_secs(20), || {
            TcpStream::connect(&addr).is_ok()
        }));
        let certs = d.join("certs.d").join(&addr);
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::copy(d.join("ca.crt"), certs.join("ca.crt")).unwrap();
        Self { dir, child, addr }
    }

    fn certs_d(&self) -> String {
        self.dir.path().join("certs.d").display().to_string()
    }

    /// A Docker config.json with the class's account on this registry.
    fn auth_file(&self) -> String {
        let path = self.dir.path().join("operator-config.json");
        // base64("learner:secret")
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"{}":{{"auth":"bGVhcm5lcjpzZWNyZXQ="}}}}}}"#,
                self.addr
            ),
        )
        .unwrap();
        path.display().to_string()
    }

    fn log_len(&self) -> usize {
        std::fs::read(self.dir.path().join("access.log"))
            .map(|b| b.len())
            .unwrap_or(0)
    }

    /// `GET` paths in the access log after byte `from`, with their counts.
    fn gets_since(&self, from: usize) -> HashMap<String, usize> {
        let text = std::fs::read(self.dir.path().join("access.log")).unwrap();
        let text = String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned();
        let mut out = HashMap::new();
        for line in text.lines() {
            let Some(rest) = line.split("\"GET ").nth(1) else {
                continue;
            };
            let path = rest.split(' ').next().unwrap_or("").to_string();
            *out.entry(path).or_insert(0) += 1;
        }
        out
    }

    /// The file holding blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An image of busybox plus a layer holding `/data.txt` = `text`, pushed
/// by a separate engine (the "internet"); returns its manifest digest and size.
fn push_image(e: &Engine, name: &str, text: &str) -> (String, usize) {
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
    let out = e.ok(&["push", name]);
    let line = out
        .lines()
        .find(|l| l.contains(": digest: sha256:"))
        .unwrap_or_else(|| panic!("{out}"));
    let mut words = line.split_whitespace();
    let digest = words.nth(2).unwrap().to_string();
    let size = words.nth(1).unwrap().parse().unwrap();
    (digest, size)
}

/// `docker` against another session's socket of the same classroom.
fn docker_at(lab: &Lab, socket: &Path, args: &[&str]) -> Run {
    // Each session's CLI has its own config (its own `docker login`).
    let config = lab.classroom.data.path().join("docker-cli").join(
        socket
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap(),
    );
    Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .expect("run docker")
        .into()
}

fn session_socket(lab: &Lab) -> PathBuf {
    let (_, status) = lab.classroom.new_session();
    let id = status["id"].as_str().unwrap();
    let socket = lab
        .classroom
        .data_dir()
        .join("sessions")
        .join(id)
        .join("node1")
        .join("docker.sock");
    assert!(
        eventually(Duration::from_secs(60), || socket.exists()
            && docker_at(lab, &socket, &["version"]).code == 0),
        "session {id} never answered"
    );
    socket
}

#[test]
fn a_classroom_pulls_each_blob_once_sees_tag_changes_after_the_ttl_and_refuses_corrupt_blobs() {
    let Some(binary) = registry_binary() else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh unpacks it"
        );
        eprintln!("skipped: docker-registry is not installed");
        return;
    };
    let up = Upstream::start(&binary);
    let addr = up.addr.clone();
    let certs = up.certs_d();

    // The "internet": another engine pushes a two-layer image for this
    // host's platform and one for another, and an index of both.
    let pusher = Engine::start_with(&["--certs-d", &certs]);
    pusher.ok(&["login", "-u", "learner", "-p", "secret", &addr]);
    let web = format!("{addr}/lesson/web");
    let (amd, amd_size) = push_image(&pusher, &format!("{web}:host"), "for-this-host");
    let (other, other_size) = push_image(&pusher, &format!("{web}:other"), "for-another");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let foreign = if arch == "amd64" { "s390x" } else { "amd64" };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{other}","size":{other_size},"platform":{{"architecture":"{foreign}","os":"linux"}}}},{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{amd}","size":{amd_size},"platform":{{"architecture":"{arch}","os":"linux"}}}}]}}"#
    );
    let put = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(up.dir.path().join("ca.crt"))
        .args(["-u", "learner:secret", "-X", "PUT", "-H"])
        .arg("Content-Type: application/vnd.oci.image.index.v1+json")
        .args(["--data-binary", &index])
        .arg(format!("https://{addr}/v2/lesson/web/manifests/multi"))
        .output()
        .unwrap();
    assert!(put.status.success(), "{put:?}");

    // The classroom: the operator's account for the upstream, a short TTL.
    let auth = up.auth_file();
    let ttl = 6u64;
    let ttl_text = ttl.to_string();
    let lab = Lab::with_args(&[
        "--allow-registry",
        &addr,
        "--certs-d",
        &certs,
        "--registry-auth",
        &auth,
        "--registry-cache-ttl",
        &ttl_text,
    ]);
    let mut sockets = vec![lab.socket.clone()];
    for _ in 0..4 {
        sockets.push(session_socket(&lab));
    }

    // Twenty pulls of the index's tag at once, four in each of five sessions.
    let multi = format!("{web}:multi");
    let before = up.log_len();
    let started = Instant::now();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let socket = sockets[i % sockets.len()].clone();
                let (lab, multi) = (&lab, &multi);
                s.spawn(move || docker_at(lab, &socket, &["pull", multi]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("Digest: sha256:"), "{}", r.stdout);
        assert!(r.stdout.contains("Status: "), "{}", r.stdout);
        // Every layer is accounted for in every learner's output, whether
        // this pull downloaded it or waited on another's download.
        for line in r
            .stdout
            .lines()
            .filter(|l| l.ends_with(": Pulling fs layer"))
        {
            let id = line.split(':').next().unwrap();
            assert!(
                r.stdout.contains(&format!("{id}: Download complete"))
                    && r.stdout.contains(&format!("{id}: Pull complete")),
                "{}",
                r.stdout
            );
        }
    }
    // Most pulls found the layers on their way (downloading or done).
    let followed = runs
        .iter()
        .filter(|r| !r.stdout.contains("Pulling fs layer") || r.stdout.contains("Waiting"))
        .count();
    assert!(followed >= 1, "no pull shared another's download");
    let gets = up.gets_since(before);
    let blobs: Vec<(&String, &usize)> =
        gets.iter().filter(|(p, _)| p.contains("/blobs/")).collect();
    // busybox's layer, the data layer, the config: each fetched once.
    assert_eq!(blobs.len(), 3, "{gets:?}");
    for (path, n) in &blobs {
        assert_eq!(**n, 1, "{path} fetched {n} times: {gets:?}");
    }
    for (path, n) in gets.iter().filter(|(p, _)| p.contains("/manifests/")) {
        assert!(*n <= 1, "{path} fetched {n} times: {gets:?}");
    }
    // The host's platform was picked from the index.
    let out = docker_at(
        &lab,
        &sockets[3],
        &["run", "--rm", &multi, "cat", "/data.txt"],
    );
    assert_eq!(
        out.stdout.trim(),
        "for-this-host",
        "{}{}",
        out.stdout,
        out.stderr
    );

    // A tag changed upstream: seen once the TTL has passed.
    let (_, _) = push_image(&pusher, &multi, "changed-upstream");
    let again = docker_at(&lab, &sockets[1], &["pull", &multi]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    if started.elapsed() < Duration::from_secs(ttl - 1) {
        // Still within the TTL: the class keeps what it resolved.
        assert!(
            again.stdout.contains("Image is up to date"),
            "{}",
            again.stdout
        );
    }
    let mut last = String::new();
    let seen = eventually(Duration::from_secs(ttl * 3), || {
        let pull = docker_at(&lab, &sockets[1], &["pull", &multi]);
        let run = docker_at(
            &lab,
            &sockets[1],
            &["run", "--rm", &multi, "cat", "/data.txt"],
        );
        last = format!("{}{}{}{}", pull.stdout, pull.stderr, run.stdout, run.stderr);
        pull.code == 0 && run.stdout.trim() == "changed-upstream"
    });
    assert!(seen, "the changed tag was never seen: {last}");

    // A corrupted blob upstream: refused with Docker's digest error, and not
    // kept (the pull after the repair fetches it again and works).
    let (bad, _) = push_image(&pusher, &format!("{web}:bad"), "corrupt-me");
    let manifest = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(up.dir.path().join("ca.crt"))
        .args(["-u", "learner:secret", "-H"])
        .arg("Accept: application/vnd.docker.distribution.manifest.v2+json")
        .arg(format!("https://{addr}/v2/lesson/web/manifests/{bad}"))
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let layer = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = up.blob_file(&layer);
    let good = std::fs::read(&file).unwrap();
    let mut broken = good.clone();
    let mid = broken.len() / 2;
    broken[mid] ^= 0xff;
    std::fs::write(&file, &broken).unwrap();
    let bad_ref = format!("{web}:bad");
    let before = up.log_len();
    let refused = docker_at(&lab, &sockets[2], &["pull", &bad_ref]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(&format!(
            "filesystem layer verification failed for digest {layer}"
        )),
        "{}",
        refused.stderr
    );
    std::fs::write(&file, &good).unwrap();
    let repaired = docker_at(&lab, &sockets[0], &["pull", &bad_ref]);
    assert_eq!(repaired.code, 0, "{}{}", repaired.stdout, repaired.stderr);
    let out = docker_at(
        &lab,
        &sockets[0],
        &["run", "--rm", &bad_ref, "cat", "/data.txt"],
    );
    assert_eq!(out.stdout.trim(), "corrupt-me");
    let layer_path = format!("/v2/lesson/web/blobs/{layer}");
    assert_eq!(
        up.gets_since(before).get(&layer_path),
        Some(&2),
        "the corrupt blob was kept"
    );
    let _ = std::io::stderr().flush();
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

/// A token realm as Docker Hub's: `learner:secret` as Basic gets a signed
/// JWT for the scope asked; anyone else gets 401.
fn serve_tokens(dir: PathBuf, listener: std::net::TcpListener) {
    use std::io::{BufRead, BufReader};
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
        if !head
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&format!("authorization: {good}")))
        {
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        let scope = path
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
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
fn a_learners_private_pull_is_shared_only_with_sessions_the_registry_lets_pull_it() {
    let Some(binary) = registry_binary() else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh unpacks it"
        );
        eprintln!("skipped: docker-registry is not installed");
        return;
    };
    let up = Upstream::start_with_tokens(&binary);
    let addr = up.addr.clone();
    let certs = up.certs_d();
    let realm = up.realm().unwrap();
    let pusher = Engine::start_with(&["--certs-d", &certs]);
    pusher.ok(&["login", "-u", "learner", "-p", "secret", &addr]);
    let private = format!("{addr}/private/app:v1");
    let (digest, _) = push_image(&pusher, &private, "only-for-the-account");

    // No operator account: each learner pulls as themselves.
    let lab = Lab::with_args(&[
        "--allow-registry",
        &addr,
        "--allow-registry",
        &realm,
        "--certs-d",
        &certs,
    ]);
    let a = lab.socket.clone();
    let b = session_socket(&lab);
    let login = docker_at(&lab, &a, &["login", "-u", "learner", "-p", "secret", &addr]);
    assert!(
        login.stdout.contains("Login Succeeded"),
        "{}{}",
        login.stdout,
        login.stderr
    );
    let before = up.log_len();
    let pull = docker_at(&lab, &a, &["pull", &private]);
    assert_eq!(pull.code, 0, "{}{}", pull.stdout, pull.stderr);
    assert!(pull.stdout.contains("Pull complete"), "{}", pull.stdout);

    // Another session that has not logged in gets nothing from the cache:
    // not by tag, not by digest, not the layers.
    let by_digest = format!("{addr}/private/app@{digest}");
    for r in [&private, &by_digest] {
        let denied = docker_at(&lab, &b, &["pull", r]);
        assert_eq!(denied.code, 1, "{r}: {}", denied.stdout);
        assert!(
            denied
                .stderr
                .contains(&format!("pull access denied for {addr}/private/app")),
            "{}",
            denied.stderr
        );
    }
    let run = docker_at(&lab, &b, &["run", "--rm", &private, "cat", "/data.txt"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("only-for-the-account"));

    // Once it logs in with the account, the upstream vouches for it and the
    // blobs come from the cache: none is fetched twice.
    let login = docker_at(&lab, &b, &["login", "-u", "learner", "-p", "secret", &addr]);
    assert_eq!(login.code, 0, "{}", login.stderr);
    let pull = docker_at(&lab, &b, &["pull", &private]);
    assert_eq!(pull.code, 0, "{}{}", pull.stdout, pull.stderr);
    let out = docker_at(&lab, &b, &["run", "--rm", &private, "cat", "/data.txt"]);
    assert_eq!(out.stdout.trim(), "only-for-the-account");
    let gets = up.gets_since(before);
    let blobs: Vec<_> = gets.iter().filter(|(p, _)| p.contains("/blobs/")).collect();
    assert_eq!(blobs.len(), 3, "{gets:?}");
    assert!(blobs.iter().all(|(_, n)| **n == 1), "{gets:?}");
}

/// Uploads `bytes` as a blob of `repo` on an open registry; its digest.
fn upload_blob(registry: &str, repo: &str, bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let sum = Command::new("sha256sum").arg(file.path()).output().unwrap();
    let digest = format!("sha256:{}", &String::from_utf8_lossy(&sum.stdout)[..64]);
    let post = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .arg(format!("http://{registry}/v2/{repo}/blobs/uploads/"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&post.stdout).into_owned();
    let location = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{head}"));
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.path().display()))
        .arg(format!("{location}{sep}digest={digest}"))
        .output()
        .unwrap();
    assert!(put.status.success(), "{put:?}");
    digest
}

#[test]
fn a_learners_registry_naming_anothers_layer_gets_only_what_it_serves() {
    let Some(binary) = registry_binary() else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh unpacks it"
        );
        eprintln!("skipped: docker-registry is not installed");
        return;
    };
    // The victim's private image, pulled into the classroom by session A
    // with the operator's account.
    let up = Upstream::start(&binary);
    let addr = up.addr.clone();
    let certs = up.certs_d();
    let pusher = Engine::start_with(&["--certs-d", &certs]);
    pusher.ok(&["login", "-u", "learner", "-p", "secret", &addr]);
    let private = format!("{addr}/private/app:v1");
    push_image(&pusher, &private, "the-victims-secret");
    let layers = pusher.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        &private,
    ]);
    let layers: Vec<String> = serde_json::from_str(layers.trim()).unwrap();
    let secret_layer = layers.last().unwrap().clone();

    // The attacker's own open registry (plain HTTP on loopback).
    let evil_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let evil = format!("127.0.0.1:{evil_port}");
    let evil_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        evil_dir.path().join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {evil}\n",
            evil_dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut evil_child = Command::new(&binary)
        .arg("serve")
        .arg(evil_dir.path().join("config.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || {
        TcpStream::connect(&evil).is_ok()
    }));

    let auth = up.auth_file();
    let lab = Lab::with_args(&[
        "--allow-registry",
        &addr,
        "--allow-registry",
        &evil,
        "--certs-d",
        &certs,
        "--registry-auth",
        &auth,
    ]);
    let attacker = session_socket(&lab);
    let pulled = docker_at(&lab, &lab.socket, &["pull", &private]);
    assert_eq!(pulled.code, 0, "{}{}", pulled.stdout, pulled.stderr);

    // An image whose config claims the victim's layer (its diff ID), with a
    // harmless blob of the attacker's own standing for it.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "mine.txt", &b"mine"[..]).unwrap();
    let blob = tar.into_inner().unwrap();
    let layer = upload_blob(&evil, "evil/app", &blob);
    let config = format!(
        r#"{{"architecture":"{}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{secret_layer}"]}}}}"#,
        match std::env::consts::ARCH {
            "aarch64" => "arm64",
            _ => "amd64",
        }
    );
    let config_digest = upload_blob(&evil, "evil/app", config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":{},"digest":"{layer}"}}]}}"#,
        config.len(),
        blob.len()
    );
    let put = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg("Content-Type: application/vnd.docker.distribution.manifest.v2+json")
        .args(["--data-binary", &manifest])
        .arg(format!("http://{evil}/v2/evil/app/manifests/v1"))
        .output()
        .unwrap();
    assert!(put.status.success(), "{put:?}");

    let steal = format!("{evil}/evil/app:v1");
    let pull = docker_at(&lab, &attacker, &["pull", &steal]);
    assert!(!pull.stdout.contains("Already exists"), "{}", pull.stdout);
    assert_ne!(pull.code, 0, "{}", pull.stdout);
    assert!(
        pull.stderr.contains("filesystem layer verification failed"),
        "{}",
        pull.stderr
    );
    let listed = docker_at(&lab, &attacker, &["image", "ls", "-q", &steal]);
    assert_eq!(listed.stdout.trim(), "", "the stolen image exists");
    let _ = evil_child.kill();
    let _ = evil_child.wait();
}

#[test]
fn docker_hub_pulls_ask_the_registry_mirror_first() {
    let Some(binary) = registry_binary() else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh unpacks it"
        );
        eprintln!("skipped: docker-registry is not installed");
        return;
    };
    // An open mirror on loopback holding `library/hello:v1`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {mirror}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&binary)
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(20), || {
        TcpStream::connect(&mirror).is_ok()
    }));
    let pusher = Engine::start();
    push_image(
        &pusher,
        &format!("{mirror}/library/hello:v1"),
        "from-the-mirror",
    );

    let e = Engine::start_with(&["--registry-mirror", &format!("http://{mirror}")]);
    let pull = e.docker(&["pull", "hello:v1"]);
    assert_eq!(pull.code, 0, "{}{}", pull.stdout, pull.stderr);
    assert!(
        pull.stdout
            .contains("Status: Downloaded newer image for hello:v1"),
        "{}",
        pull.stdout
    );
    assert_eq!(
        e.ok(&["run", "--rm", "hello:v1", "cat", "/data.txt"])
            .trim(),
        "from-the-mirror"
    );
    // A mirror that is not a URL is refused at start.
    let data = tempfile::Builder::new()
        .prefix("berth-mirror-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["daemon", "--registry-mirror", "not a url", "--socket"])
        .arg(data.path().join("s.sock"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--registry-mirror not a url"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
}
