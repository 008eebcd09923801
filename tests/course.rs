//! The course: each lesson of lessons/ proven on a fresh session by its
//! own solution (see tests/common/course.rs): every exercise fails on the
//! fresh lab, the solution typed into the lab's terminal runs with the
//! real docker CLI, and then every exercise passes.

mod common;

use common::course::prove_lesson;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_01_is_proven_by_its_solution() {
    let proof = prove_lesson("01-vms-vs-containers").await;
    let t = &proof.transcript;
    // What "under the hood" tells the learner they will see.
    assert!(t.contains("OOMKilled=true exit=137"), "{t}");
    assert!(t.contains("mount refused"), "{t}");
    assert!(t.contains("can't set date: Operation not permitted"), "{t}");
}

/// A proof that fails after the lesson is proven, the lab terminal still
/// open, fails (and ends): the terminal closes before `berth serve` stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "a failing assertion with the lab terminal open")]
async fn a_proof_that_fails_with_the_terminal_open_fails_and_ends() {
    let mut proof = prove_lesson("01-vms-vs-containers").await;
    let out = proof.run("echo still-here").await;
    assert!(
        !out.contains("still-here"),
        "a failing assertion with the lab terminal open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_02_is_proven_by_its_solution() {
    prove_lesson("02-images-and-layers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_03_is_proven_by_its_solution() {
    prove_lesson("03-running-containers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_04_is_proven_by_its_solution() {
    let mut proof = prove_lesson("04-dockerfile-build").await;
    // The app's script works in the lab itself too (the setup made it
    // executable), and v1 did not get v2's fact: images do not change.
    let fact = proof.run("cd ~/app && ./www/cgi-bin/fact").await;
    assert!(fact.contains("blobfish"), "{fact:?}");
    let old = proof
        .run("docker exec blobfish grep -c ugliest /app/www/facts.txt")
        .await;
    assert_eq!(old.trim(), "0", "{old:?}");
    // What a RUN step writes in a lab's build belongs to the container's
    // root, as in Docker (not to the session's host uids, shown as nobody).
    let owners = proof
        .run(
            "mkdir -p /tmp/runstep && cd /tmp/runstep && printf 'FROM busybox\\nRUN mkdir /data && echo x > /data/x\\n' > Dockerfile && docker build -q -t runstep . >/dev/null 2>&1; docker run --rm runstep stat -c '%u:%g %n' /data /data/x",
        )
        .await;
    assert_eq!(owners.trim(), "0:0 /data\n0:0 /data/x", "{owners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_09_healthchecks_is_proven_by_its_solution() {
    let proof = prove_lesson("09-healthchecks").await;
    // What the lesson tells the learner they will see.
    assert!(
        proof.transcript.contains("pulse: Up") && proof.transcript.contains("(healthy)"),
        "{}",
        proof.transcript
    );
    assert!(
        proof.transcript.contains("sickly: Up") && proof.transcript.contains("(unhealthy)"),
        "{}",
        proof.transcript
    );
    assert!(
        proof.transcript.contains("\"FailingStreak\""),
        "{}",
        proof.transcript
    );
    assert!(
        proof.transcript.contains("rollback_completed"),
        "{}",
        proof.transcript
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_10_compose_is_proven_by_its_solution() {
    let mut proof = prove_lesson("10-compose").await;
    let t = proof.transcript.clone();
    // The real Compose plugin in the lab made the project's containers.
    let version = proof.run("docker compose version").await;
    assert!(version.contains("Docker Compose version v2."), "{version}");
    assert!(
        t.contains("facts-web-1") && t.contains("facts-worker-2"),
        "{t}"
    );
    // The page the web service serves is a fact the worker picked.
    let page = proof
        .run("cd ~/facts && docker compose exec web wget -q -O - http://localhost/")
        .await;
    assert!(page.to_lowercase().contains("blobfish"), "{page}");
    // The lesson's last step takes everything down, volume included.
    let down = proof
        .run("cd ~/facts && docker compose down -v >/dev/null 2>&1; docker ps -aq --filter label=com.docker.compose.project=facts | wc -l; docker volume ls -q | grep -c facts_site")
        .await;
    let counts: Vec<&str> = down
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(counts, ["0", "0"], "containers and volume left: {down:?}");
    // `docker compose build` works in a lab (the lab sets DOCKER_BUILDKIT=0:
    // Compose would otherwise ask for BuildKit, which the engine lacks).
    let build = proof
        .run("mkdir -p ~/b && cd ~/b && printf 'FROM busybox\\nRUN echo built > /b\\n' > Dockerfile && printf 'services:\\n  b:\\n    build: .\\n' > compose.yaml && docker compose build 2>&1 | tail -3; echo build=$?; docker compose run --rm b cat /b")
        .await;
    assert!(
        build.contains("build=0") && build.contains("built"),
        "{build}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_11_best_practices_is_proven_by_its_solution() {
    let proof = prove_lesson("11-best-practices").await;
    let t = &proof.transcript;
    // What the lesson shows: the careless image holds the secret file and
    // the log; an ENV password is printed by docker history; the app runs
    // as app and reads the mounted secret.
    assert!(t.contains("secret.env") && t.contains("debug.log"), "{t}");
    assert!(t.contains("ENV DB_PASSWORD=hunter2"), "{t}");
    assert!(t.contains("uid=1000(app)"), "{t}");
    assert!(t.contains("Using cache"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_12_multi_stage_is_proven_by_its_solution() {
    let mut proof = prove_lesson("12-multi-stage").await;
    let t = &proof.transcript;
    // Both images print the fact; the slim one is one layer, made by
    // COPY --from, and far smaller than the one-stage image.
    assert!(t.contains("Blobfish Facts: the blobfish lives"), "{t}");
    assert!(t.contains("COPY --from=build"), "{t}");
    let sizes = proof
        .run("docker image inspect -f '{{.Size}}' hello:fat hello:slim")
        .await;
    let sizes: Vec<u64> = sizes
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(
        sizes[0] > 200_000_000,
        "the one-stage image holds gcc: {sizes:?}"
    );
    assert!(
        sizes[1] < 1_000_000,
        "the final stage holds one static program: {sizes:?}"
    );
    // The slim image has no shell: the lesson says so.
    let no_shell = proof
        .run("docker run --rm hello:slim sh; echo exit=$?")
        .await;
    assert!(no_shell.contains("exit=127"), "{no_shell}");
}

/// A lesson's pictures are served as sandboxed images, and only they: not
/// the lesson's other files, not a path out of the folder, not an SVG the
/// lesson does not show, not one that carries a script.
#[test]
fn pictures_are_served_as_sandboxed_images_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let lesson = dir.path().join("01-pics");
    std::fs::create_dir_all(&lesson).unwrap();
    std::fs::write(
        lesson.join("lesson.md"),
        "+++\ntitle = \"Pics\"\n+++\n\n![A safe drawing](safe.svg)\n\n![A rigged drawing](rigged.svg)\n",
    )
    .unwrap();
    std::fs::write(
        lesson.join("safe.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1 1\"><rect width=\"1\" height=\"1\"/></svg>",
    )
    .unwrap();
    std::fs::write(
        lesson.join("rigged.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>fetch('/api/progress')</script></svg>",
    )
    .unwrap();
    std::fs::write(lesson.join("unshown.svg"), "<svg></svg>").unwrap();
    std::fs::write(lesson.join("notes.txt"), "private").unwrap();
    let lessons = dir.path().display().to_string();
    let c =
        common::classroom::Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);

    let page = c.http("GET", "/lessons/01-pics", None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(
            "<img class=\"picture\" src=\"/lessons/01-pics/safe.svg\" alt=\"A safe drawing\""
        ),
        "{}",
        page.body
    );

    let svg = c.http("GET", "/lessons/01-pics/safe.svg", None, None);
    assert_eq!(svg.status, 200, "{}", svg.body);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert_eq!(svg.header("x-content-type-options"), Some("nosniff"));
    let csp = svg.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    assert!(svg.body.starts_with("<svg"), "{}", svg.body);

    for refused in [
        "/lessons/01-pics/rigged.svg",
        "/lessons/01-pics/unshown.svg",
        "/lessons/01-pics/notes.txt",
        "/lessons/01-pics/lesson.md",
        "/lessons/01-pics/..%2F..%2Fetc%2Fpasswd",
        "/lessons/01-pics/%2E%2E",
        "/lessons/no-such/safe.svg",
    ] {
        let r = c.http("GET", refused, None, None);
        assert_eq!(r.status, 404, "{refused}: {}", r.body);
        assert!(!r.body.contains("script"), "{refused}: {}", r.body);
        assert!(!r.body.contains("private"), "{refused}: {}", r.body);
        assert!(!r.body.contains("root:"), "{refused}: {}", r.body);
    }
}
