//! A container's configuration and its image, turned into an OCI runtime spec.
//!
//! Pure data: nothing here touches the system, so tests inspect the result
//! without root. [`super::init`] carries the spec out.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxIdMapping, LinuxIdMappingBuilder,
    LinuxNamespace, LinuxNamespaceType, Mount, MountBuilder, ProcessBuilder, Root, Spec,
};

use super::ContainerError;
use crate::image::Image;

use super::config::{ContainerConfig, MountConfig};

/// Docker's default capability set (moby `caps/defaults.go`): 14 capabilities
/// in the bounding, permitted and effective sets, none inheritable or ambient.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// What a learner's container has less than Docker's default set (as
/// docs/design.md's isolation section says): raw sockets (packet sockets
/// and forged packets, the way to CVE-2020-14386) and device nodes. ICMP
/// echo keeps working through unprivileged ICMP datagram sockets (each
/// container's network namespace sets `net.ipv4.ping_group_range`, as
/// Docker does), which iputils' `ping` uses; busybox's `ping` asks for a
/// raw socket only and answers "permission denied (are you root?)", as it
/// does under Docker with `--cap-drop NET_RAW`.
pub const SANDBOX_DROPPED: [Capability; 2] = [Capability::NetRaw, Capability::Mknod];

/// Removes `dropped` from every capability set of `process`.
pub fn drop_capabilities(process: &mut oci_spec::runtime::Process, dropped: &[Capability]) {
    let Some(caps) = process.capabilities().clone() else {
        return;
    };
    let cut = |set: &Option<oci_spec::runtime::Capabilities>| {
        set.as_ref()
            .map(|s| s.iter().filter(|c| !dropped.contains(c)).copied().collect())
    };
    let caps = caps
        .clone()
        .set_bounding(cut(caps.bounding()))
        .set_effective(cut(caps.effective()))
        .set_permitted(cut(caps.permitted()))
        .set_inheritable(cut(caps.inheritable()))
        .set_ambient(cut(caps.ambient()))
        .clone();
    process.set_capabilities(Some(caps));
}

/// Gives `process` exactly `caps` in its bounding, permitted and effective
/// sets, none inheritable or ambient (as Docker 28 does for any set).
pub fn set_capabilities(process: &mut oci_spec::runtime::Process, caps: &[Capability]) {
    let set: oci_spec::runtime::Capabilities = caps.iter().copied().collect();
    let capabilities = LinuxCapabilities::default()
        .set_bounding(Some(set.clone()))
        .set_permitted(Some(set.clone()))
        .set_effective(Some(set))
        .set_inheritable(None)
        .set_ambient(None)
        .clone();
    process.set_capabilities(Some(capabilities));
}

/// The type given to a spec mount that pid 1 carries out from a detached
/// mount (a [`super::protocol::BindSource`]) and never from its source path:
/// a mount of this type without its detached mount fails the start.
pub const DETACHED_BIND: &str = "berth-detached";

/// The index in `spec`'s mounts of the configuration's mount `index`: the
/// configuration's mounts are the last ones of the spec, in order (see
/// [`mounts`]). Checked against the destination, so a change in that order
/// fails the start rather than attaching a mount in the wrong place.
pub fn config_mount_index(
    spec: &Spec,
    config: &ContainerConfig,
    index: usize,
) -> Result<usize, ContainerError> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let wrong = || {
        ContainerError::InvalidConfig(format!("runtime spec: mount {index} is not where expected"))
    };
    let base = mounts
        .len()
        .checked_sub(config.mounts.len())
        .ok_or_else(wrong)?;
    let wanted = config.mounts.get(index).ok_or_else(wrong)?;
    match mounts.get(base + index) {
        Some(m) if m.destination() == Path::new(wanted.target()) => Ok(base + index),
        _ => Err(wrong()),
    }
}

/// Paths Docker hides from containers: files get /dev/null bound over them,
/// directories an empty read-only tmpfs.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths Docker makes read-only: the kernel's knobs under /proc.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Host devices bound into every container's /dev (the runtime-spec defaults).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The PATH a container gets when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A range of host uids (and gids) that a user namespace maps 0.. onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    /// First host id: container root.
    pub base: u32,
    /// Number of ids mapped.
    pub size: u32,
}

/// Everything besides the user's configuration that the spec depends on.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    pub id: &'a str,
    pub image: &'a Image,
    /// The overlay mount point that becomes the container's `/`.
    pub rootfs: &'a Path,
    /// The user-namespace range, or `None` to share the host's ids.
    pub ids: Option<IdRange>,
    /// Host directories of the container's cgroup, one per v1 controller
    /// (shown read-only under /sys/fs/cgroup); empty on cgroup v2.
    pub cgroup_v1_dirs: Vec<(String, PathBuf)>,
    /// Whether /sys/fs/cgroup is a cgroup2 mount (pure v2 hosts).
    pub cgroup_v2: bool,
}

/// The command a container runs: the entrypoint followed by the command, each
/// from the configuration when given, otherwise from the image.
pub fn command(config: &ContainerConfig, image: &Image) -> Result<Vec<String>, ContainerError> {
    let image_config = image.config.config().as_ref();
    let entrypoint = match &config.entrypoint {
        Some(e) => e.clone(),
        None => image_config
            .and_then(|c| c.entrypoint().clone())
            .unwrap_or_default(),
    };
    // Docker drops the image's CMD when the entrypoint is overridden.
    let cmd = if !config.cmd.is_empty() {
        config.cmd.clone()
    } else if config.entrypoint.is_some() {
        Vec::new()
    } else {
        image_config
            .and_then(|c| c.cmd().clone())
            .unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    Ok(args)
}

/// The environment: the image's, then the configuration's overriding by key,
/// with PATH and HOSTNAME filled in as Docker does.
pub fn environment(config: &ContainerConfig, image: &Image, hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |entry: &str| {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.to_string());
    };
    set(DEFAULT_PATH);
    set(&format!("HOSTNAME={hostname}"));
    if let Some(image_env) = image.config.config().as_ref().and_then(|c| c.env().clone()) {
        image_env.iter().for_each(|e| set(e));
    }
    config.env.iter().for_each(|e| set(e));
    env
}

/// Builds the OCI runtime spec for a container.
pub fn build(config: &ContainerConfig, inputs: &SpecInputs) -> Result<Spec, ContainerError> {
    let hostname = config
        .hostname
        .clone()
        .unwrap_or_else(|| inputs.id[..12.min(inputs.id.len())].to_string());
    let image_config = inputs.image.config.config().as_ref();
    let cwd = config
        .workdir
        .clone()
        .or_else(|| image_config.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string());
    if !cwd.starts_with('/') {
        return Err(ContainerError::InvalidConfig(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let mut process = process(
        command(config, inputs.image)?,
        environment(config, inputs.image, &hostname),
        cwd,
        config.tty,
        None,
    )?;
    let caps = if config.privileged {
        super::capabilities::privileged()
    } else {
        super::capabilities::effective(&config.cap_add, &config.cap_drop)
    };
    set_capabilities(&mut process, &caps);

    let mut namespaces = vec![
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ];
    if !config.pid_host {
        namespaces.insert(0, LinuxNamespaceType::Pid);
    }
    // A privileged container sees /proc and /sys as they are (Docker's
    // `--privileged` masks nothing).
    let (masked, readonly) = if config.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            MASKED_PATHS.map(String::from).to_vec(),
            READONLY_PATHS.map(String::from).to_vec(),
        )
    };
    let mut linux = LinuxBuilder::default()
        .masked_paths(masked)
        .readonly_paths(readonly)
        .cgroups_path(PathBuf::from(format!("berth/{}", inputs.id)));
    if let Some(ids) = inputs.ids {
        namespaces.push(LinuxNamespaceType::User);
        let map = |r: IdRange| -> Result<Vec<LinuxIdMapping>, ContainerError> {
            Ok(vec![LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(r.base)
                .size(r.size)
                .build()
                .map_err(spec_error)?])
        };
        linux = linux.uid_mappings(map(ids)?).gid_mappings(map(ids)?);
    }
    let namespaces: Vec<LinuxNamespace> = namespaces
        .into_iter()
        .map(|typ| LinuxNamespace::default().set_typ(typ).clone())
        .collect();
    let linux = linux.namespaces(namespaces).build().map_err(spec_error)?;

    let mut spec = Spec::default();
    spec.set_hostname(Some(hostname))
        .set_process(Some(process))
        .set_root(Some(
            Root::default()
                .set_path(inputs.rootfs.to_path_buf())
                .set_readonly(Some(false))
                .clone(),
        ))
        .set_mounts(Some(mounts(config, inputs)?))
        .set_linux(Some(linux))
        .set_annotations((!config.group_add.is_empty()).then(|| {
            [(GROUP_ADD.to_string(), config.group_add.join(","))]
                .into_iter()
                .collect()
        }));
    Ok(spec)
}

/// The annotation that carries `--group-add` to pid 1, which resolves the
/// names in the container's own `/etc/group`.
pub const GROUP_ADD: &str = "berth.group-add";

/// A process in a container: Docker's capabilities, no new privileges.
pub fn process(
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    tty: bool,
    console_size: Option<(u16, u16)>,
) -> Result<oci_spec::runtime::Process, ContainerError> {
    let caps: oci_spec::runtime::Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    let capabilities = LinuxCapabilities::default()
        .set_bounding(Some(caps.clone()))
        .set_permitted(Some(caps.clone()))
        .set_effective(Some(caps))
        .set_inheritable(None)
        .set_ambient(None)
        .clone();
    let mut builder = ProcessBuilder::default()
        .terminal(tty)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .no_new_privileges(true)
        .rlimits(Vec::new());
    if let Some((rows, cols)) = console_size {
        builder = builder.console_size(
            oci_spec::runtime::BoxBuilder::default()
                .height(rows as u64)
                .width(cols as u64)
                .build()
                .map_err(spec_error)?,
        );
    }
    builder.build().map_err(spec_error)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, ContainerError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_error)
}

/// Docker's default mounts, the host devices, the cgroup view, then the user's.
fn mounts(config: &ContainerConfig, inputs: &SpecInputs) -> Result<Vec<Mount>, ContainerError> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            if config.privileged {
                &["nosuid", "noexec", "nodev"]
            } else {
                &["nosuid", "noexec", "nodev", "ro"]
            },
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    for dev in DEVICES {
        let path = format!("/dev/{dev}");
        mounts.push(mount(&path, "bind", &path, &["bind", "nosuid", "noexec"])?);
    }
    if inputs.cgroup_v2 {
        mounts.push(mount(
            "/sys/fs/cgroup",
            "cgroup2",
            "cgroup",
            &["nosuid", "noexec", "nodev", "ro"],
        )?);
    } else if !inputs.cgroup_v1_dirs.is_empty() {
        mounts.push(mount(
            "/sys/fs/cgroup",
            "tmpfs",
            "tmpfs",
            &["nosuid", "noexec", "nodev", "mode=755", "size=64k"],
        )?);
        for (controller, dir) in &inputs.cgroup_v1_dirs {
            mounts.push(mount(
                &format!("/sys/fs/cgroup/{controller}"),
                "bind",
                &dir.to_string_lossy(),
                &["rbind", "ro", "nosuid", "noexec", "nodev"],
            )?);
        }
    }
    for m in &config.mounts {
        if !m.target().starts_with('/') {
            return Err(ContainerError::InvalidConfig(format!(
                "invalid mount config for type \"{}\": invalid mount path: '{}' mount path must be absolute",
                match m {
                    MountConfig::Bind { .. } => "bind",
                    MountConfig::Tmpfs { .. } => "tmpfs",
                    MountConfig::Volume { .. } => "volume",
                    MountConfig::TaskFile { .. } => "bind",
                },
                m.target()
            )));
        }
        mounts.push(match m {
            MountConfig::Bind {
                source,
                target,
                read_only,
            } => {
                let mut opts = vec!["rbind"];
                if *read_only {
                    opts.push("ro");
                }
                mount(target, "bind", &source.to_string_lossy(), &opts)?
            }
            MountConfig::Volume { name, .. } => {
                return Err(ContainerError::InvalidConfig(format!(
                    "volume {name} was not resolved to its directory"
                )))
            }
            MountConfig::TaskFile { file, .. } => {
                return Err(ContainerError::InvalidConfig(format!(
                    "task file {file} was not resolved to its handle"
                )))
            }
            MountConfig::Tmpfs { target, size_bytes } => {
                let size = size_bytes.map(|s| format!("size={s}"));
                let mut opts = vec!["nosuid", "nodev", "noexec"];
                if let Some(s) = &size {
                    opts.push(s);
                }
                mount(target, "tmpfs", "tmpfs", &opts)?
            }
        });
    }
    Ok(mounts)
}

fn spec_error(e: oci_spec::OciSpecError) -> ContainerError {
    ContainerError::InvalidConfig(format!("runtime spec: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandboxed_process_loses_net_raw_and_mknod_from_every_set() {
        let mut p = process(vec!["sh".into()], Vec::new(), "/".into(), false, None).unwrap();
        drop_capabilities(&mut p, &SANDBOX_DROPPED);
        let caps = p.capabilities().clone().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.clone().unwrap();
            assert_eq!(set.len(), DEFAULT_CAPABILITIES.len() - 2);
            assert!(!set.contains(&Capability::NetRaw) && !set.contains(&Capability::Mknod));
            assert!(set.contains(&Capability::Chown));
        }
    }
}
