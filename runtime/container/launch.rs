//! The engine's side of a launch: prepare the writable layer, start the
//! container's monitor (`berth __init`) and wait until the command runs; and
//! the overlay rootfs that the monitor mounts.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::protocol::{recv_msg, send_msg, send_msg_with_fd, FromInit, InitConfig, ToInit};
use super::spec::IdRange;
use super::{sys, ContainerError};

/// A container's directory: `<data>/containers/<id>/`.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub root: PathBuf,
}

impl ContainerDir {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
    /// The overlay's writable layer.
    pub fn upper(&self) -> PathBuf {
        self.root.join("upper")
    }
    /// The overlay's work directory.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }
    /// The overlay mount point: the container's `/`.
    pub fn rootfs(&self) -> PathBuf {
        self.root.join("rootfs")
    }
    /// Where idmapped views of the layers are attached while the overlay is made.
    fn lower(&self, i: usize) -> PathBuf {
        self.root.join("lower").join(i.to_string())
    }
}

/// A started container: its monitor process and its pid 1.
#[derive(Debug)]
pub struct Launched {
    pub monitor: Child,
    pub pid: i32,
    /// The client attached before start, when one was asked for.
    pub attached: Option<UnixStream>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let context = context.into();
    move |source| ContainerError::Io { context, source }
}

fn nix_err(context: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> ContainerError {
    let context = context.into();
    move |e| ContainerError::Io {
        context,
        source: e.into(),
    }
}

/// Makes the writable layer's directories; container root owns the upper dir.
pub fn prepare_dir(dir: &ContainerDir, ids: Option<IdRange>) -> Result<(), ContainerError> {
    for d in [dir.upper(), dir.work(), dir.rootfs()] {
        fs::create_dir_all(&d).map_err(io_err(format!("create {}", d.display())))?;
    }
    if let Some(ids) = ids {
        std::os::unix::fs::chown(dir.upper(), Some(ids.base), Some(ids.base))
            .map_err(io_err("chown upper dir"))?;
    }
    Ok(())
}

/// Starts the container's monitor (`<init_binary> __init`) and waits until the
/// container's command runs. On error the monitor is gone and the rootfs
/// unmounted; the caller removes the cgroup and directory.
pub fn launch(
    init_binary: &Path,
    mut config: InitConfig,
    mut on_netns: Option<&mut dyn FnMut(i32) -> Result<(), String>>,
) -> Result<Launched, ContainerError> {
    let (engine_sock, monitor_sock) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(nix_err("socketpair"))?;
    let dir = ContainerDir::new(config.dir.clone());
    // The monitor's own complaints (it has no terminal) go to a file.
    let monitor_log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.root.join("monitor.log"))
        .map_err(io_err("open monitor.log"))?;
    let mut cmd = Command::new(init_binary);
    // Seen as pid 1's command line under `--init`: no host path shows inside.
    std::os::unix::process::CommandExt::arg0(&mut cmd, "berth");
    // The channel is the monitor's stdin: no `pre_exec`, so this is a
    // posix_spawn, not a fork of the daemon (see `sys::take_stdin_channel`).
    cmd.arg("__init")
        .stdin(Stdio::from(monitor_sock))
        .stdout(Stdio::null())
        .stderr(monitor_log)
        .env_clear();
    let monitor = cmd
        .spawn()
        .map_err(io_err(format!("start {}", init_binary.display())))?;
    // The command holds the monitor's end of the socket: drop it so EOF works.
    drop(cmd);
    let guard = MonitorGuard {
        monitor: Some(monitor),
        dir,
    };
    let early = config.early_attach.is_some();
    let bind_fds = std::mem::take(&mut config.bind_fds);
    if bind_fds.len() != config.bind_sources.len() {
        return Err(ContainerError::InvalidConfig(
            "a detached bind mount is missing its descriptor".into(),
        ));
    }
    send_msg(&engine_sock, &ToInit::Config(Box::new(config))).map_err(io_err("send config"))?;
    for fd in &bind_fds {
        send_msg_with_fd(&engine_sock, &ToInit::BindSource, fd)
            .map_err(io_err("send bind source"))?;
    }
    drop(bind_fds);
    let attached = if early {
        let (ours, theirs) = UnixStream::pair().map_err(io_err("socketpair"))?;
        send_msg_with_fd(&engine_sock, &ToInit::AttachStream, &theirs)
            .map_err(io_err("send attach stream"))?;
        Some(ours)
    } else {
        None
    };
    let mut reply = recv_msg::<FromInit>(&engine_sock).map_err(io_err("read from monitor"))?;
    if let (Some(FromInit::NetworkNamespace { pid }), Some(wire)) = (&reply, on_netns.as_mut()) {
        let answer = match wire(*pid) {
            Ok(()) => ToInit::Proceed,
            Err(message) => ToInit::Abort { message },
        };
        send_msg(&engine_sock, &answer).map_err(io_err("answer monitor"))?;
        reply = recv_msg::<FromInit>(&engine_sock).map_err(io_err("read from monitor"))?;
    }
    match reply {
        Some(FromInit::Started { pid }) => Ok(guard.disarm(pid, attached)),
        Some(FromInit::Failed { message, exit_code }) => Err(ContainerError::Start {
            message: as_runc_says(message, exit_code),
            exit_code,
        }),
        other => Err(ContainerError::Start {
            message: format!("container monitor ended early ({other:?})"),
            exit_code: super::monitor::SETUP_FAILED,
        }),
    }
}

/// Mounts the overlay rootfs: the layers (shown through the user namespace's id
/// mapping when there is one) under the container's writable layer.
pub fn mount_rootfs(
    dir: &ContainerDir,
    layers: &[PathBuf],
    userns: Option<&OwnedFd>,
) -> Result<(), ContainerError> {
    // A layer listed twice (two build steps that left the same files have one
    // diff ID) overlaps itself, which overlayfs refuses with ELOOP. The upper
    // copy shows everything the lower one does, over whatever lies between,
    // so only the topmost is mounted.
    let layers: Vec<&PathBuf> = layers
        .iter()
        .enumerate()
        .filter(|(i, l)| !layers[i + 1..].contains(l))
        .map(|(_, l)| l)
        .collect();
    let mut staged = Vec::new();
    let result = (|| {
        let mut lowers = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().copied().enumerate() {
            match userns {
                Some(ns) => {
                    let stage = dir.lower(i);
                    fs::create_dir_all(&stage).map_err(io_err("create layer stage"))?;
                    let view = sys::clone_mount(layer)
                        .map_err(io_err(format!("clone layer {}", layer.display())))?;
                    sys::set_idmap(&view, ns).map_err(io_err("idmap layer"))?;
                    sys::attach_mount(&view, &stage).map_err(io_err("attach layer"))?;
                    staged.push(stage.clone());
                    lowers.push(stage);
                }
                None => lowers.push(layer.clone()),
            }
        }
        if lowers.is_empty() {
            // A layerless image (FROM scratch with nothing added) still needs a lower.
            let empty = dir.root.join("empty");
            fs::create_dir_all(&empty).map_err(io_err("create empty layer"))?;
            lowers.push(empty);
        }
        let lowerdir: Vec<String> = lowers
            .iter()
            .rev()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdir.join(":"),
            dir.upper().display(),
            dir.work().display()
        );
        mount(
            Some("overlay"),
            &dir.rootfs(),
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .map_err(nix_err("mount overlay rootfs"))
    })();
    // The overlay holds its own references to the layers: the staged views go.
    for stage in &staged {
        let _ = umount2(stage, MntFlags::MNT_DETACH);
    }
    let _ = fs::remove_dir_all(dir.root.join("lower"));
    result
}

/// Unmounts the rootfs if it is mounted.
pub fn unmount_rootfs(dir: &ContainerDir) {
    let _ = umount2(&dir.rootfs(), MntFlags::MNT_DETACH);
}

/// Kills the monitor and unmounts the rootfs unless disarmed.
struct MonitorGuard {
    monitor: Option<Child>,
    dir: ContainerDir,
}

impl MonitorGuard {
    fn disarm(mut self, pid: i32, attached: Option<UnixStream>) -> Launched {
        Launched {
            monitor: self.monitor.take().expect("monitor present until disarmed"),
            pid,
            attached,
        }
    }
}

impl Drop for MonitorGuard {
    fn drop(&mut self) {
        if let Some(mut monitor) = self.monitor.take() {
            let _ = monitor.kill();
            let _ = monitor.wait();
            unmount_rootfs(&self.dir);
        }
    }
}

/// A program that could not be run (126, 127) is reported in the words
/// Docker 28 relays from containerd and runc, which clients and learners
/// match on (`docker run --rm busybox nosuchcommand`); other setup
/// failures keep Berth's own wording.
fn as_runc_says(message: String, exit_code: i32) -> String {
    if matches!(exit_code, 126 | 127) && message.starts_with("exec: ") {
        format!(
            "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: {message}: unknown"
        )
    } else {
        message
    }
}
