//! The shell-like word processing Docker applies when it expands an
//! instruction's arguments: quotes, the escape character and `$VAR`,
//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
//! `${VAR+alt}`, `${VAR:?message}`, `${VAR?message}`.
//!
//! A word is processed as a whole: whitespace is kept, never split on.

/// Expands one word. `lookup` gives a variable's value (`None`: unset).
pub(crate) fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut lexer = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        escape,
        lookup,
    };
    lexer.process(None)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Reads until `stop` (consumed) or the end of the word.
    fn process(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.next() {
            if Some(c) == stop {
                return Ok(out);
            }
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                c => out.push(c),
            }
        }
        match stop {
            Some(_) => Err("syntax error: missing '}'".to_string()),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    )
                }
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    // Inside double quotes the escape only escapes `"`, `$` and itself.
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    )
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if !(c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// After a `$`: a variable, a `${…}` form, or a literal `$`.
    fn dollar(&mut self) -> Result<String, String> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution".to_string());
        }
        let value = (self.lookup)(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let modifier = self.next();
        if modifier == Some('}') && !colon {
            return Ok(value.unwrap_or_default());
        }
        let Some(modifier @ ('-' | '+' | '?')) = modifier else {
            return match modifier {
                None => Err("syntax error: missing '}'".to_string()),
                Some(m) => Err(format!("unsupported modifier ({m}) in substitution")),
            };
        };
        let word = self.process(Some('}'))?;
        // With `:` an empty value counts as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match modifier {
            '-' if set => Ok(value.unwrap_or_default()),
            '-' => Ok(word),
            '+' if set => Ok(word),
            '+' => Ok(String::new()),
            _ if set => Ok(value.unwrap_or_default()),
            _ if word.is_empty() => Err(format!("{name}: is not allowed to be unset")),
            _ => Err(format!("{name}: {word}")),
        }
    }
}

/// An `EXPOSE` entry: a port or range and its protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// First port of the range.
    pub start: u16,
    /// Last port of the range (equal to `start` for a single port).
    pub end: u16,
    /// `tcp` (default), `udp` or `sctp`.
    pub proto: String,
}

/// Why an `EXPOSE` entry is invalid (Docker's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Not a port number or range of numbers in 0–65535.
    #[error("invalid containerPort: {0}")]
    Port(String),
    /// A protocol other than tcp, udp or sctp.
    #[error("invalid proto: {0}")]
    Proto(String),
    /// A range whose end is below its start.
    #[error("invalid range specified for port: {0}")]
    Range(String),
}

/// Parses `80`, `80/udp`, `8000-8010/tcp` as Docker's `EXPOSE` does.
pub fn parse_port(spec: &str) -> Result<PortSpec, PortError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(PortError::Proto(proto));
    }
    let invalid = || PortError::Port(ports.to_string());
    let number = |s: &str| s.parse::<u16>().map_err(|_| invalid());
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(ports)?, number(ports)?),
    };
    if end < start {
        return Err(PortError::Range(ports.to_string()));
    }
    Ok(PortSpec { start, end, proto })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(word: &str) -> Result<String, String> {
        let lookup = |name: &str| match name {
            "NAME" => Some("berth".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        expand_word(word, '\\', &lookup)
    }

    #[test]
    fn substitutes_variables_and_modifiers() {
        let cases = [
            ("$NAME", "berth"),
            ("${NAME}s", "berths"),
            ("$NAME.x", "berth.x"),
            ("$UNSET-x", "-x"),
            ("${UNSET:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${NAME:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET:-${NAME}}", "berth"),
            ("${UNSET:-a b}", "a b"),
            (r"\$NAME", "$NAME"),
            ("'$NAME'", "$NAME"),
            ("\"$NAME x\"", "berth x"),
            (r#""a\"b\n""#, r#"a"b\n"#),
            ("$", "$"),
            ("a$ b", "a$ b"),
        ];
        for (word, want) in cases {
            assert_eq!(expand(word).as_deref(), Ok(want), "{word}");
        }
    }

    #[test]
    fn reports_bad_words() {
        assert_eq!(expand("${NAME").unwrap_err(), "syntax error: missing '}'");
        assert_eq!(expand("${UNSET:?need it}").unwrap_err(), "UNSET: need it");
        assert_eq!(
            expand("'open").unwrap_err(),
            "unexpected end of statement while looking for matching single-quote"
        );
        assert_eq!(
            expand("${NAME%x}").unwrap_err(),
            "unsupported modifier (%) in substitution"
        );
        assert_eq!(expand("${}").unwrap_err(), "bad substitution");
    }

    #[test]
    fn backtick_escape() {
        let none = |_: &str| None;
        assert_eq!(
            expand_word(r"c:\dir`$x", '`', &none).as_deref(),
            Ok(r"c:\dir$x")
        );
    }

    #[test]
    fn parses_ports() {
        assert_eq!(
            parse_port("80").unwrap(),
            PortSpec {
                start: 80,
                end: 80,
                proto: "tcp".into()
            }
        );
        assert_eq!(parse_port("53/UDP").unwrap().proto, "udp");
        assert_eq!(parse_port("8000-8010/tcp").unwrap().end, 8010);
        assert_eq!(
            parse_port("http").unwrap_err().to_string(),
            "invalid containerPort: http"
        );
        assert_eq!(
            parse_port("80/xyz").unwrap_err(),
            PortError::Proto("xyz".into())
        );
        assert_eq!(
            parse_port("70000").unwrap_err().to_string(),
            "invalid containerPort: 70000"
        );
    }
}
