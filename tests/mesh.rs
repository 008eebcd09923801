//! The routing mesh and service discovery through the real docker CLI
//! against `berth daemon`: a published service port spreads connections over
//! the replicas (each answers with its hostname), frees its port when the
//! service goes or moves it, and a service's name resolves on its network.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::classroom::Classroom;
use common::engine::{eventually, Engine};

/// A web server that answers `/` with its container's hostname.
const HOSTNAME_SITE: &str =
    "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www";

fn free_port(seed: u16) -> u16 {
    let base = 21000 + (std::process::id() % 15000) as u16 + seed;
    (base..base + 200)
        .find(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok())
        .expect("a free port")
}

/// `GET /` on `127.0.0.1:port`: the body, if the answer was a 200.
fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    if !answer.starts_with("HTTP/1.1 200 OK") {
        return None;
    }
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
}

fn running(e: &Engine, svc: &str) -> usize {
    e.ok(&[
        "service",
        "ps",
        svc,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.CurrentState}}",
    ])
    .lines()
    .filter(|l| l.starts_with("Running"))
    .count()
}

/// The hostnames of a service's running task containers (`docker ps`).
fn task_hostnames(e: &Engine, svc: &str) -> BTreeSet<String> {
    e.ok(&[
        "ps",
        "--filter",
        &format!("label=com.docker.swarm.service.name={svc}"),
        "--format",
        "{{.ID}}",
    ])
    .lines()
    .map(|id| {
        e.ok(&["inspect", "-f", "{{.Config.Hostname}}", id])
            .trim()
            .to_string()
    })
    .collect()
}

#[test]
fn a_published_service_port_spreads_connections_over_the_replicas() {
    let e = Engine::start();
    e.ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    let port = free_port(0);
    let publish = format!("{port}:80");
    let out = e.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        "-p",
        &publish,
        "busybox",
        "sh",
        "-c",
        HOSTNAME_SITE,
    ]);
    assert!(
        out.contains("verify: Service") && out.contains("converged"),
        "{out}"
    );
    assert_eq!(running(&e, "web"), 3);
    let hostnames = task_hostnames(&e, "web");
    assert_eq!(hostnames.len(), 3, "{hostnames:?}");

    // Two connections in a row: two different replicas.
    let first = get(port).expect("the mesh answers");
    let second = get(port).expect("the mesh answers again");
    assert_ne!(first, second, "round robin");
    // Every replica answers in turn, and only replicas answer.
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        seen.insert(get(port).expect("answer"));
    }
    assert_eq!(seen, hostnames);

    // The tasks themselves publish nothing: the port is the mesh's.
    let ps = e.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.lines().all(|l| l.trim().is_empty()), "{ps}");
    let ls = e.ok(&["service", "ls", "--format", "{{.Name}} {{.Ports}}"]);
    assert!(ls.contains(&format!("web *:{port}->80/tcp")), "{ls}");

    // Another service cannot take the port; one without a published port
    // gets one of swarm's dynamic ports, which answers too.
    let taken = e.docker(&[
        "service", "create", "-d", "--name", "clash", "-p", &publish, "busybox", "sleep", "60",
    ]);
    assert_ne!(taken.code, 0);
    assert!(
        taken.stderr.contains(&format!(
            "Error response from daemon: rpc error: code = InvalidArgument desc = port '{port}' is already in use by service 'web' ("
        )) && taken.stderr.contains(") as an ingress port"),
        "{}",
        taken.stderr
    );
    e.ok(&[
        "service",
        "create",
        "--name",
        "dyn",
        "-p",
        "80",
        "busybox",
        "sh",
        "-c",
        HOSTNAME_SITE,
    ]);
    let ls = e.ok(&[
        "service",
        "ls",
        "--filter",
        "name=dyn",
        "--format",
        "{{.Ports}}",
    ]);
    let dynamic: u16 = ls
        .trim()
        .strip_prefix("*:")
        .and_then(|r| r.strip_suffix("->80/tcp"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{ls}"));
    assert!((30000..=32767).contains(&dynamic), "{ls}");
    assert!(
        eventually(Duration::from_secs(10), || get(dynamic).is_some()),
        "the dynamic port answers"
    );
    e.ok(&["service", "rm", "dyn"]);

    // Scaled down, the mesh spreads over what is left.
    e.ok(&["service", "scale", "-d", "web=1"]);
    assert!(eventually(Duration::from_secs(30), || {
        running(&e, "web") == 1
    }));
    let left = task_hostnames(&e, "web");
    assert!(
        eventually(Duration::from_secs(10), || {
            (0..3).all(|_| get(port).is_some_and(|h| left.contains(&h)))
        }),
        "only the last replica answers: {left:?}"
    );

    // Moving the port frees the old one; the new one answers.
    let moved = free_port(300);
    e.ok(&[
        "service",
        "update",
        "-d",
        "--publish-rm",
        &publish,
        "--publish-add",
        &format!("{moved}:80"),
        "web",
    ]);
    assert!(
        eventually(Duration::from_secs(30), || get(moved).is_some()),
        "the new port answers"
    );
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpListener::bind((
            "0.0.0.0", port
        ))
        .is_ok()),
        "the old port is free"
    );

    // Removing the service frees its port.
    e.ok(&["service", "rm", "web"]);
    assert!(
        eventually(Duration::from_secs(20), || std::net::TcpListener::bind((
            "0.0.0.0", moved
        ))
        .is_ok()),
        "the port is free after service rm"
    );
    assert!(TcpStream::connect(("127.0.0.1", moved)).is_err());
}

#[test]
fn a_service_name_resolves_to_its_tasks_on_its_network() {
    let e = Engine::start();
    let refused = e.docker(&["network", "create", "-d", "overlay", "appnet"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("Error response from daemon: This node is not a swarm manager."),
        "{}",
        refused.stderr
    );
    e.ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    e.ok(&[
        "network",
        "create",
        "--driver",
        "overlay",
        "--attachable",
        "appnet",
    ]);
    let ls = e.ok(&[
        "network",
        "ls",
        "--filter",
        "name=appnet",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert_eq!(ls.trim(), "appnet overlay swarm");
    e.ok(&[
        "service",
        "create",
        "--name",
        "api",
        "--replicas",
        "2",
        "--network",
        "appnet",
        "busybox",
        "sh",
        "-c",
        HOSTNAME_SITE,
    ]);
    assert_eq!(running(&e, "api"), 2);
    let hostnames = task_hostnames(&e, "api");
    let ips: BTreeSet<String> = e
        .ok(&[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=api",
        ])
        .lines()
        .map(|id| {
            e.ok(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                id,
            ])
            .trim()
            .to_string()
        })
        .collect();
    assert_eq!(ips.len(), 2, "{ips:?}");

    // A container on the network resolves the service name (and
    // tasks.<name>) to the running tasks' addresses, and reaches them by it.
    let script =
        "nslookup api; nslookup tasks.api; for i in 1 2 3 4; do wget -qO- http://api/; done";
    let out = e.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    for ip in &ips {
        assert!(
            out.matches(&format!("Address: {ip}")).count() >= 2,
            "{ip} for api and tasks.api: {out}"
        );
    }
    let answered: BTreeSet<String> = out
        .lines()
        .filter(|l| hostnames.contains(l.trim()))
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(answered, hostnames, "DNS round robin reaches both: {out}");

    // The tasks resolve each other by the service name too.
    let task = e.ok(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=api",
    ]);
    let task = task.lines().next().unwrap();
    let out = e.ok(&["exec", task, "nslookup", "api"]);
    assert!(ips.iter().all(|ip| out.contains(ip.as_str())), "{out}");

    // The default network has no names, as in Docker.
    let out = e.docker(&["run", "--rm", "busybox", "nslookup", "api"]);
    assert!(
        !ips.iter().any(|ip| out.stdout.contains(ip.as_str())),
        "{out:?}"
    );

    // An overlay made without --attachable is for services only.
    e.ok(&["network", "create", "-d", "overlay", "private"]);
    let refused = e.docker(&["run", "--rm", "--network", "private", "busybox", "true"]);
    assert!(
        refused.stderr.contains(
            "Could not attach to network private: rpc error: code = PermissionDenied desc = network private not manually attachable"
        ),
        "{}",
        refused.stderr
    );
    e.ok(&["network", "rm", "private"]);

    e.ok(&["service", "rm", "api"]);
    assert!(eventually(Duration::from_secs(20), || {
        e.ok(&["ps", "-q"]).trim().is_empty()
    }));
    e.ok(&["network", "rm", "appnet"]);
}

const LONG: Duration = Duration::from_secs(120);

/// Three nodes of one classroom session in a swarm: the published port
/// answers on every node (`localhost:8080` in each lab, and `node3:8080` from
/// node1), and three connections from one node reach three replicas on
/// three nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_answers_on_every_node_of_a_three_node_session() {
    let c = Classroom::start(&["--nodes", "3"]);
    let (token, status) = c.new_session();
    assert_eq!(
        status["nodes"],
        serde_json::json!(["node1", "node2", "node3"])
    );
    let mut n1 = c.terminal(&token, "node1").await;
    let mut n2 = c.terminal(&token, "node2").await;
    let mut n3 = c.terminal(&token, "node3").await;
    assert!(n1.wait_for("root@node1:~# ", LONG).await);
    assert!(n2.wait_for("root@node2:~# ", LONG).await);
    assert!(n3.wait_for("root@node3:~# ", LONG).await);

    let join = n1
        .run(
            "docker swarm init >/dev/null && docker swarm join-token -q worker",
            LONG,
        )
        .await
        .unwrap();
    let join = join.trim().to_string();
    assert!(join.starts_with("SWMTKN-1-"), "{join}");
    for n in [&mut n2, &mut n3] {
        let out = n
            .run(
                &format!("docker swarm join --token {join} node1:2377"),
                LONG,
            )
            .await
            .unwrap();
        assert!(
            out.contains("This node joined a swarm as a worker."),
            "{out}"
        );
    }
    let out = n1
        .run(
            &format!("docker service create --name web --replicas 3 -p 8080:80 busybox sh -c '{HOSTNAME_SITE}' 2>&1"),
            LONG,
        )
        .await
        .unwrap();
    assert!(out.contains("converged"), "{out}\n{}", c.log());
    let nodes = n1
        .run(
            "docker service ps web --format '{{.Node}} {{.CurrentState}}'",
            LONG,
        )
        .await
        .unwrap();
    let placed: BTreeSet<&str> = nodes
        .lines()
        .filter(|l| l.contains("Running"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        placed,
        BTreeSet::from(["node1", "node2", "node3"]),
        "{nodes}"
    );

    let three = "for i in 1 2 3; do timeout 10 wget -qO- localhost:8080; done";
    for n in [&mut n1, &mut n2, &mut n3] {
        let out = n.run(three, LONG).await.unwrap();
        let names: BTreeSet<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(names.len(), 3, "three replicas answer: {out}");
    }
    let out = n1
        .run(
            "timeout 10 wget -qO- node3:8080 && timeout 10 wget -qO- node2:8080",
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(
        out.lines().filter(|l| l.trim().len() == 12).count(),
        2,
        "{out}"
    );

    // An overlay network spans the nodes: a service's tasks on it find each
    // other by the service's name, wherever they run, and reach each other.
    let out = n1
        .run(
            &format!("docker network create -d overlay --attachable appnet >/dev/null && docker service create --name api --replicas 3 --network appnet busybox sh -c '{HOSTNAME_SITE}' 2>&1 | tail -1"),
            LONG,
        )
        .await
        .unwrap();
    assert!(out.contains("converged"), "{out}\n{}", c.log());
    let nodes = n1
        .run("docker service ps api --format '{{.Node}}'", LONG)
        .await
        .unwrap();
    let placed: BTreeSet<&str> = nodes.lines().map(str::trim).collect();
    assert_eq!(placed.len(), 3, "{nodes}");
    let out = n2
        .run(
            "t=$(docker ps -q --filter label=com.docker.swarm.service.name=api | head -n 1); docker exec $t nslookup api; for ip in $(docker exec $t nslookup tasks.api | awk '/^Address: /{print $2}'); do docker exec $t timeout 5 wget -qO- http://$ip/; done",
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(out.matches("Address: ").count(), 3, "three tasks: {out}");
    let answered: BTreeSet<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 12 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert_eq!(
        answered.len(),
        3,
        "replicas on all three nodes answer by name: {out}"
    );
    n1.run("docker service rm api", LONG).await.unwrap();

    // An attachable overlay made on node1 is usable by `docker run` on
    // node2, and containers on it reach each other by name across nodes.
    let out = n1
        .run(
            &format!("docker network create -d overlay --attachable side >/dev/null && docker run -d --name srv --network side busybox sh -c '{HOSTNAME_SITE}'"),
            LONG,
        )
        .await
        .unwrap();
    let srv = out.trim().lines().last().unwrap_or("").to_string();
    assert_eq!(srv.len(), 64, "{out}");
    let out = n2
        .run(
            "docker run --rm --network side busybox sh -c 'sleep 1; timeout 5 wget -qO- http://srv/'",
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(out.trim(), &srv[..12], "srv on node1 answers node2 by name");
    n1.run("docker rm -f srv", LONG).await.unwrap();

    // Removed, the service frees the port on every node.
    n1.run("docker service rm web", LONG).await.unwrap();
    let mut closed = false;
    for _ in 0..40 {
        let out = n2
            .run("timeout 5 wget -qO- localhost:8080 2>&1; echo rc=$?", LONG)
            .await
            .unwrap();
        if out.contains("refused") {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(closed, "the port closes on node2");
}
