//! Syscall name → number for the architecture Berth is built for.
//!
//! seccompiler's Rust API takes numbers, and its own name table stops at
//! Linux 5.10, so we keep ours: the per-architecture calls below 424 and the
//! unified range (424 and up, the same number on every architecture). A name
//! the running architecture lacks (`chown32` on x86_64, `open` on aarch64) has
//! no entry, and the compiler skips it as libseccomp-based runtimes do.

#[cfg(target_arch = "aarch64")]
#[path = "table_aarch64.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "table_x86_64.rs"]
mod arch;

/// Calls numbered 424 and up: since Linux 5.1 these share one number on
/// every architecture.
#[rustfmt::skip]
pub(super) const COMMON: &[(&str, i64)] = &[
    ("pidfd_send_signal", 424), ("io_uring_setup", 425), ("io_uring_enter", 426),
    ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429), ("fsopen", 430),
    ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434), ("clone3", 435),
    ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438), ("faccessat2", 439),
    ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442),
    ("quotactl_fd", 443), ("landlock_create_ruleset", 444), ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446), ("memfd_secret", 447), ("process_mrelease", 448),
    ("futex_waitv", 449), ("set_mempolicy_home_node", 450), ("cachestat", 451),
    ("fchmodat2", 452), ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455),
    ("futex_requeue", 456), ("statmount", 457), ("listmount", 458),
    ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460), ("lsm_list_modules", 461),
    ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464), ("listxattrat", 465),
    ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468),
    ("file_setattr", 469),
];

/// The number of syscall `name` on the running architecture, if it has one.
pub fn syscall_number(name: &str) -> Option<i64> {
    arch::ARCH
        .iter()
        .chain(COMMON)
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_libc() {
        assert_eq!(syscall_number("write"), Some(libc::SYS_write));
        assert_eq!(syscall_number("clone"), Some(libc::SYS_clone));
        assert_eq!(syscall_number("unshare"), Some(libc::SYS_unshare));
        assert_eq!(syscall_number("clone3"), Some(libc::SYS_clone3));
        assert_eq!(syscall_number("keyctl"), Some(libc::SYS_keyctl));
        assert_eq!(syscall_number("chown32"), None);
    }

    #[test]
    fn names_and_numbers_are_unique() {
        let all: Vec<_> = arch::ARCH.iter().chain(COMMON).collect();
        let names: std::collections::HashSet<_> = all.iter().map(|(n, _)| n).collect();
        let nrs: std::collections::HashSet<_> = all.iter().map(|(_, nr)| nr).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(nrs.len(), all.len());
    }
}
