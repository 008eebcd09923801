//! Go's `path.Match`, which dockerd's `reference` filter uses: `*` is any run
//! of non-`/` characters, `?` one non-`/` character, `[...]` a class (`^`
//! negates, `a-z` ranges, `\` escapes), `\` escapes one character.
//!
//! Written as Go's is, without backtracking across stars: each chunk between
//! stars has a fixed length and is placed at its first fit, so the work is at
//! most the pattern's length times the name's, whatever the learner types
//! (a recursive matcher is exponential in the number of stars).

/// The pattern is malformed (Go's `path.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// Whether `name` matches the whole of `pattern`.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let mut name: &[char] = &name;
    let mut p: &[char] = &pattern;
    'chunks: while !p.is_empty() {
        let (star, chunk, rest) = scan_chunk(p);
        p = rest;
        if star && chunk.is_empty() {
            // A trailing star takes the rest unless it holds a `/`.
            return Ok(!name.contains(&'/'));
        }
        let here = match_chunk(chunk, name)?;
        if let Some(t) = here {
            // The last chunk must also use up the name.
            if t.is_empty() || !p.is_empty() {
                name = t;
                continue;
            }
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != '/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if p.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'chunks;
                }
                i += 1;
            }
        }
        // No match; Go still reports a malformed rest of the pattern.
        while !p.is_empty() {
            let (_, chunk, rest) = scan_chunk(p);
            match_chunk(chunk, &[])?;
            p = rest;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next unescaped, unbracketed star.
fn scan_chunk(p: &[char]) -> (bool, &[char], &[char]) {
    let mut p = p;
    let mut star = false;
    while p.first() == Some(&'*') {
        p = &p[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 < p.len() => i += 1,
            '[' => in_range = true,
            ']' => in_range = false,
            '*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

/// Matches `chunk` (no stars) at the start of `s`; the rest of `s` on success.
/// Malformed chunks are an error even where `s` ran out, as in Go.
fn match_chunk<'a>(chunk: &[char], s: &'a [char]) -> Result<Option<&'a [char]>, BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    // Once the name fails, the rest of the chunk is still checked for syntax.
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            '[' => {
                let c = s.first().copied();
                if !failed {
                    s = &s[1..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut n = 0;
                loop {
                    if !chunk.is_empty() && chunk[0] == ']' && n > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if let Some(c) = c {
                        if lo <= c && c <= hi {
                            matched = true;
                        }
                    }
                    n += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    if s[0] == '/' {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            '\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return Err(BadPattern);
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            c => {
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One possibly escaped character of a class.
fn get_esc(chunk: &[char]) -> Result<(char, &[char]), BadPattern> {
    let (c, rest) = match chunk {
        [] | ['-', ..] | [']', ..] | ['\\'] => return Err(BadPattern),
        ['\\', c, rest @ ..] | [c, rest @ ..] => (*c, rest),
    };
    // A class must be closed: something follows every member.
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((c, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        path_match(p, n).unwrap()
    }

    #[test]
    fn matches_like_go_path_match() {
        assert!(m("abc", "abc"));
        assert!(m("*", "abc"));
        assert!(m("*c", "abc"));
        assert!(m("a*", "a"));
        assert!(m("a*/b", "abc/b"));
        assert!(!m("a*", "ab/c"));
        assert!(!m("*", "a/b"));
        assert!(m("a*b*c*d*e*/f", "axbxcxdxe/f"));
        assert!(m("a*b*c*d*e*/f", "axbxcxdxexxx/f"));
        assert!(!m("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"));
        assert!(!m("a*b*c*d*e*/f", "axbxcxdxexxx/fff"));
        assert!(m("a*b?c*x", "abxbbxdbxebxczzx"));
        assert!(!m("a*b?c*x", "abxbbxdbxebxczzy"));
        assert!(m("ab[c]", "abc"));
        assert!(m("ab[b-d]", "abc"));
        assert!(!m("ab[e-g]", "abc"));
        assert!(!m("ab[^c]", "abc"));
        assert!(m("ab[^e-g]", "abc"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "ab"));
        assert!(m("a?b", "a☺b"));
        assert!(m("a[^a]b", "a☺b"));
        assert!(!m("a???b", "a☺b"));
        assert!(m("[\\-]", "-"));
        assert!(m("[x\\-]", "x"));
        assert!(!m("[x\\-]", "z"));
        assert!(m("*x", "xxx"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn malformed_patterns_are_errors_like_go() {
        for p in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[\\]", "a[",
        ] {
            assert_eq!(path_match(p, "a"), Err(BadPattern), "{p}");
        }
        // Checked even where the name has already failed.
        assert_eq!(path_match("x[", "a"), Err(BadPattern));
        assert_eq!(path_match("*x", "a["), Ok(false));
    }

    #[test]
    fn many_stars_answer_at_once() {
        let name = "a".repeat(60);
        let pattern = format!("{}b", "*a".repeat(13));
        assert!(!m(&pattern, &name));
        let long = "a".repeat(5000);
        assert!(!m(&format!("{}b", "*a".repeat(2000)), &long));
        assert!(m(&format!("{}*", "*a".repeat(2000)), &long));
    }
}
