//! Image references as Docker parses them: `[domain[:port]/]path[:tag][@digest]`,
//! normalized (`busybox` → `docker.io/library/busybox:latest`) and shown in
//! their familiar form (`busybox:latest`).

use super::ImageError;

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (`docker.io` when none was given).
    pub domain: String,
    /// Repository path (`library/busybox`).
    pub path: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

const DEFAULT_DOMAIN: &str = "docker.io";

fn invalid(_text: &str) -> ImageError {
    ImageError::InvalidReference
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or any number of "-".
        let start = i;
        while i < bytes.len() && matches!(bytes[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok || i == bytes.len() {
            return false;
        }
        if !bytes[i].is_ascii_alphanumeric() || bytes[i].is_ascii_uppercase() {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    host_ok && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

impl Reference {
    /// Parses `text` with Docker's rules and messages.
    pub fn parse(text: &str) -> Result<Self, ImageError> {
        if text.is_empty() {
            return Err(invalid(text));
        }
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(|| invalid(text))?;
                if hex.len() != 64
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(invalid(text));
                }
                (n, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last colon that comes after the last slash.
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repo, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(text));
            }
        }
        let mut parts: Vec<&str> = repo.split('/').collect();
        let domain = if parts.len() > 1
            && (parts[0].contains('.')
                || parts[0].contains(':')
                || parts[0] == "localhost"
                || parts[0].chars().any(|c| c.is_ascii_uppercase()))
        {
            let d = parts.remove(0);
            if !valid_domain(d) {
                return Err(invalid(text));
            }
            d.to_string()
        } else {
            DEFAULT_DOMAIN.to_string()
        };
        let mut path = parts.join("/");
        if domain == DEFAULT_DOMAIN && parts.len() == 1 {
            path = format!("library/{path}");
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageError::Uppercase(path));
        }
        if parts.is_empty() || !parts.iter().all(|c| valid_component(c)) || repo.len() > 255 {
            return Err(invalid(text));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".into()),
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The repository as users see it: `busybox`, `me/app`, `localhost:5000/app`.
    pub fn familiar_repo(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The whole reference as users see it: `busybox:latest`, `app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repo();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("busybox", "busybox:latest"),
            ("busybox:1.36", "busybox:1.36"),
            ("library/busybox", "busybox:latest"),
            ("docker.io/library/busybox:v1", "busybox:v1"),
            ("me/app", "me/app:latest"),
            ("localhost:5000/app:v2", "localhost:5000/app:v2"),
            (
                "registry.local:5000/s1/web",
                "registry.local:5000/s1/web:latest",
            ),
            ("a_b-c__d/e.f---g", "a_b-c__d/e.f---g:latest"),
        ];
        for (input, want) in cases {
            let parsed = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.familiar(), want, "{input}");
        }
        let digest = format!("busybox@sha256:{}", "a".repeat(64));
        let r = Reference::parse(&digest).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.familiar(), digest);
        assert_eq!(Reference::parse("busybox").unwrap().path, "library/busybox");
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in [
            "",
            "Bad:Ref!",
            "a:",
            ":tag",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a@sha256:abc",
            "a:b:c",
            "a b",
        ] {
            let e = Reference::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid reference format"), "{bad}: {e}");
        }
        let e = Reference::parse("Busybox").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
    }
}
