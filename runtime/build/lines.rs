//! Stage one: text → parser directives and logical lines.
//!
//! Docker reads a Dockerfile line by line. Parser directives (`# escape=`,
//! `# syntax=`, `# check=`) are only recognised before the first comment,
//! blank line or instruction. An instruction continues onto the next line when
//! it ends with the escape character (optionally followed by spaces or tabs);
//! comment lines and empty lines inside a continuation are skipped, and the
//! leading whitespace of continuation lines is kept, as Docker does.

use super::error::{BuildError, BuildResult};

/// Parser directives read from the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` `` (Windows style).
    pub escape: char,
    /// The `# syntax=` frontend reference, recorded but otherwise ignored.
    pub syntax: Option<String>,
    /// The `# check=` build-check configuration, recorded but otherwise ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// One instruction's text after joining its continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based number of the line the instruction starts on.
    pub start_line: usize,
    /// 1-based number of the last physical line that belongs to it.
    pub end_line: usize,
    /// The joined text, escape characters at line ends removed.
    pub text: String,
    /// Whether an empty line sat inside the continuation (Docker warns).
    pub empty_continuation: bool,
}

/// Recognises directives while they may still appear.
struct DirectiveReader {
    done: bool,
    seen_lines: usize,
}

impl DirectiveReader {
    /// Looks at one physical line; returns `Some((name, value))` for a directive.
    fn read(&mut self, line: &str) -> Option<(String, String)> {
        self.seen_lines += 1;
        if self.done {
            return None;
        }
        // A shebang on the first line neither counts as a directive nor ends them.
        if self.seen_lines == 1 && line.starts_with("#!") {
            return None;
        }
        let Some((name, value)) = match_directive(line) else {
            self.done = true;
            return None;
        };
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            // An unknown directive is an ordinary comment, which ends directives.
            self.done = true;
            return None;
        }
        Some((name, value))
    }
}

/// Matches `#\s*name\s*=\s*value\s*` with `name` = `[a-zA-Z][a-zA-Z0-9]*`.
fn match_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

/// Whether the line, ignoring leading whitespace, is a `#` comment.
fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (and spaces/tabs after it).
/// Returns the remaining text and whether the line continues.
///
/// Like Docker, an escape preceded by another escape (`foo \\`) does not
/// continue the line: it is an escaped escape, common in Windows paths.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) if !rest.ends_with(escape) => (rest, true),
        _ => (line, false),
    }
}

/// Splits a Dockerfile into its directives and logical lines.
pub fn split_lines(text: &str) -> BuildResult<(Directives, Vec<LogicalLine>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut directives = Directives::default();
    let mut reader = DirectiveReader {
        done: false,
        seen_lines: 0,
    };
    let mut seen_names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut physical = text.lines().enumerate().map(|(i, l)| (i + 1, l));

    // Every physical line passes the directive reader, continuation or not.
    let mut directive = |line: &str, no: usize, d: &mut Directives| -> BuildResult<()> {
        if let Some((name, value)) = reader.read(line) {
            if seen_names.contains(&name) {
                return Err(BuildError::parse(
                    no,
                    format!("only one {name} parser directive can be used"),
                ));
            }
            seen_names.push(name.clone());
            match name.as_str() {
                "escape" => {
                    d.escape = match value.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        _ => {
                            return Err(BuildError::parse(
                                no,
                                format!("invalid escape token '{value}' does not match ` or \\"),
                            ))
                        }
                    }
                }
                "syntax" => d.syntax = Some(value),
                _ => d.check = Some(value),
            }
        }
        Ok(())
    };

    while let Some((no, raw)) = physical.next() {
        let first = raw.trim_start();
        directive(first, no, &mut directives)?;
        let first = if is_comment(first) { "" } else { first };
        let (start, mut continues) = trim_continuation(first, directives.escape);
        if !continues && start.is_empty() {
            continue;
        }
        let mut line = LogicalLine {
            start_line: no,
            end_line: no,
            text: start.to_string(),
            empty_continuation: false,
        };
        while continues {
            let Some((no, raw)) = physical.next() else {
                break;
            };
            directive(raw, no, &mut directives)?;
            line.end_line = no;
            if is_comment(raw) {
                continue;
            }
            if raw.trim_start().is_empty() {
                line.empty_continuation = true;
                continue;
            }
            let (part, more) = trim_continuation(raw, directives.escape);
            line.text.push_str(part);
            continues = more;
        }
        out.push(line);
    }
    Ok((directives, out))
}
