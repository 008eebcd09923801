//! The browser's files, embedded in the binary: ours from web/, xterm.js
//! and its fit add-on copied from web/node_modules by build.rs.

const FILES: &[(&str, &[u8], &str)] = &[
    (
        "app.js",
        include_bytes!("../../web/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "app.css",
        include_bytes!("../../web/app.css"),
        "text/css; charset=utf-8",
    ),
    (
        "term.js",
        include_bytes!("../../web/term.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "lesson.js",
        include_bytes!("../../web/lesson.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "lesson.css",
        include_bytes!("../../web/lesson.css"),
        "text/css; charset=utf-8",
    ),
    (
        "xterm.js",
        include_bytes!(concat!(env!("OUT_DIR"), "/xterm.js")),
        "text/javascript; charset=utf-8",
    ),
    (
        "xterm.css",
        include_bytes!(concat!(env!("OUT_DIR"), "/xterm.css")),
        "text/css; charset=utf-8",
    ),
    (
        "addon-fit.js",
        include_bytes!(concat!(env!("OUT_DIR"), "/addon-fit.js")),
        "text/javascript; charset=utf-8",
    ),
];

/// An embedded file and its content type.
pub fn get(name: &str) -> Option<(&'static [u8], &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bytes, mime)| (*bytes, *mime))
}
