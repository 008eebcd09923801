//! `berth-bench net`: what networking costs. The added time per start of a
//! container on the default bridge with a published port, beside
//! `--network none`; and HTTP requests/s through a published port (the
//! userland proxy) beside a direct connection to the container's address,
//! measured with `wrk` on the host.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_runtime::container::{ContainerConfig, Runtime, WaitCondition};
use berth_runtime::net::{ContainerNetworking, Port, PortBinding};

use super::{bench_runtime, print_row, summarize};

pub fn run(runs: usize) -> anyhow::Result<()> {
    let (_data, runtime) = bench_runtime("berth-bench-net-")?;
    let result = measure(&runtime, runs);
    runtime.shutdown_networks();
    result
}

fn measure(runtime: &std::sync::Arc<Runtime>, runs: usize) -> anyhow::Result<()> {
    let none = ContainerConfig {
        image: "busybox".into(),
        cmd: vec!["true".into()],
        networking: ContainerNetworking {
            mode: "none".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let published = ContainerConfig {
        networking: ContainerNetworking {
            ports: vec![PortBinding {
                port: Port::parse("80").map_err(anyhow::Error::msg)?,
                host_ip: None,
                host_port: 38180,
            }],
            ..Default::default()
        },
        ..none.clone()
    };
    let once = |config: &ContainerConfig| -> anyhow::Result<Duration> {
        let start = Instant::now();
        let c = runtime.create("bench", None, config.clone())?;
        runtime.start(&c, None)?;
        let code = runtime.wait(&c, WaitCondition::NotRunning);
        runtime.remove(&c, false)?;
        anyhow::ensure!(code == 0, "busybox true exited {code}");
        Ok(start.elapsed())
    };
    for _ in 0..5 {
        once(&none)?;
        once(&published)?;
    }
    // Interleaved, so drift on a shared machine hits both alike.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(once(&none)?);
        b.push(once(&published)?);
    }
    let (sa, sb) = (summarize(a), summarize(b));
    print_row("run --rm --network none busybox true", runs, &sa);
    print_row("run --rm -p 38180:80 busybox true", runs, &sb);
    println!(
        "added per start by bridge + veth + address + route + proxy: {:.2} ms (median)",
        (sb.median.as_secs_f64() - sa.median.as_secs_f64()) * 1e3
    );

    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk not installed: no throughput rows (apt install wrk)");
        return Ok(());
    }
    let httpd = ContainerConfig {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www".into(),
        ],
        ..published.clone()
    };
    let c = runtime.create("bench", Some("bench-httpd"), httpd)?;
    runtime.start(&c, None)?;
    let ip = runtime
        .net()
        .endpoints(&c.id)
        .first()
        .map(|e| e.ip)
        .ok_or_else(|| anyhow::anyhow!("no address"))?;
    std::thread::sleep(Duration::from_millis(300));
    let direct = wrk(&format!("http://{ip}:80/"))?;
    let proxied = wrk("http://127.0.0.1:38180/")?;
    runtime.remove(&c, true)?;
    println!("wrk -t2 -c16 -d5s, busybox httpd, one small file:");
    println!("  direct to {ip}:80            {direct:>10.0} req/s");
    println!("  through published :38180     {proxied:>10.0} req/s");
    println!("  proxy keeps {:.0}% of direct", proxied / direct * 100.0);
    Ok(())
}

/// Requests/s that `wrk` reports for `url`.
fn wrk(url: &str) -> anyhow::Result<f64> {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", "-d5s", url])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("wrk printed no rate: {text}"))
}
