//! The columns of `docker top CONTAINER [ps OPTIONS]`: dockerd runs the
//! host's `ps` with the client's options; Berth reads /proc itself and
//! understands the options learners use (`-ef`, `aux`, `-o pid,comm`), so
//! no learner-chosen argument list reaches a host program.

use std::fs;
use std::time::{Duration, SystemTime};

use super::ContainerError;

/// What /proc says about one process.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u64,
    pub pgid: u64,
    pub uid: String,
    pub gid: String,
    pub state: String,
    pub tty_nr: u64,
    pub cpu_secs: u64,
    /// Start time, seconds since the epoch.
    pub start: u64,
    pub nice: i64,
    pub threads: u64,
    pub vsz_kib: u64,
    pub rss_kib: u64,
    pub comm: String,
    pub args: String,
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t as u64)
        .unwrap_or(100)
}

fn boot_time() -> u64 {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
}

/// Reads `pid` from /proc; `None` when it is gone.
pub fn read(pid: u32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    // Fields from the third (state) on.
    let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let ticks = clock_ticks();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let first_of = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next().map(String::from))
            .unwrap_or_default()
    };
    let args = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default();
    let page_kib = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|p| p as u64 / 1024)
        .unwrap_or(4);
    Some(Proc {
        pid,
        ppid: field(1),
        pgid: field(2),
        uid: first_of("Uid:"),
        gid: first_of("Gid:"),
        state: f.first().copied().unwrap_or("?").to_string(),
        tty_nr: field(4),
        cpu_secs: (field(11) + field(12)) / ticks,
        start: boot_time() + field(19) / ticks,
        nice: f.get(16).and_then(|v| v.parse().ok()).unwrap_or(0),
        threads: field(17),
        vsz_kib: field(20) / 1024,
        rss_kib: field(21) * page_kib,
        args: if args.is_empty() {
            format!("[{comm}]")
        } else {
            args
        },
        comm,
    })
}

/// One column: `ps`'s format specifier and the header it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    spec: String,
    pub header: String,
}

/// procps's header of a format specifier, `None` when Berth does not know it.
fn default_header(spec: &str) -> Option<&'static str> {
    Some(match spec {
        "pid" | "tgid" => "PID",
        "ppid" => "PPID",
        "pgid" | "pgrp" => "PGID",
        "uid" | "euid" => "UID",
        "user" | "euser" | "uname" => "USER",
        "gid" | "egid" => "GID",
        "group" | "egroup" => "GROUP",
        "comm" | "ucomm" | "ucmd" => "COMMAND",
        "args" | "command" => "COMMAND",
        "cmd" => "CMD",
        "stat" => "STAT",
        "s" | "state" => "S",
        "tty" | "tt" | "tname" => "TT",
        "time" | "cputime" => "TIME",
        "etime" => "ELAPSED",
        "stime" => "STIME",
        "start_time" => "START",
        "start" => "STARTED",
        "ni" | "nice" => "NI",
        "nlwp" | "thcount" => "NLWP",
        "vsz" | "vsize" => "VSZ",
        "rss" | "rssize" | "rsz" => "RSS",
        "%cpu" | "pcpu" | "c" => "%CPU",
        "%mem" | "pmem" => "%MEM",
        _ => return None,
    })
}

fn columns(specs: &[&str]) -> Vec<Column> {
    specs
        .iter()
        .map(|s| Column {
            spec: s.to_string(),
            header: default_header(s).unwrap_or("?").to_string(),
        })
        .collect()
}

/// The columns `ps_args` asks for (empty: `-ef`, what `docker top` shows
/// by default), or procps's error for a format it does not know.
pub fn parse_args(ps_args: &str) -> Result<Vec<Column>, ContainerError> {
    let words: Vec<&str> = ps_args.split_whitespace().collect();
    let mut formats: Vec<&str> = Vec::new();
    let mut bsd_user = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let value = if let Some(v) = w.strip_prefix("--format=") {
            Some(v)
        } else if matches!(w, "-o" | "o" | "--format" | "-O") {
            i += 1;
            words.get(i).copied()
        } else if let Some(v) = w.strip_prefix("-o") {
            Some(v)
        } else {
            if !w.starts_with('-') && w.contains('u') {
                bsd_user = true;
            }
            None
        };
        if let Some(v) = value {
            formats.push(v);
        }
        i += 1;
    }
    if formats.is_empty() {
        return Ok(if bsd_user {
            columns(&[
                "user",
                "pid",
                "%cpu",
                "%mem",
                "vsz",
                "rss",
                "tty",
                "stat",
                "start_time",
                "time",
                "args",
            ])
            .into_iter()
            .map(|mut c| {
                if c.spec == "tty" {
                    c.header = "TTY".into();
                }
                c
            })
            .collect()
        } else {
            // `-ef`'s UID column names users (root), as `user` does.
            let mut c = columns(&["user", "pid", "ppid", "c", "stime", "tty", "time", "cmd"]);
            c[0].header = "UID".into();
            c[3].header = "C".into();
            c[5].header = "TTY".into();
            c
        });
    }
    let mut out = Vec::new();
    for format in formats {
        for item in format.split([',', ' ']).filter(|s| !s.is_empty()) {
            let (spec, header) = match item.split_once('=') {
                Some((s, h)) => (s, Some(h)),
                None => (item, None),
            };
            let Some(default) = default_header(spec) else {
                return Err(ContainerError::InvalidConfig(format!(
                    "ps: error: unknown user-defined format specifier \"{spec}\""
                )));
            };
            out.push(Column {
                spec: spec.to_string(),
                header: header.unwrap_or(default).to_string(),
            });
        }
    }
    if out.len() > 64 {
        return Err(ContainerError::InvalidConfig(
            "ps: error: too many format specifiers".into(),
        ));
    }
    // dockerd needs the PID column to know the processes are the container's.
    if !out.iter().any(|c| c.header == "PID") {
        return Err(ContainerError::InvalidConfig(
            "Couldn't find PID field in ps output".into(),
        ));
    }
    Ok(out)
}

fn clock(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The text of `column` for `p`; `host_memory_kib` for `%mem`.
pub fn cell(column: &Column, p: &Proc, host_memory_kib: u64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let user = |id: &str| {
        if id == "0" {
            "root".to_string()
        } else {
            id.to_string()
        }
    };
    let tty = || {
        if p.tty_nr == 0 {
            "?".to_string()
        } else {
            format!("pts/{}", (p.tty_nr & 0xff) | ((p.tty_nr >> 12) & 0xfff00))
        }
    };
    match column.spec.as_str() {
        "pid" | "tgid" => p.pid.to_string(),
        "ppid" => p.ppid.to_string(),
        "pgid" | "pgrp" => p.pgid.to_string(),
        "uid" | "euid" => p.uid.clone(),
        "user" | "euser" | "uname" => user(&p.uid),
        "gid" | "egid" => p.gid.clone(),
        "group" | "egroup" => user(&p.gid),
        "comm" | "ucomm" | "ucmd" => p.comm.clone(),
        "args" | "command" | "cmd" => p.args.clone(),
        "stat" | "s" | "state" => p.state.clone(),
        "tty" | "tt" | "tname" => tty(),
        "time" | "cputime" => clock(p.cpu_secs),
        "etime" => {
            let e = now.saturating_sub(p.start);
            if e >= 86_400 {
                format!("{}-{}", e / 86_400, clock(e % 86_400))
            } else if e >= 3600 {
                clock(e)
            } else {
                format!("{:02}:{:02}", e / 60, e % 60)
            }
        }
        "stime" | "start_time" | "start" => {
            let t = humantime::format_rfc3339_seconds(
                SystemTime::UNIX_EPOCH + Duration::from_secs(p.start),
            )
            .to_string();
            t[11..16].to_string()
        }
        "ni" | "nice" => p.nice.to_string(),
        "nlwp" | "thcount" => p.threads.to_string(),
        "vsz" | "vsize" => p.vsz_kib.to_string(),
        "rss" | "rssize" | "rsz" => p.rss_kib.to_string(),
        "c" => "0".into(),
        "%cpu" | "pcpu" => {
            let elapsed = now.saturating_sub(p.start).max(1);
            format!("{:.1}", p.cpu_secs as f64 * 100.0 / elapsed as f64)
        }
        "%mem" | "pmem" => {
            let total = host_memory_kib.max(1);
            format!("{:.1}", p.rss_kib as f64 * 100.0 / total as f64)
        }
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(args: &str) -> Vec<String> {
        parse_args(args)
            .unwrap()
            .into_iter()
            .map(|c| c.header)
            .collect()
    }

    #[test]
    fn options_pick_columns_as_ps_does() {
        assert_eq!(
            headers(""),
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(headers("-ef"), headers(""));
        assert_eq!(headers("-o pid,comm"), ["PID", "COMMAND"]);
        assert_eq!(headers("-opid,args"), ["PID", "COMMAND"]);
        assert_eq!(headers("-o pid -o user=U"), ["PID", "U"]);
        assert_eq!(headers("aux")[0], "USER");
        assert_eq!(headers("aux").len(), 11);
    }

    #[test]
    fn unknown_formats_and_no_pid_are_refused() {
        assert!(parse_args("-o pid,bogus")
            .unwrap_err()
            .to_string()
            .contains("unknown user-defined format specifier \"bogus\""));
        assert!(parse_args("-o comm")
            .unwrap_err()
            .to_string()
            .contains("Couldn't find PID field"));
        let many = vec!["pid"; 100].join(",");
        assert!(parse_args(&format!("-o {many}")).is_err());
    }
}
