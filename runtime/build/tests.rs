//! The fixture corpus: one folder per case under `build/testdata/`.
//!
//! Each case holds a `Dockerfile` and either `expected.txt` (the parsed
//! [`Dockerfile`] rendered with `{:#?}`) or `error.txt` (the exact error
//! message). A case may add `expanded.txt`: every stage expanded instruction
//! by instruction with the `--build-arg`s listed in `build-args` (one
//! `KEY=value` a line), with each instruction's history `created_by`.
//! Run with `BERTH_BLESS=1` to (re)write the expected files, then review them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::created_by;
use super::instructions::Command;
use super::{parse_dockerfile, Dockerfile, GlobalArgs, Scope};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/testdata");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("testdata folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Renders each stage expanded in scope, as the builder would see it.
fn render_expanded(file: &Dockerfile, build_args: &BTreeMap<String, String>) -> String {
    let escape = file.directives.escape;
    let mut out = String::new();
    let globals = match GlobalArgs::resolve(&file.global_args, build_args, escape) {
        Ok(g) => g,
        Err(e) => return format!("error: {e}\n"),
    };
    for stage in &file.stages {
        let Command::From(from) = &stage.from.command else {
            unreachable!("a stage starts with FROM")
        };
        match globals.expand_from(from, stage.from.line, escape) {
            Ok(f) => writeln!(
                out,
                "stage {}: FROM {} platform={:?}",
                stage.index, f.image, f.platform
            )
            .unwrap(),
            Err(e) => writeln!(out, "stage {}: error: {e}", stage.index).unwrap(),
        }
        let mut scope = Scope::new(escape, build_args, &globals, Vec::new());
        let mut shell = created_by::default_shell();
        for instruction in &stage.instructions {
            match scope.apply(instruction) {
                Ok(command) => {
                    writeln!(out, "  line {}: {command:?}", instruction.line).unwrap();
                    if matches!(command, Command::Run(_)) {
                        writeln!(out, "    run_args: {:?}", scope.run_args()).unwrap();
                    }
                    let history = match &command {
                        Command::Run(cmd) => {
                            Some(created_by::run(&shell, cmd, &scope.history_args()))
                        }
                        Command::Copy(c) => {
                            Some(created_by::copy(&shell, "COPY", "file:<digest>", &c.dest))
                        }
                        Command::Add(a) => {
                            Some(created_by::copy(&shell, "ADD", "file:<digest>", &a.dest))
                        }
                        other => created_by::nop(&shell, other),
                    };
                    if let Command::Shell(s) = &command {
                        shell = s.clone();
                    }
                    if let Some(h) = history {
                        writeln!(out, "    created_by: {h}").unwrap();
                    }
                }
                Err(e) => writeln!(out, "  line {}: error: {e}", instruction.line).unwrap(),
            }
        }
        writeln!(out, "  env: {:?}", scope.env()).unwrap();
    }
    out
}

fn check(case: &Path, file_name: &str, actual: &str, bless: bool, failures: &mut Vec<String>) {
    let path = case.join(file_name);
    if bless {
        std::fs::write(&path, actual).expect("write expected file");
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{}: {file_name} differs\n--- expected\n{expected}\n--- actual\n{actual}",
            case.display()
        )),
        Err(_) => failures.push(format!(
            "{}: missing {file_name}; actual:\n{actual}",
            case.display()
        )),
    }
}

#[test]
fn dockerfile_fixtures() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "expected the whole corpus, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case.join("Dockerfile")).expect("read Dockerfile");
        match parse_dockerfile(&text) {
            Ok(file) => {
                if case.join("error.txt").exists() && !bless {
                    failures.push(format!(
                        "{}: parsed but an error was expected",
                        case.display()
                    ));
                    continue;
                }
                check(
                    case,
                    "expected.txt",
                    &format!("{file:#?}\n"),
                    bless,
                    &mut failures,
                );
                let args_path = case.join("build-args");
                if case.join("expanded.txt").exists() || args_path.exists() {
                    let build_args: BTreeMap<String, String> = std::fs::read_to_string(&args_path)
                        .unwrap_or_default()
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    let rendered = render_expanded(&file, &build_args);
                    check(case, "expanded.txt", &rendered, bless, &mut failures);
                }
            }
            Err(e) => {
                let expects_parse =
                    case.join("expected.txt").exists() || case.join("expanded.txt").exists();
                if expects_parse && !bless {
                    failures.push(format!(
                        "{}: failed with {e} but a parse was expected",
                        case.display()
                    ));
                    continue;
                }
                check(case, "error.txt", &format!("{e}\n"), bless, &mut failures);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
