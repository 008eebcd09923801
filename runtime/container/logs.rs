//! Container logs in Docker's json-file shape: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-11-22T22:00:00.123456789Z"}`,
//! capped in size by rotating into one older file (`<name>.1`).

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

/// Appends a container's output to its log file.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending to) the log at `path`, rotating past `max_size` bytes.
    pub fn open(path: &Path, max_size: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
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
        fs::rename(&self.path, rotated(&self.path))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
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

/// Reads the entries of the log at `path` (older rotated file first).
pub fn read(path: &Path, filter: &LogFilter) -> io::Result<Vec<LogEntry>> {
    let mut entries = Vec::new();
    for file in [rotated(path), path.to_path_buf()] {
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
        let mut w = LogWriter::open(&path, DEFAULT_MAX_SIZE).unwrap();
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
        let mut w = LogWriter::open(&path, 1000).unwrap();
        for i in 0..100 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 1000);
        assert!(fs::metadata(rotated(&path)).unwrap().len() <= 1000);
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
        let mut w = LogWriter::open(&path, DEFAULT_MAX_SIZE).unwrap();
        w.write(Stream::Stdout, &vec![b'a'; MAX_LINE + 10]).unwrap();
        let all = read(&path, &LogFilter::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].text.len(), MAX_LINE);
    }
}
