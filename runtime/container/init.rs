//! Inside the container: the monitor's intermediate child and the container's
//! pid 1. Both run in a fork of the single-threaded monitor, so forking and
//! allocating are safe.
//!
//! The intermediate creates the user namespace, waits while the monitor writes
//! the id maps, mounts the rootfs and places it in the cgroup, then creates the
//! other namespaces and forks pid 1 of the new pid namespace. Pid 1 mounts the
//! container's filesystems, pivots into the rootfs, drops privileges, installs
//! seccomp last and executes the command. Its exec-status pipe is
//! close-on-exec: EOF tells the monitor the command runs; a message tells why
//! it does not.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Mount, Spec};

use super::monitor::SETUP_FAILED;
use super::protocol::{recv_msg, send_msg, FromInit, InitConfig, ToInit};
use super::sys;
use super::user;

/// The intermediate process: creates the container's namespaces and forks its
/// pid 1, then exits (pid 1 is reparented to the monitor, a subreaper).
/// `sock` talks to the monitor; `status` is pid 1's exec-status pipe.
pub fn intermediate(config: &InitConfig, sock: OwnedFd, status: OwnedFd) -> i32 {
    match namespaces_and_fork(config, &sock, status) {
        Ok(()) => 0,
        Err(message) => {
            let _ = send_msg(
                &sock,
                &FromInit::Failed {
                    message,
                    exit_code: SETUP_FAILED,
                },
            );
            SETUP_FAILED
        }
    }
}

fn err(context: &str) -> impl Fn(nix::errno::Errno) -> String + '_ {
    move |e| format!("{context}: {e}")
}

fn namespaces_and_fork(config: &InitConfig, sock: &OwnedFd, status: OwnedFd) -> Result<(), String> {
    let linux = config.spec.linux().clone().unwrap_or_default();
    let has = |t| {
        linux
            .namespaces()
            .as_ref()
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
    };
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    // A network namespace to join (`--network container:NAME`, a node's
    // host namespace) is entered while we are still the host's root: the
    // container's root could not enter it.
    if let Some(path) = network_namespace_path(&config.spec) {
        let ns = File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
        nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(err("join network namespace"))?;
    }
    // The user namespace and a new network namespace are made together, so
    // the container's root owns its network (ping, sysfs) and the engine can
    // wire it (veth, address, route) before the command runs.
    let mut early = CloneFlags::empty();
    if has(Ns::User) {
        early |= CloneFlags::CLONE_NEWUSER;
    }
    if own_network_namespace(&config.spec) {
        early |= CloneFlags::CLONE_NEWNET;
    }
    if !early.is_empty() {
        unshare(early).map_err(err("unshare user namespace"))?;
    }
    if early_namespaces(&config.spec) {
        send_msg(sock, &FromInit::UserNamespaceReady).map_err(|e| e.to_string())?;
    }
    match recv_msg::<ToInit>(sock).map_err(|e| e.to_string())? {
        Some(ToInit::Proceed) => {}
        None => return Err("the monitor went away".into()),
        other => return Err(format!("expected proceed, got {other:?}")),
    }
    if has(Ns::User) {
        become_root()?;
    }
    let mut flags = CloneFlags::empty();
    for (t, f) in [
        (Ns::Mount, CloneFlags::CLONE_NEWNS),
        (Ns::Uts, CloneFlags::CLONE_NEWUTS),
        (Ns::Ipc, CloneFlags::CLONE_NEWIPC),
        (Ns::Pid, CloneFlags::CLONE_NEWPID),
        (Ns::Cgroup, CloneFlags::CLONE_NEWCGROUP),
    ] {
        if has(t) {
            flags |= f;
        }
    }
    unshare(flags).map_err(err("unshare namespaces"))?;
    match sys::fork_single_threaded().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let (message, exit_code) = match container_process(config, sock, &status) {
                Ok(never) => match never {},
                Err(failure) => failure,
            };
            let mut status = File::from(status);
            let msg = FromInit::Failed { message, exit_code };
            let _ = status.write_all(&serde_json::to_vec(&msg).unwrap_or_default());
            std::process::exit(exit_code)
        }
        sys::Forked::Parent { child } => {
            send_msg(sock, &FromInit::Started { pid: child }).map_err(|e| e.to_string())
        }
    }
}

/// Inside a fresh user namespace: become its root (the engine mapped it).
pub(crate) fn become_root() -> Result<(), String> {
    nix::unistd::setgroups(&[]).map_err(err("setgroups"))?;
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(err("setresgid"))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(err("setresuid"))?;
    Ok(())
}

/// A reason the command did not run, and the exit code that reports it.
pub(crate) type Failure = (String, i32);

pub(crate) fn fail(context: &str) -> impl Fn(nix::errno::Errno) -> Failure + '_ {
    move |e| (format!("{context}: {e}"), SETUP_FAILED)
}

/// Pid 1 of the container: build its world, then become its command.
fn container_process(
    config: &InitConfig,
    sock: &OwnedFd,
    status: &OwnedFd,
) -> Result<std::convert::Infallible, Failure> {
    let spec = &config.spec;
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or(("spec has no root".to_string(), SETUP_FAILED))?;
    nix::unistd::setsid().map_err(fail("setsid"))?;
    // A new network namespace starts with `lo` down; in a shared one it is
    // already up (or not ours to touch), so a failure changes nothing.
    let _ = sys::loopback_up();
    // Nothing mounted from here on propagates back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(fail("make / private"))?;
    // A bind of the rootfs onto itself, made in this namespace: the overlay
    // came from the host's namespace and is locked here, and pivot_root
    // refuses a locked mount.
    mount(
        Some(&rootfs),
        &rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail("bind rootfs"))?;
    let root_fd: OwnedFd = open(
        &rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| sys::adopt_fd(fd).expect("fresh fd"))
    .map_err(fail("open rootfs"))?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let detached = config
            .bind_sources
            .iter()
            .zip(&config.bind_fds)
            .find(|(b, _)| b.mount == i);
        match detached {
            Some((bind, fd)) => attach_bind(&root_fd, m, bind, fd),
            None => mount_into(&root_fd, m),
        }
        .map_err(|e| (e, SETUP_FAILED))?;
    }
    // The detached mounts' fds are close-on-exec: none reaches the command.
    for (link, target) in [
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
        ("dev/ptmx", "pts/ptmx"),
    ] {
        let _ = nix::unistd::symlinkat(target, Some(root_fd.as_raw_fd()), link);
    }
    nix::unistd::chdir(&rootfs).map_err(fail("chdir rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("detach old root"))?;
    nix::unistd::chdir("/").map_err(fail("chdir /"))?;
    drop(root_fd);

    if own_network_namespace(spec) {
        allow_ping(config).map_err(|e| (e, SETUP_FAILED))?;
    }
    let linux = spec.linux().clone().unwrap_or_default();
    for path in linux.masked_paths().iter().flatten() {
        mask(path).map_err(|e| (e, SETUP_FAILED))?;
    }
    for path in linux.readonly_paths().iter().flatten() {
        make_readonly(path).map_err(|e| (e, SETUP_FAILED))?;
    }
    if let Some(hostname) = spec.hostname() {
        nix::unistd::sethostname(hostname).map_err(fail("sethostname"))?;
    }

    let process = spec
        .process()
        .clone()
        .ok_or(("spec has no process".to_string(), SETUP_FAILED))?;
    if config.init {
        stay_as_init(sock, status)?;
    }
    let group_add: Vec<String> = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(super::spec::GROUP_ADD))
        .map(|g| g.split(',').map(String::from).collect())
        .unwrap_or_default();
    become_command(
        &process,
        config.user.as_deref(),
        &group_add,
        config.seccomp.as_ref(),
        sock,
        true,
    )
}

/// Lets every group of the container open unprivileged ICMP sockets in its
/// own network namespace (`net.ipv4.ping_group_range`, as Docker sets it),
/// so `ping` works without CAP_NET_RAW. Written before /proc/sys turns
/// read-only; in a user namespace the range is of the container's own
/// gids (the kernel refuses gids the namespace does not map).
fn allow_ping(config: &InitConfig) -> Result<(), String> {
    let highest = match config.ids {
        Some(ids) if wants_user_namespace(&config.spec) => ids.size.saturating_sub(1),
        _ => i32::MAX as u32,
    };
    let knob = "/proc/sys/net/ipv4/ping_group_range";
    match fs::write(knob, format!("0 {highest}")) {
        Ok(()) => Ok(()),
        // A kernel without the knob has no unprivileged ICMP to allow.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("set {knob}: {e}")),
    }
}

/// Signals that pid 1 passes on to the command under `--init`.
const FORWARDED: [Signal; 14] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGWINCH,
    Signal::SIGURG,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGVTALRM,
];

/// `--init`: forks the command; this process stays pid 1 with no
/// capabilities, forwarding signals to the command and reaping every child,
/// and exits with the command's status (128 + signal when killed), as
/// Docker's docker-init does. Returns in the child, which goes on to become
/// the command.
fn stay_as_init(sock: &OwnedFd, status: &OwnedFd) -> Result<(), Failure> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    // Blocked before the fork so no signal falls between fork and wait; a
    // blocked signal reaches pid 1 of a pid namespace even without a handler.
    set.thread_block().map_err(fail("block signals"))?;
    match sys::fork_single_threaded().map_err(|e| (format!("fork: {e}"), SETUP_FAILED))? {
        sys::Forked::Child => {
            set.thread_unblock().map_err(fail("unblock signals"))?;
            nix::unistd::setsid().map_err(fail("setsid"))?;
            Ok(())
        }
        sys::Forked::Parent { child } => {
            // The monitor learns of the exec (or its failure) from the child's
            // copies of these.
            let _ = nix::unistd::close(sock.as_raw_fd());
            let _ = nix::unistd::close(status.as_raw_fd());
            let _ = nix::unistd::close(0);
            let _ = nix::sys::prctl::set_name(c"docker-init");
            let _ = nix::sys::prctl::set_no_new_privs();
            for set in [
                caps::CapSet::Ambient,
                caps::CapSet::Inheritable,
                caps::CapSet::Effective,
                caps::CapSet::Permitted,
            ] {
                let _ = caps::clear(None, set);
            }
            std::process::exit(forward_and_reap(&set, child))
        }
    }
}

fn forward_and_reap(set: &SigSet, child: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let child_pid = nix::unistd::Pid::from_raw(child);
    loop {
        let Ok(signal) = set.wait() else { continue };
        if signal != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child_pid, signal);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child_pid => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child_pid => {
                    return 128 + sig as i32
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// The last steps of every process that enters a container (its pid 1, and
/// each `docker exec`): terminal, user, environment, working directory,
/// privileges, no_new_privs, fds, seccomp (last), execve.
pub(crate) fn become_command(
    process: &oci_spec::runtime::Process,
    user: Option<&str>,
    group_add: &[String],
    seccomp: Option<&super::seccomp::SeccompProgram>,
    sock: &OwnedFd,
    create_cwd: bool,
) -> Result<std::convert::Infallible, Failure> {
    if process.terminal().unwrap_or(false) {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        open_terminal(sock, size)?;
    }
    let mut user = user::resolve(Path::new("/"), user).map_err(|e| (e, SETUP_FAILED))?;
    for g in group_add {
        let gid = user::group_id(Path::new("/"), g).map_err(|e| (e, SETUP_FAILED))?;
        if !user.groups.contains(&gid) {
            user.groups.push(gid);
        }
    }
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let cwd = process.cwd();
    if create_cwd && fs::metadata(cwd).is_err() {
        fs::create_dir_all(cwd)
            .map_err(|e| (format!("mkdir {}: {e}", cwd.display()), SETUP_FAILED))?;
    }
    nix::unistd::chdir(cwd).map_err(|e| {
        (
            format!(
                "chdir to cwd (\"{}\") set in config.json failed: {e}",
                cwd.display()
            ),
            SETUP_FAILED,
        )
    })?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(("No command specified".into(), SETUP_FAILED));
    }
    let program = find_program(&args[0], &env)?;

    drop_privileges(process, &user)?;
    if process.no_new_privileges().unwrap_or(true) {
        nix::sys::prctl::set_no_new_privs().map_err(fail("no_new_privs"))?;
    }
    sys::cloexec_from(3).map_err(|e| (format!("close fds: {e}"), SETUP_FAILED))?;
    let argv: Vec<CString> = args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let program_c = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| ("NUL in path".to_string(), SETUP_FAILED))?;
    // Installed last: after this only execve runs.
    if let Some(filter) = seccomp {
        super::seccomp::install(filter).map_err(|e| (format!("seccomp: {e}"), SETUP_FAILED))?;
    }
    let e = nix::unistd::execve(&program_c, &argv, &envp).unwrap_err();
    Err(exec_failure(&args[0], e))
}

/// Opens a terminal in the container's own devpts instance, makes it pid 1's
/// controlling terminal and stdio, and hands the master side to the monitor
/// (the console-socket pattern: no host terminal ever enters the container).
fn open_terminal(sock: &OwnedFd, size: Option<(u16, u16)>) -> Result<(), Failure> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(fail("open /dev/ptmx"))?;
    grantpt(&master).map_err(fail("grantpt"))?;
    unlockpt(&master).map_err(fail("unlockpt"))?;
    let name = ptsname_r(&master).map_err(fail("ptsname"))?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(fail("open terminal"))?;
    sys::set_controlling_terminal(slave)
        .map_err(|e| (format!("controlling terminal: {e}"), SETUP_FAILED))?;
    if let Some((rows, cols)) = size.filter(|(r, c)| *r > 0 && *c > 0) {
        let _ = sys::set_window_size(slave, rows, cols);
    }
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd).map_err(fail("terminal stdio"))?;
    }
    let _ = nix::unistd::close(slave);
    super::protocol::send_msg_with_fd(sock, &FromInit::Terminal, &master)
        .map_err(|e| (format!("send terminal: {e}"), SETUP_FAILED))?;
    Ok(())
}

fn cstr(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| (format!("argument contains a NUL byte: {s:?}"), 1))
}

/// Docker's words for a command that cannot be executed, with its exit code.
fn exec_failure(name: &str, e: nix::errno::Errno) -> Failure {
    match e {
        nix::errno::Errno::ENOENT => (
            format!("exec: \"{name}\": stat {name}: no such file or directory"),
            127,
        ),
        nix::errno::Errno::EACCES => (format!("exec: \"{name}\": permission denied"), 126),
        other => (
            format!("exec: \"{name}\": {}", other.desc().to_lowercase()),
            126,
        ),
    }
}

/// Finds `name` on the container's PATH, as `execvp` would but with the
/// container's environment rather than ours.
fn find_program(name: &str, env: &[String]) -> Result<PathBuf, Failure> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if let Ok(meta) = fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err((
        format!("exec: \"{name}\": executable file not found in $PATH"),
        127,
    ))
}

/// Capabilities cut to the spec's sets, then the user's ids. Root keeps the
/// permitted set across exec (legacy root semantics); anyone else loses it,
/// as with Docker.
fn drop_privileges(
    process: &oci_spec::runtime::Process,
    user: &user::ResolvedUser,
) -> Result<(), Failure> {
    use caps::{CapSet, CapsHashSet};
    let to_set = |c: &Option<oci_spec::runtime::Capabilities>| -> CapsHashSet {
        c.iter()
            .flatten()
            .filter_map(|cap| format!("CAP_{cap}").parse::<caps::Capability>().ok())
            .collect()
    };
    let spec_caps = process.capabilities().clone().unwrap_or_default();
    let bounding = to_set(spec_caps.bounding());
    let capfail = |what: &str| {
        let what = what.to_string();
        move |e: caps::errors::CapsError| (format!("{what}: {e}"), SETUP_FAILED)
    };
    for cap in caps::all() {
        if !bounding.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(capfail("drop bounding capability"))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(fail("keepcaps"))?;
    let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(fail("setgroups"))?;
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(fail("setresgid"))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(fail("setresuid"))?;
    caps::clear(None, CapSet::Ambient).map_err(capfail("clear ambient"))?;
    // Effective first: the kernel refuses a permitted set smaller than the
    // effective one.
    caps::set(None, CapSet::Effective, &to_set(spec_caps.effective()))
        .map_err(capfail("set effective"))?;
    caps::set(None, CapSet::Permitted, &to_set(spec_caps.permitted()))
        .map_err(capfail("set permitted"))?;
    caps::set(None, CapSet::Inheritable, &to_set(spec_caps.inheritable()))
        .map_err(capfail("set inheritable"))?;
    Ok(())
}

/// Mount flags and filesystem data from fstab-style options.
fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Opens (creating as needed) `dest` inside the rootfs without ever leaving
/// it: every component is resolved with `openat2(RESOLVE_IN_ROOT)`, so a
/// symlink planted by the image cannot point a mount at the host.
fn open_target(root: &OwnedFd, dest: &Path, file: bool) -> Result<OwnedFd, String> {
    let mut so_far = PathBuf::from("/");
    let components: Vec<_> = dest
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    for (i, c) in components.iter().enumerate() {
        let parent = sys::open_in_root(root, &so_far)
            .map_err(|e| format!("open {}: {e}", so_far.display()))?;
        so_far.push(c);
        if sys::open_in_root(root, &so_far).is_ok() {
            continue;
        }
        let last = i + 1 == components.len();
        if last && file {
            let _ = nix::fcntl::openat(
                Some(parent.as_raw_fd()),
                c.as_os_str(),
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map(nix::unistd::close);
        } else {
            let _ = nix::sys::stat::mkdirat(
                Some(parent.as_raw_fd()),
                c.as_os_str(),
                Mode::from_bits_truncate(0o755),
            );
        }
    }
    sys::open_in_root(root, &so_far).map_err(|e| format!("mount target {}: {e}", dest.display()))
}

fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Carries out one mount of the spec inside the rootfs.
fn mount_into(root: &OwnedFd, m: &Mount) -> Result<(), String> {
    let (flags, data) = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("bind");
    if typ == super::spec::DETACHED_BIND {
        return Err(format!(
            "mount {} on {}: its resolved source is missing",
            bind_name(m),
            m.destination().display()
        ));
    }
    let source = m.source().clone().unwrap_or_default();
    let is_bind = typ == "bind" || flags.contains(MsFlags::MS_BIND);
    let file = is_bind && fs::metadata(&source).map(|s| !s.is_dir()).unwrap_or(false);
    let target_fd = open_target(root, m.destination(), file)?;
    let target = fd_path(&target_fd);
    let failed = |e: nix::errno::Errno| {
        format!(
            "mount {} on {}: {e}",
            source.display(),
            m.destination().display()
        )
    };
    if is_bind {
        mount(
            Some(&source),
            target.as_str(),
            None::<&str>,
            flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(failed)?;
        let extra = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            // The fd names what was under the mount: open the mount itself.
            let mounted = open_target(root, m.destination(), file)?;
            remount_bind(&fd_path(&mounted), extra).map_err(failed)?;
        }
    } else {
        let data = (!data.is_empty()).then_some(data.as_str());
        mount(Some(&source), target.as_str(), Some(typ), flags, data).map_err(failed)?;
    }
    Ok(())
}

/// Attaches a bind mount whose source the engine resolved and cloned (its
/// detached mount `mount_fd`) on the destination, opened inside the rootfs;
/// then checks that the destination now is the object the engine resolved.
fn attach_bind(
    root: &OwnedFd,
    m: &Mount,
    bind: &super::protocol::BindSource,
    mount_fd: &OwnedFd,
) -> Result<(), String> {
    let dest = m.destination();
    let failed = |e: std::io::Error| format!("mount {} on {}: {e}", bind_name(m), dest.display());
    let target = open_target(root, dest, !bind.dir)?;
    sys::attach_mount_at(mount_fd, &target).map_err(failed)?;
    let mounted = open_target(root, dest, !bind.dir)?;
    let st = nix::sys::stat::fstat(mounted.as_raw_fd())
        .map_err(|e| format!("stat mount {}: {e}", dest.display()))?;
    if (st.st_dev, st.st_ino) != (bind.dev, bind.ino) {
        return Err(format!(
            "mount {} on {}: the mounted object is not the resolved source",
            bind_name(m),
            dest.display()
        ));
    }
    Ok(())
}

/// The source of a bind as the user named it, for messages.
fn bind_name(m: &Mount) -> String {
    m.source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_default()
}

/// Remounts a bind mount with `extra` flags, keeping the flags it already has
/// (a user namespace may not clear flags locked by the host).
fn remount_bind(target: &str, extra: MsFlags) -> Result<(), nix::errno::Errno> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let current = statvfs(target)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
}

/// Hides `path`: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(path: &str) -> Result<(), String> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let result = if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    result.map_err(|e| format!("mask {path}: {e}"))
}

/// Makes `path` read-only with a bind mount over itself.
fn make_readonly(path: &str) -> Result<(), String> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .and_then(|_| remount_bind(path, MsFlags::MS_RDONLY))
    .map_err(|e| format!("make {path} read-only: {e}"))
}

/// Whether `spec` asks for a user namespace.
pub fn wants_user_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        })
}

fn network_namespace(spec: &Spec) -> Option<&oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        })
}

/// The network namespace `spec` joins, if it names one.
pub fn network_namespace_path(spec: &Spec) -> Option<PathBuf> {
    network_namespace(spec).and_then(|n| n.path().clone())
}

/// Whether `spec` asks for a network namespace of its own.
pub fn own_network_namespace(spec: &Spec) -> bool {
    network_namespace(spec).is_some_and(|n| n.path().is_none())
}

/// Whether the intermediate makes namespaces that the monitor must finish
/// (id maps, network wiring) before it goes on.
pub fn early_namespaces(spec: &Spec) -> bool {
    wants_user_namespace(spec) || own_network_namespace(spec)
}
