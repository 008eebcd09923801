//! `--cap-add` / `--cap-drop`: the capability set a container's processes
//! hold, computed as Docker 28 does, and what a learner may add.
//!
//! Pure data: nothing here touches the system except reading the kernel's
//! last capability number, so tests inspect the results without root.

use oci_spec::runtime::Capability;

use super::seccomp::{self, SeccompError, SeccompProgram, DOCKER_DEFAULT_CAPS};
use super::spec::DEFAULT_CAPABILITIES;

/// Every capability by its kernel number (index), as `capabilities(7)` lists
/// them; `ALL` means those the running kernel knows, as Docker's does.
const ALL_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// What a learner may `--cap-add` on top of the classroom's set: the
/// capabilities whose power stays inside the session's own user, pid and
/// mount namespaces and unlocks no kernel code an unprivileged user cannot
/// already reach. Not listed, so refused: SYS_ADMIN (mounts, new
/// namespaces), NET_ADMIN (netfilter and nf_tables, a steady source of
/// kernel CVEs reachable from a user namespace), NET_RAW and MKNOD (taken
/// from every learner's container, see [`super::spec::SANDBOX_DROPPED`]),
/// and everything that only acts in the host's namespace (modules, time,
/// audit, BPF, perf, raw I/O, boot, MAC).
pub const LEARNER_ADDABLE: [&str; 18] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "SETFCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "AUDIT_WRITE",
    "SYS_PTRACE",
    "SYS_NICE",
    "SYS_RESOURCE",
    "IPC_LOCK",
    "IPC_OWNER",
    "LEASE",
];

/// The capabilities the running kernel knows (`ALL`), in kernel order.
pub fn all_known() -> Vec<&'static str> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_NAMES.len() - 1);
    ALL_NAMES.iter().take(last + 1).copied().collect()
}

/// Normalizes `--cap-add`/`--cap-drop` values as Docker does: upper case,
/// `CAP_` prefixed, `ALL` kept as is; an unknown name is refused with
/// Docker's words (`unknown capability: "CAP_FOO"`).
pub fn normalize(names: &[String]) -> Result<Vec<String>, String> {
    let known = all_known();
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            if upper == "ALL" {
                return Ok(upper);
            }
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            if known.contains(&bare) {
                Ok(format!("CAP_{bare}"))
            } else {
                Err(format!("unknown capability: \"CAP_{bare}\""))
            }
        })
        .collect()
}

/// Checks a create request's lists, with the wording of Docker's
/// `validateCapabilities` (`invalid CapAdd: unknown capability: "CAP_FOO"`).
pub fn validate(add: &[String], drop: &[String]) -> Result<(), String> {
    normalize(add).map_err(|e| format!("invalid CapAdd: {e}"))?;
    normalize(drop).map_err(|e| format!("invalid CapDrop: {e}"))?;
    Ok(())
}

/// The set a container's processes get: Docker's default set with `drop`
/// taken out and `add` put in; `ALL` in `add` means every capability but
/// those dropped, `ALL` in `drop` means only those added. Names are
/// normalized first (see [`validate`]); unknown ones are skipped here.
pub fn effective(add: &[String], drop: &[String]) -> Vec<Capability> {
    let norm = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter_map(|n| normalize(std::slice::from_ref(n)).ok())
            .flatten()
            .map(|n| n.trim_start_matches("CAP_").to_string())
            .collect()
    };
    let (add, drop) = (norm(add), norm(drop));
    let all = String::from("ALL");
    let names: Vec<String> = if add.contains(&all) {
        all_known()
            .into_iter()
            .map(String::from)
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.contains(&all) {
        add
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    let mut caps: Vec<Capability> = Vec::new();
    for cap in names.iter().filter_map(|n| n.parse::<Capability>().ok()) {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    caps
}

/// What `--privileged` gives: every capability the kernel knows that the
/// engine itself holds in its bounding set (one it lacks cannot be granted:
/// capset would fail, so a daemon confined by its own host still starts
/// privileged containers with all it has).
pub fn privileged() -> Vec<Capability> {
    let held = caps::read(None, caps::CapSet::Bounding).unwrap_or_default();
    effective(&["ALL".to_string()], &[])
        .into_iter()
        .filter(|c| {
            let name = format!("CAP_{c}");
            held.iter().any(|h| h.to_string() == name)
        })
        .collect()
}

/// The first of `add` a learner may not have (normalized, without `CAP_`,
/// or `ALL`), if any.
pub fn learner_refused(add: &[String]) -> Option<String> {
    add.iter()
        .map(|n| {
            let upper = n.to_ascii_uppercase();
            upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
        })
        .find(|n| !LEARNER_ADDABLE.contains(&n.as_str()))
}

/// The seccomp filter for a process holding `process`'s bounding set:
/// Docker's default profile unlocks calls by capability (SYS_PTRACE,
/// SYS_ADMIN, ...), so a set that differs in those gets its own program;
/// any other set shares `default` (compiled once, for Docker's defaults).
pub fn seccomp_for(
    process: Option<&oci_spec::runtime::Process>,
    default: &SeccompProgram,
) -> Result<SeccompProgram, SeccompError> {
    let held: Vec<String> = process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .map(|set| set.iter().map(|c| format!("CAP_{c}")).collect())
        .unwrap_or_default();
    let gated = |caps: &[String]| -> Vec<&'static str> {
        seccomp::CAP_GATED
            .iter()
            .map(|(cap, _)| *cap)
            .filter(|cap| caps.iter().any(|c| c == cap))
            .collect()
    };
    let defaults: Vec<String> = DOCKER_DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    if gated(&held) == gated(&defaults) {
        return Ok(default.clone());
    }
    seccomp::compile(&seccomp::docker_default(&held))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_normalize_like_docker() {
        assert_eq!(
            normalize(&s(&["chown", "Cap_Net_Admin", "all"])).unwrap(),
            s(&["CAP_CHOWN", "CAP_NET_ADMIN", "ALL"])
        );
        assert_eq!(
            validate(&s(&["FOO"]), &[]).unwrap_err(),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(
            validate(&[], &s(&["cap_bar"])).unwrap_err(),
            "invalid CapDrop: unknown capability: \"CAP_BAR\""
        );
    }

    #[test]
    fn sets_follow_dockers_rules() {
        let none = effective(&[], &[]);
        assert_eq!(none, DEFAULT_CAPABILITIES.to_vec());
        let no_chown = effective(&[], &s(&["chown"]));
        assert!(!no_chown.contains(&Capability::Chown));
        assert_eq!(no_chown.len(), 13);
        assert!(effective(&[], &s(&["ALL"])).is_empty());
        assert_eq!(
            effective(&s(&["NET_ADMIN"]), &s(&["all"])),
            vec![Capability::NetAdmin]
        );
        let all = effective(&s(&["ALL"]), &s(&["SYS_ADMIN"]));
        assert!(all.contains(&Capability::SysModule));
        assert!(!all.contains(&Capability::SysAdmin));
        assert!(effective(&s(&["sys_ptrace"]), &[]).contains(&Capability::SysPtrace));
    }

    #[test]
    fn learners_may_add_only_namespaced_capabilities() {
        assert_eq!(learner_refused(&s(&["SYS_PTRACE", "chown"])), None);
        assert_eq!(
            learner_refused(&s(&["sys_ptrace", "CAP_SYS_ADMIN"])).as_deref(),
            Some("SYS_ADMIN")
        );
        assert_eq!(learner_refused(&s(&["all"])).as_deref(), Some("ALL"));
        for cap in ["NET_ADMIN", "NET_RAW", "MKNOD", "SYS_MODULE", "BPF"] {
            assert!(learner_refused(&s(&[cap])).is_some(), "{cap}");
        }
    }

    #[test]
    fn the_seccomp_program_follows_the_set() {
        let default = seccomp::default_program();
        let with = |caps: &[Capability]| {
            let mut p = super::super::spec::process(
                vec!["true".into()],
                Vec::new(),
                "/".into(),
                false,
                None,
            )
            .unwrap();
            super::super::spec::set_capabilities(&mut p, caps);
            seccomp_for(Some(&p), default).unwrap()
        };
        // Docker's set, and sets differing only in ungated capabilities
        // (a learner's, a --cap-drop CHOWN), share the default program.
        assert_eq!(&with(&DEFAULT_CAPABILITIES), default);
        assert_eq!(&with(&effective(&[], &s(&["CHOWN", "NET_RAW"]))), default);
        let ptrace = with(&effective(&s(&["SYS_PTRACE"]), &[]));
        assert_ne!(&ptrace, default);
        let no_chroot = with(&effective(&[], &s(&["SYS_CHROOT"])));
        assert_ne!(&no_chroot, default);
        assert_ne!(no_chroot, ptrace);
    }
}
