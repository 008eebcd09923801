//! The lesson pages as askama templates (server/templates/): the
//! catalogue, a lesson beside the terminal, "no such lesson", and the
//! pieces of a lesson's body (runnable blocks, exercise boxes).

use askama::Template;

/// A lesson as the catalogue lists it.
pub struct CatalogueEntry {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub minutes: u32,
    pub done: usize,
    pub total: usize,
    /// `new`, `started` or `done`.
    pub state: &'static str,
}

/// `/`: the lessons in order with the learner's progress.
#[derive(Template)]
#[template(path = "catalogue.html")]
pub struct Catalogue {
    pub lessons: Vec<CatalogueEntry>,
    /// Whether the browser has a live session.
    pub live: bool,
}

/// A neighbouring lesson in the pager.
pub struct Neighbour {
    pub slug: String,
    pub title: String,
}

/// `/lessons/{slug}`: the lesson beside the terminal.
#[derive(Template)]
#[template(path = "lesson.html")]
pub struct LessonPage {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub minutes: u32,
    /// The rendered markdown (already HTML, escaped where it must be).
    pub body: String,
    pub prev: Option<Neighbour>,
    pub next: Option<Neighbour>,
    /// Images the lesson needs that the classroom does not have.
    pub missing_images: Vec<String>,
}

/// The 404 of `/lessons/{slug}`.
#[derive(Template)]
#[template(path = "no_lesson.html")]
pub struct NoLesson {
    pub slug: String,
}

/// An exercise box: hints folded, one line per check, a Check button.
#[derive(Template)]
#[template(path = "exercise.html")]
pub struct ExerciseBox<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub hints: &'a [String],
    /// `(check id, description)`.
    pub checks: Vec<(String, String)>,
}

/// A code block with a Run button that types it into a node's terminal.
#[derive(Template)]
#[template(path = "runnable.html")]
pub struct Runnable<'a> {
    pub lang: &'a str,
    pub text: &'a str,
    /// The node whose terminal it goes to; empty for the current one.
    pub node: &'a str,
    pub command: &'a str,
}

/// Renders a template; a failure (which our templates cannot produce for
/// plain strings and numbers) becomes a line of text rather than a panic.
pub fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering a page failed");
        format!("<!-- rendering failed: {e} -->")
    })
}
