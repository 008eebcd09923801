//! Stage two: a logical line → a syntax-tree [`Node`] (keyword, flags, args).
//!
//! Also the word splitters Docker's parser applies to arguments: plain
//! whitespace splitting, quote-aware splitting that keeps quotes for the later
//! expansion step, and the JSON-array (exec form) reader.

use super::error::{BuildError, BuildResult};
use super::lines::LogicalLine;

/// One instruction as written, before its arguments are interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword, lower-cased (`run`, `copy`, …).
    pub keyword: String,
    /// Leading `--name=value` flags, quotes and escapes removed.
    pub flags: Vec<String>,
    /// The rest of the line after keyword and flags, trimmed.
    pub args: String,
    /// The instruction's whole text (continuations joined).
    pub original: String,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line.
    pub end_line: usize,
}

impl Node {
    /// Builds a node from one logical line.
    pub fn from_line(line: &LogicalLine) -> Node {
        let (keyword, flags, args) = split_command(&line.text);
        Node {
            keyword,
            flags,
            args,
            original: line.text.trim().to_string(),
            start_line: line.start_line,
            end_line: line.end_line,
        }
    }
}

/// Splits `KEYWORD [--flags] args` into its three parts.
pub fn split_command(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim();
    let (keyword, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, ""),
    };
    let (args, flags) = extract_flags(rest);
    (keyword.to_ascii_lowercase(), flags, args.trim().to_string())
}

/// Reads the `--flag` words at the start of `rest`; a bare `--` ends them.
///
/// Quotes inside a flag word are removed and `\` escapes the next character,
/// so `--chown="a b"` yields `--chown=a b`.
fn extract_flags(rest: &str) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut pos = 0;
    let bytes = rest.as_bytes();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if !rest[pos..].starts_with("--") {
            return (&rest[pos..], flags);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = rest[pos..].char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            return (&rest[pos..], flags);
        }
        flags.push(word);
    }
}

/// Splits on runs of whitespace, nothing else (Docker's "whitespace delimited").
pub fn split_whitespace(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_string).collect()
}

/// Splits into words on unquoted whitespace, keeping quotes and escapes in the
/// words: they are removed later, when the word is expanded.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                word.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Docker's wording when a JSON array holds something other than strings.
pub const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Reads `args` as a JSON array of strings (exec form).
///
/// `Ok(None)` means "not JSON": the caller falls back to shell form, as
/// Docker does for text that starts with `[` but does not parse.
pub fn parse_json_array(args: &str, line: usize) -> BuildResult<Option<Vec<String>>> {
    if !args.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(args) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(BuildError::parse(line, NOT_STRING_ARRAY)),
        })
        .collect::<BuildResult<Vec<_>>>()
        .map(Some)
}

/// Whether any word of `args` opens a heredoc (`<<EOF`, `<<-"EOF"`, `2<<EOF`).
pub fn has_heredoc(args: &str) -> bool {
    args.split_whitespace().any(|word| {
        let word = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(rest) = word.strip_prefix("<<") else {
            return false;
        };
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let name = rest.trim_matches(|c| c == '"' || c == '\'');
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}
