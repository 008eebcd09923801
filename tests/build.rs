//! `docker build` through the real CLI against Berth's classic builder:
//! what the learner sees in the progress output, in `docker images`,
//! `history` and `inspect`, and in containers of the built images.

mod common;

use std::path::Path;
use std::time::Duration;

use common::engine::{eventually, Engine};
use common::Run;

/// A build context in a temporary directory.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-build-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The repository's Dockerfile.example with its files, as a context.
fn example_context() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = context(&[]);
    std::fs::copy(
        repo.join("Dockerfile.example"),
        dir.path().join("Dockerfile.example"),
    )
    .unwrap();
    std::fs::copy(repo.join(".dockerignore"), dir.path().join(".dockerignore")).unwrap();
    copy_dir(&repo.join("example"), &dir.path().join("example"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// `docker build <args>` that must succeed; returns what it printed.
fn build(e: &Engine, args: &[&str]) -> String {
    let run = e.docker(&[&["build"], args].concat());
    assert_eq!(
        run.code,
        0,
        "docker build {args:?} failed:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        e.log()
    );
    run.stdout
}

fn cache_hits(output: &str) -> usize {
    output.lines().filter(|l| *l == " ---> Using cache").count()
}

fn layers(e: &Engine, image: &str) -> Vec<String> {
    let out = e.ok(&[
        "image",
        "inspect",
        "-f",
        "{{range .RootFS.Layers}}{{println .}}{{end}}",
        image,
    ]);
    out.lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn dockerfile_example_builds_and_its_image_serves_the_page() {
    let e = Engine::start();
    let ctx = example_context();
    let out = build(
        &e,
        &[
            "-f",
            &format!("{}/Dockerfile.example", path(&ctx)),
            "-t",
            "example",
            "-t",
            "example:v1",
            path(&ctx),
        ],
    );
    assert!(
        out.starts_with("Sending build context to Docker daemon"),
        "{out}"
    );
    assert!(
        out.contains(
            "Step 1/27 : ARG BASE=busybox:latest\nStep 2/27 : FROM scratch AS assets\n ---> \n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "Step 16/27 : FROM runtime-base\n# Executing 1 build trigger\n ---> Running in "
        ),
        "{out}"
    );
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Removing intermediate container "), "{out}");
    assert!(
        out.contains("Successfully tagged example:latest\n"),
        "{out}"
    );
    assert!(out.contains("Successfully tagged example:v1\n"), "{out}");
    let built = out
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap();
    assert_eq!(e.ok(&["images", "-q", "example:v1"]).trim(), built);

    e.ok(&["run", "-d", "--name", "web", "example"]);
    let mut page = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            page = e
                .docker(&["exec", "web", "wget", "-qO-", "localhost:8080"])
                .stdout;
            page.contains("Hello from a Berth-built image")
        }),
        "page never served: {page}"
    );
    assert!(page.contains("version 1.0."), "{page}");
    let css = e.ok(&["exec", "web", "wget", "-qO-", "localhost:8080/style.css"]);
    assert!(
        css.contains("font-family"),
        "ADD unpacked the archive: {css}"
    );
    assert_eq!(e.ok(&["exec", "web", "id", "-un"]).trim(), "www-data");
    assert_eq!(
        e.ok(&["exec", "web", "cat", "/etc/built-on"]).trim(),
        "built on runtime-base"
    );
    let owners = e.ok(&[
        "exec",
        "web",
        "stat",
        "-c",
        "%U:%G %n",
        "/srv/www/index.html",
    ]);
    assert_eq!(owners.trim(), "www-data:www-data /srv/www/index.html");
    let missing = e.docker(&["exec", "web", "ls", "/srv/www/notes.md"]);
    assert_ne!(missing.code, 0, "the glob copied only .html files");
}

#[test]
fn history_and_inspect_show_what_the_dockerfile_said() {
    let e = Engine::start();
    let ctx = example_context();
    let quiet = build(
        &e,
        &[
            "-q",
            "-f",
            &format!("{}/Dockerfile.example", path(&ctx)),
            "--build-arg",
            "VERSION=2.5",
            "-t",
            "example",
            path(&ctx),
        ],
    );
    let id = e.ok(&["image", "inspect", "-f", "{{.Id}}", "example"]);
    assert_eq!(quiet, id, "-q prints only the image ID");
    let config = e.ok(&["image", "inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}} {{json .Config.ExposedPorts}} {{json .Config.Volumes}} {{.Config.StopSignal}} {{index .Config.Labels \"org.opencontainers.image.title\"}}", "example"]);
    assert_eq!(
        config.trim(),
        r#"["httpd","-f","-v"] ["-p","8080","-h","/srv/www"] www-data {"8080/tcp":{}} {"/srv/www/uploads":{}} SIGTERM Berth example"#
    );
    let health = e.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck}}",
        "example",
    ]);
    assert!(
        health.contains(r#""Interval":10000000000"#) && health.contains(r#""Retries":3"#),
        "{health}"
    );
    let env = e.ok(&["image", "inspect", "-f", "{{json .Config.Env}}", "example"]);
    assert!(
        env.contains("PORT=8080") && env.contains("SITE=/srv/www"),
        "{env}"
    );
    assert!(
        !env.contains("VERSION"),
        "build args stay out of the image: {env}"
    );

    let history = e.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "example",
    ]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(
        lines[0],
        r#"/bin/sh -c #(nop)  CMD ["-p" "8080" "-h" "/srv/www"]"#
    );
    assert_eq!(
        lines[1],
        r#"/bin/sh -c #(nop)  ENTRYPOINT ["httpd" "-f" "-v"]"#
    );
    assert!(
        lines.contains(&"/bin/sh -c #(nop)  VOLUME [/srv/www/uploads]"),
        "{history}"
    );
    assert!(
        lines.contains(&"/bin/sh -c #(nop)  USER www-data"),
        "{history}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("/bin/sh -c #(nop) COPY --chown=www-data:www-datadir:")
                && l.ends_with(" in /srv/www/ ")
        ),
        "{history}"
    );
    // Only the final stage's steps (and its bases') are in its history.
    assert!(!history.contains("VERSION"), "{history}");
    let page = e.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "example",
        "/srv/www/version.txt",
    ]);
    assert_eq!(page.trim(), "version 2.5");
}

#[test]
fn run_steps_record_build_args_in_history() {
    let e = Engine::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nARG GREETING=hello\nRUN echo \"$GREETING\" > /greeting\n",
    )]);
    build(
        &e,
        &["-t", "greet", "--build-arg", "GREETING=ahoy", path(&ctx)],
    );
    let history = e.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "greet",
    ]);
    assert_eq!(
        history.lines().next().unwrap(),
        r#"|1 GREETING=ahoy /bin/sh -c echo "$GREETING" > /greeting"#
    );
    assert_eq!(
        e.ok(&["run", "--rm", "greet", "cat", "/greeting"]),
        "ahoy\n"
    );
}

#[test]
fn unchanged_rebuild_hits_the_cache_and_a_changed_copy_misses_from_there_on() {
    let e = Engine::start();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nENV STAGE=one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCMD [\"cat\", \"/b.txt\"]\n"),
        ("a.txt", "first\n"),
    ]);
    let first = build(&e, &["-t", "cached", path(&ctx)]);
    assert_eq!(cache_hits(&first), 0, "{first}");
    let id = e.ok(&["images", "-q", "cached"]);

    let again = build(&e, &["-t", "cached", path(&ctx)]);
    assert_eq!(cache_hits(&again), 4, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(e.ok(&["images", "-q", "cached"]), id, "same image");

    write(ctx.path(), "a.txt", "second\n");
    let changed = build(&e, &["-t", "cached", path(&ctx)]);
    assert_eq!(
        cache_hits(&changed),
        1,
        "only ENV before the COPY: {changed}"
    );
    let after_env = changed
        .split("Step 3/5 : COPY a.txt /a.txt\n")
        .nth(1)
        .unwrap();
    assert!(!after_env.contains("Using cache"), "{changed}");
    assert_eq!(e.ok(&["run", "--rm", "cached"]), "second\n");

    let fresh = build(&e, &["--no-cache", "-t", "cached", path(&ctx)]);
    assert_eq!(cache_hits(&fresh), 0, "{fresh}");
}

#[test]
fn multi_stage_output_holds_only_the_final_stages_layers() {
    let e = Engine::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS builder\nRUN echo compiled > /artifact && head -c 100000 /dev/zero > /junk\n\
         FROM busybox\nCOPY --from=builder /artifact /app/artifact\nCMD [\"cat\", \"/app/artifact\"]\n",
    )]);
    build(&e, &["-t", "multi", path(&ctx)]);
    let base = layers(&e, "busybox");
    let built = layers(&e, "multi");
    assert_eq!(built.len(), base.len() + 1, "{built:?}");
    assert_eq!(&built[..base.len()], &base[..]);
    assert_eq!(e.ok(&["run", "--rm", "multi"]), "compiled\n");
    let junk = e.docker(&["run", "--rm", "multi", "ls", "/junk"]);
    assert_ne!(junk.code, 0, "the builder stage's files stay behind");
    let history = e.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "multi",
    ]);
    assert!(!history.contains("/junk"), "{history}");
}

#[test]
fn dockerignore_keeps_files_out_of_the_context() {
    let e = Engine::start();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        (".dockerignore", "# local only\nsecret.txt\n*.log\nbuild/\n"),
        ("app.txt", "app"),
        ("secret.txt", "hunter2"),
        ("debug.log", "noise"),
        ("build/out.bin", "x"),
    ]);
    build(&e, &["-t", "ignored", path(&ctx)]);
    let listing = e.ok(&["run", "--rm", "ignored", "ls", "-A", "/ctx"]);
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names, vec![".dockerignore", "Dockerfile", "app.txt"]);

    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nCOPY secret.txt /\n",
    );
    let run = e.docker(&["build", path(&ctx)]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("COPY failed: file not found in build context or excluded by .dockerignore: stat secret.txt: file does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn failed_run_reports_its_exit_code_and_leaves_nothing() {
    let e = Engine::start();
    let images_before = e.ok(&["images", "-aq"]);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nENV A=1\nRUN echo working; echo trouble >&2; exit 3\nCMD [\"true\"]\n",
    )]);
    let run: Run = e.docker(&["build", "-t", "broken", path(&ctx)]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stdout
            .contains("Step 3/4 : RUN echo working; echo trouble >&2; exit 3\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("working\n"), "{}", run.stdout);
    assert!(run.stdout.contains("trouble"), "{}", run.stdout);
    assert!(
        run.stderr.contains("The command '/bin/sh -c echo working; echo trouble >&2; exit 3' returned a non-zero code: 3"),
        "{}",
        run.stderr
    );
    assert_eq!(e.ok(&["ps", "-aq"]), "", "no container left");
    assert_eq!(e.ok(&["images", "-aq"]), images_before, "no image left");
    assert_ne!(e.docker(&["image", "inspect", "broken"]).code, 0);
}

#[test]
fn build_from_stdin_with_no_context() {
    let e = Engine::start();
    let run = e.docker_stdin(
        &["build", "-t", "piped", "-"],
        b"FROM busybox\nRUN echo from stdin > /note\nCMD [\"cat\", \"/note\"]\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("Successfully tagged piped:latest"),
        "{}",
        run.stdout
    );
    assert_eq!(e.ok(&["run", "--rm", "piped"]), "from stdin\n");
}

#[test]
fn dockerfile_flag_target_and_build_args() {
    let e = Engine::start();
    let ctx = context(&[(
        "docker/Dev.Dockerfile",
        "ARG BASE=busybox\nFROM $BASE AS dev\nARG MODE=debug\nRUN echo \"$MODE\" > /mode\nCMD [\"cat\", \"/mode\"]\n\
         FROM dev AS release\nRUN echo release > /mode\n",
    )]);
    let file = format!("{}/docker/Dev.Dockerfile", path(&ctx));
    let out = build(
        &e,
        &[
            "-f",
            &file,
            "--target",
            "dev",
            "--build-arg",
            "MODE=trace",
            "-t",
            "dev",
            path(&ctx),
        ],
    );
    assert!(
        out.contains("Step 4/5 : RUN echo \"$MODE\" > /mode\n"),
        "{out}"
    );
    assert!(!out.contains("release"), "{out}");
    assert_eq!(e.ok(&["run", "--rm", "dev"]), "trace\n");
    build(
        &e,
        &[
            "-f",
            &file,
            "-t",
            "rel",
            "--label",
            "lesson=build",
            path(&ctx),
        ],
    );
    let label = e.ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"lesson\"}}",
        "rel",
    ]);
    assert_eq!(label.trim(), "build");
    assert_eq!(e.ok(&["run", "--rm", "rel"]), "release\n");

    let unknown = e.docker(&["build", "-f", &file, "--target", "nope", path(&ctx)]);
    assert_ne!(unknown.code, 0);
    assert!(
        unknown
            .stderr
            .contains("failed to reach build target nope in Dockerfile"),
        "{}",
        unknown.stderr
    );
    let unused = build(&e, &["-f", &file, "--build-arg", "UNUSED=1", path(&ctx)]);
    assert!(
        unused.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{unused}"
    );
}

#[test]
fn a_malformed_dockerfile_names_the_line() {
    let e = Engine::start();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\nFORM scratch\n")]);
    let run = e.docker(&["build", path(&ctx)]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "Error response from daemon: dockerfile parse error on line 3: unknown instruction: FORM"
        ),
        "{}",
        run.stderr
    );
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nADD http://example.invalid/app.tar /app/\n",
    )]);
    let run = e.docker(&["build", path(&ctx)]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("ADD failed: cannot download http://example.invalid/app.tar"),
        "{}",
        run.stderr
    );
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn intermediate_images_hide_from_images_and_go_with_rmi() {
    let e = Engine::start();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nENV A=1\nRUN echo x > /x\nCMD [\"sh\"]\n",
    )]);
    build(&e, &["-t", "layered", path(&ctx)]);
    let visible = e.ok(&["images", "-q"]).lines().count();
    let all = e.ok(&["images", "-aq"]).lines().count();
    assert_eq!(visible, 2, "busybox and layered");
    assert_eq!(all, 4, "plus the ENV and RUN steps' images");
    let parent = e.ok(&["image", "inspect", "-f", "{{.Parent}}", "layered"]);
    assert!(parent.starts_with("sha256:"), "{parent}");

    let pruned = e.ok(&["image", "prune", "-f"]);
    assert!(
        !pruned.contains("deleted"),
        "prune keeps a tagged image's parents: {pruned}"
    );
    assert_eq!(e.ok(&["images", "-aq"]).lines().count(), 4);

    let removed = e.ok(&["rmi", "layered"]);
    assert!(removed.contains("Untagged: layered:latest"), "{removed}");
    assert_eq!(removed.matches("Deleted: sha256:").count(), 3, "{removed}");
    assert_eq!(e.ok(&["images", "-aq"]).lines().count(), 1, "busybox only");
}

#[test]
fn the_debian_20_10_cli_builds_too() {
    let Some(old) = common::engine::docker_2010() else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh provides the 20.10 CLI"
        );
        eprintln!("skipped: no Debian 20.10 docker CLI (scripts/test.sh unpacks one)");
        return;
    };
    let e = Engine::start();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo old cli > /note\n")]);
    let out = std::process::Command::new(old)
        .env("DOCKER_HOST", format!("unix://{}", e.socket.display()))
        .env("DOCKER_CONFIG", e.data.path().join("cli-config"))
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "oldcli", path(&ctx)])
        .output()
        .unwrap();
    let run: Run = out.into();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("Successfully tagged oldcli:latest"),
        "{}",
        run.stdout
    );
    assert_eq!(
        e.ok(&["run", "--rm", "oldcli", "cat", "/note"]),
        "old cli\n"
    );
}
