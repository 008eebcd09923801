//! `berth-bench mesh`: what the routing mesh costs. HTTP requests/s and
//! bulk transfer through a service's published port (the mesh, spreading
//! over 3 replicas of busybox httpd) beside direct connections to one
//! replica's address, measured with `wrk` on the host against `berth daemon`.
//! busybox httpd closes every connection, so each request is a new
//! connection: the rate measures the mesh's per-connection cost.
//!
//! Measured 2026-12-02 with a debug build (the disk had no room for a
//! release build that day), 2 shared cores, `berth-bench mesh 3`:
//! small file 1516 req/s direct to one replica, 1440 req/s through the mesh
//! (95%); 32 MB file 498 MB/s direct, 336 MB/s through the mesh (67%).

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::json;

use super::build_bench::start_berth;
use super::swarm_bench::{call, tasks, wait_until};

const PORT: u16 = 38190;

pub fn run(seconds: u64) -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk not installed: no rows (apt install wrk)");
        return Ok(());
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-mesh-")
        .tempdir_in("/var/tmp")?;
    let berth = start_berth(dir.path())?;
    let socket = &berth.socket;
    let (status, v) = call(
        socket,
        "POST",
        "/swarm/init",
        Some(&json!({"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})),
    )?;
    ensure!(status == 200, "swarm init: {status} {v}");
    let spec = json!({
        "Name": "meshbench",
        "TaskTemplate": {"ContainerSpec": {
            "Image": "busybox:latest",
            "Args": ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && dd if=/dev/zero of=/www/big bs=1M count=32 2>/dev/null && exec httpd -f -p 80 -h /www"],
        }},
        "Mode": {"Replicated": {"Replicas": 3}},
        "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": PORT}]},
    });
    let (status, v) = call(socket, "POST", "/services/create", Some(&spec))?;
    ensure!(status == 201, "create: {status} {v}");
    let id = v["ID"].as_str().context("service ID")?.to_string();
    wait_until(Duration::from_secs(60), || {
        Ok(tasks(socket, &id)?
            .iter()
            .filter(|t| t["Status"]["State"] == "running")
            .count()
            == 3)
    })?;
    let t = tasks(socket, &id)?;
    let container = t[0]["Status"]["ContainerStatus"]["ContainerID"]
        .as_str()
        .context("container")?
        .to_string();
    let (_, c) = call(
        socket,
        "GET",
        &format!("/containers/{container}/json"),
        None,
    )?;
    let ip = c["NetworkSettings"]["IPAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            c["NetworkSettings"]["Networks"]
                .as_object()?
                .values()
                .find_map(|n| n["IPAddress"].as_str())
        })
        .context("task address")?
        .to_string();
    std::thread::sleep(Duration::from_millis(500));
    let secs = seconds.max(1).to_string();
    let (d_rate, _) = wrk(&format!("http://{ip}:80/"), &secs)?;
    let (m_rate, _) = wrk(&format!("http://127.0.0.1:{PORT}/"), &secs)?;
    let (_, d_bytes) = wrk(&format!("http://{ip}:80/big"), &secs)?;
    let (_, m_bytes) = wrk(&format!("http://127.0.0.1:{PORT}/big"), &secs)?;
    println!("wrk -t2 -c16 -d{secs}s, busybox httpd, 3 replicas:");
    println!("  small file, direct to {ip}:80      {d_rate:>10.0} req/s");
    println!(
        "  small file, mesh :{PORT} (3 tasks) {m_rate:>10.0} req/s  ({:.0}% of direct)",
        m_rate / d_rate * 100.0
    );
    println!(
        "  32 MB file, direct                  {:>10.1} MB/s",
        d_bytes / 1e6
    );
    println!(
        "  32 MB file, mesh                    {:>10.1} MB/s  ({:.0}% of direct)",
        m_bytes / 1e6,
        m_bytes / d_bytes * 100.0
    );
    call(socket, "DELETE", &format!("/services/{id}"), None)?;
    wait_until(Duration::from_secs(60), || {
        Ok(tasks(socket, &id)?.is_empty())
    })?;
    let _ = call(socket, "POST", "/swarm/leave?force=1", None);
    Ok(())
}

/// Requests/s and bytes/s that `wrk` reports for `url`.
fn wrk(url: &str, secs: &str) -> anyhow::Result<(f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{secs}s"), url])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("wrk printed no rate: {text}"))?;
    let bytes = text
        .lines()
        .find_map(|l| l.strip_prefix("Transfer/sec:"))
        .map(|v| parse_size(v.trim()))
        .unwrap_or(0.0);
    Ok((rate, bytes))
}

/// `12.34MB` as wrk prints it, in bytes.
fn parse_size(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().unwrap_or(0.0);
    n * match unit {
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    }
}
