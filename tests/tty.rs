//! Interactive terminals through the real docker CLI in a pseudo-terminal:
//! `docker run -it`, `docker exec -it` and `docker attach`, as a learner
//! types them.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::engine::{eventually, Engine};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

/// A docker CLI running in a pseudo-terminal, with its output collected.
struct Terminal {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn open(e: &Engine, args: &[&str]) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut cmd = CommandBuilder::new("docker");
        cmd.args(args);
        cmd.env("DOCKER_HOST", format!("unix://{}", e.socket.display()));
        cmd.env("DOCKER_CONFIG", e.data.path().join("cli-config"));
        cmd.env("TERM", "xterm");
        let child = pty.slave.spawn_command(cmd).expect("spawn docker");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let writer = pty.master.take_writer().unwrap();
        Self {
            master: pty.master,
            writer,
            child,
            output,
            seen: String::new(),
        }
    }

    fn type_text(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Reads until `needle` appears after what was already consumed.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.seen.find(needle) {
                let upto = at + needle.len();
                let before = self.seen[..upto].to_string();
                self.seen.drain(..upto);
                return before;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "waited for {needle:?}; terminal shows {:?}",
                self.seen
            );
            if let Ok(chunk) = self
                .output
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                self.seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "docker did not exit: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn run_it_gives_a_shell_with_a_terminal_resize_ctrl_c_and_exit_code() {
    let e = Engine::start();
    let mut t = Terminal::open(&e, &["run", "-it", "--name", "shell", "busybox", "sh"]);
    t.expect("/ # ");
    // The terminal is a device of the container's own devpts.
    t.type_text("tty; stty size\r");
    t.expect("/dev/pts/0");
    t.expect("24 80");
    t.expect("/ # ");
    // A resize of the client's terminal reaches the process.
    // (The CLI forwards the resize with its own request: asked again until
    // it has landed, so a loaded machine is not a failure.)
    t.resize(40, 120);
    let mut sizes = Vec::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        t.type_text("stty size\r");
        let answer = t.expect("/ # ");
        if answer.contains("40 120") {
            break;
        }
        sizes.push(answer);
    }
    assert!(
        sizes.len() < 50,
        "the resize never reached the shell: {sizes:?}"
    );
    // Ctrl-C interrupts the foreground command, not the shell.
    t.type_text("sleep 100\r");
    std::thread::sleep(Duration::from_millis(300));
    t.type_text("\x03");
    t.expect("/ # ");
    t.type_text("echo still-here\r");
    t.expect("still-here");
    t.expect("/ # ");
    // UTF-8 passes both ways.
    t.type_text("echo héllo ⚓\r");
    t.expect("héllo ⚓");
    t.type_text("exit 5\r");
    assert_eq!(t.exit_code(), 5);
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.Config.Tty}}",
            "shell"
        ])
        .trim(),
        "exited 5 true"
    );
}

#[test]
fn exec_it_and_attach_with_detach_keys() {
    let e = Engine::start();
    e.ok(&["run", "-dit", "--name", "box", "busybox", "sh"]);

    let mut exec = Terminal::open(&e, &["exec", "-it", "box", "sh"]);
    exec.expect("# ");
    exec.type_text("tty; echo $((6*7))\r");
    exec.expect("/dev/pts/");
    exec.expect("42");
    exec.type_text("exit 3\r");
    assert_eq!(exec.exit_code(), 3);

    // `docker attach` joins the running shell; Ctrl-P Ctrl-Q leaves it running.
    let mut attach = Terminal::open(&e, &["attach", "box"]);
    std::thread::sleep(Duration::from_millis(300));
    attach.type_text("echo attached-$((1+1))\r");
    attach.expect("attached-2");
    attach.type_text("\x10\x11");
    attach.expect("read escape sequence");
    attach.exit_code();
    assert!(eventually(Duration::from_secs(5), || {
        e.ok(&["inspect", "-f", "{{.State.Running}}", "box"]).trim() == "true"
    }));
    // Output written while attached is in the logs too.
    assert!(e.ok(&["logs", "box"]).contains("attached-2"));

    // Attaching again and exiting the shell stops the container.
    let mut again = Terminal::open(&e, &["attach", "box"]);
    std::thread::sleep(Duration::from_millis(300));
    again.type_text("exit 9\r");
    assert_eq!(again.exit_code(), 9);
    assert!(eventually(Duration::from_secs(5), || {
        e.ok(&["inspect", "-f", "{{.State.Status}}", "box"]).trim() == "exited"
    }));
}
