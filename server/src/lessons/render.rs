//! Markdown to HTML for lesson pages: heading anchors, runnable blocks with
//! a "Run" button, exercises as boxes with hints and a Check button, file
//! blocks (```` ```dockerfile file=app/Dockerfile ````) with an "Open in
//! editor" button that makes the file in the lab's home and opens it, and
//! links that open a file (`[the Dockerfile](editor:app/Dockerfile)`).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::{Exercise, Lesson};

/// A fenced code block: its info string's first word, whether it is
/// runnable, its text and its 1-based line in the markdown.
pub struct Fenced {
    pub lang: String,
    /// `file=PATH`: the file (relative to the lab's home) the block is.
    pub file: Option<String>,
    pub run: bool,
    pub node: Option<String>,
    pub text: String,
    pub line: usize,
}

fn parse_info(info: &str) -> (String, bool, Option<String>) {
    let mut words = info.split_whitespace();
    let lang = words.next().unwrap_or("").to_string();
    let mut run = false;
    let mut node = None;
    for w in words {
        if w == "run" {
            run = true;
        } else if let Some(n) = w.strip_prefix("node=") {
            node = Some(n.to_string());
        }
    }
    (lang, run, node)
}

/// The `file=PATH` word of a fenced block's info string.
pub fn file_of(info: &str) -> Option<String> {
    info.split_whitespace()
        .find_map(|w| w.strip_prefix("file="))
        .map(str::to_string)
}

/// The link prefix that opens a file in the editor.
pub const EDITOR_LINK: &str = "editor:";

/// A block that is a file: its path, the text, and a button that makes the
/// file in the lab with this content and opens it in the editor.
fn file_block_html(path: &str, lang: &str, node: Option<&str>, text: &str) -> String {
    format!(
        "<div class=\"file-block\"><span class=\"file-path\">~/{p}</span>\
         <pre><code class=\"language-{l}\">{t}</code></pre>\
         <button type=\"button\" class=\"file-save\" data-path=\"{p}\" data-node=\"{n}\" \
         data-content=\"{t}\" title=\"Save this as ~/{p} in your lab and open it in the editor\">Open in editor ▸</button></div>\n",
        p = esc(path),
        l = esc(lang),
        n = esc(node.unwrap_or("")),
        t = esc(text),
    )
}

/// Every fenced block of `markdown`.
pub fn fenced_blocks(markdown: &str) -> Vec<Fenced> {
    let mut out = Vec::new();
    let mut current: Option<Fenced> = None;
    for (event, range) in Parser::new_ext(markdown, Options::empty()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let (lang, run, node) = parse_info(&info);
                current = Some(Fenced {
                    lang,
                    file: file_of(&info),
                    run,
                    node,
                    text: String::new(),
                    line: markdown[..range.start].matches('\n').count() + 1,
                });
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.text.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(c) = current.take() {
                    out.push(c);
                }
            }
            _ => {}
        }
    }
    out
}

/// What a `lab-map` block shows: its first line, `all` when empty.
///
/// ````markdown
/// ```lab-map
/// networks
/// ```
/// ````
/// Focuses: `all`, `networks`, `images`, `image=NAME` (that image's layers
/// and the images sharing them), `swarm`.
pub fn map_focus(text: &str) -> Result<String, String> {
    let focus = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("all");
    let ok = match focus.split_once('=') {
        Some(("image", name)) => {
            !name.is_empty()
                && name.len() <= 256
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
        }
        Some(_) => false,
        None => matches!(focus, "all" | "networks" | "images" | "swarm"),
    };
    if ok {
        Ok(focus.to_string())
    } else {
        Err(format!(
            "lab-map focus {focus:?}: use all, networks, images, image=NAME or swarm"
        ))
    }
}

/// A `lab-map` block: a live map of the learner's lab (drawn by map.js).
fn map_html(text: &str) -> String {
    let focus = map_focus(text).unwrap_or_else(|_| "all".into());
    let what = match focus.split_once('=') {
        Some((_, name)) => format!("the layers of {name}"),
        None if focus == "all" => "everything".to_string(),
        None => focus.clone(),
    };
    format!(
        "<figure class=\"lab-map\" data-focus=\"{}\"><div class=\"lab-map-view\"></div><figcaption>Your lab, live: {}</figcaption></figure>\n",
        esc(&focus),
        esc(&what)
    )
}

/// HTML-escapes `s`.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The anchor of a heading text.
pub fn anchor(text: &str) -> String {
    let mut a = String::new();
    for ch in text.chars().flat_map(|c| c.to_lowercase()) {
        if ch.is_alphanumeric() {
            a.push(ch);
        } else if !a.ends_with('-') && !a.is_empty() {
            a.push('-');
        }
    }
    a.trim_end_matches('-').to_string()
}

fn exercise_html(ex: &Exercise) -> String {
    let mut h = super::pages::render(&super::pages::ExerciseBox {
        id: &ex.id,
        title: if ex.title.is_empty() {
            &ex.id
        } else {
            &ex.title
        },
        hints: &ex.hints,
        checks: ex
            .checks
            .iter()
            .map(|c| (c.id.clone(), c.describe()))
            .collect(),
    });
    h.push('\n');
    h
}

/// A picture of the lesson folder as an `<img>` served by the lesson route;
/// anything else (an outside URL, a path) is shown as its alt text only,
/// so a lesson page never loads from elsewhere.
fn picture_html(slug: &str, dest: &str, title: &str, alt: &str) -> String {
    if !super::pictures::is_picture_name(dest) {
        return format!("<span class=\"picture-missing\">{}</span>", esc(alt));
    }
    let title = if title.is_empty() {
        String::new()
    } else {
        format!(" title=\"{}\"", esc(title))
    };
    format!(
        "<img class=\"picture\" src=\"/lessons/{}/{}\" alt=\"{}\"{title} loading=\"lazy\">",
        esc(slug),
        esc(dest),
        esc(alt)
    )
}

/// The lesson's body as HTML.
pub fn to_html(lesson: &Lesson) -> String {
    let mut events: Vec<Event> = Vec::new();
    let mut exercises = lesson.exercises.iter();
    let mut in_code: Option<(String, bool, Option<String>, String)> = None;
    let mut in_file: Option<String> = None;
    let mut in_editor_link = false;
    let mut heading: Option<(HeadingLevel, String, Vec<Event>)> = None;
    // An image being read: its destination, title and alt text so far.
    let mut image: Option<(String, String, String)> = None;
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(&lesson.body, opts) {
        if let Some((_, _, _, text)) = in_code.as_mut() {
            match event {
                Event::Text(t) => {
                    text.push_str(&t);
                    continue;
                }
                Event::End(TagEnd::CodeBlock) => {
                    let (lang, run, node, text) = in_code.take().unwrap_or_default();
                    let html = if let Some(path) = in_file.take() {
                        file_block_html(&path, &lang, node.as_deref(), &text)
                    } else if lang == "exercise" {
                        exercises.next().map(exercise_html).unwrap_or_default()
                    } else if lang == "lab-map" {
                        map_html(&text)
                    } else if run {
                        let mut h = super::pages::render(&super::pages::Runnable {
                            lang: &lang,
                            text: &text,
                            node: node.as_deref().unwrap_or(""),
                            command: text.trim_end(),
                        });
                        h.push('\n');
                        h
                    } else {
                        format!(
                            "<pre><code class=\"language-{}\">{}</code></pre>\n",
                            esc(&lang),
                            esc(&text)
                        )
                    };
                    events.push(Event::Html(CowStr::from(html)));
                    continue;
                }
                _ => continue,
            }
        }
        if let Some((_, _, alt)) = image.as_mut() {
            match event {
                Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                Event::End(TagEnd::Image) => {
                    let (dest, title, alt) = image.take().unwrap_or_default();
                    let html = picture_html(&lesson.slug, &dest, &title, &alt);
                    match heading.as_mut() {
                        Some((_, _, inner)) => inner.push(Event::Html(CowStr::from(html))),
                        None => events.push(Event::Html(CowStr::from(html))),
                    }
                }
                _ => {}
            }
            continue;
        }
        if let Event::Start(Tag::Image {
            dest_url, title, ..
        }) = event
        {
            image = Some((dest_url.to_string(), title.to_string(), String::new()));
            continue;
        }
        if let Some((_, text, inner)) = heading.as_mut() {
            match event {
                Event::End(TagEnd::Heading(level)) => {
                    let (_, text, inner) = heading.take().unwrap_or((level, String::new(), vec![]));
                    let mut inner_html = String::new();
                    pulldown_cmark::html::push_html(&mut inner_html, inner.into_iter());
                    let id = anchor(&text);
                    events.push(Event::Html(CowStr::from(format!(
                        "<{level} id=\"{id}\">{inner_html} <a class=\"anchor\" href=\"#{id}\" aria-label=\"Link to this section\">#</a></{level}>\n",
                    ))));
                }
                e => {
                    if let Event::Text(t) | Event::Code(t) = &e {
                        text.push_str(t);
                    }
                    inner.push(e);
                }
            }
            continue;
        }
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(i) => i.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let (lang, run, node) = parse_info(&info);
                in_file = file_of(&info);
                in_code = Some((lang, run, node, String::new()));
            }
            Event::Start(Tag::Link { dest_url, .. }) if dest_url.starts_with(EDITOR_LINK) => {
                let path = &dest_url[EDITOR_LINK.len()..];
                in_editor_link = true;
                events.push(Event::Html(CowStr::from(format!(
                    "<a class=\"open-file\" href=\"#editor\" data-path=\"{p}\" title=\"Open ~/{p} in the editor\">",
                    p = esc(path)
                ))));
            }
            Event::End(TagEnd::Link) if in_editor_link => {
                in_editor_link = false;
                events.push(Event::Html(CowStr::from("</a>")));
            }
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((level, String::new(), vec![]))
            }
            // Raw HTML in lessons is shown as text: lessons are content, not code.
            Event::Html(h) | Event::InlineHtml(h) => events.push(Event::Text(h)),
            e => events.push(e),
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    html
}
