//! `.dockerignore`: which context paths the client leaves out of a build.
//!
//! Docker's rules: a line starting with `#` is a comment; lines are trimmed;
//! patterns are cleaned like Go's `filepath.Clean` and a leading `/` dropped;
//! `!pattern` re-includes; the last matching pattern wins; a pattern matching
//! a parent directory matches everything below it. Patterns use Go's
//! `filepath.Match` syntax (`*`, `?`, `[a-z]`, `[^a]`, `\` escape) plus `**`
//! for any number of directories.

/// One cleaned pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern {
    /// The cleaned pattern, without `!`.
    pub pattern: String,
    /// `true` for a `!` re-include.
    pub exclusion: bool,
}

/// Parsed `.dockerignore` patterns, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    /// The patterns in order; later ones override earlier ones.
    pub patterns: Vec<IgnorePattern>,
}

/// Parses the text of a `.dockerignore` file.
pub fn parse_dockerignore(text: &str) -> Ignore {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let patterns = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() {
                return None;
            }
            let (exclusion, rest) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let mut pattern = if rest.is_empty() {
                String::new()
            } else {
                clean(rest)
            };
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            Some(IgnorePattern { pattern, exclusion })
        })
        .collect();
    Ignore { patterns }
}

/// Go's `filepath.Clean` for slash-separated paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(p) if *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

impl Ignore {
    /// Whether `path` (relative to the context, `/`-separated) is left out.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches('/'));
        let parents: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for p in &self.patterns {
            // A re-include can only change a path already excluded, and the
            // other way round: skip patterns that cannot change the result.
            if p.exclusion != excluded {
                continue;
            }
            let mut hit = glob_match(&p.pattern, &path);
            if !hit {
                hit = (1..parents.len()).any(|i| glob_match(&p.pattern, &parents[..i].join("/")));
            }
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }
}

/// Matches a whole path against a pattern.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    match_at(&p, &s)
}

fn match_at(p: &[char], s: &[char]) -> bool {
    let Some(&first) = p.first() else {
        return s.is_empty();
    };
    match first {
        '*' if p.get(1) == Some(&'*') => {
            // Docker: `**` eats a following `/`; at the end it matches
            // anything, otherwise zero or more leading directories.
            let rest = &p[2..];
            let rest = rest.strip_prefix(&['/']).unwrap_or(rest);
            rest.is_empty()
                || match_at(rest, s)
                || (0..s.len()).any(|i| s[i] == '/' && match_at(rest, &s[i + 1..]))
        }
        '*' => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if match_at(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == '/' {
                    break;
                }
            }
            false
        }
        '?' => matches!(s.first(), Some(c) if *c != '/') && match_at(&p[1..], &s[1..]),
        '[' => match (s.first(), class_match(&p[1..], s.first().copied())) {
            (Some(c), Some((true, len))) if *c != '/' => match_at(&p[1 + len..], &s[1..]),
            _ => false,
        },
        '\\' if p.len() > 1 => s.first() == Some(&p[1]) && match_at(&p[2..], &s[1..]),
        c => s.first() == Some(&c) && match_at(&p[1..], &s[1..]),
    }
}

/// Matches `c` against a class body (after `[`). Returns whether it matched
/// and how many pattern chars the class used (including `]`); `None` if the
/// class is malformed (Go then reports a bad pattern: nothing matches).
fn class_match(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let c = c?;
    let mut i = 0;
    let negated = matches!(p.first(), Some('^') | Some('!'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        let (lo, next) = if lo == '\\' {
            (*p.get(i + 1)?, i + 2)
        } else {
            (lo, i + 1)
        };
        i = next;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1) != Some(&']') {
            let hi = *p.get(i + 1)?;
            let (hi, next) = if hi == '\\' {
                (*p.get(i + 2)?, i + 3)
            } else {
                (hi, i + 2)
            };
            i = next;
            hi
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        parse_dockerignore(text)
    }

    #[test]
    fn parses_comments_blanks_and_cleans() {
        let i = ignore("# comment\n\n  /foo/./bar/  \n!./keep\n ./a//b\n");
        let pats: Vec<(&str, bool)> = i
            .patterns
            .iter()
            .map(|p| (p.pattern.as_str(), p.exclusion))
            .collect();
        assert_eq!(pats, [("foo/bar", false), ("keep", true), ("a/b", false)]);
    }

    #[test]
    fn matches_globs_and_parents() {
        let i = ignore("*.log\nnode_modules\ntmp?\n[ab]*.txt\n");
        assert!(i.is_excluded("app.log"));
        assert!(!i.is_excluded("logs/app.log"), "* does not cross /");
        assert!(i.is_excluded("node_modules/x/y.js"), "parent dir matches");
        assert!(i.is_excluded("tmp1"));
        assert!(!i.is_excluded("tmp12"));
        assert!(i.is_excluded("a1.txt"));
        assert!(!i.is_excluded("c1.txt"));
        assert!(!i.is_excluded("src/main.rs"));
    }

    #[test]
    fn double_star_and_exceptions() {
        let i = ignore("**/*.md\n!README.md\ndocs/**\n!docs/keep/**\n");
        assert!(i.is_excluded("CHANGES.md"));
        assert!(i.is_excluded("a/b/c.md"));
        assert!(!i.is_excluded("README.md"), "re-included");
        assert!(i.is_excluded("docs/x.txt"));
        assert!(!i.is_excluded("docs/keep/x.txt"));
        assert!(!i.is_excluded("src/x.txt"));
        assert!(glob_match("a/**/b", "a/b"));
        assert!(glob_match("a/**/b", "a/x/y/b"));
        assert!(!glob_match("docs/**", "docs"));
        assert!(glob_match("**", "any/thing"));
        // Like Docker, `**` before a non-slash only spans whole directories.
        assert!(!glob_match("**.md", "a/b.md"));
        assert!(glob_match("**.md", "a/.md"));
    }

    #[test]
    fn last_match_wins_and_leading_slash() {
        let i = ignore("/build\n!build/out\nbuild/out/tmp\n");
        assert!(i.is_excluded("build/a"));
        assert!(!i.is_excluded("build/out/bin"));
        assert!(i.is_excluded("build/out/tmp/x"));
        assert!(i.is_excluded("./build"));
    }

    #[test]
    fn negated_class_and_escape() {
        assert!(glob_match("[^a]x", "bx"));
        assert!(!glob_match("[^a]x", "ax"));
        assert!(glob_match(r"a\*b", "a*b"));
        assert!(!glob_match(r"a\*b", "axb"));
        assert!(!glob_match("[a-", "a"), "malformed class matches nothing");
    }
}
