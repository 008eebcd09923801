//! `docker top` and `docker stats`: a container's processes, and samples of
//! its CPU, memory, pids and network use, read from its cgroup and /proc.

use std::fs;
use std::sync::Arc;
use std::time::SystemTime;

use super::cgroup::Cgroup;
use super::manager::{Container, Runtime};
use super::ContainerError;
use crate::Result;

/// One reading of a container's resource use.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: SystemTime,
    /// CPU time used by the container, in ns.
    pub cpu_ns: u64,
    /// CPU time of the whole host, in ns (for the percentage).
    pub system_ns: u64,
    pub online_cpus: u32,
    pub memory: u64,
    pub memory_limit: u64,
    pub memory_max: u64,
    pub pids: u64,
    pub pids_limit: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as u64)
        .unwrap_or(100)
}

/// Host CPU time in ns from the first line of /proc/stat.
fn system_cpu_ns() -> u64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let jiffies: u64 = stat
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    jiffies * (1_000_000_000 / clock_ticks())
}

fn host_memory() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Received and sent bytes on the non-loopback interfaces of `pid`'s netns.
fn network_bytes(pid: i32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .map(|(_, rest)| {
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            (
                f.first().copied().unwrap_or(0),
                f.get(8).copied().unwrap_or(0),
            )
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

impl Runtime {
    fn cgroup_of(&self, container: &Container) -> Result<Cgroup> {
        let record = container.snapshot();
        if !record.state.running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                record.id
            ))
            .into());
        }
        Ok(
            Cgroup::open(&self.cgroups, &self.cgroup_path(&record))
                .map_err(ContainerError::from)?,
        )
    }

    /// The processes of a running container as `docker top` shows them
    /// with `ps_args` (`-ef` when empty).
    pub fn top(
        &self,
        container: &Arc<Container>,
        ps_args: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let columns = super::ps::parse_args(ps_args)?;
        let cgroup = self.cgroup_of(container)?;
        let mut pids = cgroup.procs().map_err(ContainerError::from)?;
        pids.sort_unstable();
        let titles = columns.iter().map(|c| c.header.clone()).collect();
        let memory_kib = host_memory() / 1024;
        let rows = pids
            .into_iter()
            .filter_map(|pid| super::ps::read(pid as u32))
            .map(|p| {
                columns
                    .iter()
                    .map(|c| super::ps::cell(c, &p, memory_kib))
                    .collect()
            })
            .collect();
        Ok((titles, rows))
    }

    /// A reading of a container's resource use (zeros when it is not running).
    pub fn sample(&self, container: &Arc<Container>) -> Sample {
        let record = container.snapshot();
        let stats = self.cgroup_of(container).ok().and_then(|c| c.stats().ok());
        let (rx, tx) = if record.state.pid > 0 {
            network_bytes(record.state.pid)
        } else {
            (0, 0)
        };
        let host_mem = host_memory();
        Sample {
            at: SystemTime::now(),
            cpu_ns: stats.as_ref().map(|s| s.cpu_usage_ns).unwrap_or(0),
            system_ns: system_cpu_ns(),
            online_cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            memory: stats.as_ref().map(|s| s.memory_usage).unwrap_or(0),
            memory_limit: stats
                .as_ref()
                .and_then(|s| s.memory_limit)
                .filter(|l| *l < host_mem)
                .unwrap_or(host_mem),
            memory_max: stats.as_ref().and_then(|s| s.memory_max_usage).unwrap_or(0),
            pids: stats.as_ref().map(|s| s.pids_current).unwrap_or(0),
            pids_limit: stats.as_ref().and_then(|s| s.pids_limit).unwrap_or(0),
            rx_bytes: rx,
            tx_bytes: tx,
        }
    }
}
