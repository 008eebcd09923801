//! The syscall seam: the few calls that nix does not wrap safely (the new mount
//! API, `close_range`, `openat2`, `fork`, fd placement before `exec`).
//!
//! Every `unsafe` block of the container launch lives here, each with the reason
//! it is sound beside it. Callers above this module see safe functions.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Clones the mount at `path` into a detached mount (`open_tree(OPEN_TREE_CLONE)`).
pub fn clone_mount(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; the
    // flags ask for a new fd which we own on success.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Clones the object that `fd` names (an `O_PATH` fd of a directory or file)
/// into a detached mount (`open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH)`),
/// with the mounts below it when `recursive`. The clone is of that very
/// object: no path is looked up again, so a later rename or symlink swap in
/// the tree it came from cannot change what gets mounted.
pub fn clone_tree(fd: &impl AsFd, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let empty = c"";
    // SAFETY: the path is an empty C string used with AT_EMPTY_PATH on an fd
    // that is open for the call; the kernel returns a new fd we own.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_fd().as_raw_fd(),
            empty.as_ptr(),
            flags,
        )
    })?;
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Makes the detached mount `mount_fd` (and every mount below it) read-only.
pub fn set_readonly(mount_fd: &OwnedFd) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: `attr` is a properly initialised mount_attr whose size we pass;
    // the path is an empty C string used with AT_EMPTY_PATH on a valid fd.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// Attaches the detached mount `mount_fd` on the object `target` names (an
/// `O_PATH` fd opened inside the container's root), in the caller's mount
/// namespace: neither side is looked up by path.
pub fn attach_mount_at(mount_fd: &impl AsFd, target: &impl AsFd) -> io::Result<()> {
    let empty = c"";
    // SAFETY: both paths are empty C strings used with the EMPTY_PATH flags
    // on fds that are open for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_fd().as_raw_fd(),
            empty.as_ptr(),
            target.as_fd().as_raw_fd(),
            empty.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Makes the detached mount `mount_fd` show file owners through the id mapping
/// of the user namespace `userns` (an idmapped mount).
pub fn set_idmap(mount_fd: &OwnedFd, userns: &OwnedFd) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: `attr` is a properly initialised mount_attr whose size we pass;
    // the path is an empty C string used with AT_EMPTY_PATH on a valid fd.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
}

/// Attaches the detached mount `mount_fd` at `target`.
pub fn attach_mount(mount_fd: &OwnedFd, target: &Path) -> io::Result<()> {
    let c = cstring(target)?;
    let empty = c"";
    // SAFETY: both strings are valid for the call; `mount_fd` is an open fd.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount_fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Marks every fd from `first` upward close-on-exec, so the container's process
/// inherits nothing but its stdio (CVE-2024-21626 leaked a host fd).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags of this process.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    })?;
    Ok(())
}

/// Opens `path` below the directory `root` as an `O_PATH` fd, resolving every
/// component as if `root` were `/` (symlinks cannot lead out of it, magic links
/// are refused). Used for mount targets inside an untrusted rootfs.
pub fn open_in_root(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: open_how is plain integers; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `how` is initialised and its size passed; `c` outlives the call.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Which side of a fork this process is on.
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// Forks this process. Only called from the single-threaded container init
/// (a freshly executed `berth` binary), where fork has no lock hazards.
pub fn fork_single_threaded() -> io::Result<Forked> {
    // SAFETY: the caller is single-threaded (the init process runs no other
    // threads), so the child cannot inherit a lock held by another thread.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        child => Ok(Forked::Parent { child }),
    }
}

/// Arranges for `fds[i]` to become fd `3 + i` in the process `cmd` spawns, with
/// close-on-exec cleared, so the child finds its channels at known numbers.
pub fn pass_fds(cmd: &mut Command, fds: Vec<OwnedFd>) {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the closure runs between fork and exec and calls only dup, dup2
    // and fcntl, which are async-signal-safe; it allocates nothing (the vector
    // is moved in and only read). `fds` is kept alive by the closure.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &fds;
            // First move every source above the target range so that a dup2
            // onto 3+i cannot clobber a source that is still to be placed.
            let mut high = [0 as RawFd; 8];
            for (i, &fd) in raw.iter().enumerate().take(8) {
                let d = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3 + raw.len() as RawFd);
                if d < 0 {
                    return Err(io::Error::last_os_error());
                }
                high[i] = d;
            }
            for (i, &fd) in high.iter().enumerate().take(raw.len().min(8)) {
                if libc::dup2(fd, 3 + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Takes the channel this process's parent passed as its standard input
/// (a socket), and puts `/dev/null` in its place. A parent passing its one
/// channel as stdin needs no `pre_exec`, so std spawns the child with
/// `posix_spawn` (a vfork that shares the parent's memory) instead of a
/// fork, which would copy the page tables of a large, busy daemon and hold
/// its memory map's lock meanwhile, stalling every one of its threads.
pub fn take_stdin_channel() -> io::Result<OwnedFd> {
    // SAFETY: fstat writes into a zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 and a valid buffer.
    if unsafe { libc::fstat(0, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "standard input is not the engine's channel",
        ));
    }
    // SAFETY: F_DUPFD_CLOEXEC on an open fd returns a fresh fd or -1.
    let fd = check(unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) } as libc::c_long)?;
    // SAFETY: fresh fd from the kernel, owned by nobody else.
    let channel = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    // SAFETY: dup2 of an open fd onto 0 replaces the channel's old number.
    check(unsafe { libc::dup2(null.as_raw_fd(), 0) } as libc::c_long)?;
    Ok(channel)
}

/// Takes ownership of an fd number this process inherited (3, 4, … as placed
/// by [`pass_fds`], or received over a socket).
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only inspects the fd table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above) and was placed for this process to
    // own by its parent; nothing else in this process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fresh fd from the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Makes `fd` the calling process's controlling terminal.
pub fn set_controlling_terminal(fd: RawFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the window size of the terminal `fd`.
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives for the call.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the loopback interface of the current network namespace up (a new
/// namespace starts with `lo` down), as runc does for a container.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: socket() takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd from the kernel, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the ifreq that lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just filled ifru_flags, the union's active field.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq that lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
