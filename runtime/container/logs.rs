//! Container logs in Docker's json-file shape: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-22T22:00:00.123456789Z"}`,
//! capped in size as json-file's `max-size`/`max-file` cap it: past
//! `max-size` the file rotates into `<name>.1` (the older ones shift to
//! `.2`, …), and at most `max-file` files are kept (one file: it starts over).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Which output a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: Stream,
    pub time: SystemTime,
    /// The text, with its newline when it had one.
    pub text: String,
}

#[derive(Serialize, Deserialize)]
struct JsonLine {
    log: String,
    stream: Stream,
    time: String,
}

/// Lines longer than this are written in pieces (as Docker's 16 KiB buffer does).
const MAX_LINE: usize = 16 * 1024;
/// Default cap of one log file before it rotates.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Default number of log files kept (the current one and older ones).
pub const DEFAULT_MAX_FILES: u32 = 3;
/// Most files read back (a bound on the work of `docker logs`).
const MAX_FILES: u32 = 100;

/// How large a container's logs may grow: `--log-opt max-size` and
/// `max-file`, with defaults that keep a flooding container to 30 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// The options json-file accepts (Docker's `ValidateLogOpt`).
const KNOWN_OPTIONS: [&str; 8] = [
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

impl LogLimits {
    /// The limits `options` (`LogConfig.Config`) ask for, with Docker's
    /// errors for options json-file does not know and values it cannot read.
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut limits = Self::default();
        for (key, value) in options {
            match key {
                "max-size" => limits.max_size = parse_size(value)?,
                "max-file" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| format!("strconv.Atoi: parsing {value:?}: invalid syntax"))?;
                    if n < 1 {
                        return Err("max-file cannot be less than 1".into());
                    }
                    limits.max_files = n.min(MAX_FILES as i64) as u32;
                }
                k if KNOWN_OPTIONS.contains(&k) => {}
                k => return Err(format!("unknown log opt '{k}' for json-file log driver")),
            }
        }
        Ok(limits)
    }
}

/// The limits a container's `HostConfig` asks for (`LogConfig.Config`).
pub fn limits_of(host_config: &serde_json::Value) -> Result<LogLimits, String> {
    let options = host_config
        .pointer("/LogConfig/Config")
        .and_then(|c| c.as_object());
    LogLimits::from_options(
        options
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))),
    )
}

/// A size as Docker's `units.RAMInBytes` reads it: `100k`, `10m`, `1.5g`,
/// `10MB`, `2KiB` (binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let lower = text.trim().to_ascii_lowercase();
    let unit_start = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(unit_start);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(invalid()),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// Appends a container's output to its log file.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending to) the log at `path`, rotating past
    /// `limits.max_size` bytes and keeping `limits.max_files` files.
    pub fn open(path: &Path, limits: LogLimits) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size: limits.max_size,
            max_files: limits.max_files.clamp(1, MAX_FILES),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records `data` from `stream`: complete lines at once, the rest when
    /// its line ends (or grows past 16 KiB).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.emit(stream, &buf[start..end])?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.emit(stream, &buf[start..start + MAX_LINE])?;
            start += MAX_LINE;
        }
        self.partial[idx] = buf.split_off(start);
        Ok(())
    }

    /// Writes out unfinished lines (when the container exits).
    pub fn flush(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                self.emit(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let mut json = serde_json::to_vec(&JsonLine {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
        })?;
        json.push(b'\n');
        if self.size > 0 && self.size + json.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&json)?;
        self.size += json.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        // `.N-1` is dropped (renamed over), the others shift up by one.
        for n in (1..self.max_files - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The `n`th older file of the log at `path` (`<path>.<n>`).
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Only the last N entries.
    pub tail: Option<usize>,
}

/// Parses one line of a log file.
pub fn parse_line(line: &str) -> Option<LogEntry> {
    let json: JsonLine = serde_json::from_str(line).ok()?;
    Some(LogEntry {
        stream: json.stream,
        time: humantime::parse_rfc3339_weak(&json.time).ok()?,
        text: json.log,
    })
}

/// Reads the entries of the log at `path` (oldest rotated file first).
pub fn read(path: &Path, filter: &LogFilter) -> io::Result<Vec<LogEntry>> {
    let mut entries = Vec::new();
    let older = (1..MAX_FILES)
        .take_while(|n| rotated(path, *n).exists())
        .count() as u32;
    let files = (1..=older)
        .rev()
        .map(|n| rotated(path, n))
        .chain([path.to_path_buf()]);
    for file in files {
        let f = match File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(f).lines() {
            if let Some(entry) = parse_line(&line?) {
                let after_since = filter.since.is_none_or(|s| entry.time >= s);
                let before_until = filter.until.is_none_or(|u| entry.time <= u);
                if after_since && before_until {
                    entries.push(entry);
                }
            }
        }
    }
    if let Some(tail) = filter.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_apart_by_stream_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(&path, LogLimits::default()).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        assert_eq!(read(&path, &LogFilter::default()).unwrap().len(), 2);
        w.flush().unwrap();
        let all = read(&path, &LogFilter::default()).unwrap();
        let got: Vec<(Stream, &str)> = all.iter().map(|e| (e.stream, e.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (Stream::Stderr, "oops\n"),
                (Stream::Stdout, "hello\n"),
                (Stream::Stdout, "wor")
            ]
        );
        let raw = fs::read_to_string(&path).unwrap();
        let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
        assert_eq!(first["stream"], "stderr");
        assert!(first["time"].as_str().unwrap().ends_with('Z'));
        let tail = read(
            &path,
            &LogFilter {
                tail: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tail[0].text, "wor");
    }

    #[test]
    fn size_cap_rotates_into_one_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let limits = LogLimits {
            max_size: 1000,
            max_files: 2,
        };
        let mut w = LogWriter::open(&path, limits).unwrap();
        for i in 0..100 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 1000);
        assert!(fs::metadata(rotated(&path, 1)).unwrap().len() <= 1000);
        assert!(!rotated(&path, 2).exists(), "max-file 2 keeps two files");
        let all = read(&path, &LogFilter::default()).unwrap();
        assert_eq!(all.last().unwrap().text, "line 99\n");
        assert!(all.len() < 100, "old lines were dropped");
        let numbers: Vec<usize> = all
            .iter()
            .map(|e| e.text.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "in order: {numbers:?}"
        );
    }

    #[test]
    fn long_lines_are_split_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let mut w = LogWriter::open(&path, LogLimits::default()).unwrap();
        w.write(Stream::Stdout, &vec![b'a'; MAX_LINE + 10]).unwrap();
        let all = read(&path, &LogFilter::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].text.len(), MAX_LINE);
    }

    #[test]
    fn max_file_keeps_that_many_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let limits = LogLimits {
            max_size: 1000,
            max_files: 3,
        };
        let mut w = LogWriter::open(&path, limits).unwrap();
        for i in 0..1000 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "no fourth file");
        let total: u64 = [path.clone(), rotated(&path, 1), rotated(&path, 2)]
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert!(total <= 3000, "{total}");
        let all = read(&path, &LogFilter::default()).unwrap();
        let numbers: Vec<usize> = all
            .iter()
            .map(|e| e.text.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert_eq!(*numbers.last().unwrap(), 999);
        assert!(
            numbers.len() > 20,
            "three files of lines: {}",
            numbers.len()
        );
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    }

    #[test]
    fn one_file_starts_over_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let limits = LogLimits {
            max_size: 1000,
            max_files: 1,
        };
        let mut w = LogWriter::open(&path, limits).unwrap();
        for i in 0..100 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 1000);
        assert!(!rotated(&path, 1).exists());
    }

    #[test]
    fn log_options_are_read_as_docker_reads_them() {
        let opts =
            |pairs: &[(&'static str, &'static str)]| LogLimits::from_options(pairs.iter().copied());
        assert_eq!(opts(&[]).unwrap(), LogLimits::default());
        assert_eq!(
            opts(&[("max-size", "100k"), ("max-file", "5")]).unwrap(),
            LogLimits {
                max_size: 100 << 10,
                max_files: 5
            }
        );
        assert_eq!(opts(&[("max-size", "10MB")]).unwrap().max_size, 10 << 20);
        assert_eq!(opts(&[("max-size", "1.5m")]).unwrap().max_size, 3 << 19);
        assert_eq!(opts(&[("max-size", "1g")]).unwrap().max_size, 1 << 30);
        assert_eq!(
            opts(&[("max-size", "lots")]).unwrap_err(),
            "invalid size: 'lots'"
        );
        assert_eq!(
            opts(&[("max-file", "0")]).unwrap_err(),
            "max-file cannot be less than 1"
        );
        assert_eq!(
            opts(&[("max-file", "x")]).unwrap_err(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            opts(&[("colour", "red")]).unwrap_err(),
            "unknown log opt 'colour' for json-file log driver"
        );
        assert!(opts(&[("tag", "x"), ("compress", "false")]).is_ok());
    }
}
