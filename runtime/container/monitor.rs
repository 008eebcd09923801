//! The monitor: one small process per running container (`berth __init`),
//! outside the container's namespaces, that survives an engine restart.
//!
//! It receives the container's [`InitConfig`] from the engine on fd 3, forks an
//! intermediate child (see [`super::init`]) that enters the new namespaces,
//! writes that child's id maps, mounts the overlay rootfs over idmapped layers,
//! places the child in the container's cgroup, and reports to the engine when
//! the command runs (or why it does not). As a subreaper it then becomes the
//! parent of the container's pid 1, waits for it, records the exit in the
//! container's directory and unmounts the rootfs.
//!
//! It runs single-threaded in a freshly executed binary, so forking is safe.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::cgroup::{Cgroup, Hierarchy};
use super::launch::{mount_rootfs, unmount_rootfs, ContainerDir};
use super::logs::LogWriter;
use super::protocol::{recv_msg, recv_msg_with_fd, send_msg, FromInit, InitConfig, ToInit};
use super::relay::{Output, Relay};
use super::{attach, init, sys};

/// Exit code when the container could not be set up (what `docker run` exits
/// with when the engine fails).
pub const SETUP_FAILED: i32 = 125;

/// How the container's pid 1 ended, as the monitor records it in `exit.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code, or 128 + signal.
    pub code: i32,
    /// Unix time in nanoseconds.
    pub finished_at_ns: u128,
}

/// The exit record's file in a container directory.
pub fn exit_file(dir: &Path) -> std::path::PathBuf {
    dir.join("exit.json")
}

/// Entry point of `berth __init`. Never returns.
pub fn main() -> ! {
    let engine = match sys::take_stdin_channel() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("berth __init is started by the engine, not by hand ({e})");
            std::process::exit(2)
        }
    };
    let code = match monitor(&engine) {
        Ok(code) => code,
        Err((message, exit_code)) => {
            let _ = send_msg(&engine, &FromInit::Failed { message, exit_code });
            exit_code
        }
    };
    std::process::exit(code)
}

type Failure = (String, i32);

fn setup(context: &str) -> impl Fn(String) -> Failure + '_ {
    move |e| (format!("{context}: {e}"), SETUP_FAILED)
}

fn monitor(engine: &OwnedFd) -> Result<i32, Failure> {
    // Not dumpable: no process of the container may ptrace this one or reach
    // its /proc/<pid>/exe (CVE-2019-5736 overwrote the runtime binary).
    nix::sys::prctl::set_dumpable(false).map_err(|e| setup("prctl")(e.to_string()))?;
    nix::unistd::setsid().map_err(|e| setup("setsid")(e.to_string()))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| setup("subreaper")(e.to_string()))?;
    let mut config = match recv_msg::<ToInit>(engine).map_err(|e| setup("config")(e.to_string()))? {
        Some(ToInit::Config(c)) => *c,
        other => return Err(setup("config")(format!("unexpected {other:?}"))),
    };
    for _ in 0..config.bind_sources.len() {
        match recv_msg_with_fd::<ToInit>(engine).map_err(|e| setup("bind")(e.to_string()))? {
            Some((ToInit::BindSource, Some(fd))) => config.bind_fds.push(fd),
            other => return Err(setup("bind")(format!("unexpected {other:?}"))),
        }
    }
    let early = match &config.early_attach {
        Some(request) => match recv_msg_with_fd::<ToInit>(engine)
            .map_err(|e| setup("attach")(e.to_string()))?
        {
            Some((ToInit::AttachStream, Some(fd))) => Some((UnixStream::from(fd), request.clone())),
            other => return Err(setup("attach")(format!("unexpected {other:?}"))),
        },
        None => None,
    };
    let dir = ContainerDir::new(config.dir.clone());
    let listener = listen(&dir.root).map_err(|e| setup("control socket")(e.to_string()))?;
    let log = LogWriter::open(
        &dir.root.join(LOG_NAME),
        super::logs::LogLimits {
            max_size: config.log_max_size,
            max_files: config.log_max_files,
        },
    )
    .map_err(|e| setup("log")(e.to_string()))?;
    let tty = config
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| setup("pipe")(e.to_string()))
    };
    // Parent ends (kept here) and child ends (the container's fds 0, 1, 2).
    let (stdin_parent, stdin_child) = if config.open_stdin {
        let (r, w) = pipe()?;
        (Some(File::from(w)), Some(r))
    } else {
        (None, None)
    };
    let (pipes, child_out) = if tty {
        (None, None)
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        (Some((out_r, err_r)), Some((out_w, err_w)))
    };
    // Made while the pipes are empty, so the first lines keep their order.
    let ready_order = pipes
        .as_ref()
        .and_then(|(out_r, err_r)| super::relay::ready_order(out_r, err_r));
    let (mine, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| setup("socketpair")(e.to_string()))?;
    let (status_read, status_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| setup("pipe")(e.to_string()))?;
    let child = match sys::fork_single_threaded().map_err(|e| setup("fork")(e.to_string()))? {
        sys::Forked::Child => {
            drop(mine);
            drop(status_read);
            if let Err(e) = child_stdio(stdin_child, child_out) {
                let _ = send_msg(
                    &theirs,
                    &FromInit::Failed {
                        message: format!("stdio: {e}"),
                        exit_code: SETUP_FAILED,
                    },
                );
                std::process::exit(SETUP_FAILED);
            }
            std::process::exit(init::intermediate(&config, theirs, status_write))
        }
        sys::Forked::Parent { child } => child,
    };
    drop(theirs);
    // The detached bind mounts are the container's (its pid 1 attaches its
    // copies): the monitor keeps none for the container's lifetime.
    config.bind_fds.clear();
    drop(status_write);
    drop(stdin_child);
    drop(child_out);
    let started = start(&config, &dir, &mine, engine, child);
    // The intermediate exits once pid 1 exists (or on failure): reap it, so
    // pid 1 is reparented to us, the subreaper.
    if started.is_err() {
        let _ = nix::sys::signal::kill(Pid::from_raw(child), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = waitpid(Pid::from_raw(child), None);
    let pid = match started {
        Ok(pid) => pid,
        Err(failure) => {
            unmount_rootfs(&dir);
            return Err(failure);
        }
    };
    let mut report = Vec::new();
    let _ = fs::File::from(status_read).read_to_end(&mut report);
    if !report.is_empty() {
        let _ = wait_exit_code(pid);
        unmount_rootfs(&dir);
        return Err(match serde_json::from_slice::<FromInit>(&report) {
            Ok(FromInit::Failed { message, exit_code }) => (message, exit_code),
            _ => (String::from_utf8_lossy(&report).into_owned(), SETUP_FAILED),
        });
    }
    let output = match pipes {
        Some((stdout, stderr)) => Output::Pipes { stdout, stderr },
        None => match recv_msg_with_fd::<FromInit>(&mine) {
            Ok(Some((FromInit::Terminal, Some(master)))) => Output::Terminal { master },
            other => {
                let _ =
                    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                let _ = wait_exit_code(pid);
                unmount_rootfs(&dir);
                return Err(setup("terminal")(format!(
                    "no terminal from the container ({other:?})"
                )));
            }
        },
    };
    let stdin = match (&output, stdin_parent) {
        (Output::Terminal { master }, _) if config.open_stdin => {
            master.try_clone().ok().map(File::from)
        }
        (_, stdin) => stdin,
    };
    let pidfd = sys::pidfd_open(pid).map_err(|e| setup("pidfd")(e.to_string()))?;
    let mut relay = Relay::new(listener, output, stdin, log, pidfd);
    relay.set_ready_order(ready_order);
    if let Some((stream, request)) = early {
        relay.add(stream, request);
    }
    let _ = send_msg(engine, &FromInit::Started { pid });
    let code = relay.run(|| wait_exit_code(pid));
    let record = ExitRecord {
        code,
        finished_at_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    };
    let file = exit_file(&dir.root);
    let tmp = file.with_extension("tmp");
    if fs::write(&tmp, serde_json::to_vec(&record).unwrap_or_default()).is_ok() {
        let _ = fs::rename(&tmp, &file);
    }
    relay.finish();
    let _ = fs::remove_file(attach::socket_path(&dir.root));
    unmount_rootfs(&dir);
    Ok(code)
}

/// The log file's name in the container directory.
pub const LOG_NAME: &str = "json.log";

/// Binds the control socket in `dir` (through an fd of the directory, since
/// the full path may be longer than a socket address allows).
fn listen(dir: &Path) -> std::io::Result<UnixListener> {
    let path = attach::socket_path(dir);
    let _ = fs::remove_file(&path);
    let dir_fd = File::open(dir)?;
    use std::os::fd::AsRawFd;
    UnixListener::bind(format!(
        "/proc/self/fd/{}/{}",
        dir_fd.as_raw_fd(),
        attach::SOCKET_NAME
    ))
}

/// In the intermediate child: the container's stdin, stdout and stderr onto
/// fds 0, 1 and 2 (stdin from /dev/null when it is not kept open; a terminal
/// replaces all three later).
fn child_stdio(stdin: Option<OwnedFd>, out: Option<(OwnedFd, OwnedFd)>) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::dup2(stdin.as_ref().map(|f| f.as_raw_fd()).unwrap_or(null), 0)?;
    match &out {
        Some((o, e)) => {
            nix::unistd::dup2(o.as_raw_fd(), 1)?;
            nix::unistd::dup2(e.as_raw_fd(), 2)?;
        }
        None => {
            nix::unistd::dup2(null, 1)?;
            nix::unistd::dup2(null, 2)?;
        }
    }
    nix::unistd::close(null)
}

/// Carries the intermediate through id maps, rootfs and cgroup; returns the
/// host pid of the container's pid 1.
fn start(
    config: &InitConfig,
    dir: &ContainerDir,
    sock: &OwnedFd,
    engine: &OwnedFd,
    child: i32,
) -> Result<i32, Failure> {
    if init::early_namespaces(&config.spec) {
        match recv_msg::<FromInit>(sock).map_err(|e| setup("intermediate")(e.to_string()))? {
            Some(FromInit::UserNamespaceReady) => {}
            Some(FromInit::Failed { message, exit_code }) => return Err((message, exit_code)),
            other => return Err(setup("intermediate")(format!("unexpected {other:?}"))),
        }
    }
    let userns = if init::wants_user_namespace(&config.spec) {
        let ids = config
            .ids
            .ok_or_else(|| setup("user namespace")("no id range".into()))?;
        let map = format!("0 {} {}\n", ids.base, ids.size);
        for file in ["uid_map", "gid_map"] {
            let path = format!("/proc/{child}/{file}");
            fs::write(&path, &map).map_err(|e| setup(&path)(e.to_string()))?;
        }
        let ns = format!("/proc/{child}/ns/user");
        Some(OwnedFd::from(
            fs::File::open(&ns).map_err(|e| setup(&ns)(e.to_string()))?,
        ))
    } else {
        None
    };
    if config.network_hook {
        // The engine wires the container's network namespace (veth, address,
        // routes) while the command has not started yet.
        send_msg(engine, &FromInit::NetworkNamespace { pid: child })
            .map_err(|e| setup("network")(e.to_string()))?;
        match recv_msg::<ToInit>(engine).map_err(|e| setup("network")(e.to_string()))? {
            Some(ToInit::Proceed) => {}
            Some(ToInit::Abort { message }) => return Err((message, SETUP_FAILED)),
            other => return Err(setup("network")(format!("unexpected {other:?}"))),
        }
    }
    mount_rootfs(dir, &config.layers, userns.as_ref())
        .map_err(|e| (e.to_string(), SETUP_FAILED))?;
    let hierarchy = Hierarchy::detect().map_err(|e| (e.to_string(), SETUP_FAILED))?;
    Cgroup::open(&hierarchy, &config.cgroup)
        .and_then(|c| c.add_process(child))
        .map_err(|e| (e.to_string(), SETUP_FAILED))?;
    send_msg(sock, &ToInit::Proceed).map_err(|e| setup("proceed")(e.to_string()))?;
    match recv_msg::<FromInit>(sock).map_err(|e| setup("intermediate")(e.to_string()))? {
        Some(FromInit::Started { pid }) => Ok(pid),
        Some(FromInit::Failed { message, exit_code }) => Err((message, exit_code)),
        other => Err(setup("intermediate")(format!("ended early ({other:?})"))),
    }
}

/// Waits for `pid` and turns its end into a shell-style exit code.
fn wait_exit_code(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}
