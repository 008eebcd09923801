//! Host root inside a learner's tree: volume copy-up, `docker cp` both ways,
//! and the builder's context, Dockerfile, `ADD` and `COPY --from`. Each
//! attack plants symlinks (or crafted tar entries) that lead to the host's
//! canary; the canary must never be printed, changed or joined by a file.

use std::time::{Duration, Instant};

use super::{Canary, Lab};
use crate::common::Run;

/// A tar built entry by entry, names and link targets taken as given (an
/// attacker's tar is not bound by the tar crate's own checks).
struct EvilTar(tar::Builder<Vec<u8>>);

impl EvilTar {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn entry(mut self, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &str) -> Self {
        self.entry(tar::EntryType::Regular, name, "", data.as_bytes())
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Symlink, name, target, b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Link, name, target, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn all(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

fn canary_dir(canary: &Canary) -> String {
    canary.path().display().to_string()
}

#[test]
fn copy_up_through_an_image_symlink_never_reads_the_host() {
    let lab = Lab::new();
    let canary = Canary::new();
    lab.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "ln",
        "-s",
        "/",
        "/hostroot",
    ]);
    lab.ok(&["commit", "mk", "evil"]);
    let target = format!("/hostroot{}", canary_dir(&canary));
    let run = lab.docker(&[
        "run",
        "--rm",
        "-v",
        &target,
        "evil",
        "cat",
        &format!("{target}/secret"),
    ]);
    canary.assert_not_in(&all(&run));
    // A named volume on the same target, listed from inside.
    let run = lab.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("cu:{target}"),
        "evil",
        "ls",
        "-la",
        &target,
    ]);
    canary.assert_not_in(&all(&run));
    assert!(!all(&run).contains("secret"), "{}", all(&run));
    canary.assert_untouched();
}

#[test]
fn two_containers_copying_up_one_new_volume_while_planting_links_stay_inside() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    // Each container replaces the names copy-up writes (busybox's /etc) by
    // links to the canary, as fast as it can, while the other one starts.
    let plant = format!(
        "for i in $(seq 300); do for n in passwd group shadow hosts; do \
         ln -sfn {dir}/secret /etc/$n; done; ln -sfn {dir} /etc/network; done; true"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut round = 0;
    while Instant::now() < deadline && round < 4 {
        let volume = format!("race{round}");
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let args = [
                    "run".to_string(),
                    "--rm".into(),
                    "-v".into(),
                    format!("{volume}:/etc"),
                    "busybox".into(),
                    "sh".into(),
                    "-c".into(),
                    plant.clone(),
                ];
                let socket = lab.socket.clone();
                let config = lab.classroom.data.path().join("docker-cli");
                std::thread::spawn(move || {
                    std::process::Command::new("docker")
                        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
                        .env("DOCKER_CONFIG", config)
                        .env_remove("DOCKER_CONTEXT")
                        .args(&args)
                        .output()
                        .unwrap()
                })
            })
            .collect();
        for r in runs {
            let out = r.join().unwrap();
            canary.assert_not_in(&String::from_utf8_lossy(&out.stdout));
            canary.assert_not_in(&String::from_utf8_lossy(&out.stderr));
        }
        canary.assert_untouched();
        round += 1;
    }
    canary.assert_untouched();
}

#[test]
fn docker_cp_out_through_a_symlink_never_reads_the_host() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    lab.ok(&[
        "run", "--name", "stopped", "busybox", "ln", "-s", &dir, "/x",
    ]);
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "running",
        "busybox",
        "sh",
        "-c",
        &format!("ln -s {dir} /x; ln -s {dir}/secret /f; sleep 600"),
    ]);
    // Wait until the running container made its links.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && lab.docker(&["exec", "running", "test", "-L", "/f"]).code != 0
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    for c in ["stopped", "running"] {
        let run = lab.docker(&["cp", &format!("{c}:/x/secret"), "-"]);
        canary.assert_not_in(&all(&run));
        assert_ne!(run.code, 0, "{}", all(&run));
        assert!(
            run.stderr.contains(&format!(
                "Could not find the file /x/secret in container {c}"
            )),
            "{}",
            run.stderr
        );
        // The link itself comes out as a link, and `x/.` is the container's.
        for path in ["/x", "/x/.", "/f", "/x/"] {
            let run = lab.docker(&["cp", &format!("{c}:{path}"), "-"]);
            canary.assert_not_in(&all(&run));
        }
    }
    canary.assert_untouched();
}

#[test]
fn docker_cp_in_through_a_planted_symlink_leaves_the_host_alone() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f");
    std::fs::write(&file, "from the learner").unwrap();
    let file = file.display().to_string();
    lab.ok(&[
        "run",
        "--name",
        "stopped",
        "busybox",
        "sh",
        "-c",
        &format!("ln -s {dir} /x; ln -s {dir}/secret /s"),
    ]);
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "running",
        "busybox",
        "sh",
        "-c",
        &format!("ln -s {dir} /x; ln -s {dir}/secret /s; sleep 600"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && lab.docker(&["exec", "running", "test", "-L", "/s"]).code != 0
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    for c in ["stopped", "running"] {
        let _ = lab.docker(&["cp", &file, &format!("{c}:/x/")]);
        let _ = lab.docker(&["cp", &file, &format!("{c}:/x/secret")]);
        let _ = lab.docker(&["cp", &file, &format!("{c}:/s")]);
        canary.assert_untouched();
    }
}

#[test]
fn docker_cp_of_a_crafted_tar_keeps_every_entry_in_the_container() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    lab.ok(&["create", "--name", "cc", "busybox", "true"]);
    let tars = [
        EvilTar::new()
            .file(&format!("../../../../../..{dir}/dotdot"), "evil")
            .bytes(),
        EvilTar::new()
            .symlink("l", &dir)
            .file("l/through", "evil")
            .bytes(),
        EvilTar::new()
            .symlink("up", "../../../../../../../..")
            .file(&format!("up{dir}/up"), "evil")
            .bytes(),
        EvilTar::new()
            .hardlink("h", &format!("{dir}/secret"))
            .hardlink("h2", &format!("../../../../../..{dir}/secret"))
            .bytes(),
        EvilTar::new()
            .symlink("s", &format!("{dir}/secret"))
            .file("s", "overwrite")
            .bytes(),
        EvilTar::new()
            .entry(tar::EntryType::Block, "sda", "", b"")
            .bytes(),
    ];
    for (i, body) in tars.iter().enumerate() {
        let run = lab.docker_stdin(&["cp", "-", "cc:/"], body);
        canary.assert_not_in(&all(&run));
        canary.assert_untouched();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&canary.file).unwrap().nlink(),
            1,
            "tar {i} linked the canary"
        );
    }
}

/// A build context tar from `(name, link target or content)` entries.
fn context_tar(entries: EvilTar) -> Vec<u8> {
    entries.bytes()
}

/// Whether any `KEY=value` of this process's environment (which `berth
/// serve` inherits) shows in `text`.
fn assert_no_env_in(text: &str) {
    for (k, v) in std::env::vars() {
        if v.len() >= 4 {
            let pair = format!("{k}={v}");
            assert!(
                !text.contains(&pair),
                "the daemon's environment leaked: {pair}"
            );
        }
    }
}

#[test]
fn a_dockerfile_symlink_never_reads_outside_the_context() {
    let lab = Lab::new();
    let canary = Canary::new();
    let secret = canary.file.display().to_string();
    for target in ["/proc/self/environ", secret.as_str()] {
        let body = context_tar(EvilTar::new().symlink("Dockerfile", target));
        let run = lab.docker_stdin(&["build", "-"], &body);
        assert_ne!(run.code, 0);
        assert_no_env_in(&all(&run));
        canary.assert_not_in(&all(&run));
        assert!(
            all(&run).contains("Cannot locate specified Dockerfile: Dockerfile"),
            "{}",
            all(&run)
        );
    }
    // `-f` naming a file above the context.
    let body = context_tar(EvilTar::new().file("Dockerfile", "FROM busybox\n"));
    let up = format!("../../../../../../../..{secret}");
    for name in ["../../x", up.as_str()] {
        let run = lab.docker_stdin(&["build", "-f", name, "-"], &body);
        assert_ne!(run.code, 0);
        canary.assert_not_in(&all(&run));
    }
    canary.assert_untouched();
}

#[test]
fn add_of_a_crafted_tar_and_copy_through_links_stay_in_the_image() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    let evil = EvilTar::new()
        .symlink("x", &dir)
        .file("x/planted", "evil")
        .symlink("up", "../../../../../../..")
        .file(&format!("up{dir}/up"), "evil")
        .symlink("s", &format!("{dir}/secret"))
        .file("s", "overwrite")
        .bytes();
    let dockerfile = format!(
        "FROM busybox\n\
         RUN ln -s / /hostroot\n\
         ADD evil.tar /\n\
         ADD evil.tar /hostroot{dir}/\n\
         COPY f /hostroot{dir}/\n\
         RUN ln -s {dir} /link\n\
         COPY f /link/\n"
    );
    let mut ctx = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("Dockerfile", dockerfile.as_bytes()),
        ("evil.tar", &evil[..]),
        ("f", b"learner's file"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        ctx.append_data(&mut h, name, data).unwrap();
    }
    let run = lab.docker_stdin(&["build", "-t", "added", "-"], &ctx.into_inner().unwrap());
    canary.assert_not_in(&all(&run));
    canary.assert_untouched();
}

#[test]
fn copy_from_a_stage_or_the_context_through_a_symlink_never_reads_the_host() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    let dockerfile = format!(
        "FROM busybox AS s\n\
         RUN ln -s {dir} /link && ln -s / /root-link\n\
         FROM busybox\n\
         COPY --from=s /link/secret /got\n\
         RUN cat /got\n"
    );
    let body = context_tar(EvilTar::new().file("Dockerfile", &dockerfile));
    let run = lab.docker_stdin(&["build", "-"], &body);
    assert_ne!(run.code, 0, "{}", all(&run));
    canary.assert_not_in(&all(&run));

    let dockerfile = format!(
        "FROM busybox AS s\n\
         RUN ln -s / /root-link\n\
         FROM busybox\n\
         COPY --from=s /root-link{dir}/ /got/\n\
         RUN cat /got/secret\n"
    );
    let body = context_tar(EvilTar::new().file("Dockerfile", &dockerfile));
    let run = lab.docker_stdin(&["build", "-"], &body);
    canary.assert_not_in(&all(&run));

    // The context's own links.
    let body = context_tar(
        EvilTar::new()
            .file(
                "Dockerfile",
                "FROM busybox\nCOPY link/secret /got\nRUN cat /got\n",
            )
            .symlink("link", &dir),
    );
    let run = lab.docker_stdin(&["build", "-"], &body);
    assert_ne!(run.code, 0, "{}", all(&run));
    canary.assert_not_in(&all(&run));
    let body = context_tar(
        EvilTar::new()
            .file(
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/secret /ctx/link/secret; true\n",
            )
            .symlink("link", &dir)
            .symlink("secret", &canary.file.display().to_string()),
    );
    let run = lab.docker_stdin(&["build", "-"], &body);
    canary.assert_not_in(&all(&run));
    canary.assert_untouched();
}

/// `sha256:<hex>` of `bytes` (by the host's `sha256sum`).
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", hex.split_whitespace().next().unwrap())
}

/// A `docker save` archive of one image `tag` made of `layers` (lowest first).
fn saved_image(tag: &str, layers: Vec<Vec<u8>>) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [tag],
        "Layers": names,
    }])
    .to_string();
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append_data(&mut h, name, data).unwrap();
    };
    add("config.json", config.as_bytes());
    add("manifest.json", manifest.as_bytes());
    for (name, layer) in names.iter().zip(&layers) {
        add(name, layer);
    }
    out.into_inner().unwrap()
}

#[test]
fn copy_from_an_image_whose_lower_layer_links_out_never_reads_the_host() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    // A lower layer's `d` leads to the canary; the upper layer makes `d` a
    // directory (not opaque): the merged view shows the upper `d` alone.
    let lower = EvilTar::new().symlink("d", &dir).bytes();
    let upper = EvilTar::new()
        .entry(tar::EntryType::Directory, "d/", "", b"")
        .file("d/keep", "k")
        .bytes();
    let run = lab.docker_stdin(&["load"], &saved_image("evil:layers", vec![lower, upper]));
    assert_eq!(run.code, 0, "{}", all(&run));
    for dockerfile in [
        "FROM busybox\nCOPY --from=evil:layers /d/secret /got\nRUN cat /got\n",
        "FROM busybox\nCOPY --from=evil:layers /d/ /got/\nRUN cat /got/secret; ls /got\n",
        "FROM busybox\nCOPY --from=evil:layers /d/* /got/\nRUN cat /got/secret; ls /got\n",
    ] {
        let body = context_tar(EvilTar::new().file("Dockerfile", dockerfile));
        let run = lab.docker_stdin(&["build", "-"], &body);
        canary.assert_not_in(&all(&run));
    }
    canary.assert_untouched();
}

#[test]
fn docker_cp_into_a_volume_of_a_container_that_never_ran_stays_in_its_root() {
    // The archive helper mounts a stopped container's volumes at their
    // targets; a target under an image symlink to a host directory must be
    // made and mounted inside the container's root, not on the host.
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary_dir(&canary);
    lab.ok(&[
        "run",
        "--name",
        "base",
        "busybox",
        "sh",
        "-c",
        // The same path exists inside, so an in-root resolution succeeds.
        &format!("mkdir -p {dir} && ln -s {dir} /v"),
    ]);
    lab.ok(&["commit", "base", "trap"]);
    lab.ok(&["create", "--name", "cc", "-v", "/v/x", "trap", "true"]);
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("f");
    std::fs::write(&file, "from the learner").unwrap();
    // The copy lands in the volume, inside the container's view.
    lab.ok(&["cp", &file.display().to_string(), "cc:/v/x/"]);
    let out = lab.docker(&["cp", "cc:/v/x/f", "-"]);
    assert!(out.stdout.contains("from the learner"), "{}", out.stderr);
    canary.assert_untouched();
    assert!(
        !std::path::Path::new(&dir).join("x").exists(),
        "a directory was made in the host's {dir}"
    );
}
