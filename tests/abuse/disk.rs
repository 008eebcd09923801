//! Abuse: disk. A session has one disk budget (`--session-disk-mb`): its
//! own filesystem holds what its containers write (writable layers,
//! volumes, logs, build scratch), so the kernel stops the write that would
//! pass it (`No space left on device`, as Docker on a full disk), and the
//! Engine API refuses to store images past it. Judged by what the learner
//! sees and by the host's disk, mounts and loop devices.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Lab;

const BUDGET_MB: u64 = 256;
const ENOSPC: &str = "No space left on device";
const REFUSAL: &str = "session disk quota of 256 MiB reached: docker system prune frees space";

fn small_lab() -> Lab {
    Lab::with_args(&["--session-disk-mb", &BUDGET_MB.to_string()])
}

fn session_dir(lab: &Lab) -> PathBuf {
    lab.classroom.data_dir().join("sessions").join(&lab.session)
}

/// Host bytes the session's filesystem image takes (allocated blocks).
fn host_bytes(lab: &Lab) -> u64 {
    let img = session_dir(lab).join("disk.img");
    std::fs::metadata(&img)
        .unwrap_or_else(|e| panic!("{}: {e}", img.display()))
        .blocks()
        * 512
}

/// Loop devices backed by a file below `dir`.
fn loop_devices_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
            if b.trim_end().starts_with(&*dir.to_string_lossy()) {
                out.push(format!(
                    "{} -> {}",
                    e.file_name().to_string_lossy(),
                    b.trim()
                ));
            }
        }
    }
    out
}

/// Whether `path` is a mount point of this mount namespace.
fn is_mount_point(path: &Path) -> bool {
    let want = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*want))
}

#[test]
fn filling_a_volume_stops_at_the_budget_and_keeps_what_was_stored() {
    let lab = small_lab();
    lab.ok(&["volume", "create", "data"]);
    let fill = lab.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/vol",
        "busybox",
        "sh",
        "-c",
        "echo kept > /vol/before && dd if=/dev/zero of=/vol/f bs=1M count=2000",
    ]);
    // dd's own failure, with its exit code: the container's monitor (host
    // root, which may use the filesystem's reserve) still records how the
    // container ended when the learner's part is full.
    assert_eq!(
        fill.code, 1,
        "a 2000 MiB write into a 256 MiB budget fails as dd: {}",
        fill.stderr
    );
    assert!(fill.stderr.contains(ENOSPC), "{}", fill.stderr);
    assert!(
        !fill.stderr.contains("Error waiting for container"),
        "{}",
        fill.stderr
    );
    let on_host = host_bytes(&lab);
    assert!(
        on_host <= (BUDGET_MB + 8) << 20,
        "the host holds no more than the budget: {on_host} bytes"
    );
    // What was stored before the limit is intact.
    assert_eq!(
        lab.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/vol",
            "busybox",
            "cat",
            "/vol/before"
        ])
        .trim(),
        "kept"
    );
    let size = lab.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/vol",
        "busybox",
        "sh",
        "-c",
        "wc -c < /vol/f",
    ]);
    let size: u64 = size.trim().parse().unwrap();
    assert!(
        size > (BUDGET_MB - 32) << 20 && size <= BUDGET_MB << 20,
        "the write went on up to the budget: {size}"
    );
    // Removing the file gives the space back.
    let again = lab.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/vol",
        "busybox",
        "sh",
        "-c",
        "rm /vol/f && dd if=/dev/zero of=/vol/g bs=1M count=20 2>/dev/null && echo wrote",
    ]);
    assert_eq!(again.trim(), "wrote");
}

#[test]
fn filling_a_writable_layer_stops_at_the_budget_and_images_are_refused() {
    let lab = small_lab();
    lab.ok(&["run", "-d", "--name", "filler", "busybox", "sleep", "1000"]);
    let fill = lab.docker(&[
        "exec",
        "filler",
        "sh",
        "-c",
        "echo kept > /before && dd if=/dev/zero of=/f bs=1M count=2000",
    ]);
    assert_ne!(fill.code, 0);
    assert!(
        fill.stderr.contains(ENOSPC),
        "dd in the writable layer: {}",
        fill.stderr
    );
    assert!(host_bytes(&lab) <= (BUDGET_MB + 8) << 20);
    assert_eq!(lab.ok(&["exec", "filler", "cat", "/before"]).trim(), "kept");

    // Full: nothing more is stored through the API either.
    let commit = lab.docker(&["commit", "filler", "snapshot"]);
    assert_ne!(commit.code, 0);
    assert!(commit.stderr.contains(REFUSAL), "commit: {}", commit.stderr);
    let saved = std::process::Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", lab.socket.display()))
        .args(["save", "busybox"])
        .output()
        .unwrap();
    assert!(saved.status.success(), "docker save works when full");
    let load = lab.docker_stdin(&["load"], &saved.stdout);
    assert_ne!(load.code, 0);
    assert!(load.stderr.contains(REFUSAL), "load: {}", load.stderr);
    let build = lab.docker_stdin(
        &["build", "-t", "more", "-"],
        b"FROM busybox\nRUN echo more > /more\n",
    );
    assert_ne!(build.code, 0);
    assert!(
        (build.stderr + &build.stdout).contains(REFUSAL),
        "build past the budget is refused"
    );
    assert!(
        !lab.ok(&["images", "--format", "{{.Repository}}"])
            .contains("snapshot"),
        "no image was stored"
    );

    // `rm` gives the space back, and images can be made again.
    let freed = lab.ok(&[
        "exec",
        "filler",
        "sh",
        "-c",
        "rm /f && dd if=/dev/zero of=/g bs=1M count=20 2>/dev/null && echo wrote",
    ]);
    assert_eq!(freed.trim(), "wrote");
    lab.ok(&["commit", "filler", "snapshot"]);
}

#[test]
fn a_flooding_container_keeps_its_logs_within_max_size_times_max_file() {
    let lab = small_lab();
    let id = lab.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=100k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "while :; do echo 0123456789012345678901234567890123456789; done",
    ]);
    let id = id.trim();
    let dir = lab.classroom.data_dir().join("containers").join(id);
    let logs_bytes = || -> (u64, usize) {
        let mut total = 0;
        let mut files = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("json.log") {
                total += e.metadata().unwrap().len();
                files += 1;
            }
        }
        (total, files)
    };
    let mut seen = (0, 0);
    for _ in 0..100 {
        seen = logs_bytes();
        if seen.1 == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen.1, 3, "the log rotated into max-file files: {seen:?}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (total, files) = logs_bytes();
    assert!(files <= 3, "{files} log files");
    assert!(total <= 3 * 100 * 1024, "logs keep {total} bytes on disk");
    let inspect = lab.ok(&["inspect", "--format", "{{json .HostConfig.LogConfig}}", id]);
    assert!(inspect.contains("\"max-file\":\"3\""), "{inspect}");
    let tail = lab.ok(&["logs", "--tail", "1", id]);
    assert!(tail.contains("0123456789"), "{tail}");
    lab.ok(&["rm", "-f", id]);
}

#[test]
fn a_session_that_ends_leaves_no_image_loop_device_or_mount() {
    let lab = small_lab();
    lab.ok(&["volume", "create", "data"]);
    lab.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/vol",
        "busybox",
        "sh",
        "-c",
        "echo x > /vol/f",
    ]);
    let dir = session_dir(&lab);
    let mount = dir.join("disk");
    assert!(dir.join("disk.img").exists());
    assert!(
        is_mount_point(&mount),
        "the session's filesystem is mounted"
    );
    assert_eq!(loop_devices_under(&dir).len(), 1);
    let r = lab
        .classroom
        .http("POST", "/api/session/reset", Some(&lab.token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!dir.join("disk.img").exists(), "the image file is removed");
    assert_eq!(
        crate::common::classroom::mounts_with(&dir.to_string_lossy()),
        Vec::<String>::new()
    );
    assert_eq!(loop_devices_under(&dir), Vec::<String>::new());
    assert!(!dir.exists());
    let volumes = lab.classroom.data_dir().join("volumes");
    let left: Vec<String> = std::fs::read_dir(&volumes)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&lab.session))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "no volume directory is left");
}

#[test]
fn a_crashed_servers_session_filesystems_are_swept_at_start() {
    let mut lab = small_lab();
    lab.ok(&["run", "-d", "busybox", "sleep", "1000"]);
    let dir = session_dir(&lab);
    assert!(is_mount_point(&dir.join("disk")));
    lab.classroom.crash();
    assert!(
        is_mount_point(&dir.join("disk")),
        "a crash leaves the filesystem mounted"
    );
    lab.classroom.spawn();
    assert!(!is_mount_point(&dir.join("disk")), "the sweep unmounted it");
    assert_eq!(loop_devices_under(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "the sweep removed {}", dir.display());
}

#[test]
fn images_only_the_session_references_count_against_its_budget() {
    let lab = small_lab();
    // 100 MiB of the budget in a writable layer; committed, the same bytes
    // again as a layer (its tar and unpacked tree) in the shared store.
    lab.ok(&[
        "run",
        "--name",
        "big",
        "busybox",
        "dd",
        "if=/dev/urandom",
        "of=/big",
        "bs=1M",
        "count=100",
    ]);
    lab.ok(&["commit", "big", "one"]);
    let refused = lab.docker(&["commit", "big", "two"]);
    assert_ne!(refused.code, 0, "a commit past the budget was stored");
    assert!(refused.stderr.contains(REFUSAL), "{}", refused.stderr);
    // Removing the image frees its share of the budget.
    lab.ok(&["rmi", "one"]);
    lab.ok(&["commit", "big", "two"]);
}
