//! Images a real class needs, offline: packs made with `berth image pack`
//! and loaded by `berth serve --images DIR` into the classroom's shared
//! images; lessons naming the images they need; and the Debian base images
//! scripts/base-images.sh builds from the host's own packages, used through
//! the real docker CLI in a classroom session.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::classroom::Classroom;
use common::lab::Lab;

fn berth(data: &Path, args: &[&str]) -> common::Run {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run berth")
        .into()
}

fn berth_ok(data: &Path, args: &[&str]) -> String {
    let run = berth(data, args);
    assert_eq!(run.code, 0, "berth {args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

fn tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// A rootfs tar holding the host's static busybox and a message file.
fn course_rootfs(dir: &Path, message: &str) -> PathBuf {
    let path = dir.join("rootfs.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static (scripts/setup.sh)");
    let mut h = tar::Header::new_gnu();
    h.set_size(busybox.len() as u64);
    h.set_mode(0o755);
    b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(message.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "message.txt", message.as_bytes())
        .unwrap();
    b.into_inner().unwrap();
    path
}

/// A pack made in one data directory is loaded by `berth serve --images`
/// into a fresh one; a learner's `docker run` of it works with no registry
/// anywhere, the real docker CLI reads the same pack with `docker load`, and
/// a restart finds it present instead of loading it again.
#[test]
fn a_pack_loads_into_a_fresh_classroom_and_runs_with_no_registry() {
    let work = tmp("berth-pack-");
    let source = work.path().join("source");
    let rootfs = course_rootfs(work.path(), "hello from the pack");
    berth_ok(
        &source,
        &[
            "image",
            "import",
            rootfs.to_str().unwrap(),
            "course/hello:1",
            "-c",
            r#"CMD ["/bin/busybox", "cat", "/message.txt"]"#,
        ],
    );
    let packs = work.path().join("packs");
    std::fs::create_dir(&packs).unwrap();
    let pack = packs.join("course.tar");
    let out = berth_ok(
        &source,
        &[
            "image",
            "pack",
            "-o",
            pack.to_str().unwrap(),
            "course/hello:1",
        ],
    );
    assert!(out.contains("1 image(s)"), "{out}");
    assert!(!packs.join("course.tar.partial").exists());
    // A reference the store does not have fails, and leaves no pack behind.
    let bad = berth(
        &source,
        &[
            "image",
            "pack",
            "-o",
            packs.join("bad.tar").to_str().unwrap(),
            "nope:1",
        ],
    );
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("nope"), "{}", bad.stderr);
    assert!(!packs.join("bad.tar").exists() && !packs.join("bad.tar.partial").exists());

    // A pack whose layer was altered after packing: refused by digest,
    // reported, and the classroom starts with the other packs.
    let rootfs = course_rootfs(work.path(), "never seen");
    berth_ok(
        &source,
        &[
            "image",
            "import",
            rootfs.to_str().unwrap(),
            "course/broken:1",
        ],
    );
    let broken = packs.join("broken.tar");
    berth_ok(
        &source,
        &[
            "image",
            "pack",
            "-o",
            broken.to_str().unwrap(),
            "course/broken:1",
        ],
    );
    let mut bytes = std::fs::read(&broken).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"\x7fELF")
        .expect("the layer holds busybox");
    bytes[at + 4096] ^= 0xff;
    std::fs::write(&broken, bytes).unwrap();

    let mut lab = Lab::with_args(&["--images", packs.to_str().unwrap()]);
    let log = lab.classroom.log();
    assert!(
        log.contains(&format!("images: {}:", broken.display())) && log.contains("(skipped)"),
        "serve.log: {log}"
    );
    let run = lab.docker(&["run", "--rm", "course/broken:1"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("never seen"));
    let log = lab.classroom.log();
    assert!(
        log.contains("images: loaded course/hello:1"),
        "serve.log: {log}"
    );
    let images = lab.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == "course/hello:1"), "{images}");
    assert_eq!(
        lab.ok(&["run", "--rm", "course/hello:1"]),
        "hello from the pack"
    );
    // No registry was involved: the classroom's registry holds nothing.
    let registry = lab.classroom.data_dir().join("registry");
    let pushed = walk_files(&registry);
    assert!(pushed.iter().all(|p| !p.contains("course")), "{pushed:?}");
    // The learner's rmi removes their name only; the next session has it.
    lab.ok(&["rmi", "course/hello:1"]);
    let (_, status) = lab.classroom.new_session();
    let other = lab
        .classroom
        .data_dir()
        .join("sessions")
        .join(status["id"].as_str().unwrap())
        .join("node1/docker.sock");
    let run: common::Run = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", other.display()))
        .env("DOCKER_CONFIG", work.path().join("docker-cli"))
        .env_remove("DOCKER_CONTEXT")
        .args(["run", "--rm", "course/hello:1"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.stdout, "hello from the pack", "{}", run.stderr);

    // The pack is a `docker save` tar the real CLI loads.
    let loaded = lab.docker_stdin(&["load"], &std::fs::read(&pack).unwrap());
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    assert!(
        loaded.stdout.contains("Loaded image: course/hello:1"),
        "{}",
        loaded.stdout
    );

    // A restart on the same data directory finds the pack present.
    lab.classroom.stop();
    lab.classroom.spawn();
    let log = lab.classroom.log();
    assert!(
        log.contains("images: present: course/hello:1"),
        "serve.log: {log}"
    );
}

/// `berth image load` on a stopped classroom's data directory: the images
/// are the host's and the classroom's, a session made after the restart
/// runs them, and loading the same pack again is skipped by digest.
#[test]
fn berth_image_load_gives_a_restarted_classroom_the_pack_and_skips_it_the_second_time() {
    let work = tmp("berth-load-");
    let source = work.path().join("source");
    let rootfs = course_rootfs(work.path(), "loaded by the operator");
    berth_ok(
        &source,
        &[
            "image",
            "import",
            rootfs.to_str().unwrap(),
            "course/load:2",
            "-c",
            r#"CMD ["/bin/busybox", "cat", "/message.txt"]"#,
        ],
    );
    let pack = work.path().join("course.tar");
    berth_ok(
        &source,
        &[
            "image",
            "pack",
            "-o",
            pack.to_str().unwrap(),
            "course/load:2",
        ],
    );

    let mut c = Classroom::start(&["--preview-listen", "off"]);
    c.stop();
    let data = c.data_dir();
    let first = berth_ok(&data, &["image", "load", pack.to_str().unwrap()]);
    assert_eq!(first, "Loaded image: course/load:2\n");
    let again = berth_ok(&data, &["image", "load", "-i", pack.to_str().unwrap()]);
    assert_eq!(again, "Loaded image: course/load:2 (already present)\n");
    let listed = berth_ok(&data, &["image", "ls"]);
    assert!(listed.contains("course/load"), "{listed}");

    c.spawn();
    let (_, status) = c.new_session();
    let socket = data
        .join("sessions")
        .join(status["id"].as_str().unwrap())
        .join("node1/docker.sock");
    let run: common::Run = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", work.path().join("docker-cli"))
        .env_remove("DOCKER_CONTEXT")
        .args(["run", "--rm", "course/load:2"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, c.log());
    assert_eq!(run.stdout, "loaded by the operator");
}

fn walk_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A lesson that names an image the classroom lacks: `berth lesson check`
/// says which, and the lesson page shows a notice naming it and how the
/// operator adds it; images the classroom has are not named.
#[test]
fn a_missing_lesson_image_is_named_by_lesson_check_and_on_the_page() {
    let lessons = tmp("berth-lessons-");
    for (slug, images) in [
        ("01-needs-image", r#"["course/absent:1", "busybox"]"#),
        ("02-has-all", r#"["busybox:latest"]"#),
    ] {
        let dir = lessons.path().join(slug);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("lesson.md"),
            format!("+++\ntitle = \"{slug}\"\nimages = {images}\n+++\n\n# {slug}\n\nRun it.\n"),
        )
        .unwrap();
    }
    let bad = lessons.path().join("03-bad-image");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("lesson.md"),
        "+++\ntitle = \"bad\"\nimages = [\"Not A Reference\"]\n+++\n\ntext\n",
    )
    .unwrap();

    let c = Classroom::start(&[
        "--lessons",
        lessons.path().to_str().unwrap(),
        "--preview-listen",
        "off",
    ]);
    let (token, _) = c.new_session();

    let empty = tmp("berth-no-packs-");
    let run = berth(
        &c.data_dir(),
        &[
            "lesson",
            "check",
            lessons.path().to_str().unwrap(),
            "--images",
            empty.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        run.code, 1,
        "the bad reference is a problem: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("03-bad-image/lesson.md:2: images: \"Not A Reference\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains(
            "01-needs-image: image course/absent:1 is missing from the store: add it with `berth image load FILE`"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("is missing").count(),
        1,
        "busybox is there: {}",
        run.stdout
    );

    let page = c.http("GET", "/lessons/01-needs-image", Some(&token), None);
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"class="notice missing-images" role="alert""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<code>course/absent:1</code>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("berth image load"), "{}", page.body);
    assert!(!page.body.contains("<code>busybox</code>"), "{}", page.body);
    let fine = c.http("GET", "/lessons/02-has-all", Some(&token), None);
    assert_eq!(fine.status, 200);
    assert!(!fine.body.contains("missing-images"), "{}", fine.body);
}

/// `berth lesson check` on a machine with no classroom yet names every
/// image as missing, creates no data directory, and counts an image found
/// in a pack of `--images DIR` as present (serve loads it at start).
#[test]
fn lesson_check_counts_packs_as_present_and_creates_no_store() {
    let work = tmp("berth-check-");
    let lessons = work.path().join("lessons");
    let dir = lessons.join("01-two-images");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lesson.md"),
        "+++\ntitle = \"two\"\nimages = [\"course/packed:1\", \"course/nowhere:1\"]\n+++\n\ntext\n",
    )
    .unwrap();
    let source = work.path().join("source");
    let rootfs = course_rootfs(work.path(), "packed");
    berth_ok(
        &source,
        &[
            "image",
            "import",
            rootfs.to_str().unwrap(),
            "course/packed:1",
        ],
    );
    let packs = work.path().join("packs");
    std::fs::create_dir(&packs).unwrap();
    let pack = packs.join("p.tar");
    berth_ok(
        &source,
        &[
            "image",
            "pack",
            "-o",
            pack.to_str().unwrap(),
            "course/packed:1",
        ],
    );
    let nowhere = work.path().join("no-classroom");
    let out = berth_ok(
        &nowhere,
        &[
            "lesson",
            "check",
            lessons.to_str().unwrap(),
            "--images",
            packs.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("01-two-images: image course/nowhere:1 is missing from the store"),
        "{out}"
    );
    assert!(!out.contains("course/packed:1"), "in a pack: {out}");
    assert!(
        out.contains("1 lesson(s), 0 exercise(s), 0 check(s): all valid"),
        "{out}"
    );
    assert!(!nowhere.exists(), "a check made {}", nowhere.display());
}

/// The Debian images scripts/base-images.sh caches (scripts/setup.sh runs
/// it); under scripts/test.sh they must be there.
fn base_images() -> Option<PathBuf> {
    let dir = PathBuf::from("/var/cache/berth/images");
    let there = ["debian-bookworm-slim.tar", "berth-gcc-12-bookworm.tar"]
        .iter()
        .all(|f| dir.join(f).is_file());
    if !there {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/setup.sh builds the base images into {}",
            dir.display()
        );
        eprintln!("skipping: run scripts/base-images.sh");
    }
    there.then_some(dir)
}

/// Debian 12 and its gcc, built from the host's packages, in a lab: the
/// images tell how they were made, and a multi-stage build compiles a
/// static C program in the gcc image and ships it alone `FROM scratch`.
#[test]
fn debian_and_gcc_base_images_work_in_a_lab_and_a_multi_stage_build_ships_a_small_image() {
    let Some(dir) = base_images() else { return };
    let lab = Lab::with_args(&["--images", dir.to_str().unwrap()]);
    let os = lab.ok(&[
        "run",
        "--rm",
        "debian:bookworm-slim",
        "cat",
        "/etc/os-release",
    ]);
    assert!(
        os.contains(r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)""#),
        "{os}"
    );
    let packages = lab.ok(&[
        "run",
        "--rm",
        "debian:bookworm-slim",
        "sh",
        "-c",
        "dpkg-query -f '${Status}\\n' -W | grep -c 'ok installed'",
    ]);
    let count: usize = packages.trim().parse().expect("a package count");
    assert!((60..=120).contains(&count), "{count} packages");
    let labels = lab.ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"berth.built-by\"}}|{{index .Config.Labels \"org.opencontainers.image.description\"}}",
        "debian:bookworm-slim",
    ]);
    assert!(labels.contains("mmdebstrap"), "{labels}");
    assert!(labels.contains("not Docker Hub's image"), "{labels}");

    let gcc = lab.ok(&["run", "--rm", "berth/gcc:12-bookworm", "gcc", "--version"]);
    assert!(gcc.starts_with("gcc (Debian 12."), "{gcc}");
    // The gcc image is built on the Debian one: its first layer is shared.
    let layers = |image: &str| -> Vec<String> {
        lab.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            image,
        ])
        .trim()
        .to_string()
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(String::from)
        .collect()
    };
    let (slim, tool) = (
        layers("debian:bookworm-slim"),
        layers("berth/gcc:12-bookworm"),
    );
    assert_eq!(slim.len(), 1);
    assert_eq!(tool.len(), 2);
    assert_eq!(slim[0], tool[0], "shared base layer");

    let ctx = tmp("berth-multistage-");
    std::fs::write(
        ctx.path().join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello, static world\"); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM berth/gcc:12-bookworm AS build\n\
         COPY hello.c /src/hello.c\n\
         RUN gcc -static -Os -s -o /hello /src/hello.c\n\
         FROM scratch\n\
         COPY --from=build /hello /hello\n\
         CMD [\"/hello\"]\n",
    )
    .unwrap();
    let built = lab.docker(&["build", "-t", "hello:static", ctx.path().to_str().unwrap()]);
    assert_eq!(built.code, 0, "{}{}", built.stdout, built.stderr);
    assert_eq!(
        lab.ok(&["run", "--rm", "hello:static"]),
        "hello, static world\n"
    );
    let size = |image: &str| -> u64 {
        lab.ok(&["image", "inspect", "--format", "{{.Size}}", image])
            .trim()
            .parse()
            .unwrap()
    };
    let (small, big) = (size("hello:static"), size("berth/gcc:12-bookworm"));
    eprintln!("sizes: berth/gcc:12-bookworm {big} bytes, hello:static {small} bytes, debian:bookworm-slim {}", size("debian:bookworm-slim"));
    assert!(small < 2_000_000, "a static hello is under 2 MB: {small}");
    assert!(big > 100 * small, "{big} vs {small}");
}
