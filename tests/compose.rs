//! Docker Compose v2 (the real plugin, scripts/setup.sh installs it) against
//! `berth daemon`: a project built with `args` and `target`, started with a
//! healthcheck-gated `depends_on`, looked at, scaled and taken down, judged
//! by what `docker compose` prints and what the engine holds afterwards.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::engine::Engine;
use common::Run;

const PLUGIN: &str = "/usr/local/lib/docker/cli-plugins/docker-compose";

/// Whether the plugin is here; the full suite insists on it.
fn compose_installed() -> bool {
    let here = Path::new(PLUGIN).is_file();
    if !here {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "{PLUGIN} is missing: run scripts/setup.sh"
        );
        eprintln!("skipped: {PLUGIN} is missing (scripts/setup.sh installs it)");
    }
    here
}

const DOCKERFILE: &str = r#"FROM busybox AS base
ARG GREETING=hello
RUN echo "$GREETING" > /greeting
FROM base AS app
CMD ["sh", "-c", "cat /greeting; touch /tmp/ready; exec sleep 300"]
FROM base AS other
CMD ["echo", "the wrong target"]
"#;

const COMPOSE: &str = r#"services:
  db:
    build:
      context: .
      target: app
      args:
        GREETING: bonjour
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 30
    volumes:
      - data:/data
  web:
    image: busybox
    command: ["sh", "-c", "echo web up; trap 'exit 0' TERM; while true; do sleep 1; done"]
    depends_on:
      db:
        condition: service_healthy
volumes:
  data:
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-compose-")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
        std::fs::write(dir.path().join("compose.yaml"), COMPOSE).unwrap();
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `docker compose <args>` in the project, with the classic builder
    /// (Berth has no BuildKit; Compose uses the engine's builder then).
    fn command(&self, e: &Engine, args: &[&str]) -> Command {
        let mut cmd = e.cli();
        cmd.current_dir(self.path())
            .env("DOCKER_BUILDKIT", "0")
            .env("COMPOSE_PROJECT_NAME", "shop")
            .arg("compose")
            .args(args);
        cmd
    }

    fn run(&self, e: &Engine, args: &[&str]) -> Run {
        self.command(e, args).output().unwrap().into()
    }

    fn ok(&self, e: &Engine, args: &[&str]) -> String {
        let run = self.run(e, args);
        assert_eq!(
            run.code, 0,
            "docker compose {args:?}: {}{}",
            run.stdout, run.stderr
        );
        run.stdout + &run.stderr
    }
}

#[test]
fn compose_builds_starts_scales_and_takes_down_a_project() {
    if !compose_installed() {
        return;
    }
    let e = Engine::start();
    let p = Project::new();

    let config = p.ok(&e, &["config"]);
    assert!(config.contains("GREETING: bonjour"), "{config}");
    assert!(config.contains("target: app"), "{config}");

    let build = p.ok(&e, &["build"]);
    assert!(
        build.contains("LABEL com.docker.compose.image.builder=classic"),
        "{build}"
    );
    assert!(!build.contains("the wrong target"), "{build}");

    // `--wait` returns once db is healthy and web (gated on it) runs.
    let up = p.ok(&e, &["up", "-d", "--wait"]);
    assert!(up.contains("Healthy"), "{up}");
    let status = e.ok(&["inspect", "-f", "{{.State.Health.Status}}", "shop-db-1"]);
    assert_eq!(status.trim(), "healthy");

    let ps = p.ok(&e, &["ps", "--format", "{{.Name}} {{.Service}} {{.State}}"]);
    assert!(ps.contains("shop-db-1 db running"), "{ps}");
    assert!(ps.contains("shop-web-1 web running"), "{ps}");

    // The build arg reached the target stage.
    let greeting = p.ok(&e, &["exec", "-T", "db", "cat", "/greeting"]);
    assert_eq!(greeting.trim(), "bonjour");
    let logs = p.ok(&e, &["logs", "--no-color"]);
    let said = |service: &str, text: &str| {
        logs.lines().any(|l| {
            l.split_once('|')
                .is_some_and(|(who, what)| who.trim() == service && what.trim() == text)
        })
    };
    assert!(said("db-1", "bonjour"), "{logs}");
    assert!(said("web-1", "web up"), "{logs}");

    let top = p.ok(&e, &["top", "db"]);
    assert!(top.contains("sleep 300"), "{top}");

    // Events as JSON while web is killed, read until the kill shows (bounded).
    let mut events = p
        .command(&e, &["events", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The subscription is open once events answers; a kill may come before.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut killed = false;
    while std::time::Instant::now() < deadline {
        if !killed {
            std::thread::sleep(Duration::from_millis(500));
            p.ok(&e, &["kill", "web"]);
            killed = true;
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let done = line.contains(r#""action":"kill""#) || line.contains(r#""action":"die""#);
            seen.push(line);
            if done {
                break;
            }
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    let event = seen
        .iter()
        .find(|l| l.contains(r#""action":"die""#) || l.contains(r#""action":"kill""#))
        .unwrap_or_else(|| panic!("no kill/die event: {seen:?}"));
    let json: serde_json::Value = serde_json::from_str(event).unwrap();
    assert_eq!(json["service"], "web", "{event}");
    assert_eq!(json["type"], "container", "{event}");

    let scaled = p.ok(&e, &["up", "-d", "--scale", "web=2"]);
    assert!(scaled.contains("shop-web-2"), "{scaled}");
    let names = e.ok(&[
        "ps",
        "--filter",
        "label=com.docker.compose.service=web",
        "--format",
        "{{.Names}}",
    ]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["shop-web-1", "shop-web-2"]);

    let down = p.ok(&e, &["down", "-v", "--rmi", "local", "-t", "1"]);
    assert!(down.contains("Volume shop_data  Removed"), "{down}");
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty());
    let images = e.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("shop-db"), "{images}");
    assert!(
        images.contains("busybox"),
        "the pulled image stays: {images}"
    );
    let volumes = e.ok(&["volume", "ls", "-q"]);
    assert!(!volumes.contains("shop_data"), "{volumes}");
    let networks = e.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains("shop_default"), "{networks}");
}
