//! Swarm mode across the three nodes of one classroom session, through the
//! real docker CLI typed in each node's lab terminal: the session network,
//! init and join over it, tasks spread over the nodes' engines, drain, a
//! killed task replaced, per-node image pulls from the classroom registry,
//! a rolling update paced and ordered by its flags, a healthcheck holding an
//! update, and rollback.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use common::classroom::{Classroom, Term};

const LONG: Duration = Duration::from_secs(120);

/// A 3-node session with a terminal on each node.
struct Lab {
    c: Classroom,
    token: String,
    session: String,
    terms: Vec<Term>,
}

impl Lab {
    async fn start() -> Self {
        let c = Classroom::start(&["--nodes", "3"]);
        let (token, status) = c.new_session();
        assert_eq!(
            status["nodes"],
            serde_json::json!(["node1", "node2", "node3"])
        );
        let mut terms = Vec::new();
        for n in 1..=3 {
            let mut t = c.terminal(&token, &format!("node{n}")).await;
            assert!(
                t.wait_for(&format!("root@node{n}:~# "), LONG).await,
                "no prompt on node{n}: {:?}\n{}",
                t.text(),
                c.log()
            );
            terms.push(t);
        }
        let session = status["id"].as_str().unwrap().to_string();
        Self {
            c,
            token,
            session,
            terms,
        }
    }

    /// Runs `cmd` in node `n`'s lab (1-based); what it printed.
    async fn sh(&mut self, n: usize, cmd: &str) -> String {
        match self.terms[n - 1].run(cmd, LONG).await {
            Some(out) => out,
            None => panic!(
                "node{n}: `{cmd}` did not finish: {:?}\n{}",
                self.terms[n - 1].text(),
                self.c.log()
            ),
        }
    }

    /// Runs `cmd` until `check` accepts its output (or fails after 90 s).
    async fn until(&mut self, n: usize, cmd: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.sh(n, cmd).await;
            if check(&out) {
                return out;
            }
            if Instant::now() > deadline {
                panic!(
                    "node{n}: `{cmd}` never matched; last:\n{out}\n{}",
                    self.c.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Makes the swarm: node1 manager, node2 and node3 workers.
    async fn swarm(&mut self) -> String {
        let out = self.sh(1, "docker swarm init 2>&1 | cat").await;
        assert!(
            out.contains("Swarm initialized: current node (") && out.contains(" 10.199.0.1:2377"),
            "{out}"
        );
        let token = self
            .sh(1, "docker swarm join-token -q worker")
            .await
            .trim()
            .to_string();
        assert!(token.starts_with("SWMTKN-1-"), "{token}");
        // A wrong token: swarmkit's words, and the node stays out.
        let wrong = format!(
            "{}{}",
            &token[..token.len() - 1],
            if token.ends_with('a') { 'b' } else { 'a' }
        );
        let out = self
            .sh(
                3,
                &format!("docker swarm join --token {wrong} node1:2377 2>&1"),
            )
            .await;
        assert_eq!(
            out.trim(),
            "Error response from daemon: rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster",
        );
        for n in [2, 3] {
            let out = self
                .sh(
                    n,
                    &format!("docker swarm join --token {token} node1:2377 2>&1"),
                )
                .await;
            assert_eq!(out.trim(), "This node joined a swarm as a worker.", "{out}");
        }
        token
    }

    /// Task containers of `svc` on node `n`'s engine (`docker ps`).
    async fn tasks_on(&mut self, n: usize, svc: &str) -> usize {
        self.sh(
            n,
            &format!("docker ps -q --filter label=com.docker.swarm.service.name={svc} | wc -l"),
        )
        .await
        .trim()
        .parse()
        .unwrap()
    }

    /// Running tasks of `svc` per node, from `docker service ps`.
    async fn spread(&mut self, svc: &str) -> BTreeMap<String, usize> {
        let out = self
            .sh(
                1,
                &format!(
                    "docker service ps {svc} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'"
                ),
            )
            .await;
        let mut m = BTreeMap::new();
        for l in out.lines() {
            let mut w = l.split_whitespace();
            if let (Some(node), Some("Running")) = (w.next(), w.next()) {
                *m.entry(node.to_string()).or_default() += 1;
            }
        }
        m
    }
}

fn parse_time(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s.trim()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_join_over_the_session_network_and_share_tasks() {
    let mut lab = Lab::start().await;

    // Every lab knows the nodes by name; the addresses are the session's.
    let hosts = lab.sh(2, "grep node /etc/hosts").await;
    for n in 1..=3 {
        assert!(hosts.contains(&format!("10.199.0.{n}\tnode{n}")), "{hosts}");
    }
    let addr = lab.sh(3, "ip -4 -o addr show eth0").await;
    assert!(addr.contains("10.199.0.3/24"), "{addr}");
    // Nothing listens on node1:2377 before `swarm init`: joining times out.
    let out = lab
        .sh(2, "docker swarm join --token SWMTKN-1-x node1:2377 2>&1")
        .await;
    assert!(
        out.contains("Error response from daemon: Timeout was reached before node joined."),
        "{out}"
    );

    let token = lab.swarm().await;
    // Docker's errors: joining twice, a worker's `node ls`, unknown node.
    let out = lab
        .sh(
            3,
            &format!("docker swarm join --token {token} node1:2377 2>&1"),
        )
        .await;
    assert!(
        out.contains("This node is already part of a swarm."),
        "{out}"
    );
    let out = lab.sh(2, "docker node ls 2>&1").await;
    assert!(
        out.contains("Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."),
        "{out}"
    );
    let out = lab.sh(1, "docker node inspect node9 2>&1").await;
    assert!(
        out.contains("Error response from daemon: node node9 not found")
            || out.contains("Error: No such node: node9"),
        "{out}"
    );

    let nodes = lab
        .sh(
            1,
            "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'",
        )
        .await;
    assert_eq!(
        nodes.lines().map(str::trim).collect::<Vec<_>>(),
        [
            "node1 Ready Active Leader",
            "node2 Ready Active",
            "node3 Ready Active"
        ],
        "{nodes}"
    );
    let addr = lab
        .sh(1, "docker node inspect node2 --format '{{.Status.Addr}}'")
        .await;
    assert_eq!(addr.trim(), "10.199.0.2");

    // Six replicas spread two per node, each a container on its node.
    let out = lab
        .sh(
            1,
            "docker service create --name web --replicas 6 busybox sleep 3600 2>&1 | cat",
        )
        .await;
    // (busybox is in no registry here: the CLI warns, as with dockerd.)
    let id = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 25 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| panic!("no service ID: {out}"))
        .to_string();
    assert!(
        out.contains(&format!("verify: Service {id} converged")),
        "{out}"
    );
    for n in 1..=3 {
        assert_eq!(lab.tasks_on(n, "web").await, 2, "node{n}");
    }
    let spread = lab.spread("web").await;
    assert_eq!(
        spread.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{spread:?}"
    );

    // Drain: node2's tasks move to node1 and node3.
    let out = lab
        .sh(1, "docker node update --availability drain node2")
        .await;
    assert_eq!(out.trim(), "node2");
    lab.until(2, "docker ps -q | wc -l", |o| o.trim() == "0")
        .await;
    let spread = lab.spread("web").await;
    assert_eq!(spread.get("node2"), None, "{spread:?}");
    assert_eq!(spread.values().sum::<usize>(), 6, "{spread:?}");
    let nodes = lab
        .sh(
            1,
            "docker node ls --format '{{.Hostname}} {{.Availability}}'",
        )
        .await;
    assert!(nodes.contains("node2 Drain"), "{nodes}");
    lab.sh(1, "docker node update --availability active node2")
        .await;

    // A task killed on node3 is replaced; the failure shows in service ps.
    let victim = lab
        .sh(
            3,
            "docker ps -q --filter label=com.docker.swarm.service.name=web | head -1",
        )
        .await
        .trim()
        .to_string();
    assert!(!victim.is_empty());
    lab.sh(3, &format!("docker rm -f {victim}")).await;
    lab.until(
        1,
        "docker service ps web --format '{{.DesiredState}} {{.CurrentState}} {{.Error}}'",
        |o| {
            o.lines()
                .filter(|l| l.starts_with("Running Running"))
                .count()
                == 6
                && o.contains("Shutdown Failed")
        },
    )
    .await;
    let ls = lab
        .sh(1, "docker service ls --format '{{.Name}} {{.Replicas}}'")
        .await;
    assert_eq!(ls.trim(), "web 6/6");

    // Scaling a global service, unknown service: Docker's words.
    lab.sh(
        1,
        "docker service create -d --name agent --mode global busybox sleep 3600",
    )
    .await;
    let out = lab.sh(1, "docker service scale agent=2 2>&1").await;
    assert!(
        out.contains("agent: scale can only be used with replicated or replicated-job mode"),
        "{out}"
    );
    lab.until(
        1,
        "docker service ls --filter name=agent --format '{{.Replicas}}'",
        |o| o.trim() == "3/3",
    )
    .await;
    let out = lab.sh(1, "docker service ps nosuch 2>&1").await;
    assert!(out.contains("no such service: nosuch"), "{out}");

    // Leaving: a worker leaves (listed Down), the manager needs --force.
    let out = lab.sh(3, "docker swarm leave 2>&1").await;
    assert_eq!(out.trim(), "Node left the swarm.");
    lab.until(
        1,
        "docker node ls --format '{{.Hostname}} {{.Status}}'",
        |o| o.contains("node3 Down"),
    )
    .await;
    lab.until(
        1,
        "docker service ls --format '{{.Name}} {{.Replicas}}'",
        |o| o.contains("web 6/6") && o.contains("agent 2/2"),
    )
    .await;
    assert_eq!(lab.tasks_on(3, "web").await, 0);
    let out = lab.sh(1, "docker swarm leave 2>&1").await;
    assert!(
        out.contains("Use `--force` to ignore this message."),
        "{out}"
    );
    let out = lab.sh(1, "docker swarm leave --force 2>&1").await;
    assert_eq!(out.trim(), "Node left the swarm.");
    lab.until(1, "docker ps -q | wc -l", |o| o.trim() == "0")
        .await;

    // A swarm again, then a reset: the session network, its namespaces and
    // the swarm go with the session; none of it was on the host's network.
    lab.swarm().await;
    lab.sh(
        1,
        "docker service create -d --replicas 3 --name again busybox sleep 3600",
    )
    .await;
    let host = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&host.stdout).contains("10.199."));
    let dir = lab.c.data_dir().join("sessions").join(&lab.session);
    assert!(dir.join("network/netns").exists());
    let r = lab
        .c
        .http("POST", "/api/session/reset", Some(&lab.token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!dir.exists(), "session directory removed");
    assert_eq!(
        common::classroom::mounts_with(&lab.session),
        Vec::<String>::new()
    );
    let state = std::fs::read_to_string(lab.c.data_dir().join("swarm/state.json")).unwrap();
    assert!(!state.contains(&lab.session), "{state}");
    let mut t = lab.c.terminal(&lab.token, "node1").await;
    assert!(t.wait_for("root@node1:~# ", LONG).await);
    let info = t
        .run("docker info --format '{{.Swarm.LocalNodeState}}'", LONG)
        .await
        .unwrap();
    assert_eq!(info.trim(), "inactive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_reach_the_nodes_through_the_registry_and_updates_roll_as_flagged() {
    let mut lab = Lab::start().await;
    lab.swarm().await;
    // The seed flow: an image made on node1, pushed to the classroom registry.
    for v in ["v1", "v2", "v3"] {
        let out = lab
            .sh(
                1,
                &format!(
                    "docker tag busybox registry.local:5000/app:{v} && docker push registry.local:5000/app:{v} 2>&1 | tail -1"
                ),
            )
            .await;
        assert!(out.contains(&format!("{v}: digest: sha256:")), "{out}");
    }
    assert!(lab
        .sh(2, "docker images -q registry.local:5000/app")
        .await
        .trim()
        .is_empty());
    let out = lab
        .sh(
            1,
            "docker service create --name app --replicas 3 --update-delay 3s --update-parallelism 1 registry.local:5000/app:v1 sleep 3600 2>&1 | cat",
        )
        .await;
    assert!(out.contains("converged"), "{out}");
    assert!(
        !out.contains("could not be accessed on a registry"),
        "{out}"
    );
    for n in 1..=3 {
        assert_eq!(lab.tasks_on(n, "app").await, 1, "node{n}");
    }
    let images = lab
        .sh(3, "docker images --format '{{.Repository}}:{{.Tag}}'")
        .await;
    assert!(images.contains("registry.local:5000/app:v1"), "{images}");

    // An image no registry has: Swarm's task error.
    lab.sh(
        1,
        "docker service create -d --name ghost registry.local:5000/ghost:v1",
    )
    .await;
    lab.until(
        1,
        "docker service ps ghost --no-trunc --format '{{.CurrentState}}|{{.Error}}'",
        |o| o.contains("Rejected") && o.contains("No such image: registry.local:5000/ghost:v1"),
    )
    .await;
    lab.sh(1, "docker service rm ghost").await;

    // Rolling update, stop-first, one at a time, 3 s apart.
    let out = lab
        .sh(
            1,
            "docker service update --image registry.local:5000/app:v2 app 2>&1 | cat",
        )
        .await;
    assert!(out.contains("verify: Service app converged"), "{out}");
    let rows = task_rows(&mut lab, "app").await;
    let new: Vec<&TaskRow> = rows.iter().filter(|r| r.image.contains(":v2")).collect();
    let old: Vec<&TaskRow> = rows.iter().filter(|r| r.image.contains(":v1")).collect();
    assert_eq!(new.len(), 3, "{rows:?}");
    assert!(new.iter().all(|r| r.state == "running"), "{rows:?}");
    let mut created: Vec<SystemTime> = new.iter().map(|r| r.created).collect();
    created.sort();
    for pair in created.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(
            gap >= Duration::from_secs(3),
            "update-delay 3s: {gap:?} {rows:?}"
        );
    }
    // stop-first: each slot's old task stopped before its new one ran.
    for n in &new {
        let o = old
            .iter()
            .find(|o| o.slot == n.slot)
            .expect("old task of the slot");
        assert_eq!(o.state, "shutdown", "{rows:?}");
        assert!(o.updated <= n.updated, "stop-first: {o:?} then {n:?}");
    }

    // start-first, all at once: each new task ran before its old one stopped.
    let out = lab
        .sh(
            1,
            "docker service update --update-order start-first --update-parallelism 0 --image registry.local:5000/app:v3 app 2>&1 | cat",
        )
        .await;
    assert!(out.contains("verify: Service app converged"), "{out}");
    // The old tasks stop after (busybox's sleep waits out the grace period).
    let mut rows = task_rows(&mut lab, "app").await;
    for _ in 0..60 {
        if rows
            .iter()
            .all(|r| !r.image.contains(":v2") || r.state == "shutdown")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        rows = task_rows(&mut lab, "app").await;
    }
    let new: Vec<&TaskRow> = rows.iter().filter(|r| r.image.contains(":v3")).collect();
    assert_eq!(new.len(), 3, "{rows:?}");
    let mut created: Vec<SystemTime> = new.iter().map(|r| r.created).collect();
    created.sort();
    let spread = created[2].duration_since(created[0]).unwrap();
    assert!(spread < Duration::from_secs(3), "parallelism 0: {spread:?}");
    for n in &new {
        let o = rows
            .iter()
            .find(|o| o.slot == n.slot && o.image.contains(":v2"))
            .expect("v2 task of the slot");
        assert!(o.updated >= n.running_at(), "start-first: {n:?} then {o:?}");
    }

    // A failing healthcheck holds the update: paused after the first task.
    let out = lab
        .sh(
            1,
            "docker service update -d --update-parallelism 1 --update-order stop-first --update-failure-action pause --health-cmd false --health-interval 1s --health-retries 1 --image registry.local:5000/app:v1 app 2>&1",
        )
        .await;
    assert_eq!(out.trim(), "app");
    lab.until(
        1,
        "docker service inspect app --format '{{.UpdateStatus.State}}'",
        |o| o.trim() == "paused",
    )
    .await;
    let msg = lab
        .sh(
            1,
            "docker service inspect app --format '{{.UpdateStatus.Message}}'",
        )
        .await;
    assert!(
        msg.contains("update paused due to failure or early termination of task"),
        "{msg}"
    );
    let rows = task_rows(&mut lab, "app").await;
    let live_v3 = rows
        .iter()
        .filter(|r| r.image.contains(":v3") && r.desired == "running")
        .count();
    assert_eq!(live_v3, 2, "two old tasks keep running: {rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.image.contains(":v1") && r.err == "unhealthy container"),
        "{rows:?}"
    );

    // Rollback: back to v3 everywhere, the CLI's rollback lines.
    let out = lab.sh(1, "docker service rollback app 2>&1 | cat").await;
    assert!(
        out.contains("rollback: manually requested rollback"),
        "{out}"
    );
    assert!(out.contains("verify: Service app converged"), "{out}");
    let image = lab
        .sh(
            1,
            "docker service inspect app --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'",
        )
        .await;
    assert!(image.contains("app:v3"), "{image}");
    let rows = task_rows(&mut lab, "app").await;
    let running: Vec<&TaskRow> = rows.iter().filter(|r| r.desired == "running").collect();
    assert_eq!(running.len(), 3, "{rows:?}");
    assert!(running.iter().all(|r| r.image.contains(":v3")), "{rows:?}");
}

#[derive(Debug)]
struct TaskRow {
    slot: u64,
    image: String,
    desired: String,
    state: String,
    err: String,
    created: SystemTime,
    /// `Status.Timestamp`: when it reached its current state.
    updated: SystemTime,
}

impl TaskRow {
    /// When a running task ran (its state's timestamp).
    fn running_at(&self) -> SystemTime {
        self.updated
    }
}

/// Every task of `svc` with its times, from `docker inspect` on the manager.
async fn task_rows(lab: &mut Lab, svc: &str) -> Vec<TaskRow> {
    let out = lab
        .sh(
            1,
            &format!(
                "docker inspect --type task --format '{{{{.Slot}}}}|{{{{.Spec.ContainerSpec.Image}}}}|{{{{.DesiredState}}}}|{{{{.Status.State}}}}|{{{{.Status.Err}}}}|{{{{.CreatedAt.Format \"2006-01-02T15:04:05.000000000Z07:00\"}}}}|{{{{.Status.Timestamp.Format \"2006-01-02T15:04:05.000000000Z07:00\"}}}}' $(docker service ps -q {svc})"
            ),
        )
        .await;
    out.lines()
        .filter(|l| l.contains('|'))
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            TaskRow {
                slot: f[0].parse().unwrap_or(0),
                image: f[1].to_string(),
                desired: f[2].to_string(),
                state: f[3].to_string(),
                err: f[4].to_string(),
                created: parse_time(f[5]),
                updated: parse_time(f[6]),
            }
        })
        .collect()
}
