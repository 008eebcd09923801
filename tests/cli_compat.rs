//! The core command subset through Debian's 20.10 docker CLI (API 1.41),
//! beside the 28.x CLI the other tests use: both must work unmodified.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::engine::{docker_2010, eventually, Engine};
use common::Run;

struct OldCli<'a> {
    e: &'a Engine,
    binary: PathBuf,
}

impl OldCli<'_> {
    fn run(&self, args: &[&str]) -> Run {
        self.e.docker_with(&self.binary, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "docker 20.10 {args:?}: {}{}",
            run.stdout, run.stderr
        );
        run.stdout
    }
}

fn old_cli(e: &Engine) -> Option<OldCli<'_>> {
    match docker_2010() {
        Some(binary) => Some(OldCli { e, binary }),
        None => {
            assert!(
                std::env::var_os("BERTH_FULL_SUITE").is_none(),
                "scripts/test.sh provides the 20.10 CLI"
            );
            eprintln!("skipped: no Debian 20.10 docker CLI (scripts/test.sh unpacks one)");
            None
        }
    }
}

#[test]
fn the_20_10_cli_drives_the_core_commands() {
    let e = Engine::start();
    let Some(old) = old_cli(&e) else { return };
    let version = old.ok(&[
        "version",
        "--format",
        "{{.Client.Version}} {{.Server.APIVersion}}",
    ]);
    assert!(version.starts_with("20.10"), "{version}");

    // Attached run with output, exit code and --rm.
    let run = old.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (3, "out\n", "err\n")
    );

    // Detached lifecycle, ps, logs, exec, inspect templates.
    let id = old.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "GREETING=hi",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 300",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert!(eventually(Duration::from_secs(5), || old
        .ok(&["logs", "web"])
        == "started\n"));
    let ps = old.ok(&["ps", "--format", "{{.Names}} {{.Image}} {{.Status}}"]);
    assert!(ps.starts_with("web busybox Up"), "{ps}");
    assert_eq!(
        old.ok(&["exec", "web", "sh", "-c", "echo $GREETING"]),
        "hi\n"
    );
    assert_eq!(old.run(&["exec", "web", "sh", "-c", "exit 4"]).code, 4);
    assert_eq!(
        old.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Image}}",
            "web"
        ])
        .trim(),
        "running busybox"
    );
    old.ok(&["pause", "web"]);
    assert_eq!(
        old.ok(&["inspect", "-f", "{{.State.Status}}", "web"])
            .trim(),
        "paused"
    );
    old.ok(&["unpause", "web"]);
    old.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(
        old.ok(&["ps", "-aq", "--filter", "status=exited"])
            .trim()
            .len(),
        12
    );
    old.ok(&["start", "web"]);
    old.ok(&["rm", "-f", "web"]);
    assert_eq!(old.ok(&["ps", "-aq"]), "");

    // Images: list, tag, history, rmi.
    assert!(old.ok(&["images"]).contains("busybox"));
    old.ok(&["tag", "busybox", "mine:v1"]);
    assert!(old
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("mine:v1"));
    assert!(!old.ok(&["history", "mine:v1"]).is_empty());
    old.ok(&["rmi", "mine:v1"]);

    // Errors in Docker's words.
    let missing = old.run(&["logs", "ghost"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("No such container: ghost"),
        "{}",
        missing.stderr
    );
    let unknown = old.run(&["run", "--rm", "nosuchimage"]);
    assert_eq!(unknown.code, 125);
    assert!(
        unknown
            .stderr
            .contains("Unable to find image 'nosuchimage:latest' locally"),
        "{}",
        unknown.stderr
    );
}
