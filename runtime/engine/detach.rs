//! Detach keys: the key sequence (`ctrl-p,ctrl-q` unless the client names
//! another) that, typed on an attached terminal, ends the attach and leaves
//! the process running, as dockerd does.

use super::http::ApiError;

/// Docker's default sequence.
pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// Parses Docker's key list: comma-separated single characters or
/// `ctrl-<a-z@[\]^_>`. An empty text is the default.
pub fn parse(text: &str) -> Result<Vec<u8>, ApiError> {
    let text = if text.is_empty() { DEFAULT } else { text };
    let invalid = || ApiError::bad_request(format!("Invalid detach keys ({text}) provided"));
    let mut keys = Vec::new();
    for key in text.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("ctrl-") {
            let [c] = rest.as_bytes() else {
                return Err(invalid());
            };
            keys.push(match c {
                b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(invalid()),
            });
        } else {
            let [c] = key.as_bytes() else {
                return Err(invalid());
            };
            keys.push(*c);
        }
    }
    Ok(keys)
}

/// Watches a client's input for the detach sequence. A partial match is
/// held back until it either completes (detach: never forwarded) or breaks
/// (forwarded as typed).
pub struct Detector {
    keys: Vec<u8>,
    matched: usize,
}

impl Detector {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// The bytes of `input` to forward, and whether the sequence completed
    /// (the rest of `input` is then dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // The held prefix was typed, not a sequence: forward it.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_key_lists() {
        assert_eq!(parse("").unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-p").unwrap(), vec![16]);
        assert_eq!(parse("a,ctrl-@,ctrl-[").unwrap(), vec![b'a', 0, 27]);
        assert!(parse("ctrl-").is_err());
        assert!(parse("ab").is_err());
        assert!(parse("ctrl-1").is_err());
    }

    #[test]
    fn detects_across_reads_and_forwards_broken_prefixes() {
        let mut d = Detector::new(vec![16, 17]);
        assert_eq!(d.feed(b"hi\x10"), (b"hi".to_vec(), false));
        assert_eq!(d.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(d.feed(b"\x10"), (vec![], false));
        assert_eq!(d.feed(b"\x11rest"), (vec![], true));
        let mut d = Detector::new(vec![16, 17]);
        assert_eq!(d.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}
