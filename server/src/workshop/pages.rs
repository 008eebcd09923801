//! The workshop pages: static shells from web/ (their scripts fetch the
//! data), the join form, and the printable access cards with a QR code per
//! seat for rooms where typing a URL is unreliable.

use qrcode::render::svg;
use qrcode::QrCode;

use crate::lessons::render::esc;
use crate::store::workshops::WorkshopRow;

/// The instructor's console: log in, make workshops, open their tools.
pub const INSTRUCTOR: &str = include_str!("../../../web/instructor.html");
/// The live progress board.
pub const BOARD: &str = include_str!("../../../web/board.html");
/// The instructor's projector view of the demo terminal.
pub const PRESENT: &str = include_str!("../../../web/present.html");
/// A learner's workshop page: their lab, the presenter tab, the lessons.
pub const LEARNER: &str = include_str!("../../../web/learner.html");

const FILES: &[(&str, &[u8], &str)] = &[
    (
        "wterm.js",
        include_bytes!("../../../web/wterm.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "board.js",
        include_bytes!("../../../web/board.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "present.js",
        include_bytes!("../../../web/present.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "learner.js",
        include_bytes!("../../../web/learner.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "instructor.js",
        include_bytes!("../../../web/instructor.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "workshop.css",
        include_bytes!("../../../web/workshop.css"),
        "text/css; charset=utf-8",
    ),
];

/// A workshop page's script or style.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, b, m)| (*b, *m))
}

const HEAD: &str = r#"<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/app.css">
<link rel="stylesheet" href="/workshop-assets/workshop.css">"#;

/// The join form; with a workshop known (from `/w/CODE`), its code is filled in.
pub fn join_form(w: Option<&WorkshopRow>, problem: Option<&str>) -> String {
    let (title, code) = match w {
        Some(w) => (esc(&w.title), esc(&w.code)),
        None => ("Join a workshop".to_string(), String::new()),
    };
    let problem = problem
        .map(|p| format!("<p class=\"problem\" role=\"alert\">{}</p>", esc(p)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head>{HEAD}
<title>{title} — Berth</title></head>
<body class="workshop join">
<main>
<h1>{title}</h1>
{problem}
<form id="join">
  <label>Workshop code <input name="code" id="code" value="{code}" autocomplete="off" required maxlength="12"></label>
  <label>Your name <input name="name" id="name" required maxlength="60" placeholder="as the instructor should see it"></label>
  <button type="submit">Join</button>
  <p id="join-status" role="status"></p>
</form>
<p class="small">No account needed. Your lab is yours for the workshop.</p>
</main>
<script>
document.getElementById('join').onsubmit = async (ev) => {{
  ev.preventDefault();
  const status = document.getElementById('join-status');
  status.textContent = 'Preparing your lab…';
  const body = {{ code: document.getElementById('code').value, name: document.getElementById('name').value }};
  const r = await fetch('/api/workshops/join', {{ method: 'POST', headers: {{ 'content-type': 'application/json' }}, body: JSON.stringify(body) }});
  const data = await r.json().catch(() => ({{}}));
  if (r.status === 201) location.href = '/w/' + data.workshop.code;
  else status.textContent = data.message || ('HTTP ' + r.status);
}};
</script>
</body></html>
"#
    )
}

/// The join link as an SVG QR code (no XML declaration, to sit in HTML).
fn qr_svg(url: &str) -> String {
    match QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<svg::Color>()
                .min_dimensions(150, 150)
                .quiet_zone(true)
                .build();
            match svg.find("<svg") {
                Some(i) => svg[i..].to_string(),
                None => svg,
            }
        }
        Err(_) => String::new(),
    }
}

/// Printable access cards: one per seat, with the code, the link and its
/// QR code.
pub fn cards(w: &WorkshopRow, base: &str) -> String {
    let url = format!("{base}/w/{}", w.code);
    let qr = qr_svg(&url);
    let mut cards = String::new();
    for seat in 1..=w.seats {
        cards.push_str(&format!(
            r#"<section class="card">
<h2>{title}</h2>
<p class="seat">Seat {seat}</p>
<div class="qr" aria-label="QR code of the join link">{qr}</div>
<p>Scan the code, or open <strong class="url">{join}</strong> and enter</p>
<p class="code">{code}</p>
</section>
"#,
            title = esc(&w.title),
            join = esc(&format!("{base}/join")),
            code = esc(&w.code),
        ));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head>{HEAD}
<title>Access cards — {title}</title></head>
<body class="workshop cards-page">
<header class="no-print"><strong class="brand">Berth</strong> <span>{seats} access cards for {title}</span>
<button type="button" onclick="print()">Print</button></header>
<div class="cards">
{cards}</div>
</body></html>
"#,
        title = esc(&w.title),
        seats = w.seats,
    )
}
