//! The course's lessons 5–8, each proven by its solution
//! (`common::course::prove_lesson`: a fresh session opens the lesson, every
//! exercise fails, `solution.sh` runs through the lab's terminal with the
//! real docker CLI, every exercise passes), plus what each lesson shows.

mod common;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};
use common::course::{lessons_dir, prove_lesson, Proof};

/// Closes the terminal before the classroom stops (`berth serve` waits
/// for open connections when it shuts down).
fn finish(p: Proof) {
    let Proof {
        classroom, term, ..
    } = p;
    drop(term);
    drop(classroom);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_05_ports_is_proven_by_its_solution() {
    let mut p = prove_lesson("05-ports").await;
    // What the lesson shows: three copies answer with three names, and a
    // taken host port is refused with Docker's words.
    let mut names = Vec::new();
    for port in [8081, 8082, 8083] {
        let out = p
            .run(&format!("wget -qO- http://localhost:{port}/cgi-bin/host"))
            .await;
        names.push(out.trim().to_string());
    }
    let taken = p
        .run("docker run -d --name fish4 -p 8081:5000 blobfish")
        .await;
    finish(p);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "three containers answer: {names:?}");
    assert!(taken.contains("port is already allocated"), "{taken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_06_volumes_is_proven_by_its_solution() {
    let mut p = prove_lesson("06-volumes").await;
    // The notes outlive the container that served them.
    p.run("docker rm -f notes-web").await;
    let notes = p
        .run("docker run -d --name notes-web -p 8084:5000 -v fishnotes:/app/www/notes blobfish && for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://localhost:8084/notes/facts.txt && break; sleep 1; done")
        .await;
    // A bind mount works both ways; a read-only one refuses writes.
    let both_ways = p
        .run("docker exec live sh -c 'echo \"<!-- by live -->\" >> /app/www/index.html' && tail -n 1 app/www/index.html")
        .await;
    let refused = p
        .run("docker exec gallery sh -c 'echo hacked > /app/www/index.html'")
        .await;
    finish(p);
    assert!(notes.contains("600 to 1,200 metres"), "{notes}");
    assert!(both_ways.contains("<!-- by live -->"), "{both_ways}");
    assert!(refused.contains("Read-only file system"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_07_networks_is_proven_by_its_solution() {
    let mut p = prove_lesson("07-networks").await;
    // What the lesson shows: no names on the default bridge, names on a
    // user-defined one, nothing across networks, not even by address.
    let default = p.run("docker run --rm busybox ping -c 1 lonely").await;
    let lookup = p
        .run("docker run --rm --network fishnet busybox nslookup fishapp")
        .await;
    let by_address = p
        .run("IP=$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' fishapp); docker exec stranger timeout 5 wget -qO- http://$IP:5000/; echo exit=$?")
        .await;
    finish(p);
    assert!(default.contains("bad address 'lonely'"), "{default}");
    assert!(lookup.contains("Name:\tfishapp"), "{lookup}");
    assert!(by_address.contains("exit=143"), "{by_address}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_08_registry_is_proven_by_its_solution() {
    let mut p = prove_lesson("08-registry").await;
    // The lab names its registry and namespace, as the lesson shows.
    let session = p
        .classroom
        .http("GET", "/api/session", Some(&p.token), None)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let names = p
        .run("echo \"$BERTH_REGISTRY $BERTH_REGISTRY_NAMESPACE\"")
        .await;
    // Rolled back: v1 serves; rolling forward brings v2 back.
    let rolled_back = p.run("wget -qO- http://localhost:8088/").await;
    let forward = p
        .run("docker stop fish-v1 && docker start fish-v2 && for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://localhost:8088/ && break; sleep 1; done && wget -qO- http://localhost:8088/facts.txt")
        .await;
    // Another learner's lab cannot pull this learner's image.
    let (other, _) = p.classroom.new_session();
    let mut t = p.classroom.terminal(&other, "node1").await;
    assert!(
        t.wait_for(common::course::PROMPT, std::time::Duration::from_secs(120))
            .await
    );
    let foreign = t
        .run(
            "docker pull registry.local:5000/blobfish:v1; echo exit=$?",
            std::time::Duration::from_secs(120),
        )
        .await
        .unwrap_or_default();
    drop(t);
    finish(p);
    assert_eq!(
        names.trim(),
        format!("registry.local:5000 s-{session}"),
        "{names}"
    );
    assert!(rolled_back.contains("release v1"), "{rolled_back}");
    assert!(
        forward.contains("release v2") && forward.contains("New in v2"),
        "{forward}"
    );
    assert!(foreign.contains("exit=1"), "{foreign}");
}

#[test]
fn lessons_5_to_8_are_screenshot_at_laptop_and_projector_sizes() {
    if !browser_available() {
        return;
    }
    let lessons = lessons_dir().display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let slugs = ["05-ports", "06-volumes", "07-networks", "08-registry"];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/browser/course_shots.mjs"))
        .arg(format!("http://{}/", c.addr))
        .arg(&shots)
        .args(slugs)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(stdout.contains("ok: 24 lesson screenshots"), "{stdout}");
    // No code block or table a learner must scroll sideways to read.
    for line in stdout
        .lines()
        .filter(|l| l.contains("wider than the column"))
    {
        assert!(line.contains(": 0 block(s)"), "{stdout}");
    }
    for slug in slugs {
        for size in ["1366x768", "1920x1080"] {
            for part in ["top", "exercise", "end"] {
                let path = shots.join(format!("course-{slug}-{size}-{part}.png"));
                assert!(path.exists(), "no screenshot {}", path.display());
            }
        }
    }
}

#[test]
fn lesson_5_preview_links_open_three_different_copies_in_the_browser() {
    if !browser_available() {
        return;
    }
    let lessons = lessons_dir().display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "127.0.0.1:0"]);
    let stdout = run_browser_script(&c, "course2_preview.mjs", &format!("http://{}/", c.addr));
    assert!(stdout.contains("ok: 4 previews"), "{stdout}");
    let mut hosts = Vec::new();
    for port in [":80 ", ":8081 ", ":8082 ", ":8083 "] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(port))
            .unwrap_or_else(|| panic!("no preview of {port}: {stdout}"));
        // The app's CGI pages answer through the preview.
        assert!(!line.contains("No fact today"), "{line}");
        hosts.push(line.split_whitespace().nth(1).unwrap().to_string());
    }
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 4, "four different containers: {stdout}");
    assert!(artifacts().join("course2-preview-links.png").exists());
}
