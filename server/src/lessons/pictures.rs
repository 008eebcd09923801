//! Pictures in lessons: an SVG file in the lesson folder, referenced from
//! markdown as `![what it shows](layers.svg)`, served at
//! `/lessons/{slug}/layers.svg` as an image.
//!
//! A picture is drawn by a lesson author, but the page it sits in holds a
//! learner's session, so a picture is held to what an `<img>` needs and no
//! more: no script, no event handler, no external reference (nothing that
//! could run or phone out if the file were ever opened on its own), and it
//! is served with a CSP that forbids all of that again (`sandbox`,
//! `default-src 'none'`) and `nosniff`, so a browser never treats it as a
//! page of our origin.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Largest picture file served or accepted by `lesson check`.
pub const MAX_PICTURE_BYTES: u64 = 256 * 1024;

/// The headers a picture is served with.
pub const CONTENT_TYPE: &str = "image/svg+xml";
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// An image in a lesson's markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// The destination as written (`layers.svg`).
    pub dest: String,
    /// The alt text (the words between the brackets).
    pub alt: String,
    /// 1-based line in the markdown.
    pub line: usize,
}

/// Every image of `markdown`, in order.
pub fn pictures(markdown: &str) -> Vec<Picture> {
    let mut out = Vec::new();
    let mut current: Option<Picture> = None;
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(markdown, opts).into_offset_iter() {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                current = Some(Picture {
                    dest: dest_url.to_string(),
                    alt: String::new(),
                    line: markdown[..range.start].matches('\n').count() + 1,
                })
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(p) = current.as_mut() {
                    p.alt.push_str(&t);
                }
            }
            Event::End(TagEnd::Image) => out.extend(current.take()),
            _ => {}
        }
    }
    out
}

/// Is `name` a picture a lesson may reference: a plain file name in the
/// lesson folder (lowercase letters, digits, `-`, `_`, `.`) ending in `.svg`?
pub fn is_picture_name(name: &str) -> bool {
    name.len() <= 100
        && name.ends_with(".svg")
        && name.len() > 4
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Why `svg` is not a safe picture, or `Ok` when it is one.
pub fn check_svg(svg: &str) -> Result<(), String> {
    if svg.len() as u64 > MAX_PICTURE_BYTES {
        return Err(format!(
            "is {} bytes, more than {MAX_PICTURE_BYTES}",
            svg.len()
        ));
    }
    let lower = svg.to_ascii_lowercase();
    if !lower.contains("<svg") {
        return Err("is not an SVG (no <svg> element)".into());
    }
    for (needle, why) in [
        ("<script", "has a <script> element"),
        ("<foreignobject", "has a <foreignObject> (HTML inside)"),
        ("<!doctype", "has a DOCTYPE (entities)"),
        ("<!entity", "declares an entity"),
        ("javascript:", "has a javascript: URL"),
        ("@import", "imports a stylesheet"),
        ("<iframe", "has an <iframe>"),
        ("<animate", "has an animation (it can rewrite links)"),
        ("<set", "has a <set> element (it can rewrite links)"),
    ] {
        if lower.contains(needle) {
            return Err(why.into());
        }
    }
    if let Some(name) = event_handler(&lower) {
        return Err(format!("has an event handler ({name}=)"));
    }
    for attr in ["href", "src"] {
        if let Some(v) = external(&lower, &format!("{attr}=")) {
            return Err(format!("refers outside itself ({attr}={v})"));
        }
    }
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("url(") {
        rest = &rest[i + 4..];
        let target = rest.trim_start_matches([' ', '"', '\'']);
        if !target.starts_with('#') {
            return Err("refers outside itself (url() not to #id)".into());
        }
    }
    Ok(())
}

/// The first `on…=` attribute name in `lower`, if any: an `on` after
/// whitespace, then letters, then `=`.
fn event_handler(lower: &str) -> Option<String> {
    let b = lower.as_bytes();
    for i in 1..b.len().saturating_sub(2) {
        if !(b[i - 1].is_ascii_whitespace() || b[i - 1] == b'/') || &b[i..i + 2] != b"on" {
            continue;
        }
        let mut j = i + 2;
        while j < b.len() && b[j].is_ascii_alphabetic() {
            j += 1;
        }
        let name_end = j;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if name_end > i + 2 && j < b.len() && b[j] == b'=' {
            return Some(lower[i..name_end].to_string());
        }
    }
    None
}

/// The first value of an attribute ending in `attr` (so `xlink:href=` too)
/// that does not point inside the picture (`#id`).
fn external(lower: &str, attr: &str) -> Option<String> {
    let mut rest = lower;
    while let Some(i) = rest.find(attr) {
        rest = &rest[i + attr.len()..];
        let value = rest.trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
        let inner = match quote {
            Some(_) => &value[1..],
            None => value,
        };
        let end = inner
            .find(|c: char| Some(c) == quote || (quote.is_none() && c.is_whitespace()))
            .unwrap_or(inner.len());
        let v = inner[..end].trim();
        if !v.starts_with('#') {
            return Some(v.chars().take(40).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" role="img">
<defs><marker id="a"/></defs><style>.t{fill:#333}</style>
<path d="M0 0L5 5" marker-end="url(#a)"/><use href="#a"/><text class="t" font-family="sans-serif">one</text></svg>"##;

    #[test]
    fn a_plain_drawing_is_a_safe_picture() {
        assert_eq!(check_svg(GOOD), Ok(()));
    }

    #[test]
    fn scripts_handlers_and_outside_references_are_refused() {
        let bad = [
            ("<svg><script>alert(1)</script></svg>", "<script>"),
            ("<svg><SCRIPT>alert(1)</SCRIPT></svg>", "<script>"),
            ("<svg onload=\"alert(1)\"></svg>", "event handler (onload=)"),
            (
                "<svg><rect\nonclick = 'x'/></svg>",
                "event handler (onclick=)",
            ),
            ("<svg><rect/onmouseover=x /></svg>", "event handler"),
            (
                "<svg><image href=\"https://evil.example/x.png\"/></svg>",
                "refers outside",
            ),
            (
                "<svg><use xlink:href='http://x/y#z'/></svg>",
                "refers outside",
            ),
            (
                "<svg><a href=javascript:alert(1)>x</a></svg>",
                "javascript:",
            ),
            ("<svg><rect fill=\"url(https://x/y)\"/></svg>", "url()"),
            (
                "<svg><style>@import 'http://x/y.css';</style></svg>",
                "imports",
            ),
            (
                "<svg><foreignObject><div/></foreignObject></svg>",
                "foreignObject",
            ),
            ("<!DOCTYPE svg [<!ENTITY a \"b\">]><svg/>", "DOCTYPE"),
            (
                "<svg><set attributeName=\"href\" to=\"#x\"/></svg>",
                "<set>",
            ),
            ("<html><body>hi</body></html>", "not an SVG"),
        ];
        for (svg, why) in bad {
            let e = check_svg(svg).expect_err(svg);
            assert!(e.contains(why), "{svg}: {e}");
        }
        // Words that merely start with "on" are not handlers.
        assert_eq!(check_svg("<svg><text>one online</text></svg>"), Ok(()));
        let big = format!("<svg>{}</svg>", " ".repeat(MAX_PICTURE_BYTES as usize));
        assert!(check_svg(&big).unwrap_err().contains("more than"));
    }

    #[test]
    fn picture_names_are_plain_svg_files_of_the_lesson() {
        for ok in ["layers.svg", "vm-vs-container.svg", "a_1.svg"] {
            assert!(is_picture_name(ok), "{ok}");
        }
        for bad in [
            "../x.svg",
            "sub/x.svg",
            "/etc/x.svg",
            "x.png",
            ".svg",
            ".hidden.svg",
            "X.svg",
            "https://e.example/x.svg",
            "x.svg?y",
        ] {
            assert!(!is_picture_name(bad), "{bad}");
        }
    }

    #[test]
    fn images_are_found_with_alt_text_and_line() {
        let md = "# T\n\ntext\n\n![Two **stacks** side by side](stacks.svg)\n\n![](bare.svg)\n";
        let p = pictures(md);
        assert_eq!(
            p,
            [
                Picture {
                    dest: "stacks.svg".into(),
                    alt: "Two stacks side by side".into(),
                    line: 5
                },
                Picture {
                    dest: "bare.svg".into(),
                    alt: String::new(),
                    line: 7
                }
            ]
        );
    }
}
