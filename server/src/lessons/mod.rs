//! Lessons: the on-disk format (see lessons/README.md), the loader with its
//! reload-on-change, validation for `berth lesson check`, and rendering.
//!
//! A lesson is a directory `NN-slug/` holding `lesson.md`: TOML front matter
//! between `+++` lines, then markdown. Exercises are fenced ```` ```exercise ````
//! blocks with TOML inside (id, title, hints, `[[check]]` tables); runnable
//! commands are fenced blocks whose info string has the word `run`.
//!
//! - this file: the format, loading, reloading and validation.
//! - [`pictures`]: SVG pictures in lessons, their checks and headers.
//! - [`render`]: markdown to HTML in named stages (anchors, runnable
//!   blocks, exercise boxes).
//! - [`pages`]: the askama templates of the pages (server/templates/).
//! - [`setup`]: bringing a lab to a lesson's starting point (nodes, files,
//!   per-node setup), once per lab, again after a reset.
//! - [`web`]: the routes: catalogue, lesson page, checks, progress, ports.

pub mod pages;
pub mod pictures;
pub mod render;
pub mod setup;
pub mod web;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

use crate::grading::Check;

/// What the front matter says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub minutes: u32,
    /// Nodes the lesson uses: a session with fewer gets the missing ones
    /// added when the lesson opens.
    #[serde(default = "one")]
    pub nodes: usize,
    /// Files of the lesson directory copied into every node's /root.
    #[serde(default)]
    pub files: Vec<String>,
    /// A folder of `_shared/` (beside the lessons) whose files are all
    /// copied into every node's /root before the lesson's own `files`
    /// (so a lesson's file of the same path wins).
    #[serde(default)]
    pub shared: Option<String>,
    /// Shell commands run in node1's lab to reach the starting point.
    #[serde(default)]
    pub setup: Vec<String>,
    /// Shell commands for other nodes (`node2 = ["…"]`), run after node1's
    /// `setup`, node by node in order of their names.
    #[serde(default)]
    pub setup_nodes: std::collections::BTreeMap<String, Vec<String>>,
    /// Images the lesson uses beyond busybox (`["debian:bookworm-slim"]`):
    /// `berth lesson check` names those the classroom lacks, and the page
    /// says so instead of the learner meeting a failed pull.
    #[serde(default)]
    pub images: Vec<String>,
}

impl FrontMatter {
    /// Each node's setup commands, node1 first; nodes without any are left out.
    pub fn setup_plan(&self) -> Vec<(String, Vec<String>)> {
        let mut plan = Vec::new();
        let mut first = self.setup.clone();
        if let Some(more) = self.setup_nodes.get("node1") {
            first.extend(more.iter().cloned());
        }
        if !first.is_empty() {
            plan.push(("node1".to_string(), first));
        }
        let mut others: Vec<(&String, &Vec<String>)> = self
            .setup_nodes
            .iter()
            .filter(|(n, c)| n.as_str() != "node1" && !c.is_empty())
            .collect();
        others.sort_by_key(|(n, _)| node_number(n));
        plan.extend(others.into_iter().map(|(n, c)| (n.clone(), c.clone())));
        plan
    }

    /// Whether opening the lesson changes the lab (files or setup).
    pub fn prepares(&self) -> bool {
        !self.files.is_empty() || self.shared.is_some() || !self.setup_plan().is_empty()
    }
}

/// `3` for `node3`.
pub fn node_number(name: &str) -> Option<usize> {
    name.strip_prefix("node").and_then(|n| n.parse().ok())
}

fn one() -> usize {
    1
}

/// Most nodes a lesson may ask for.
pub const MAX_NODES: usize = 5;

/// An exercise as declared in its ```` ```exercise ```` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exercise {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub hints: Vec<String>,
    /// The node the checks look at (default node1).
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    /// Line of the block in lesson.md (1-based), for messages.
    #[serde(skip)]
    pub line: usize,
}

/// A loaded lesson.
#[derive(Debug, Clone)]
pub struct Lesson {
    /// `01-vms-vs-containers` (the directory name).
    pub slug: String,
    pub dir: PathBuf,
    pub meta: FrontMatter,
    /// The markdown after the front matter.
    pub body: String,
    /// Line in lesson.md where `body` starts (0-based offset).
    pub body_line: usize,
    pub exercises: Vec<Exercise>,
}

impl Lesson {
    /// The nodes a session needs for this lesson (never past [`MAX_NODES`],
    /// even for a lesson `lesson check` would refuse).
    pub fn node_count(&self) -> usize {
        self.meta.nodes.clamp(1, MAX_NODES)
    }

    pub fn exercise(&self, id: &str) -> Option<&Exercise> {
        self.exercises.iter().find(|e| e.id == id)
    }

    /// The files copied into each node's /root: `(source on the host, path
    /// under /root)`, the shared folder's first, then the lesson's own.
    pub fn copies(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        if let Some(dir) = self.shared_dir() {
            for rel in files_under(&dir) {
                out.push((dir.join(&rel), rel));
            }
        }
        for f in &self.meta.files {
            out.push((self.dir.join(f), f.clone()));
        }
        out
    }

    /// `lessons/_shared/NAME` of the front matter's `shared`.
    pub fn shared_dir(&self) -> Option<PathBuf> {
        let name = self.meta.shared.as_deref()?;
        Some(self.dir.parent()?.join(SHARED).join(name))
    }
}

/// The folder beside the lessons holding files lessons share.
pub const SHARED: &str = "_shared";

/// Regular files under `dir`, as sorted `/`-separated relative paths
/// (symlinks are not followed: a shared folder holds plain files).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let rel = format!("{prefix}{name}");
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push((e.path(), format!("{rel}/"))),
                Ok(t) if t.is_file() => out.push(rel),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// A mistake in a lesson, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Is `name` a lesson directory name (`NN-slug`)?
fn is_slug(name: &str) -> bool {
    let mut parts = name.splitn(2, '-');
    let num = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("");
    !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit())
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Parses one lesson directory; problems are collected, the lesson is
/// returned when it is usable.
pub fn parse_lesson(dir: &Path, problems: &mut Vec<Problem>) -> Option<Lesson> {
    let slug = dir.file_name()?.to_string_lossy().to_string();
    let file = dir.join("lesson.md");
    let mut problem = |line: usize, message: String| {
        problems.push(Problem {
            file: file.clone(),
            line,
            message,
        })
    };
    if !is_slug(&slug) {
        problem(
            0,
            format!("directory name {slug:?} is not NN-slug (digits, a dash, lowercase words)"),
        );
    }
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            problem(0, format!("cannot read: {e}"));
            return None;
        }
    };
    let Some(rest) = text.strip_prefix("+++\n") else {
        problem(
            1,
            "no front matter: the file must begin with a +++ line".into(),
        );
        return None;
    };
    let Some(end) = rest.find("\n+++\n").or_else(|| {
        rest.strip_suffix("\n+++")
            .map(|s| s.len())
            .filter(|_| rest.ends_with("\n+++"))
    }) else {
        problem(1, "front matter is not closed by a +++ line".into());
        return None;
    };
    let front = &rest[..end];
    let body_start = (4 + end + 5).min(text.len());
    let body = text[body_start..].to_string();
    let body_line = text[..body_start].matches('\n').count();
    let meta: FrontMatter = match toml::from_str(front) {
        Ok(m) => m,
        Err(e) => {
            let line = e
                .span()
                .map(|s| front[..s.start].matches('\n').count() + 2)
                .unwrap_or(1);
            problem(line, format!("front matter: {}", e.message()));
            return None;
        }
    };
    if meta.title.trim().is_empty() {
        problem(2, "front matter: title is empty".into());
    }
    if meta.nodes == 0 {
        problem(2, "front matter: nodes must be at least 1".into());
    }
    if meta.nodes > MAX_NODES {
        problem(
            2,
            format!("front matter: nodes must be at most {MAX_NODES}"),
        );
    }
    for node in meta.setup_nodes.keys() {
        if !matches!(node_number(node), Some(n) if n >= 1 && n <= meta.nodes) {
            problem(
                2,
                format!(
                    "front matter: setup_nodes names {node:?}, not one of the lesson's {} node(s)",
                    meta.nodes
                ),
            );
        }
    }
    for image in &meta.images {
        if let Err(e) = berth_runtime::image::reference::Reference::parse(image) {
            problem(2, format!("images: {image:?}: {e}"));
        }
    }
    for f in &meta.files {
        if f.starts_with('/') || f.split('/').any(|p| p == "..") {
            problem(2, format!("files: {f:?} must be a path inside the lesson"));
        } else if !dir.join(f).is_file() {
            problem(
                2,
                format!("files: {f:?} does not exist in {}", dir.display()),
            );
        }
    }
    if let Some(name) = &meta.shared {
        let simple = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        let folder = dir.parent().map(|p| p.join(SHARED).join(name));
        if !simple {
            problem(
                2,
                format!("shared: {name:?} must be a folder name of {SHARED}/"),
            );
        } else if !folder.as_ref().is_some_and(|f| f.is_dir()) {
            problem(
                2,
                format!("shared: no folder {SHARED}/{name} beside the lessons"),
            );
        }
    }
    for p in pictures::pictures(&body) {
        let line = body_line + p.line;
        if !pictures::is_picture_name(&p.dest) {
            problem(
                line,
                format!(
                    "picture {:?}: a picture is an .svg file in the lesson folder, named in lowercase (layers.svg)",
                    p.dest
                ),
            );
            continue;
        }
        if p.alt.trim().is_empty() {
            problem(
                line,
                format!(
                    "picture {:?} has no alt text: say what it shows, ![what it shows]({})",
                    p.dest, p.dest
                ),
            );
        }
        match std::fs::read(dir.join(&p.dest)) {
            Err(_) => problem(
                line,
                format!("picture {:?} does not exist in {}", p.dest, dir.display()),
            ),
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if let Err(why) = pictures::check_svg(&text) {
                    problem(line, format!("picture {:?} {why}", p.dest));
                }
            }
        }
    }
    let mut exercises = Vec::new();
    let mut seen = BTreeSet::new();
    for block in render::fenced_blocks(&body) {
        let line = body_line + block.line;
        if let Some(file) = &block.file {
            if file.is_empty() || berth_runtime::container::files::lab_path("/root", file).is_none()
            {
                problem(
                    line,
                    format!("file={file:?}: a path relative to the lab's home, without `..`"),
                );
            }
        }
        if block.lang == "lab-map" {
            if let Err(m) = render::map_focus(&block.text) {
                problem(line, m);
            }
            continue;
        }
        if block.lang != "exercise" {
            continue;
        }
        let mut ex: Exercise = match toml::from_str(&block.text) {
            Ok(e) => e,
            Err(e) => {
                let at = e
                    .span()
                    .map(|s| block.text[..s.start].matches('\n').count() + 1)
                    .unwrap_or(0);
                problem(line + at, format!("exercise: {}", e.message()));
                continue;
            }
        };
        ex.line = line;
        if !seen.insert(ex.id.clone()) {
            problem(line, format!("exercise id {:?} is used twice", ex.id));
        }
        if ex.checks.is_empty() {
            problem(line, format!("exercise {:?} has no [[check]]", ex.id));
        }
        if let Some(node) = &ex.node {
            let n = node_number(node);
            if !matches!(n, Some(n) if n >= 1 && n <= meta.nodes) {
                problem(
                    line,
                    format!(
                        "exercise {:?}: node {node:?} is not one of the lesson's {} node(s)",
                        ex.id, meta.nodes
                    ),
                );
            }
        }
        let ids: Vec<String> = ex.checks.iter().map(|c| c.id.clone()).collect();
        for (i, c) in ex.checks.iter().enumerate() {
            if let Err(m) = c.validate() {
                problem(line, format!("exercise {:?}, check {:?}: {m}", ex.id, c.id));
            }
            if ids[..i].contains(&c.id) {
                problem(
                    line,
                    format!("exercise {:?}: check id {:?} is used twice", ex.id, c.id),
                );
            }
            for dep in &c.after {
                if !ids[..i].contains(dep) {
                    problem(
                        line,
                        format!(
                            "exercise {:?}, check {:?}: after {dep:?} names no earlier check of this exercise",
                            ex.id, c.id
                        ),
                    );
                }
            }
        }
        exercises.push(ex);
    }
    Some(Lesson {
        slug,
        dir: dir.to_path_buf(),
        meta,
        body,
        body_line,
        exercises,
    })
}

/// Loads every lesson under `root`, in order of their names.
pub fn load_dir(root: &Path) -> (Vec<Lesson>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(root) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            // `_shared/` and other `_` folders hold files, not lessons.
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('_'))
            })
            .collect(),
        Err(e) => {
            problems.push(Problem {
                file: root.to_path_buf(),
                line: 0,
                message: format!("cannot read the lessons directory: {e}"),
            });
            return (Vec::new(), problems);
        }
    };
    dirs.sort();
    let lessons = dirs
        .iter()
        .filter_map(|d| parse_lesson(d, &mut problems))
        .collect();
    (lessons, problems)
}

/// The newest modification time under `root` (directories and files).
fn newest(root: &Path) -> Option<SystemTime> {
    let mut best = std::fs::metadata(root).and_then(|m| m.modified()).ok();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if let Ok(t) = m.modified() {
                best = best.max(Some(t));
            }
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    best
}

/// The lessons of a directory, reloaded when a file under it changes
/// (checked at most once a second, by modification times).
pub struct Library {
    root: PathBuf,
    state: Mutex<LibraryState>,
}

struct LibraryState {
    lessons: Arc<Vec<Lesson>>,
    stamp: Option<SystemTime>,
    checked: std::time::Instant,
}

impl Library {
    pub fn open(root: &Path) -> Self {
        let (lessons, problems) = load_dir(root);
        for p in &problems {
            tracing::warn!(problem = %p, "lesson problem");
        }
        Self {
            root: root.to_path_buf(),
            state: Mutex::new(LibraryState {
                lessons: Arc::new(lessons),
                stamp: newest(root),
                checked: std::time::Instant::now(),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current lessons, reloading first if something changed.
    pub fn lessons(&self) -> Arc<Vec<Lesson>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.checked.elapsed() >= std::time::Duration::from_millis(500) {
            s.checked = std::time::Instant::now();
            let stamp = newest(&self.root);
            if stamp != s.stamp {
                let (lessons, problems) = load_dir(&self.root);
                for p in &problems {
                    tracing::warn!(problem = %p, "lesson problem");
                }
                tracing::info!(lessons = lessons.len(), "lessons reloaded");
                s.lessons = Arc::new(lessons);
                s.stamp = stamp;
            }
        }
        s.lessons.clone()
    }

    /// The lesson `slug` with its neighbours (previous, next).
    pub fn find(&self, slug: &str) -> Option<(Lesson, Option<Lesson>, Option<Lesson>)> {
        let all = self.lessons();
        let i = all.iter().position(|l| l.slug == slug)?;
        let prev = i.checked_sub(1).map(|j| all[j].clone());
        Some((all[i].clone(), prev, all.get(i + 1).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, slug: &str, title: &str) {
        let d = dir.join(slug);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("lesson.md"),
            format!("+++\ntitle = \"{title}\"\nminutes = 3\n+++\n\n# {title}\n\n```sh run\necho hi\n```\n"),
        )
        .unwrap();
    }

    #[test]
    fn a_changed_or_added_lesson_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "01-one", "One");
        let lib = Library::open(dir.path());
        assert_eq!(lib.lessons()[0].meta.title, "One");
        std::thread::sleep(std::time::Duration::from_millis(600));
        write(dir.path(), "01-one", "One again");
        write(dir.path(), "02-two", "Two");
        let all = lib.lessons();
        let titles: Vec<&str> = all.iter().map(|l| l.meta.title.as_str()).collect();
        assert_eq!(titles, ["One again", "Two"]);
        let (one, prev, next) = lib.find("01-one").unwrap();
        assert!(prev.is_none());
        assert_eq!(next.unwrap().slug, "02-two");
        let html = render::to_html(&one);
        assert!(
            html.contains("<h1 id=\"one-again\">One again <a class=\"anchor\" href=\"#one-again\""),
            "{html}"
        );
        assert!(html.contains("data-command=\"echo hi\""), "{html}");
    }

    #[test]
    fn a_lab_map_block_becomes_a_live_map_figure_and_check_refuses_a_bad_focus() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("01-map");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("lesson.md"),
            "+++\ntitle = \"M\"\n+++\n\n```lab-map\nimage=web:v1\n```\n\n```lab-map\n```\n\n```lab-map\ncontainers\n```\n\n```lab-map\nimage=\"><script>\n```\n",
        )
        .unwrap();
        let (lessons, problems) = load_dir(dir.path());
        let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let file = d.join("lesson.md").display().to_string();
        assert_eq!(
            messages,
            [
                format!("{file}:12: lab-map focus \"containers\": use all, networks, images, image=NAME or swarm"),
                format!("{file}:16: lab-map focus \"image=\\\"><script>\": use all, networks, images, image=NAME or swarm"),
            ]
        );
        let html = render::to_html(&lessons[0]);
        assert!(html.contains("<figure class=\"lab-map\" data-focus=\"image=web:v1\"><div class=\"lab-map-view\"></div><figcaption>Your lab, live: the layers of web:v1</figcaption></figure>"), "{html}");
        assert!(html.contains("data-focus=\"all\""), "{html}");
        // A focus the check refused is drawn as the whole map, never as markup.
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn raw_html_in_a_lesson_is_shown_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("01-x");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("lesson.md"),
            "+++\ntitle = \"X\"\n+++\n\n<script>alert(1)</script>\n",
        )
        .unwrap();
        let (lessons, problems) = load_dir(dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        let html = render::to_html(&lessons[0]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn lesson_check_reports_a_missing_picture_a_missing_alt_and_an_unsafe_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("01-pics");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ok.svg"), "<svg viewBox=\"0 0 1 1\"></svg>").unwrap();
        std::fs::write(d.join("bad.svg"), "<svg onload=\"x()\"></svg>").unwrap();
        std::fs::write(
            d.join("lesson.md"),
            "+++\ntitle = \"P\"\n+++\n\n![Two stacks](ok.svg)\n\n![](ok.svg)\n\n![Gone](gone.svg)\n\n![Bad](bad.svg)\n\n![Far](https://e.example/x.svg)\n",
        )
        .unwrap();
        let (lessons, problems) = load_dir(dir.path());
        let messages: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let file = d.join("lesson.md").display().to_string();
        assert_eq!(
            messages,
            [
                format!("{file}:7: picture \"ok.svg\" has no alt text: say what it shows, ![what it shows](ok.svg)"),
                format!("{file}:9: picture \"gone.svg\" does not exist in {}", d.display()),
                format!("{file}:11: picture \"bad.svg\" has an event handler (onload=)"),
                format!("{file}:13: picture \"https://e.example/x.svg\": a picture is an .svg file in the lesson folder, named in lowercase (layers.svg)"),
            ]
        );
        let html = render::to_html(&lessons[0]);
        assert!(
            html.contains("<img class=\"picture\" src=\"/lessons/01-pics/ok.svg\" alt=\"Two stacks\" loading=\"lazy\">"),
            "{html}"
        );
        assert!(!html.contains("e.example"), "{html}");
    }

    #[test]
    fn a_lesson_uses_a_shared_folder_and_its_own_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("_shared/app/www");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("index.html"), "shared").unwrap();
        std::fs::write(dir.path().join("_shared/app/Dockerfile"), "FROM x").unwrap();
        let d = dir.path().join("01-uses");
        std::fs::create_dir_all(d.join("www")).unwrap();
        std::fs::write(d.join("www/index.html"), "own").unwrap();
        std::fs::write(
            d.join("lesson.md"),
            "+++\ntitle = \"U\"\nshared = \"app\"\nfiles = [\"www/index.html\"]\n+++\n\nhi\n",
        )
        .unwrap();
        let d2 = dir.path().join("02-typo");
        std::fs::create_dir_all(&d2).unwrap();
        std::fs::write(
            d2.join("lesson.md"),
            "+++\ntitle = \"T\"\nshared = \"nope\"\n+++\n\nhi\n",
        )
        .unwrap();
        let (lessons, problems) = load_dir(dir.path());
        // `_shared` is not a lesson; the typo is reported.
        assert_eq!(lessons.len(), 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .message
            .contains("shared: no folder _shared/nope beside the lessons"));
        let copies: Vec<(String, String)> = lessons[0]
            .copies()
            .into_iter()
            .map(|(src, to)| (std::fs::read_to_string(src).unwrap(), to))
            .collect();
        assert_eq!(
            copies,
            [
                ("FROM x".to_string(), "Dockerfile".to_string()),
                ("shared".to_string(), "www/index.html".to_string()),
                ("own".to_string(), "www/index.html".to_string()),
            ]
        );
    }
}
