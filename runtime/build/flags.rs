//! Instruction flags (`--from=`, `--chown=`, `--interval=` …), checked the way
//! Docker's builder checks them: only declared flags, no duplicates, string
//! flags need `=value`.

/// The flags an instruction accepts, and their values once parsed.
pub(crate) struct Flags {
    allowed: &'static [&'static str],
    values: Vec<(&'static str, String)>,
}

impl Flags {
    /// Parses `words` (as produced by the syntax tree) against `allowed`.
    pub(crate) fn parse(
        words: &[String],
        allowed: &'static [&'static str],
    ) -> Result<Flags, String> {
        let mut flags = Flags {
            allowed,
            values: Vec::new(),
        };
        for word in words {
            let Some(body) = word.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {word}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&known) = flags.allowed.iter().find(|a| **a == name) else {
                return Err(format!("unknown flag: {name}"));
            };
            if flags.values.iter().any(|(n, _)| *n == known) {
                return Err(format!("duplicate flag specified: {name}"));
            }
            let Some(value) = value else {
                return Err(format!("missing a value on flag: {name}"));
            };
            flags.values.push((known, value.to_string()));
        }
        Ok(flags)
    }

    /// The value of `name`; an empty value counts as not given, as in Docker.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, v)| *n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_declared_flags() {
        let f = Flags::parse(&words(&["--from=build", "--chown=1:2"]), &["from", "chown"]).unwrap();
        assert_eq!(f.get("from").as_deref(), Some("build"));
        assert_eq!(f.get("chown").as_deref(), Some("1:2"));
        assert_eq!(f.get("chmod"), None);
    }

    #[test]
    fn refuses_unknown_duplicate_and_valueless_flags() {
        let err = |w: &[&str]| Flags::parse(&words(w), &["from"]).err().unwrap();
        assert_eq!(err(&["--mount=type=cache"]), "unknown flag: mount");
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: from");
    }
}
