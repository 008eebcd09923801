//! Swarm mode through the real docker CLI against `berth daemon`: init,
//! nodes, services created, scaled, rolled, rolled back, a killed task
//! replaced, and Docker's errors for bad input.

mod common;

use std::time::Duration;

use common::engine::{docker_2010, eventually, Engine};

fn init(e: &Engine) -> String {
    let out = e.ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    let first = out.lines().next().unwrap_or("");
    let id = first
        .strip_prefix("Swarm initialized: current node (")
        .and_then(|r| r.strip_suffix(") is now a manager."))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_eq!(id.len(), 25, "{out}");
    id
}

/// `docker service ps` rows as (name, desired, current state word, error).
fn ps(e: &Engine, svc: &str) -> Vec<(String, String, String, String)> {
    e.ok(&[
        "service",
        "ps",
        svc,
        "--no-trunc",
        "--format",
        "{{.Name}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}",
    ])
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        (
            f[0].trim().to_string(),
            f[1].to_string(),
            f[2].split(' ').next().unwrap_or("").to_string(),
            f[3].to_string(),
        )
    })
    .collect()
}

fn running(e: &Engine, svc: &str) -> usize {
    ps(e, svc)
        .iter()
        .filter(|(_, d, c, _)| d == "Running" && c == "Running")
        .count()
}

/// Raw Engine API request with a JSON body.
fn post(e: &Engine, path: &str, body: &str) -> (String, String) {
    e.http(&format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn get(e: &Engine, path: &str) -> serde_json::Value {
    let (status, body) = e.http(&format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    ));
    assert!(status.contains("200"), "{status} {body}");
    serde_json::from_str(&dechunk(&body)).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The payload of a chunked HTTP/1.1 body (or the body itself, which a
/// complete answer with a `Content-Length` is).
fn dechunk(body: &str) -> String {
    if !body.contains("\r\n") {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_string();
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn swarm_init_info_and_nodes_answer_like_dockerd() {
    let e = Engine::start();
    let before = e.docker(&["node", "ls"]);
    assert_ne!(before.code, 0);
    assert!(
        before.stderr.contains("This node is not a swarm manager."),
        "{}",
        before.stderr
    );

    let out = e.ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    let id = init_line(&out);
    assert!(
        out.contains("To add a worker to this swarm, run the following command:"),
        "{out}"
    );
    assert!(
        out.contains("    docker swarm join --token SWMTKN-1-"),
        "{out}"
    );
    assert!(out.contains(" 127.0.0.1:2377\n"), "{out}");
    assert!(out.contains("To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions."), "{out}");

    let info = e.ok(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Swarm.ControlAvailable}} {{.Swarm.Nodes}} {{.Swarm.Managers}}",
    ]);
    assert_eq!(info.trim(), format!("active {id} true 1 1"));
    let full = e.ok(&["info"]);
    assert!(full.contains(" Swarm: active"), "{full}");
    assert!(full.contains("  Is Manager: true"), "{full}");

    let nodes = e.ok(&["node", "ls"]);
    let lines: Vec<&str> = nodes.lines().collect();
    assert!(lines[0].starts_with("ID "), "{nodes}");
    assert!(lines[0].contains("MANAGER STATUS"), "{nodes}");
    assert!(lines[1].starts_with(&format!("{id} *")), "{nodes}");
    assert!(lines[1].contains("Ready"), "{nodes}");
    assert!(lines[1].contains("Active"), "{nodes}");
    assert!(lines[1].contains("Leader"), "{nodes}");

    let inspect = e.ok(&[
        "node",
        "inspect",
        "self",
        "--format",
        "{{.ID}} {{.Spec.Role}} {{.Spec.Availability}} {{.Status.State}} {{.ManagerStatus.Addr}}",
    ]);
    assert_eq!(
        inspect.trim(),
        format!("{id} manager active ready 127.0.0.1:2377")
    );
    let token = e.ok(&["swarm", "join-token", "-q", "worker"]);
    assert!(token.starts_with("SWMTKN-1-"), "{token}");

    let unknown = e.docker(&["node", "inspect", "nosuchnode"]);
    assert_ne!(unknown.code, 0);
    assert!(
        unknown.stderr.contains("node nosuchnode not found"),
        "{}",
        unknown.stderr
    );

    let again = e.docker(&["swarm", "init"]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."),
        "{}",
        again.stderr
    );
    let leave = e.docker(&["swarm", "leave"]);
    assert_ne!(leave.code, 0);
    assert!(
        leave
            .stderr
            .contains("Use `--force` to ignore this message."),
        "{}",
        leave.stderr
    );
    let wrong = e.docker(&[
        "swarm",
        "join",
        "--token",
        "SWMTKN-1-bad-bad",
        "127.0.0.1:2377",
    ]);
    assert_ne!(wrong.code, 0);

    // Drain and back: the node's availability shows in `node ls`.
    e.ok(&["node", "update", "--availability", "drain", &id]);
    assert!(e.ok(&["node", "ls"]).contains("Drain"));
    e.ok(&["node", "update", "--availability", "active", &id]);

    assert_eq!(
        e.ok(&["swarm", "leave", "--force"]).trim(),
        "Node left the swarm."
    );
    let after = e.ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(after.trim(), "inactive");
}

fn init_line(out: &str) -> String {
    out.lines()
        .next()
        .and_then(|l| l.strip_prefix("Swarm initialized: current node ("))
        .and_then(|r| r.strip_suffix(") is now a manager."))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

#[test]
fn services_converge_scale_roll_and_roll_back() {
    let e = Engine::start();
    init(&e);
    let create = e.docker(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        "--stop-grace-period",
        "1s",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(create.code, 0, "{}{}", create.stdout, create.stderr);
    let id = create.stdout.lines().next().unwrap().to_string();
    assert_eq!(id.len(), 25, "{}", create.stdout);
    assert!(
        create.stdout.contains("overall progress: 3 out of 3 tasks"),
        "{}",
        create.stdout
    );
    assert!(
        create
            .stdout
            .contains(&format!("verify: Service {id} converged")),
        "{}",
        create.stdout
    );

    let ls = e.ok(&["service", "ls"]);
    let row = ls.lines().nth(1).unwrap_or("");
    assert!(row.starts_with(&id[..12]), "{ls}");
    assert!(row.contains(" web "), "{ls}");
    assert!(row.contains(" replicated "), "{ls}");
    assert!(row.contains(" 3/3 "), "{ls}");
    assert!(row.contains("busybox:latest"), "{ls}");

    let tasks = ps(&e, "web");
    let names: Vec<&str> = tasks.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["web.1", "web.2", "web.3"], "{tasks:?}");
    assert!(
        tasks.iter().all(|t| t.1 == "Running" && t.2 == "Running"),
        "{tasks:?}"
    );

    // The tasks are real containers, named and labelled as Swarm does.
    let containers = e.ok(&[
        "ps",
        "--filter",
        &format!("label=com.docker.swarm.service.id={id}"),
        "--format",
        "{{.Names}} {{.Label \"com.docker.swarm.service.name\"}}",
    ]);
    let mut rows: Vec<&str> = containers.lines().collect();
    rows.sort();
    assert_eq!(rows.len(), 3, "{containers}");
    for (i, r) in rows.iter().enumerate() {
        assert!(r.starts_with(&format!("web.{}.", i + 1)), "{containers}");
        assert!(r.ends_with(" web"), "{containers}");
    }

    let inspect = e.ok(&[
        "service",
        "inspect",
        "web",
        "--format",
        "{{.ID}} {{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}}",
    ]);
    assert_eq!(inspect.trim(), format!("{id} web 3"));

    // Scale.
    let scale = e.ok(&["service", "scale", "web=5"]);
    assert!(scale.starts_with("web scaled to 5\n"), "{scale}");
    assert!(scale.contains("verify: Service web converged"), "{scale}");
    assert!(e.ok(&["service", "ls"]).contains(" 5/5 "));
    e.ok(&["service", "scale", "-d", "web=3"]);
    assert!(eventually(Duration::from_secs(20), || running(&e, "web")
        == 3
        && e.ok(&[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=web"
        ])
        .lines()
        .count()
            == 3));

    // A rolling update: 2 at a time, 1 s between batches.
    let update = e.ok(&[
        "service",
        "update",
        "--env-add",
        "VERSION=2",
        "--update-parallelism",
        "2",
        "--update-delay",
        "1s",
        "web",
    ]);
    assert!(update.contains("verify: Service web converged"), "{update}");
    // Completed once the last batch ran for the monitor period, as swarmkit.
    let status = || {
        e.ok(&[
            "service",
            "inspect",
            "web",
            "--format",
            "{{.UpdateStatus.State}} {{.UpdateStatus.Message}} {{.Spec.UpdateConfig.Parallelism}}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(10), || status().trim()
            == "completed update completed 2"),
        "{}",
        status()
    );
    let tasks = get(
        &e,
        "/tasks?filters=%7B%22desired-state%22%3A%7B%22running%22%3Atrue%7D%7D",
    );
    let mut created: Vec<(u64, std::time::SystemTime)> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(
                t["Spec"]["ContainerSpec"]["Env"]
                    .to_string()
                    .contains("VERSION=2"),
                "{t}"
            );
            (
                t["Slot"].as_u64().unwrap(),
                humantime::parse_rfc3339(t["CreatedAt"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    created.sort();
    assert_eq!(created.len(), 3, "{tasks}");
    let first_batch = created[0].1.max(created[1].1);
    let gap = created[2].1.duration_since(first_batch).unwrap_or_default();
    assert!(
        gap >= Duration::from_secs(1),
        "second batch {gap:?} after the first"
    );
    let within = created[1]
        .1
        .duration_since(created[0].1)
        .unwrap_or_default();
    assert!(within < Duration::from_secs(1), "one batch: {within:?}");
    // The old tasks stay in the history, shut down.
    let history = ps(&e, "web");
    assert_eq!(history.len(), 6, "{history:?}");
    assert_eq!(
        history.iter().filter(|t| t.0 == "web.1").count(),
        2,
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .filter(|t| t.1 == "Shutdown")
            .all(|t| t.2 == "Shutdown"),
        "{history:?}"
    );

    // Rollback to the previous spec.
    let rollback = e.ok(&["service", "rollback", "web"]);
    assert!(
        rollback.contains("rollback: manually requested rollback"),
        "{rollback}"
    );
    assert!(
        rollback.contains("verify: Service web converged"),
        "{rollback}"
    );
    let env = || {
        e.ok(&[
            "service",
            "inspect",
            "web",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Env}} {{.UpdateStatus.State}}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(10), || env().trim()
            == "[] rollback_completed"),
        "{}",
        env()
    );

    // A killed task's container is replaced in the same slot.
    let victim = e.ok(&["ps", "-q", "--filter", "name=web.2."]);
    let victim = victim.trim();
    assert!(!victim.is_empty());
    e.ok(&["kill", victim]);
    assert!(
        eventually(Duration::from_secs(30), || {
            let t = ps(&e, "web");
            t.iter()
                .any(|x| x.0 == "web.2" && x.1 == "Running" && x.2 == "Running")
                && t.iter().any(|x| {
                    x.0 == "web.2" && x.2 == "Failed" && x.3.contains("task: non-zero exit (137)")
                })
        }),
        "{:?}",
        ps(&e, "web")
    );
    assert_eq!(running(&e, "web"), 3);

    // Removal takes the containers with it.
    assert_eq!(e.ok(&["service", "rm", "web"]).trim(), "web");
    assert!(eventually(Duration::from_secs(20), || e
        .ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.swarm.service.name=web"
        ])
        .trim()
        .is_empty()));
    assert_eq!(e.ok(&["service", "ls", "-q"]).trim(), "");
}

#[test]
fn bad_service_requests_get_dockers_errors() {
    let e = Engine::start();
    let before = e.docker(&["service", "ls"]);
    assert!(
        before.stderr.contains("This node is not a swarm manager."),
        "{}",
        before.stderr
    );
    init(&e);

    let inspect = e.docker(&["service", "inspect", "nosuch"]);
    assert_eq!(inspect.code, 1);
    assert!(
        inspect.stderr.contains("no such service: nosuch"),
        "{}",
        inspect.stderr
    );
    let ps = e.docker(&["service", "ps", "nosuch"]);
    assert_eq!(ps.code, 1);
    assert!(
        ps.stderr.contains("no such service: nosuch"),
        "{}",
        ps.stderr
    );
    let rm = e.docker(&["service", "rm", "nosuch"]);
    assert_eq!(rm.code, 1);
    assert!(
        rm.stderr.contains("service nosuch not found"),
        "{}",
        rm.stderr
    );
    let scale = e.docker(&["service", "scale", "nosuch=2"]);
    assert_ne!(scale.code, 0);
    assert!(
        scale.stderr.contains("service nosuch not found"),
        "{}",
        scale.stderr
    );

    e.ok(&[
        "service", "create", "-d", "--name", "agent", "--mode", "global", "busybox", "sleep",
        "1000",
    ]);
    let global = e.docker(&["service", "scale", "agent=3"]);
    assert_ne!(global.code, 0);
    assert!(
        global
            .stderr
            .contains("scale can only be used with replicated or replicated-job mode"),
        "{}",
        global.stderr
    );
    assert!(eventually(Duration::from_secs(20), || e
        .ok(&["service", "ls"])
        .contains(" 1/1 ")));

    let dup = e.docker(&[
        "service", "create", "-d", "--name", "agent", "busybox", "true",
    ]);
    assert_ne!(dup.code, 0);
    assert!(
        dup.stderr
            .contains("name conflicts with an existing object"),
        "{}",
        dup.stderr
    );

    // A stale version is refused; the current one is taken.
    let svc = get(&e, "/services/agent");
    let index = svc["Version"]["Index"].as_u64().unwrap();
    let spec = svc["Spec"].to_string();
    let (status, body) = post(
        &e,
        &format!("/services/agent/update?version={}", index - 1),
        &spec,
    );
    assert!(status.contains(" 500 "), "{status} {body}");
    assert!(body.contains("update out of sequence"), "{body}");
    let (status, body) = post(
        &e,
        &format!("/services/agent/update?version={index}"),
        &spec,
    );
    assert!(status.contains(" 200 "), "{status} {body}");
    let (status, _) = post(
        &e,
        &format!("/services/agent/update?version={index}"),
        &spec,
    );
    assert!(status.contains(" 500 "), "the same version twice: {status}");
    e.ok(&["service", "rm", "agent"]);
}

#[test]
fn published_service_port_answers_on_the_node() {
    use std::io::{Read, Write};
    let e = Engine::start();
    init(&e);
    let port = 20000 + (std::process::id() % 20000) as u16;
    let publish = format!("{port}:80");
    e.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "site",
        "--replicas",
        "2",
        "-p",
        &publish,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert!(eventually(Duration::from_secs(30), || running(&e, "site") == 2));
    let ls = e.ok(&["service", "ls"]);
    assert!(ls.contains(&format!("*:{port}->80/tcp")), "{ls}");
    let mut answer = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            answer.clear();
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = s.write_all(b"GET /hostname HTTP/1.0\r\n\r\n");
            let _ = s.read_to_string(&mut answer);
            answer.starts_with("HTTP/1.1 200 OK")
        }),
        "{answer}"
    );
    e.ok(&["service", "rm", "site"]);
}

/// The lines a service command prints, without the progress display (which
/// depends on timing) and the digest warning for a registry-less image.
fn said(run: &common::Run) -> Vec<String> {
    format!("{}{}", run.stdout, run.stderr)
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("overall progress")
                && !l.starts_with("verify: Waiting")
                && !l.contains("could not be accessed on a registry")
                && !l.starts_with("its digest.")
                && !l.starts_with("possibly leading")
                && !l.starts_with("versions of the image")
                && !(l.len() > 3 && l.as_bytes()[1] == b'/' && l.as_bytes()[0].is_ascii_digit())
        })
        .map(String::from)
        .collect()
}

/// The same seed commands through the 28.x and Debian's 20.10 CLI print the
/// lines each prints against dockerd's one-node swarm (recorded from
/// dockerd 20.10.24 with both CLIs).
#[test]
fn both_cli_versions_print_dockerds_lines_for_the_seed_flow() {
    let e = Engine::start();
    init(&e);
    let old = docker_2010();
    if old.is_none() {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh provides the 20.10 CLI"
        );
        eprintln!("20.10 CLI missing: checking the 28.x CLI alone");
    }
    let clis: Vec<Option<std::path::PathBuf>> =
        std::iter::once(None).chain(old.map(Some)).collect();
    for cli in clis {
        let run = |args: &[&str]| match &cli {
            None => e.docker(args),
            Some(p) => e.docker_with(p, args),
        };
        let new = cli.is_none();
        let name = if new { "web28" } else { "web2010" };
        let out = run(&[
            "service",
            "create",
            "--name",
            name,
            "--replicas",
            "3",
            "busybox",
            "sh",
            "-c",
            // Stops at once (busybox's sleep would wait out the grace period).
            "trap 'exit 0' TERM; while :; do sleep 1; done",
        ]);
        let lines = said(&out);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let id = lines[0].clone();
        assert_eq!(id.len(), 25, "{lines:?}");
        let converged = |who: &str| {
            if new {
                format!("verify: Service {who} converged")
            } else {
                "verify: Service converged".to_string()
            }
        };
        assert_eq!(lines[1], converged(&id));
        assert_eq!(
            said(&run(&["service", "scale", &format!("{name}=5")])),
            [format!("{name} scaled to 5"), converged(name)]
        );
        assert_eq!(
            said(&run(&["service", "update", "--env-add", "A=1", name])),
            [name.to_string(), converged(name)]
        );
        assert_eq!(
            said(&run(&["service", "rollback", name])),
            [
                name.to_string(),
                "rollback: manually requested rollback".to_string(),
                converged(name)
            ]
        );
        let ls = run(&[
            "service",
            "ls",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}",
        ]);
        assert_eq!(
            ls.stdout.trim(),
            format!("{name} replicated 5/5 busybox:latest")
        );
        // Bad input: the CLI's and the daemon's words, as with dockerd.
        // (28.x passes the daemon's words on; 20.10 says its own.)
        let (service, node) = if new {
            (
                "Error response from daemon: service nosuch not found",
                "Error response from daemon: node nosuch not found",
            )
        } else {
            (
                "Error: No such service: nosuch",
                "Error: No such node: nosuch",
            )
        };
        let bad = run(&["service", "scale", "nosuch=2"]);
        assert_eq!(bad.stderr.trim(), format!("nosuch: {service}"));
        let bad = run(&["service", "update", "--replicas", "2", "nosuch"]);
        assert_eq!(bad.stderr.trim(), service);
        let bad = run(&["node", "update", "--availability", "drain", "nosuch"]);
        assert_eq!(bad.stderr.trim(), node);
    }
}
