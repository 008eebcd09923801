//! Unit tests for ARG/ENV scoping and stage resolution, read like the rules
//! in Docker's reference.

use std::collections::BTreeMap;

use super::instructions::Command;
use super::{parse_dockerfile, CopyFrom, Dockerfile, GlobalArgs, Scope};

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Builds stage `index` with `build_args` and a base image env, returning
/// the scope's lookup of `name` after every instruction.
fn value_after_each(
    file: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    image_env: &[(&str, &str)],
    name: &str,
) -> Vec<Option<String>> {
    let globals = GlobalArgs::resolve(&file.global_args, build_args, '\\').unwrap();
    let env = image_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut scope = Scope::new('\\', build_args, &globals, env);
    file.stages[0]
        .instructions
        .iter()
        .map(|i| {
            scope.apply(i).unwrap();
            scope.lookup(name)
        })
        .collect()
}

#[test]
fn global_arg_is_invisible_in_stage_until_redeclared() {
    let file = parse_dockerfile("ARG V=1\nFROM alpine:$V\nRUN x\nARG V\nRUN y\n").unwrap();
    let seen = value_after_each(&file, &args(&[]), &[], "V");
    assert_eq!(seen, [None, Some("1".into()), Some("1".into())]);
}

#[test]
fn build_arg_overrides_default_only_when_declared() {
    let file = parse_dockerfile("FROM alpine\nARG A=default\nRUN x\n").unwrap();
    let given = args(&[("A", "cli"), ("B", "unused")]);
    assert_eq!(
        value_after_each(&file, &given, &[], "A"),
        [Some("cli".into()), Some("cli".into())]
    );
    assert_eq!(value_after_each(&file, &given, &[], "B"), [None, None]);
}

#[test]
fn env_shadows_arg_declared_after_it() {
    let file = parse_dockerfile("FROM alpine\nENV V=env\nARG V=arg\nRUN x\n").unwrap();
    let seen = value_after_each(&file, &args(&[("V", "cli")]), &[], "V");
    assert_eq!(
        seen,
        [Some("env".into()), Some("env".into()), Some("env".into())]
    );
}

#[test]
fn base_image_env_shadows_arg_and_is_extended() {
    let file = parse_dockerfile("FROM alpine\nARG PATH=/nope\nENV PATH=/app:$PATH\n").unwrap();
    let seen = value_after_each(&file, &args(&[]), &[("PATH", "/bin")], "PATH");
    assert_eq!(seen, [Some("/bin".into()), Some("/app:/bin".into())]);
}

#[test]
fn run_args_leave_out_shadowed_and_undeclared_proxy_history() {
    let file = parse_dockerfile("FROM alpine\nARG A=1\nARG B=2\nENV B=env\nRUN x\n").unwrap();
    let given = args(&[("http_proxy", "http://p:3128")]);
    let globals = GlobalArgs::default();
    let mut scope = Scope::new('\\', &given, &globals, Vec::new());
    for i in &file.stages[0].instructions {
        scope.apply(i).unwrap();
    }
    let run = scope.run_args();
    assert_eq!(
        run,
        [
            ("A".to_string(), "1".to_string()),
            ("http_proxy".to_string(), "http://p:3128".to_string())
        ]
    );
    assert_eq!(scope.history_args(), [("A".to_string(), "1".to_string())]);
}

#[test]
fn from_expands_with_globals_and_rejects_blank_image() {
    let file = parse_dockerfile("ARG IMG\nFROM ${IMG}\n").unwrap();
    let globals = GlobalArgs::resolve(&file.global_args, &args(&[]), '\\').unwrap();
    let Command::From(from) = &file.stages[0].from.command else {
        panic!()
    };
    let err = globals.expand_from(from, 2, '\\').unwrap_err();
    assert_eq!(
        err.to_string(),
        "dockerfile parse error on line 2: base name (${IMG}) should not be blank"
    );
    let globals =
        GlobalArgs::resolve(&file.global_args, &args(&[("IMG", "busybox")]), '\\').unwrap();
    assert_eq!(globals.expand_from(from, 2, '\\').unwrap().image, "busybox");
}

#[test]
fn copy_from_resolves_earlier_stages_and_images() {
    let file = parse_dockerfile(
        "FROM alpine AS build\nFROM alpine AS Test\nFROM alpine\nCOPY --from=build a b\n",
    )
    .unwrap();
    assert_eq!(
        file.resolve_copy_from(2, "BUILD", 4).unwrap(),
        CopyFrom::Stage(0)
    );
    assert_eq!(
        file.resolve_copy_from(2, "1", 4).unwrap(),
        CopyFrom::Stage(1)
    );
    assert_eq!(
        file.resolve_copy_from(2, "nginx:1", 4).unwrap(),
        CopyFrom::Image("nginx:1".into())
    );
    let err = file.resolve_copy_from(1, "test", 2).unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 2: invalid from flag value test: refers to current or future build stage");
    assert!(file.resolve_copy_from(0, "0", 1).is_err());
    assert_eq!(file.stage_named("TEST").map(|s| s.index), Some(1));
}

#[test]
fn empty_continuation_lines_warn() {
    let file = parse_dockerfile("FROM alpine\nRUN a \\\n\n  b\n").unwrap();
    assert_eq!(file.warnings.len(), 1);
    assert_eq!(file.warnings[0].line, 2);
}
