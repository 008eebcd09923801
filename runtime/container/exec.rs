//! `docker exec`: another process inside a running container, in all of its
//! namespaces and its cgroup, with its capabilities, seccomp filter, user,
//! environment and working directory.
//!
//! The engine starts `berth __exec` (one per exec) with the config on fd 3.
//! That process joins the container's cgroup and namespaces, forks (entering
//! the pid namespace), and the child becomes the command exactly as the
//! container's pid 1 did. The `__exec` process waits for it and exits with its
//! exit code. With a terminal, the child opens it in the container's devpts
//! and sends its master side to the engine over fd 3.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use super::cgroup::{Cgroup, Hierarchy};
use super::init::{become_command, become_root, Failure};
use super::manager::{Container, Runtime};
use super::monitor::SETUP_FAILED;
use super::protocol::{recv_msg, recv_msg_with_fd, send_msg, FromInit};
use super::seccomp::SeccompProgram;
use super::state::Status;
use super::{spec, sys, ContainerError};
use crate::Result;

/// What `docker exec` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    /// Added to the container's environment.
    pub env: Vec<String>,
    /// The container's working directory when `None`.
    pub workdir: Option<String>,
    /// The container's user when `None`.
    pub user: Option<String>,
    pub tty: bool,
    /// Keep stdin open for the caller to write to.
    pub stdin: bool,
    /// Initial terminal size (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

/// Sent to `berth __exec` on fd 3.
#[derive(Debug, Serialize, Deserialize)]
struct ExecInit {
    pid: i32,
    cgroup: String,
    process: oci_spec::runtime::Process,
    user: Option<String>,
    seccomp: Option<SeccompProgram>,
}

/// A running exec: its helper process and stdio (or terminal).
#[derive(Debug)]
pub struct ExecProcess {
    pub child: Child,
    /// Host pid of the command.
    pub pid: i32,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// The terminal's master side, when a terminal was asked for.
    pub terminal: Option<File>,
}

impl ExecProcess {
    /// Waits for the command; returns its exit code (128 + signal if killed).
    pub fn wait(&mut self) -> i32 {
        self.child
            .wait()
            .ok()
            .and_then(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or(s.signal().map(|sig| 128 + sig))
            })
            .unwrap_or(255)
    }

    /// Resizes the terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        match &self.terminal {
            Some(t) => sys::set_window_size(t.as_raw_fd(), rows, cols),
            None => Ok(()),
        }
    }
}

impl Runtime {
    /// Starts `config.cmd` inside the running `container`.
    pub fn exec(&self, container: &Arc<Container>, config: &ExecConfig) -> Result<ExecProcess> {
        let record = container.snapshot();
        match record.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    record.id
                ))
                .into())
            }
            _ => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not running",
                    record.id
                ))
                .into())
            }
        }
        if config.cmd.is_empty() {
            return Err(ContainerError::InvalidConfig("No exec command specified".into()).into());
        }
        let image = self.images.resolve(&record.scope, &record.image_id)?;
        let mut env = spec::environment(&record.config, &image, &record.hostname);
        for e in &config.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        let cwd = config
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| record.config.workdir.clone())
            .or_else(|| {
                image
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.working_dir().clone())
            })
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let mut process = spec::process(
            config.cmd.clone(),
            env,
            cwd,
            config.tty,
            config.console_size,
        )?;
        // An exec gets the container's set, `--cap-add`/`--cap-drop` included
        // (all of them in a privileged container, as Docker's).
        let caps = if record.config.privileged {
            super::capabilities::privileged()
        } else {
            super::capabilities::effective(&record.config.cap_add, &record.config.cap_drop)
        };
        spec::set_capabilities(&mut process, &caps);
        self.sandbox_process(&record.scope, Some(&mut process));
        let user = config.user.clone().filter(|u| !u.is_empty()).or_else(|| {
            record.config.user.clone().or_else(|| {
                image
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.user().clone())
            })
        });
        let seccomp = super::capabilities::seccomp_for(Some(&process), self.seccomp)
            .map_err(ContainerError::from)?;
        let init = ExecInit {
            pid: record.state.pid,
            cgroup: self.cgroup_path(&record),
            process,
            user,
            seccomp: Some(seccomp).filter(|_| !record.config.privileged),
        };
        let io_err = |context: &str| {
            let context = context.to_string();
            move |source: std::io::Error| -> crate::Error {
                ContainerError::Io { context, source }.into()
            }
        };
        let (engine_sock, exec_sock) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| io_err("socketpair")(e.into()))?;
        let mut cmd = Command::new(&self.options.init_binary);
        cmd.arg("__exec").env_clear();
        if config.tty {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        } else {
            cmd.stdin(if config.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        }
        sys::pass_fds(&mut cmd, vec![exec_sock]);
        let mut child = cmd.spawn().map_err(io_err("start exec"))?;
        drop(cmd);
        let fail = |child: &mut Child, e: crate::Error| {
            let _ = child.kill();
            let _ = child.wait();
            e
        };
        if let Err(e) = send_msg(&engine_sock, &init) {
            return Err(fail(&mut child, io_err("send exec config")(e)));
        }
        let mut terminal = None;
        let pid = loop {
            match recv_msg_with_fd::<FromInit>(&engine_sock) {
                Ok(Some((FromInit::Terminal, fd))) => terminal = fd.map(File::from),
                Ok(Some((FromInit::Started { pid }, _))) => break pid,
                Ok(Some((FromInit::Failed { message, exit_code }, _))) => {
                    let _ = child.wait();
                    return Err(ContainerError::Start { message, exit_code }.into());
                }
                other => {
                    let e = ContainerError::Start {
                        message: format!("exec ended early ({other:?})"),
                        exit_code: SETUP_FAILED,
                    };
                    return Err(fail(&mut child, e.into()));
                }
            }
        };
        Ok(ExecProcess {
            pid,
            stdin: child.stdin.take().map(|s| File::from(OwnedFd::from(s))),
            stdout: child.stdout.take().map(|s| File::from(OwnedFd::from(s))),
            stderr: child.stderr.take().map(|s| File::from(OwnedFd::from(s))),
            terminal,
            child,
        })
    }
}

/// Entry point of `berth __exec`. Never returns.
pub fn main() -> ! {
    let sock = match sys::adopt_fd(3) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("berth __exec is started by the engine, not by hand ({e})");
            std::process::exit(2)
        }
    };
    let code = match run(&sock) {
        Ok(code) => code,
        Err((message, exit_code)) => {
            let _ = send_msg(&sock, &FromInit::Failed { message, exit_code });
            exit_code
        }
    };
    std::process::exit(code)
}

fn run(sock: &OwnedFd) -> std::result::Result<i32, Failure> {
    let setup = |what: &str, e: String| (format!("{what}: {e}"), SETUP_FAILED);
    nix::sys::prctl::set_dumpable(false).map_err(|e| setup("prctl", e.to_string()))?;
    let init: ExecInit = match recv_msg(sock).map_err(|e| setup("config", e.to_string()))? {
        Some(i) => i,
        None => return Err(setup("config", "engine went away".into())),
    };
    // Every namespace fd is opened before joining any, while /proc is ours.
    let kinds = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut namespaces = Vec::new();
    for (name, flag) in kinds {
        let theirs = format!("/proc/{}/ns/{name}", init.pid);
        let same = fs::metadata(&theirs).map(|m| m.ino()).ok()
            == fs::metadata(format!("/proc/self/ns/{name}"))
                .map(|m| m.ino())
                .ok();
        if same {
            continue;
        }
        let fd = File::open(&theirs).map_err(|e| setup(&theirs, e.to_string()))?;
        namespaces.push((name, flag, fd));
    }
    let hierarchy = Hierarchy::detect().map_err(|e| setup("cgroup", e.to_string()))?;
    Cgroup::open(&hierarchy, &init.cgroup)
        .and_then(|c| c.add_process(std::process::id() as i32))
        .map_err(|e| setup("join cgroup", e.to_string()))?;
    for (name, flag, fd) in &namespaces {
        setns(fd, *flag).map_err(|e| setup(&format!("join {name} namespace"), e.to_string()))?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            become_root().map_err(|e| setup("user", e))?;
        }
    }
    drop(namespaces);
    let (status_read, status_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| setup("pipe", e.to_string()))?;
    match sys::fork_single_threaded().map_err(|e| setup("fork", e.to_string()))? {
        sys::Forked::Child => {
            drop(status_read);
            let _ = nix::unistd::setsid();
            let (message, exit_code) = match become_command(
                &init.process,
                init.user.as_deref(),
                &[],
                init.seccomp.as_ref(),
                sock,
                false,
            ) {
                Ok(never) => match never {},
                Err(f) => f,
            };
            let msg = FromInit::Failed { message, exit_code };
            let _ = std::io::Write::write_all(
                &mut File::from(status_write),
                &serde_json::to_vec(&msg).unwrap_or_default(),
            );
            std::process::exit(exit_code)
        }
        sys::Forked::Parent { child } => {
            drop(status_write);
            let mut report = Vec::new();
            let _ = File::from(status_read).read_to_end(&mut report);
            if !report.is_empty() {
                let _ = wait_code(child);
                return Err(match serde_json::from_slice::<FromInit>(&report) {
                    Ok(FromInit::Failed { message, exit_code }) => (message, exit_code),
                    _ => (String::from_utf8_lossy(&report).into_owned(), SETUP_FAILED),
                });
            }
            send_msg(sock, &FromInit::Started { pid: child })
                .map_err(|e| setup("report", e.to_string()))?;
            Ok(wait_code(child))
        }
    }
}

fn wait_code(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// Sets the window size of a terminal (an exec's master side).
pub fn set_window_size(fd: std::os::fd::RawFd, rows: u16, cols: u16) -> std::io::Result<()> {
    sys::set_window_size(fd, rows, cols)
}
