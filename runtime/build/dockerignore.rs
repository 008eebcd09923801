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
///
/// The pattern is read once into tokens and run as a set of positions over
/// the path (as the regular expression dockerd builds from it would be), so
/// the work is the pattern's length times the path's, never exponential in
/// the stars a learner's `.dockerignore` holds.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let tokens = tokens(pattern);
    let end = tokens.len();
    let mut now = vec![false; end + 1];
    let mut next = vec![false; end + 1];
    now[0] = true;
    close(&tokens, &mut now);
    for c in path.chars() {
        next.iter_mut().for_each(|n| *n = false);
        let mut any = false;
        for (i, tok) in tokens.iter().enumerate() {
            if !now[i] {
                continue;
            }
            let (stay, one, two) = tok.step(c);
            next[i] |= stay;
            next[i + 1] |= one;
            if two {
                next[i + 2] = true;
            }
            any |= stay || one || two;
        }
        if !any {
            return false;
        }
        close(&tokens, &mut next);
        std::mem::swap(&mut now, &mut next);
    }
    now[end]
}

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one character but `/`.
    One,
    /// `[...]`: one character but `/` in (or, negated, not in) the ranges.
    Class {
        ranges: Ranges,
        negated: bool,
    },
    /// A malformed class: matches nothing.
    Never,
    /// `*`: any run without `/`.
    Star,
    /// `**` before more pattern: zero or more leading directories (`(.*/)?`),
    /// as two positions: before any of it (which may be skipped) ...
    Dirs,
    /// ... and inside a run that must still end with `/`.
    InDirs,
    /// `**` at the end: anything.
    All,
}

impl Token {
    /// How far a position may skip ahead without reading a character.
    fn skip(&self) -> usize {
        match self {
            Token::Star | Token::All => 1,
            Token::Dirs => 2,
            _ => 0,
        }
    }

    /// On character `c`: (stays at this position, moves one on, moves two on).
    fn step(&self, c: char) -> (bool, bool, bool) {
        match self {
            Token::Char(x) => (false, *x == c, false),
            Token::One => (false, c != '/', false),
            Token::Class { ranges, negated } => {
                let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                (false, c != '/' && inside != *negated, false)
            }
            Token::Never => (false, false, false),
            Token::Star => (c != '/', false, false),
            Token::Dirs => (false, true, c == '/'),
            Token::InDirs => (true, c == '/', false),
            Token::All => (true, false, false),
        }
    }
}

/// Adds the positions reachable by skipping optional tokens.
fn close(tokens: &[Token], set: &mut [bool]) {
    for i in 0..tokens.len() {
        let skip = tokens[i].skip();
        if set[i] && skip > 0 {
            set[i + skip] = true;
        }
    }
}

fn tokens(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' if p.get(i + 1) == Some(&'*') => {
                // Docker: `**` eats a following `/`; at the end it matches
                // anything, otherwise zero or more leading directories.
                i += 2;
                if p.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == p.len() {
                    out.push(Token::All);
                } else {
                    out.extend([Token::Dirs, Token::InDirs]);
                }
            }
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::One);
                i += 1;
            }
            '[' => match parse_class(&p[i + 1..]) {
                Some((ranges, negated, len)) => {
                    out.push(Token::Class { ranges, negated });
                    i += 1 + len;
                }
                None => {
                    out.push(Token::Never);
                    i = p.len();
                }
            },
            '\\' if i + 1 < p.len() => {
                out.push(Token::Char(p[i + 1]));
                i += 2;
            }
            c => {
                out.push(Token::Char(c));
                i += 1;
            }
        }
    }
    out
}

/// Inclusive character ranges of a class.
type Ranges = Vec<(char, char)>;

/// Reads a class body (after `[`): its ranges, whether it is negated, and
/// how many pattern chars it used (including `]`); `None` if malformed (Go
/// then reports a bad pattern: nothing matches).
fn parse_class(p: &[char]) -> Option<(Ranges, bool, usize)> {
    let mut i = 0;
    let negated = matches!(p.first(), Some('^') | Some('!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((ranges, negated, i + 1));
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
        ranges.push((lo, hi));
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

    #[test]
    fn many_stars_answer_at_once() {
        // A learner's .dockerignore: a recursive matcher took exponential time.
        let path = "a".repeat(60);
        assert!(!glob_match(&format!("{}b", "*a".repeat(14)), &path));
        assert!(glob_match(&format!("{}*", "*a".repeat(14)), &path));
        let deep = "a/".repeat(40) + "b";
        assert!(!glob_match(&format!("{}c", "**/a".repeat(20)), &deep));
        assert!(glob_match(&format!("{}b", "**/a/".repeat(20)), &deep));
        assert!(glob_match("**/**/**/b", &deep));
        assert!(glob_match("a*/*b", "aaa/bbb"));
        assert!(!glob_match("a*/*b", "aaa/bbb/"));
        assert!(glob_match("?", "x"));
        assert!(!glob_match("?", "/"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }
}
