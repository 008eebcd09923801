//! Resource limits as Docker's `HostConfig` expresses them, and Docker's
//! checks on them.

use serde::{Deserialize, Serialize};

use super::CgroupError;

/// Docker's smallest memory limit: 6 MiB (`linuxMinMemory`).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// Docker's CPU-share bounds (`linuxMinCPUShares`, `linuxMaxCPUShares`).
pub const CPU_SHARES_RANGE: (u64, u64) = (2, 262_144);
/// The CFS period both kernels use when none is given, in microseconds.
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// A container's resource limits; `Default` (all `None`) is unlimited.
///
/// Values mean what they mean in Docker's Engine API: bytes for memory,
/// microseconds for CFS quota and period, a relative weight for shares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Memory limit in bytes (`--memory`); `0` means unlimited.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes (`--memory-swap`); `-1` is unlimited swap.
    /// When only `memory` is given we set this equal to it: no swap. (Docker
    /// itself defaults to twice the memory; a classroom sandbox should not
    /// swap.)
    pub memory_swap: Option<i64>,
    /// CFS quota in microseconds per period (`--cpu-quota`); `-1` unlimited.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds (`--cpu-period`), default 100000.
    pub cpu_period: Option<u64>,
    /// Relative CPU weight (`--cpu-shares`), clamped to 2..=262144 as Docker
    /// does.
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks (`--pids-limit`); `0` or `-1` is unlimited.
    pub pids: Option<i64>,
}

impl Limits {
    /// Checks the limits the way Docker's daemon does, with its messages.
    pub fn validate(&self) -> Result<(), CgroupError> {
        let memory = self.memory.unwrap_or(0);
        let swap = self.memory_swap.unwrap_or(0);
        if memory != 0 && memory < MIN_MEMORY {
            return Err(CgroupError::MemoryTooLow);
        }
        if memory > 0 && swap > 0 && swap < memory {
            return Err(CgroupError::SwapBelowMemory);
        }
        if memory == 0 && swap > 0 {
            return Err(CgroupError::SwapWithoutMemory);
        }
        if let Some(q) = self.cpu_quota {
            if q > 0 && q < 1000 {
                return Err(CgroupError::CpuQuotaTooLow);
            }
        }
        if let Some(p) = self.cpu_period {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return Err(CgroupError::CpuPeriodOutOfRange);
            }
        }
        Ok(())
    }

    /// The memory limit, if any (`0` and negatives are unlimited).
    pub fn memory_limit(&self) -> Option<i64> {
        self.memory.filter(|m| *m > 0)
    }

    /// Memory plus swap: `None` unlimited (or no memory limit), otherwise
    /// bytes; equal to the memory limit unless `memory_swap` says otherwise.
    pub fn memory_swap_limit(&self) -> Option<i64> {
        let memory = self.memory_limit()?;
        match self.memory_swap {
            Some(-1) => None,
            Some(s) if s > 0 => Some(s),
            _ => Some(memory),
        }
    }

    /// The pids limit, if any (`0` and negatives are unlimited, as Docker).
    pub fn pids_limit(&self) -> Option<i64> {
        self.pids.filter(|p| *p > 0)
    }

    /// The CFS quota, if limited.
    pub fn cpu_quota_limit(&self) -> Option<i64> {
        self.cpu_quota.filter(|q| *q > 0)
    }

    /// The CFS period (given, or the kernel's default).
    pub fn cpu_period_or_default(&self) -> u64 {
        self.cpu_period
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_CPU_PERIOD)
    }

    /// CPU shares clamped to Docker's bounds, if given (`0` means unset).
    pub fn cpu_shares_clamped(&self) -> Option<u64> {
        let (min, max) = CPU_SHARES_RANGE;
        self.cpu_shares
            .filter(|s| *s > 0)
            .map(|s| s.clamp(min, max))
    }

    /// cgroup v2 `cpu.weight` (1..=10000) for the shares, by the formula
    /// runc and crun use.
    pub fn cpu_weight(&self) -> Option<u64> {
        self.cpu_shares_clamped()
            .map(|s| 1 + ((s - 2) * 9999) / 262_142)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_messages_for_bad_limits() {
        let bad = |l: Limits| l.validate().unwrap_err().to_string();
        let low = Limits {
            memory: Some(1 << 20),
            ..Default::default()
        };
        assert_eq!(bad(low), "Minimum memory limit allowed is 6MB");
        assert_eq!(
            bad(Limits {
                memory: Some(-5),
                ..Default::default()
            }),
            bad(low)
        );
        let swap = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(32 << 20),
            ..Default::default()
        };
        assert_eq!(
            bad(swap),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        let only_swap = Limits {
            memory_swap: Some(64 << 20),
            ..Default::default()
        };
        assert_eq!(
            bad(only_swap),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        let quota = Limits {
            cpu_quota: Some(10),
            ..Default::default()
        };
        assert_eq!(
            bad(quota),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)"
        );
        let period = Limits {
            cpu_period: Some(5),
            ..Default::default()
        };
        assert!(bad(period).starts_with("CPU cfs period can not be less than 1ms"));
    }

    #[test]
    fn unlimited_values_and_defaults() {
        assert!(Limits::default().validate().is_ok());
        let l = Limits {
            memory: Some(64 << 20),
            pids: Some(0),
            ..Default::default()
        };
        assert_eq!(l.memory_swap_limit(), Some(64 << 20), "no swap by default");
        assert_eq!(l.pids_limit(), None);
        let l = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert_eq!(l.memory_swap_limit(), None);
        let l = Limits {
            cpu_shares: Some(1),
            ..Default::default()
        };
        assert_eq!((l.cpu_shares_clamped(), l.cpu_weight()), (Some(2), Some(1)));
        let l = Limits {
            cpu_shares: Some(1024),
            ..Default::default()
        };
        assert_eq!(l.cpu_weight(), Some(39));
    }
}
