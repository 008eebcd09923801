//! Copies the browser terminal's files (xterm.js and its fit add-on from
//! web/node_modules, installed by scripts/setup.sh) next to the build so
//! they are embedded in the binary. Without them a stub explains what to do.
//!
//! The editor's CodeMirror bundle (`web/dist/codemirror.js`, made by
//! `npm run build` in web/, which scripts/setup.sh runs) has no stub: a
//! build without it fails here and says how to make it.

use std::path::Path;

const VENDORED: &[(&str, &str)] = &[
    ("@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("@xterm/xterm/css/xterm.css", "xterm.css"),
    ("@xterm/addon-fit/lib/addon-fit.js", "addon-fit.js"),
];

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/node_modules");
    for (from, to) in VENDORED {
        let src = modules.join(from);
        println!("cargo:rerun-if-changed={}", src.display());
        let bytes = std::fs::read(&src).unwrap_or_else(|_| {
            format!(
                "console.error('berth: {from} was not installed when berth was built; run scripts/setup.sh (npm install in web/) and rebuild');"
            )
            .into_bytes()
        });
        std::fs::write(Path::new(&out).join(to), bytes).expect("write to OUT_DIR");
    }
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist/codemirror.js");
    println!("cargo:rerun-if-changed={}", bundle.display());
    let bytes = std::fs::read(&bundle).unwrap_or_else(|_| {
        panic!(
            "\n\nberth: the editor's bundle {} is missing.\n\
             Run scripts/setup.sh (or: cd web && npm install && npm run build) and build again.\n\n",
            bundle.display()
        )
    });
    std::fs::write(Path::new(&out).join("codemirror.js"), bytes).expect("write to OUT_DIR");
}
