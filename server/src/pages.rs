//! The HTML pages: the classroom (terminal) and the honest "full" page.

/// The classroom page; web/app.js makes or resumes the session.
pub const CLASSROOM: &str = include_str!("../../web/index.html");

/// "The classroom is full": says so, counts down, and tries again by itself.
pub fn full(retry_after: u64) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{retry_after};url=/start">
<title>The classroom is full</title>
<link rel="stylesheet" href="/assets/app.css"></head>
<body class="full"><main>
<h1>The classroom is full</h1>
<p>Every lab is in use right now. <span id="wait">The classroom is full — retrying in {retry_after} s.</span></p>
<p>This page tries again by itself; you do not need to reload it.</p>
</main>
<script>
let left = {retry_after};
setInterval(() => {{ left = Math.max(0, left - 1);
  document.getElementById('wait').textContent = 'The classroom is full — retrying in ' + left + ' s.'; }}, 1000);
</script></body></html>"#
    )
}
