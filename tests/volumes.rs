//! Volumes and bind mounts through the real docker CLI, and a scope whose
//! filesystem root is not the host's through the Rust API.

mod common;

use std::time::Duration;

use common::engine::{eventually, Engine};

#[test]
fn a_named_volume_outlives_its_container_and_starts_with_the_images_files() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "notes:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/n",
    ]);
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "-v",
            "notes:/data",
            "busybox",
            "cat",
            "/data/n"
        ]),
        "kept\n"
    );
    assert_eq!(
        e.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]),
        "local notes\n"
    );
    let mountpoint = e.ok(&["volume", "inspect", "notes", "--format", "{{.Mountpoint}}"]);
    assert_eq!(
        std::fs::read_to_string(format!("{}/n", mountpoint.trim())).unwrap(),
        "kept\n"
    );
    // A fresh volume over an image directory starts with its content.
    let etc = e.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=etcvol,target=/etc",
        "busybox",
        "cat",
        "/etc/group",
    ]);
    assert!(etc.contains("root:x:0:"), "{etc}");
    // Container root owns the volume's files (an unprivileged uid on the host).
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "notes:/data",
        "busybox",
        "sh",
        "-c",
        "touch /data/mine && ls -ln /data/mine",
    ]);
    let inspect = e.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "notes:/data",
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(!inspect.is_empty());
    let mounts = e.ok(&[
        "inspect",
        "user",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
    ]);
    assert_eq!(mounts.trim(), "volume notes /data true");
    let busy = e.docker(&["volume", "rm", "notes"]);
    assert_eq!(busy.code, 1);
    assert!(
        busy.stderr
            .starts_with("Error response from daemon: remove notes: volume is in use - ["),
        "{busy:?}"
    );
    e.ok(&["rm", "-f", "user"]);
    e.ok(&["volume", "rm", "notes", "etcvol"]);
    assert!(!std::path::Path::new(mountpoint.trim()).exists());
    let gone = e.docker(&["volume", "inspect", "notes"]);
    assert!(gone.stderr.contains("no such volume"), "{gone:?}");
}

#[test]
fn bind_mounts_show_edits_live_and_read_only_refuses_writes() {
    let e = Engine::start();
    let src = e.data.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("page"), "one\n").unwrap();
    // Container root is an unprivileged host uid: the directory lets it write.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o777)).unwrap();
    let spec = format!("{}:/src", src.display());
    let ro = format!("{}:/ro:ro", src.display());
    e.ok(&[
        "run", "-d", "--name", "b1", "-v", &spec, "-v", &ro, "busybox", "sleep", "60",
    ]);
    assert_eq!(e.ok(&["exec", "b1", "cat", "/src/page"]), "one\n");
    std::fs::write(src.join("page"), "two\n").unwrap();
    assert_eq!(e.ok(&["exec", "b1", "cat", "/src/page"]), "two\n");
    e.ok(&["exec", "b1", "sh", "-c", "echo from-container > /src/back"]);
    assert_eq!(
        std::fs::read_to_string(src.join("back")).unwrap(),
        "from-container\n"
    );
    let refused = e.docker(&["exec", "b1", "sh", "-c", "echo x > /ro/page"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("Read-only file system"),
        "{refused:?}"
    );
    let mounts = e.ok(&[
        "inspect",
        "b1",
        "--format",
        "{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}",
    ]);
    assert!(
        mounts.contains("/src=true") && mounts.contains("/ro=false"),
        "{mounts}"
    );
    // tmpfs mounts.
    let tmpfs = e.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts",
    ]);
    assert!(tmpfs.starts_with("tmpfs /scratch tmpfs"), "{tmpfs}");
    e.ok(&["rm", "-f", "b1"]);
    assert!(e.mounts().is_empty(), "{:?}", e.mounts());
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_prune() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/cache",
        "busybox",
        "sh",
        "-c",
        "echo x > /cache/f",
    ]);
    assert!(eventually(Duration::from_secs(5), || e
        .ok(&["ps", "-a", "--filter", "status=exited", "-q"])
        .lines()
        .count()
        == 1));
    let name = e.ok(&[
        "inspect",
        "anon",
        "--format",
        "{{range .Mounts}}{{.Name}}{{end}}",
    ]);
    assert_eq!(name.trim().len(), 64, "{name}");
    e.ok(&["rm", "-v", "anon"]);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "");
    e.ok(&["volume", "create", "keep"]);
    e.ok(&["run", "--name", "anon2", "-v", "/cache", "busybox", "true"]);
    e.ok(&["rm", "anon2"]);
    let pruned = e.ok(&["volume", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
    assert_eq!(
        e.ok(&["volume", "ls", "-q"]),
        "keep\n",
        "named volumes stay without --all"
    );
}

#[test]
fn bad_mount_syntax_gets_dockers_errors() {
    let e = Engine::start();
    let relative = e.docker(&["run", "--rm", "-v", "data:relative", "busybox", "true"]);
    assert_eq!(relative.code, 125);
    assert!(
        relative.stderr.contains(
            "invalid volume specification: 'data:relative': invalid mount config for type \"volume\": invalid mount path: 'relative' mount path must be absolute"
        ),
        "{relative:?}"
    );
    let missing = e.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/dir,target=/x",
        "busybox",
        "true",
    ]);
    assert!(
        missing.stderr.contains(
            "invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir"
        ),
        "{missing:?}"
    );
    let name = e.docker(&["volume", "create", "bad/name"]);
    assert!(
        name.stderr
            .contains("includes invalid characters for a local volume name"),
        "{name:?}"
    );
    // The CLI refuses too many colons itself; the daemon too, for other clients.
    let too_many = e.docker(&["run", "--rm", "-v", "/a:/b:ro:extra", "busybox", "true"]);
    assert_ne!(too_many.code, 0);
    let body = r#"{"Image":"busybox","HostConfig":{"Binds":["/a:/b:ro:extra"]}}"#;
    let (status, reply) = e.http(&format!(
        "POST /v1.47/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(status.contains("400"), "{status}");
    assert!(
        reply.contains("invalid volume specification: '/a:/b:ro:extra'"),
        "{reply}"
    );
    let mode = e.docker(&["run", "--rm", "-v", "/tmp:/x:bogus", "busybox", "true"]);
    assert!(mode.stderr.contains("invalid mode: bogus"), "{mode:?}");
    let unknown = e.docker(&["volume", "rm", "nosuch"]);
    assert!(
        unknown
            .stderr
            .contains("Error response from daemon: get nosuch: no such volume"),
        "{unknown:?}"
    );
}

#[test]
fn a_scope_with_its_own_root_binds_its_own_files() {
    use berth_runtime::container::config::MountConfig;
    use berth_runtime::container::{ContainerConfig, Runtime, RuntimeOptions, WaitCondition};
    use berth_runtime::net::ScopeSettings;
    use berth_runtime::DataDir;

    let tmp = tempfile::Builder::new()
        .prefix("berth-scope-root-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let lab = tmp.path().join("lab");
    std::fs::create_dir_all(lab.join("home")).unwrap();
    std::fs::write(lab.join("only-in-the-lab"), "lab\n").unwrap();
    // A link planted in the lab pointing at the host's /etc resolves in the lab.
    std::fs::create_dir_all(lab.join("etc")).unwrap();
    // The lab's files belong to its (unprivileged) root in a classroom; here
    // the directories are simply open to it.
    use std::os::unix::fs::PermissionsExt;
    for d in [&lab, &lab.join("etc")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::os::unix::fs::symlink("/etc", lab.join("home/escape")).unwrap();
    let data = DataDir::open(tmp.path().join("data")).unwrap();
    let runtime = Runtime::open(
        data,
        RuntimeOptions {
            init_binary: env!("CARGO_BIN_EXE_berth").into(),
            ..RuntimeOptions::default()
        },
    )
    .unwrap();
    runtime.net().configure_scope(
        "lab",
        ScopeSettings {
            fs_root: lab.clone(),
            ..ScopeSettings::default()
        },
    );
    runtime.images().ensure_busybox("lab").unwrap();
    let config = ContainerConfig {
        image: "busybox".into(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "ls /x > /x/listing; touch /y/made-by-container".into(),
        ],
        mounts: vec![
            MountConfig::Bind {
                source: "/".into(),
                target: "/x".into(),
                read_only: false,
            },
            MountConfig::Bind {
                source: "/home/escape".into(),
                target: "/y".into(),
                read_only: false,
            },
        ],
        networking: berth_runtime::net::ContainerNetworking {
            mode: "none".into(),
            ..Default::default()
        },
        ..ContainerConfig::default()
    };
    let c = runtime.create("lab", Some("binder"), config).unwrap();
    runtime.start(&c, None).unwrap();
    assert_eq!(runtime.wait(&c, WaitCondition::NextExit), 0);
    let listing = std::fs::read_to_string(lab.join("listing")).unwrap();
    assert!(listing.contains("only-in-the-lab"), "{listing}");
    assert!(
        !listing.contains("proc"),
        "the host's root is not shown: {listing}"
    );
    assert!(
        lab.join("etc/made-by-container").exists(),
        "the link resolved inside the lab, to the lab's /etc"
    );
    assert!(!std::path::Path::new("/etc/made-by-container").exists());
    runtime.remove(&c, true).unwrap();
}
