//! Escapes: the engine connecting for the learner. Pulls, pushes, logins
//! and swarm joins of a classroom session must not reach the host's own
//! services (loopback, its own addresses) nor link-local ones (cloud
//! metadata), unless the operator allows a registry by name; the classroom
//! registry keeps working. Judged by a listener on the host's loopback that
//! counts the connections it is offered.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Lab;

/// A TCP listener on the host's loopback that counts (and drops) every
/// connection it gets.
struct HostListener {
    port: u16,
    contacts: Arc<AtomicUsize>,
}

impl HostListener {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let contacts = Arc::new(AtomicUsize::new(0));
        let counted = contacts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        Self { port, contacts }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn contacts(&self) -> usize {
        self.contacts.load(Ordering::SeqCst)
    }
}

fn assert_refused(run: &common::Run, what: &str, allow: &str) {
    assert_ne!(run.code, 0, "{what} succeeded: {}", run.stdout);
    assert!(
        run.stderr.contains("refused: ")
            && run
                .stderr
                .contains("which a classroom session may not reach")
            && run.stderr.contains(&format!("--allow-registry {allow})")),
        "{what}: {}",
        run.stderr
    );
}

use super::common;

#[test]
fn pulls_pushes_and_logins_never_reach_the_hosts_loopback() {
    let host = HostListener::new();
    let lab = Lab::new();
    let addr = host.addr();

    let pull = lab.docker(&["pull", &format!("{addr}/x")]);
    assert_refused(&pull, "pull", &addr);
    assert!(
        pull.stderr.contains(&format!(
            "Get \"http://{addr}/v2/\": refused: 127.0.0.1 is an address of the Berth host"
        )),
        "{}",
        pull.stderr
    );

    lab.ok(&["tag", "busybox", &format!("{addr}/x")]);
    let push = lab.docker(&["push", &format!("{addr}/x")]);
    assert_refused(&push, "push", &addr);

    let login = lab.docker(&["login", "-u", "learner", "-p", "secret", &addr]);
    assert_refused(&login, "login", &addr);

    // A name that resolves to the loopback is checked after resolution.
    let named = format!("localhost:{}", host.port);
    let pull = lab.docker(&["pull", &format!("{named}/x")]);
    assert_refused(&pull, "pull by a loopback name", &named);

    // So is the rest of the loopback network.
    let pull = lab.docker(&["pull", &format!("127.0.0.2:{}/x", host.port)]);
    assert_refused(
        &pull,
        "pull from 127.0.0.2",
        &format!("127.0.0.2:{}", host.port),
    );

    assert_eq!(
        host.contacts(),
        0,
        "the host's loopback listener was contacted"
    );
}

#[test]
fn the_cloud_metadata_address_is_refused_before_any_connection() {
    let lab = Lab::new();
    let pull = lab.docker(&["pull", "169.254.169.254/latest/x"]);
    // The refusal is the policy's, not a dial's timeout or refusal.
    assert_refused(&pull, "metadata pull", "169.254.169.254:443");
    assert!(pull.stderr.contains("link-local"), "{}", pull.stderr);
    assert!(
        !pull.stderr.contains("dial tcp") && !pull.stderr.contains("timeout"),
        "{}",
        pull.stderr
    );
}

#[test]
fn swarm_joins_go_only_to_the_sessions_own_managers() {
    let host = HostListener::new();
    let lab = Lab::new();
    let token =
        "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
    let join = lab.docker(&["swarm", "join", "--token", token, &host.addr()]);
    assert_ne!(join.code, 0, "{}", join.stdout);
    assert!(
        join.stderr.contains(&format!(
            "refused: {} is not a node of this session",
            host.addr()
        )),
        "{}",
        join.stderr
    );
    assert_eq!(
        host.contacts(),
        0,
        "the host's loopback listener was contacted"
    );

    // A listener the learner runs in the node's own network (as a lab
    // process would) never hears the engine's join request either.
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "catcher",
        "--network",
        "host",
        "busybox",
        "nc",
        "-l",
        "-p",
        "9999",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let probe = [
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        "netstat -ltn | grep -q ':9999 '",
    ];
    while lab.docker(&probe).code != 0 {
        assert!(
            Instant::now() < deadline,
            "the learner's listener never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let join = lab.docker(&["swarm", "join", "--token", token, "127.0.0.1:9999"]);
    assert_ne!(join.code, 0, "{}", join.stdout);
    assert!(join.stderr.contains("refused: "), "{}", join.stderr);
    let heard = lab.ok(&["logs", "catcher"]);
    assert!(
        !heard.contains("secret") && heard.trim().is_empty(),
        "the learner's listener got the join request: {heard}"
    );
    let info = lab.ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(info.trim(), "inactive");
}

#[test]
fn an_operator_allowed_registry_is_reached_and_the_classroom_registry_works() {
    let host = HostListener::new();
    let addr = host.addr();
    let lab = Lab::with_args(&["--allow-registry", &addr]);

    let pull = lab.docker(&["pull", &format!("{addr}/x")]);
    assert_ne!(pull.code, 0, "nothing serves a registry there");
    assert!(!pull.stderr.contains("refused: "), "{}", pull.stderr);
    assert!(
        host.contacts() > 0,
        "the allowed registry was never contacted"
    );

    // Another port of the same host is not allowed by that flag.
    let other = HostListener::new();
    let pull = lab.docker(&["pull", &format!("{}/x", other.addr())]);
    assert_refused(&pull, "pull from another port", &other.addr());
    assert_eq!(other.contacts(), 0);

    // The classroom registry (on the host's loopback too) keeps working by
    // its name.
    lab.ok(&["tag", "busybox", "registry.local:5000/egress:v1"]);
    lab.ok(&["push", "registry.local:5000/egress:v1"]);
    lab.ok(&["rmi", "registry.local:5000/egress:v1"]);
    lab.ok(&["pull", "registry.local:5000/egress:v1"]);
    let out = lab.ok(&[
        "run",
        "--rm",
        "registry.local:5000/egress:v1",
        "echo",
        "round-trip",
    ]);
    assert_eq!(out.trim(), "round-trip");
}

/// The records of a container and its bridge disagree (seen after a daemon
/// was killed and its data directory partly removed): the published port
/// must not carry the connection to wherever the host's routes send that
/// address — here the host's own loopback, where a listener counts contacts.
#[test]
fn a_published_port_whose_records_disagree_with_the_bridge_fails_closed() {
    use common::engine::Engine;
    let host = HostListener::new();
    let target = host.port.to_string();
    let mut e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("0:{target}"),
        "busybox",
        "sleep",
        "300",
    ]);
    let id = e
        .ok(&["inspect", "-f", "{{.Id}}", "web"])
        .trim()
        .to_string();
    let ip = e
        .ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"])
        .trim()
        .to_string();
    let published = e.ok(&["port", "web", &target]);
    let host_port: u16 = published
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port: {published}"));

    // The daemon dies; its record of the container now names an address
    // that is not on the bridge (the host's loopback).
    e.crash();
    // (`<data>/live/<id>.json`: the network state of a running container)
    let live = e.data_dir().join("live").join(format!("{id}.json"));
    let text = std::fs::read_to_string(&live).unwrap();
    let quoted = format!("\"{ip}\"");
    assert!(text.contains(&quoted), "{text}");
    std::fs::write(&live, text.replace(&quoted, "\"127.0.0.1\"")).unwrap();
    e.start_again();

    // The port is published again; a client's connection goes nowhere.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = false;
    while Instant::now() < deadline {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", host_port)) {
            use std::io::{Read, Write};
            let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out);
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered, "the port was never published again\n{}", e.log());
    // The [::] listener beside it relays through the same bridge check.
    if let Ok(mut c) = std::net::TcpStream::connect(("::1", host_port)) {
        use std::io::{Read, Write};
        let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = c.read_to_end(&mut Vec::new());
    }
    assert_eq!(
        host.contacts(),
        0,
        "the proxy connected past the bridge to the host's loopback"
    );
    e.ok(&["rm", "-f", "web"]);
}
