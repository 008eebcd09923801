//! What a service's tasks get, through the real docker CLI against `berth
//! daemon`: their secrets and configs as files (what `docker stack deploy`
//! with `secrets:` needs), their overlay networks (reached by service
//! name, and by a plain container on an attachable network), and their
//! capabilities.

mod common;

use std::time::Duration;

use common::engine::{eventually, Engine};

fn init(e: &Engine) {
    e.ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
}

/// The running task container of service `name`.
fn task(e: &Engine, name: &str) -> String {
    let mut id = String::new();
    let found = eventually(Duration::from_secs(60), || {
        id = e
            .ok(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={name}"),
            ])
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        !id.is_empty()
    });
    assert!(
        found,
        "no task of {name}: {}",
        e.docker(&["service", "ps", "--no-trunc", name]).stdout
    );
    id
}

#[test]
fn secret_and_config_files_reach_the_task_as_the_cli_asks() {
    let e = Engine::start();
    init(&e);
    let made = e.docker_stdin(&["secret", "create", "db_password", "-"], b"s3cr3t-pw");
    assert_eq!(made.code, 0, "{}", made.stderr);
    let made = e.docker_stdin(
        &["config", "create", "nginx_conf", "-"],
        b"worker_processes 1;\n",
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    e.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "app",
        "--secret",
        "db_password",
        "--secret",
        "source=db_password,target=/etc/app/pw,uid=33,gid=44,mode=0440",
        "--config",
        "source=nginx_conf,target=/etc/nginx.conf",
        "busybox",
        "sleep",
        "600",
    ]);
    let ctr = task(&e, "app");
    assert_eq!(
        e.ok(&["exec", &ctr, "cat", "/run/secrets/db_password"]),
        "s3cr3t-pw"
    );
    assert_eq!(
        e.ok(&["exec", &ctr, "cat", "/etc/nginx.conf"]),
        "worker_processes 1;\n"
    );
    assert_eq!(
        e.ok(&["exec", &ctr, "stat", "-c", "%u %g %a", "/etc/app/pw"])
            .trim(),
        "33 44 440"
    );
    let write = e.docker(&[
        "exec",
        &ctr,
        "sh",
        "-c",
        "echo x > /run/secrets/db_password",
    ]);
    assert_ne!(write.code, 0);
    assert!(
        write.stderr.contains("Read-only file system"),
        "{}",
        write.stderr
    );
    // Never shown back: not by inspect (of the secret, the service, the
    // task's container) nor by the logs.
    for args in [
        vec!["secret", "inspect", "db_password"],
        vec!["service", "inspect", "app"],
        vec!["inspect", &ctr],
        vec!["service", "logs", "app"],
    ] {
        let run = e.docker(&args);
        assert!(
            !run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"),
            "{args:?}: {}",
            run.stdout
        );
    }
    // A secret a service uses cannot go; an unknown one is refused.
    let rm = e.docker(&["secret", "rm", "db_password"]);
    assert_ne!(rm.code, 0, "{}", rm.stdout);
    let bad = e.docker(&[
        "service", "create", "-d", "--secret", "nosuch", "busybox", "true",
    ]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("secret not found: nosuch"),
        "{}",
        bad.stderr
    );
    e.ok(&["service", "rm", "app"]);
}

#[test]
fn tasks_on_an_attachable_overlay_reach_each_other_by_service_name() {
    let e = Engine::start();
    init(&e);
    let net = e.ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "appnet",
    ]);
    let net = net.trim();
    e.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--network",
        "appnet",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    e.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "client",
        "--network",
        "appnet",
        "busybox",
        "sleep",
        "600",
    ]);
    // dockerd stores the network by its ID, whatever the client sent.
    let target = e.ok(&[
        "service",
        "inspect",
        "web",
        "--format",
        "{{(index .Spec.TaskTemplate.Networks 0).Target}}",
    ]);
    assert_eq!(target.trim(), net);
    let client = task(&e, "client");
    task(&e, "web");
    let mut page = String::new();
    let reached = eventually(Duration::from_secs(30), || {
        page = e
            .docker(&["exec", &client, "wget", "-qO-", "http://web/hostname"])
            .stdout;
        !page.is_empty()
    });
    assert!(reached, "the client task never reached `web`");
    // A plain container on the attachable network reaches the service too.
    let run = e.docker(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "wget",
        "-qO-",
        "http://web/hostname",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, page);
    e.ok(&["service", "rm", "web", "client"]);
}

#[test]
fn cap_add_and_cap_drop_reach_the_task() {
    let e = Engine::start();
    init(&e);
    e.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "caps",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "sleep",
        "600",
    ]);
    let spec = e.ok(&[
        "service",
        "inspect",
        "caps",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.CapabilityAdd}} {{.Spec.TaskTemplate.ContainerSpec.CapabilityDrop}}",
    ]);
    assert_eq!(spec.trim(), "[CAP_NET_ADMIN] [CAP_CHOWN]");
    let ctr = task(&e, "caps");
    let chown = e.docker(&["exec", &ctr, "chown", "1", "/tmp"]);
    assert_ne!(chown.code, 0, "CHOWN was dropped");
    assert!(
        chown.stderr.contains("Operation not permitted"),
        "{}",
        chown.stderr
    );
    let mtu = e.docker(&["exec", &ctr, "ip", "link", "set", "lo", "mtu", "1400"]);
    assert_eq!(mtu.code, 0, "NET_ADMIN was added: {}", mtu.stderr);
    e.ok(&["service", "rm", "caps"]);
}

#[test]
fn stack_deploy_with_secrets_and_configs_gives_the_task_its_files() {
    let e = Engine::start();
    init(&e);
    let dir = e.data.path().join("stack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw.txt"), "stack-pw").unwrap();
    std::fs::write(dir.join("app.conf"), "mode=prod\n").unwrap();
    let file = dir.join("stack.yml");
    std::fs::write(
        &file,
        r#"version: "3.8"
services:
  app:
    image: busybox
    command: sleep 600
    secrets:
      - db_password
      - source: db_password
        target: /etc/pw
        mode: 0400
    configs:
      - source: app_conf
        target: /etc/app.conf
secrets:
  db_password:
    file: ./pw.txt
configs:
  app_conf:
    file: ./app.conf
"#,
    )
    .unwrap();
    let deploy = e.docker(&["stack", "deploy", "-c", file.to_str().unwrap(), "st"]);
    assert_eq!(deploy.code, 0, "{}{}", deploy.stdout, deploy.stderr);
    let ctr = task(&e, "st_app");
    assert_eq!(
        e.ok(&["exec", &ctr, "cat", "/run/secrets/db_password"]),
        "stack-pw"
    );
    assert_eq!(e.ok(&["exec", &ctr, "cat", "/etc/app.conf"]), "mode=prod\n");
    assert_eq!(
        e.ok(&["exec", &ctr, "stat", "-c", "%a", "/etc/pw"]).trim(),
        "400"
    );
    e.ok(&["stack", "rm", "st"]);
}
