//! Networks and published ports through the real docker CLI: a published
//! httpd answers on the host, containers find each other by name on their
//! own network only, and removal leaves nothing behind.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::engine::{eventually, Engine};

/// `GET /` on 127.0.0.1:`port` of the host; the body, if any answer came.
fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

const HTTPD: &str = "mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && exec httpd -f -p 80 -h /www";

/// Interfaces of the host (names and indexes).
fn host_links() -> Vec<(String, u32)> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let index = std::fs::read_to_string(e.path().join("ifindex"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name, index))
        })
        .collect()
}

#[test]
fn a_published_httpd_answers_on_the_host_and_ports_are_listed() {
    let e = Engine::start();
    e.ok(&[
        "run", "-d", "--name", "web", "-p", "38081:80", "busybox", "sh", "-c", HTTPD,
    ]);
    assert!(
        eventually(Duration::from_secs(10), || http_get(38081)
            .is_some_and(|b| b.starts_with("hello from"))),
        "no answer on the published port"
    );
    // IPv4 and IPv6, as dockerd 28 publishes on a dual-stack host.
    assert_eq!(
        e.ok(&["port", "web"]),
        "80/tcp -> 0.0.0.0:38081\n80/tcp -> [::]:38081\n"
    );
    assert_eq!(e.ok(&["port", "web", "80"]), "0.0.0.0:38081\n[::]:38081\n");
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]),
        "web 0.0.0.0:38081->80/tcp, [::]:38081->80/tcp\n"
    );
    let ports = e.ok(&[
        "inspect",
        "web",
        "--format",
        "{{json .NetworkSettings.Ports}}",
    ]);
    assert_eq!(
        ports.trim(),
        r#"{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"38081"},{"HostIp":"::","HostPort":"38081"}]}"#
    );
    let ip = e.ok(&[
        "inspect",
        "web",
        "--format",
        "{{.NetworkSettings.IPAddress}} {{.HostConfig.NetworkMode}}",
    ]);
    let (ip, mode) = ip.trim().split_once(' ').unwrap();
    assert_eq!(mode, "bridge");
    // /etc/hosts and /etc/hostname as Docker writes them.
    let hosts = e.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    let hostname = e.ok(&["exec", "web", "hostname"]);
    assert!(
        hosts.contains(&format!("{ip}\t{}", hostname.trim())),
        "{hosts}"
    );
    assert_eq!(e.ok(&["exec", "web", "cat", "/etc/hostname"]), hostname);
    // The host reaches the container's own address too (the bridge is on the host).
    let mut direct = TcpStream::connect((ip, 80)).expect("direct connection");
    direct.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    direct.read_to_string(&mut out).unwrap();
    assert!(out.contains("hello from"), "{out}");

    // -P publishes EXPOSEd ports on free host ports; /udp works.
    e.ok(&[
        "run", "-d", "--name", "any", "--expose", "80", "-P", "-p", "5353/udp", "busybox", "sh",
        "-c", HTTPD,
    ]);
    let listed = e.ok(&["port", "any"]);
    let tcp_port: u16 = listed
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 0.0.0.0:"))
        .expect("80/tcp published")
        .parse()
        .unwrap();
    assert!(listed.contains("5353/udp -> 0.0.0.0:"), "{listed}");
    assert!(eventually(Duration::from_secs(10), || http_get(tcp_port)
        .is_some_and(|b| b.starts_with("hello from"))));

    // A container without a network has only loopback.
    let links = e.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links, "lo\n");
    e.ok(&["rm", "-f", "web", "any"]);
    assert!(http_get(38081).is_none(), "the listener is gone after rm");
}

#[test]
fn containers_on_a_network_reach_each_other_by_name_and_alias_and_not_across() {
    let e = Engine::start();
    e.ok(&["network", "create", "app"]);
    e.ok(&["network", "create", "-d", "bridge", "other"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        "--network-alias",
        "database",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let page = |net: &str, url: &str| {
        // (busybox-static 1.35's `wget -T` crashes: bound it with `timeout`.)
        e.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "timeout",
            "5",
            "wget",
            "-qO-",
            url,
        ])
    };
    assert!(eventually(Duration::from_secs(10), || page(
        "app",
        "http://db/"
    )
    .stdout
    .starts_with("hello from")));
    assert!(page("app", "http://database/")
        .stdout
        .starts_with("hello from"));
    let lookup = e.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "nslookup",
        "database",
    ]);
    let db_ip = e.ok(&[
        "inspect",
        "db",
        "--format",
        "{{.NetworkSettings.Networks.app.IPAddress}}",
    ]);
    assert!(
        lookup.contains(&format!("Address: {}", db_ip.trim())),
        "{lookup}"
    );
    let resolv = e.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.starts_with("nameserver "), "{resolv}");

    // Another network neither resolves the name nor reaches the address.
    let across = page("other", "http://db/");
    assert_ne!(across.code, 0);
    assert!(across.stderr.contains("bad address"), "{across:?}");
    let url = format!("http://{}/", db_ip.trim());
    assert_ne!(page("other", &url).code, 0, "no route between networks");
    let ping = e.docker(&[
        "run",
        "--rm",
        "--network",
        "other",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        db_ip.trim(),
    ]);
    assert_ne!(ping.code, 0);
    // Inside one network, ping works (the container owns its network namespace).
    e.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "db",
    ]);

    // connect --alias makes db reachable from `other` under a new name.
    e.ok(&["network", "connect", "--alias", "store", "other", "db"]);
    assert!(page("other", "http://store/")
        .stdout
        .starts_with("hello from"));
    let inspect = e.ok(&[
        "network",
        "inspect",
        "other",
        "--format",
        "{{range .Containers}}{{.Name}}{{end}}",
    ]);
    assert_eq!(inspect.trim(), "db");
    e.ok(&["network", "disconnect", "other", "db"]);
    assert_ne!(page("other", "http://store/").code, 0);

    // container: mode shares db's network namespace.
    let shared = e.ok(&[
        "run",
        "--rm",
        "--network",
        "container:db",
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1/",
    ]);
    assert!(shared.starts_with("hello from"), "{shared}");

    let ls = e.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for line in [
        "app bridge",
        "bridge bridge",
        "host host",
        "none null",
        "other bridge",
    ] {
        assert!(ls.contains(line), "{ls}");
    }
}

#[test]
fn removal_and_prune_leave_no_interfaces_listeners_or_mounts() {
    let e = Engine::start();
    let before: Vec<String> = host_links().into_iter().map(|(n, _)| n).collect();
    let id = e.ok(&["network", "create", "--subnet", "10.231.0.0/24", "tmpnet"]);
    let bridge = format!("br-{}", &id.trim()[..12]);
    assert!(
        host_links().iter().any(|(n, _)| *n == bridge),
        "bridge {bridge} exists"
    );
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web1",
        "--network",
        "tmpnet",
        "-p",
        "38082:80",
        "-v",
        "wdata:/data",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    e.ok(&["network", "connect", "bridge", "web1"]);
    // The host side of each veth, by the peer index the container sees.
    let peers: Vec<u32> = e
        .ok(&[
            "exec",
            "web1",
            "cat",
            "/sys/class/net/eth0/iflink",
            "/sys/class/net/eth1/iflink",
        ])
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(peers.len(), 2);
    let addr = e.ok(&["exec", "web1", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains("10.231.0.2/24"), "{addr}");
    assert!(host_links().iter().any(|(_, i)| *i == peers[0]));
    assert!(eventually(Duration::from_secs(10), || http_get(38082).is_some()));
    assert!(!e.mounts().is_empty());

    let rm = e.docker(&["network", "rm", "tmpnet"]);
    assert_eq!(rm.code, 1);
    assert!(
        rm.stderr
            .contains("error while removing network: network tmpnet id")
            && rm.stderr.contains("has active endpoints"),
        "{rm:?}"
    );
    e.ok(&["rm", "-f", "web1"]);
    assert!(
        eventually(Duration::from_secs(5), || !host_links()
            .iter()
            .any(|(_, i)| peers.contains(i))),
        "veths are gone"
    );
    assert!(http_get(38082).is_none(), "the listener is gone");
    assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
    assert_eq!(
        e.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\ntmpnet\n\n"
    );
    assert!(
        !host_links().iter().any(|(n, _)| *n == bridge),
        "bridge removed"
    );
    let volumes = e.data_dir().join("volumes");
    assert!(std::fs::read_dir(&volumes).unwrap().flatten().count() > 0);
    e.ok(&["volume", "prune", "-af"]);
    let left: Vec<_> = std::fs::read_dir(volumes.join(&e.scope))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Nothing else of ours remains on the host (other engines may add theirs).
    let after: Vec<String> = host_links().into_iter().map(|(n, _)| n).collect();
    for name in after.iter().filter(|n| !before.contains(n)) {
        assert!(
            !name.starts_with("veth") || !name.contains(&bridge),
            "left behind: {name}"
        );
    }
}

#[test]
fn bad_network_and_port_requests_get_dockers_errors() {
    let e = Engine::start();
    e.ok(&["network", "create", "--subnet", "10.232.0.0/16", "first"]);
    let overlap = e.docker(&["network", "create", "--subnet", "10.232.5.0/24", "second"]);
    assert_eq!(overlap.code, 1);
    assert_eq!(
        overlap.stderr.trim(),
        "Error response from daemon: invalid pool request: Pool overlaps with other one on this address space"
    );
    let dup = e.docker(&["network", "create", "first"]);
    assert_eq!(
        dup.stderr.trim(),
        "Error response from daemon: network with name first already exists"
    );
    let unknown = e.docker(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert_eq!(unknown.code, 125);
    assert!(
        unknown
            .stderr
            .contains("Error response from daemon: network nosuch not found"),
        "{unknown:?}"
    );
    let rm = e.docker(&["network", "rm", "bridge"]);
    assert!(
        rm.stderr
            .contains("bridge is a pre-defined network and cannot be removed"),
        "{rm:?}"
    );
    let missing = e.docker(&["network", "inspect", "nosuch"]);
    assert!(
        missing.stderr.contains("network nosuch not found"),
        "{missing:?}"
    );

    e.ok(&[
        "run", "-d", "--name", "holder", "-p", "38083:80", "busybox", "sleep", "60",
    ]);
    let taken = e.docker(&["run", "--rm", "-p", "38083:80", "busybox", "true"]);
    assert_eq!(taken.code, 125);
    assert!(
        taken
            .stderr
            .contains("Bind for 0.0.0.0:38083 failed: port is already allocated"),
        "{taken:?}"
    );
    // The --rm container that could not start is gone.
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 1);
    let shared = e.docker(&[
        "run",
        "--rm",
        "--network",
        "container:holder",
        "-p",
        "81:80",
        "busybox",
        "true",
    ]);
    assert_ne!(shared.code, 0);
    assert!(
        shared
            .stderr
            .contains("conflicting options: port publishing and the container type network mode"),
        "{shared:?}"
    );
}

/// `docker exec NAME timeout 5 wget -qO- URL`: the page, if any.
fn exec_get(e: &Engine, name: &str, url: &str) -> common::Run {
    e.docker(&["exec", name, "timeout", "5", "wget", "-qO-", url])
}

#[test]
fn a_container_connected_to_a_second_network_resolves_names_on_both() {
    let e = Engine::start();
    e.ok(&["network", "create", "front"]);
    e.ok(&["network", "create", "back"]);
    e.ok(&["network", "create", "side"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "cache",
        "--network",
        "side",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "front",
        "busybox",
        "sleep",
        "300",
    ]);
    // Before the connect, app knows neither name.
    assert_ne!(e.docker(&["exec", "app", "nslookup", "db"]).code, 0);
    e.ok(&["network", "connect", "back", "app"]);
    e.ok(&["network", "connect", "--alias", "kv", "back", "cache"]);
    let db_ip = e.ok(&[
        "inspect",
        "db",
        "--format",
        "{{.NetworkSettings.Networks.back.IPAddress}}",
    ]);
    let lookup = e.ok(&["exec", "app", "nslookup", "db"]);
    assert!(
        lookup.contains(&format!("Address: {}", db_ip.trim())),
        "{lookup}"
    );
    let page = exec_get(&e, "app", "http://db/");
    assert!(page.stdout.starts_with("hello from"), "{page:?}");
    // An alias given at connect answers for members of that network, even
    // from a container whose first network is another one.
    let page = exec_get(&e, "app", "http://kv/");
    assert!(page.stdout.starts_with("hello from"), "{page:?}");
    let page = exec_get(&e, "cache", "http://db/");
    assert!(page.stdout.starts_with("hello from"), "{page:?}");
    // Names of a network the asker is not on stay unknown: app is not on
    // `side`, db is not on `front`.
    e.ok(&["network", "connect", "side", "db"]);
    let lookup = e.docker(&["exec", "app", "nslookup", "cache"]);
    let cache_back = e.ok(&[
        "inspect",
        "cache",
        "--format",
        "{{.NetworkSettings.Networks.back.IPAddress}}",
    ]);
    assert!(
        lookup
            .stdout
            .contains(&format!("Address: {}", cache_back.trim())),
        "cache is on back too: {lookup:?}"
    );
    let lookup = e.docker(&["exec", "db", "nslookup", "app"]);
    let app_back = e.ok(&[
        "inspect",
        "app",
        "--format",
        "{{.NetworkSettings.Networks.back.IPAddress}}",
    ]);
    assert!(
        lookup
            .stdout
            .contains(&format!("Address: {}", app_back.trim())),
        "{lookup:?}"
    );
    // A container of the default bridge (no embedded DNS of its own)
    // connected to a user-defined network resolves its names too.
    e.ok(&["run", "-d", "--name", "plain", "busybox", "sleep", "300"]);
    assert_ne!(e.docker(&["exec", "plain", "nslookup", "db"]).code, 0);
    e.ok(&["network", "connect", "back", "plain"]);
    let page = exec_get(&e, "plain", "http://db/");
    assert!(page.stdout.starts_with("hello from"), "{page:?}");
    // After a disconnect, the names of that network are gone for app.
    e.ok(&["network", "disconnect", "back", "app"]);
    assert_ne!(e.docker(&["exec", "app", "nslookup", "db"]).code, 0);
    assert_ne!(e.docker(&["exec", "db", "nslookup", "app"]).code, 0);
}

#[test]
fn connect_disconnect_connect_again_reaches_the_network() {
    let e = Engine::start();
    e.ok(&["network", "create", "net1"]);
    e.ok(&["network", "create", "net2"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "net2",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "net1",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip_on_net2 = |name: &str| {
        e.ok(&[
            "inspect",
            name,
            "--format",
            "{{.NetworkSettings.Networks.net2.IPAddress}}",
        ])
        .trim()
        .to_string()
    };
    let web_ip = ip_on_net2("web");
    for round in 0..3 {
        e.ok(&["network", "connect", "net2", "client"]);
        // The other member speaks first: its neighbour entries for the
        // client's address (reused) and for the gateway (its DNS) must
        // not be stale.
        let client_ip = ip_on_net2("client");
        let ping = e.docker(&["exec", "web", "ping", "-c", "2", "-W", "2", &client_ip]);
        assert_eq!(ping.code, 0, "round {round}: {ping:?}");
        let ping = e.docker(&["exec", "web", "ping", "-c", "1", "-W", "2", "client"]);
        assert_eq!(ping.code, 0, "round {round}: {ping:?}");
        let ping = e.docker(&["exec", "client", "ping", "-c", "2", "-W", "2", &web_ip]);
        assert_eq!(ping.code, 0, "round {round}: {ping:?}");
        let page = exec_get(&e, "client", &format!("http://{web_ip}/"));
        assert!(
            page.stdout.starts_with("hello from"),
            "round {round}: {page:?}"
        );
        let links = e.ok(&["exec", "client", "ip", "-o", "link"]);
        assert_eq!(links.matches("eth1").count(), 1, "{links}");
        e.ok(&["network", "disconnect", "net2", "client"]);
        let links = e.ok(&["exec", "client", "ip", "-o", "link"]);
        assert!(!links.contains("eth1"), "{links}");
    }
}

#[test]
fn published_ports_and_names_come_back_after_a_daemon_restart() {
    let mut e = Engine::start();
    e.ok(&["network", "create", "keep"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "keep",
        "-p",
        "38093:80",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(
        eventually(Duration::from_secs(10), || http_get(38093)
            .is_some_and(|b| b.starts_with("hello from"))),
        "no answer on the published port"
    );
    let ip_before = e.ok(&[
        "inspect",
        "web",
        "--format",
        "{{.NetworkSettings.Networks.keep.IPAddress}}",
    ]);
    e.restart();
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"])
            .lines()
            .find(|l| l.starts_with("web"))
            .unwrap_or(""),
        "web 0.0.0.0:38093->80/tcp, [::]:38093->80/tcp"
    );
    assert!(
        eventually(Duration::from_secs(10), || http_get(38093)
            .is_some_and(|b| b.starts_with("hello from"))),
        "the published port did not come back: {}",
        e.log()
    );
    let ip_after = e.ok(&[
        "inspect",
        "web",
        "--format",
        "{{.NetworkSettings.Networks.keep.IPAddress}}",
    ]);
    assert_eq!(ip_after, ip_before);
    let page = exec_get(&e, "client", "http://web/");
    assert!(page.stdout.starts_with("hello from"), "{page:?}");
    // A new container gets a new address, not web's.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "300",
    ]);
    let late = e.ok(&[
        "inspect",
        "late",
        "--format",
        "{{.NetworkSettings.Networks.keep.IPAddress}}",
    ]);
    assert_ne!(late, ip_before);
    let page = exec_get(&e, "late", "http://web/");
    assert!(page.stdout.starts_with("hello from"), "{page:?}");
}
