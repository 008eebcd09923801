//! Escapes: a swarm task's secrets and configs. The engine writes their
//! data and binds it into the task's container at a target in the
//! learner's image, which the learner shapes at will: `/run/secrets` a link
//! to the host's canary directory (absolute, through `..`, through
//! `/proc/self/root`). Judged by host state: nothing is made beside the
//! canary, no mount lands on it, and the secret's data is shown by no
//! inspect or log.

use std::time::Duration;

use super::common::engine::eventually;
use super::{Canary, Lab};

/// The task container of service `name`, once it runs.
fn task_container(lab: &Lab, name: &str) -> Option<String> {
    let mut id = None;
    eventually(Duration::from_secs(90), || {
        let out = lab.docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={name}"),
        ]);
        id = out.stdout.lines().next().map(String::from);
        id.is_some()
    });
    id
}

#[test]
fn a_secret_target_linked_out_of_the_rootfs_stays_in_the_container() {
    let lab = Lab::new();
    let canary = Canary::new();
    let dir = canary.path().display().to_string();
    let init = lab.docker(&["swarm", "init"]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    let data = "secret-data-never-shown";
    let made = lab.docker_stdin(&["secret", "create", "pw", "-"], data.as_bytes());
    assert_eq!(made.code, 0, "{}", made.stderr);
    let made = lab.docker_stdin(&["config", "create", "conf", "-"], b"config-data");
    assert_eq!(made.code, 0, "{}", made.stderr);
    // (tag, link, whether the image has the link's target, whether the
    // task runs). A link that leads nowhere in the rootfs, or through a
    // magic link, gets the task rejected; never a file on the host.
    let links = [
        ("abs", dir.clone(), true, true),
        ("up", format!("../../../../../../../..{dir}"), true, true),
        ("dangling", dir.clone(), false, false),
        ("proc", format!("/proc/self/root{dir}"), true, false),
    ];
    for (tag, link, made, runs) in &links {
        let mkdir = if *made {
            format!("mkdir -p {dir} && ")
        } else {
            String::new()
        };
        let dockerfile = format!(
            "FROM busybox\nRUN {mkdir}mkdir -p /run /etc && rm -rf /run/secrets && ln -s {link} /run/secrets && ln -s {link} /etc/conf.d\n"
        );
        let image = format!("evil-{tag}");
        let built = lab.docker_stdin(&["build", "-q", "-t", &image, "-"], dockerfile.as_bytes());
        assert_eq!(built.code, 0, "{}{}", built.stdout, built.stderr);
        let svc = format!("s{tag}");
        let created = lab.docker(&[
            "service",
            "create",
            "-d",
            "--name",
            &svc,
            "--secret",
            "pw",
            "--config",
            "source=conf,target=/etc/conf.d/app.conf",
            &image,
            "sleep",
            "600",
        ]);
        assert_eq!(created.code, 0, "{}{}", created.stdout, created.stderr);
        if *runs {
            let Some(ctr) = task_container(&lab, &svc) else {
                let ps = lab.docker(&["service", "ps", "--no-trunc", &svc]);
                panic!("{tag}: no task ran: {}\n{}", ps.stdout, lab.classroom.log());
            };
            // Inside the container the files are where the link leads in it.
            let cat = lab.docker(&[
                "exec",
                &ctr,
                "cat",
                &format!("{dir}/pw"),
                &format!("{dir}/app.conf"),
            ]);
            assert_eq!(
                cat.stdout,
                format!("{data}config-data"),
                "{tag}: {}",
                cat.stderr
            );
            canary.assert_not_in(&cat.stdout);
            for shown in [
                lab.docker(&["inspect", &ctr]),
                lab.docker(&["service", "inspect", &svc]),
                lab.docker(&["secret", "inspect", "pw"]),
                lab.docker(&["service", "logs", &svc]),
            ] {
                assert!(
                    !shown.stdout.contains(data) && !shown.stderr.contains(data),
                    "{tag}: the secret's data was shown: {}",
                    shown.stdout
                );
            }
        } else {
            let rejected = eventually(Duration::from_secs(90), || {
                lab.docker(&["service", "ps", &svc])
                    .stdout
                    .contains("Rejected")
            });
            assert!(
                rejected,
                "{tag}: {}",
                lab.docker(&["service", "ps", &svc]).stdout
            );
        }
        // On the host: nothing beside the canary, no mount on its directory.
        canary.assert_untouched();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&dir),
            "{tag}: a mount landed on the host: {mounts}"
        );
        lab.ok(&["service", "rm", &svc]);
    }
    canary.assert_untouched();
}
