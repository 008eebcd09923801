//! The HTML pages: the classroom (terminal) and the honest "full" page
//! (an askama template, server/templates/full.html).

use askama::Template;

/// The classroom page; web/app.js makes or resumes the session.
pub const CLASSROOM: &str = include_str!("../../web/index.html");

#[derive(Template)]
#[template(path = "full.html")]
struct Full {
    retry_after: u64,
}

/// "The classroom is full": says so, counts down, and tries again by itself.
pub fn full(retry_after: u64) -> String {
    crate::lessons::pages::render(&Full { retry_after })
}
