//! Regression tests for issue 22's container and network differences, each
//! through docker CLI 28 against `berth daemon`, named after what broke:
//! `--add-host`, `HostConfig.Links`, `network connect` of a `none`
//! container, fixed addresses in use, bridge names, the order of `docker
//! logs`, docker-py's attach with `logs=True`, `/plugins`, and what `berth
//! daemon` allows as dockerd does (`--privileged`, `--pid host`) while a
//! classroom still refuses it (tests/caps.rs). IPv6 is in
//! tests/dockerpy_net.rs.

mod common;

use common::engine::Engine;

#[test]
fn add_host_lands_in_etc_hosts_and_in_inspect() {
    let e = Engine::start();
    let hosts = e.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "v6.local:fd00::7",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("10.1.2.3\tdb.local\n"), "{hosts}");
    assert!(hosts.contains("fd00::7\tv6.local\n"), "{hosts}");
    // host-gateway is the default bridge's gateway, as dockerd's default.
    let gateway = e.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    assert!(
        hosts.contains(&format!("{}\tgw\n", gateway.trim())),
        "{hosts}"
    );
    e.ok(&[
        "create",
        "--name",
        "extra",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "true",
    ]);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{json .HostConfig.ExtraHosts}}", "extra"])
            .trim(),
        r#"["db.local:10.1.2.3","gw:host-gateway"]"#
    );
    e.ok(&["create", "--name", "plain", "busybox", "true"]);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{json .HostConfig.ExtraHosts}}", "plain"])
            .trim(),
        "null"
    );
    // A name with a space would be two names in /etc/hosts: refused (the
    // CLI checks the address; the daemon checks both).
    let bad = e.python(
        r#"
import docker
api = docker.from_env().api
try:
    api.create_container('busybox', 'true', host_config=api.create_host_config(extra_hosts=['a b:10.0.0.1']))
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
"#,
    );
    assert_eq!(
        bad.stdout.trim(),
        r#"400 bad format for add-host: "a b:10.0.0.1""#,
        "{}",
        bad.stderr
    );
}

#[test]
fn host_config_links_show_dockers_form() {
    let e = Engine::start();
    e.ok(&["run", "-d", "--name", "db", "busybox", "sleep", "60"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--link",
        "db",
        "--link",
        "db:database",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "web"])
            .trim(),
        r#"["/db:/web/db","/db:/web/database"]"#
    );
    assert_eq!(
        e.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "db"])
            .trim(),
        "null"
    );
    // And the link works as it says.
    let hosts = e.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tdatabase"), "{hosts}");
    e.ok(&["rm", "-f", "web", "db"]);
}

#[test]
fn network_connect_of_a_none_container_is_refused_in_dockers_words() {
    let e = Engine::start();
    e.ok(&["network", "create", "n1"]);
    let words =
        "container cannot be connected to multiple networks with one of the networks in private (none) mode";
    e.ok(&[
        "create",
        "--name",
        "lonely",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let created = e.docker(&["network", "connect", "n1", "lonely"]);
    assert_ne!(created.code, 0);
    assert!(created.stderr.contains(words), "{}", created.stderr);
    e.ok(&["start", "lonely"]);
    let running = e.docker(&["network", "connect", "n1", "lonely"]);
    assert!(running.stderr.contains(words), "{}", running.stderr);
    // Still alone: only its loopback.
    let links = e.ok(&["exec", "lonely", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    assert_eq!(
        e.ok(&["network", "inspect", "-f", "{{len .Containers}}", "n1"])
            .trim(),
        "0"
    );
    // Nothing joins the `none` network either.
    e.ok(&["run", "-d", "--name", "bridged", "busybox", "sleep", "60"]);
    let to_none = e.docker(&["network", "connect", "none", "bridged"]);
    assert!(to_none.stderr.contains(words), "{}", to_none.stderr);
    // A container disconnected from its last network may be connected again.
    e.ok(&["network", "disconnect", "bridge", "bridged"]);
    e.ok(&["network", "connect", "n1", "bridged"]);
    let links = e.ok(&["exec", "bridged", "ls", "/sys/class/net"]);
    assert!(links.contains("eth0"), "{links}");
    e.ok(&["rm", "-f", "lonely", "bridged"]);
}

#[test]
fn a_fixed_address_in_use_is_refused_by_connect() {
    let e = Engine::start();
    e.ok(&["network", "create", "--subnet", "10.77.0.0/24", "fixed"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "fixed",
        "--ip",
        "10.77.0.10",
        "busybox",
        "sleep",
        "60",
    ]);
    e.ok(&["run", "-d", "--name", "second", "busybox", "sleep", "60"]);
    let taken = e.docker(&[
        "network",
        "connect",
        "--ip",
        "10.77.0.10",
        "fixed",
        "second",
    ]);
    assert_ne!(taken.code, 0);
    assert!(
        taken.stderr.contains("Address already in use"),
        "{}",
        taken.stderr
    );
    // second is not on the network; first keeps its address.
    let b = e.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        "second",
    ]);
    assert!(!b.contains("fixed"), "{b}");
    let a = e.ok(&["exec", "first", "ip", "-4", "addr", "show", "eth0"]);
    assert!(a.contains("10.77.0.10/24"), "{a}");
    e.ok(&["rm", "-f", "first", "second"]);
}

/// Each burst writes stderr first, then stdout, then pauses: reading the
/// pipes in a fixed order (stdout first) put every burst the wrong way
/// round whenever both lines were waiting.
#[test]
fn logs_keep_the_order_lines_were_written_across_stdout_and_stderr() {
    let e = Engine::start();
    let script =
        "for i in $(seq 1 30); do echo \"err $i\" >&2; echo \"out $i\"; usleep 100000; done";
    e.ok(&["run", "--name", "talker", "busybox", "sh", "-c", script]);
    let all = e.docker(&["logs", "talker"]);
    let expected: Vec<String> = (1..=30)
        .flat_map(|i| [format!("err {i}"), format!("out {i}")])
        .collect();
    // The CLI writes the two streams to its own stdout and stderr; the
    // order is the daemon's, which the API's framed stream shows.
    let framed = e.python(
        r#"
import docker
api = docker.from_env().api
raw = api.logs('talker', stdout=True, stderr=True)
print(raw.decode(), end='')
"#,
    );
    assert_eq!(framed.code, 0, "{}", framed.stderr);
    let got: Vec<&str> = framed.stdout.lines().collect();
    assert_eq!(
        got, expected,
        "stdout: {}\nstderr: {}",
        all.stdout, all.stderr
    );
    let last = e.docker(&["logs", "--tail", "1", "talker"]);
    assert_eq!(last.stdout, "out 30\n", "stderr: {}", last.stderr);
    assert_eq!(last.stderr, "");
    let two = e.docker(&["logs", "--tail", "2", "talker"]);
    assert_eq!(
        (two.stdout.as_str(), two.stderr.as_str()),
        ("out 30\n", "err 30\n")
    );
}

fn cap_bounding_set_of_this_process() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn berth_daemon_runs_privileged_containers_as_dockerd_does() {
    let e = Engine::start();
    let caps = e.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    // Every capability the daemon holds (all of them on a plain host).
    assert_eq!(
        caps.trim(),
        format!("CapEff:\t{}", cap_bounding_set_of_this_process())
    );
    let plain = e.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(plain.trim(), "CapEff:\t00000000a80425fb");
    // Nothing of /proc is masked and /sys is writable (a privileged
    // container may mount and may write what root may).
    let probe = e.ok(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "grep -c ' /sys sysfs rw' /proc/mounts; mkdir /m && mount -t tmpfs none /m && echo mounted; grep -c /proc/kcore /proc/mounts; true",
    ]);
    assert_eq!(
        probe.split_whitespace().collect::<Vec<_>>(),
        ["1", "mounted", "0"],
        "{probe}"
    );
    // An exec in it holds the same set.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "priv",
        "--privileged",
        "busybox",
        "sleep",
        "60",
    ]);
    let exec_caps = e.ok(&["exec", "priv", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(exec_caps.trim(), caps.trim());
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.HostConfig.Privileged}}", "priv"])
            .trim(),
        "true"
    );
    e.ok(&["rm", "-f", "priv"]);
}

#[test]
fn berth_daemon_runs_pid_host_containers_as_dockerd_does() {
    let e = Engine::start();
    let me = std::process::id();
    let seen = e.ok(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        &format!("cat /proc/1/comm; test -d /proc/{me} && echo sees-the-test"),
    ]);
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [host_init.trim(), "sees-the-test"],
        "{seen}"
    );
    // Without it, the container's own pid 1 is its command.
    let own = e.ok(&["run", "--rm", "busybox", "cat", "/proc/1/comm"]);
    assert_eq!(own.trim(), "cat");
    e.ok(&[
        "create", "--name", "hostpid", "--pid", "host", "busybox", "true",
    ]);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.HostConfig.PidMode}}", "hostpid"])
            .trim(),
        "host"
    );
}

/// A plugin directory as `docker plugin create` takes it: docker-py's
/// dummy plugin (config.json with lower-case keys, as plugin authors write
/// them, and a rootfs).
fn plugin_dir(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("dummy-plugin");
    std::fs::create_dir_all(dir.join("rootfs/dummy")).unwrap();
    std::fs::write(dir.join("rootfs/dummy/file.txt"), "hello\n").unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{
  "description": "Dummy test plugin",
  "documentation": "https://example.com/dummy",
  "entrypoint": ["/dummy"],
  "network": {"type": "host"},
  "interface": {"types": ["docker.volumedriver/1.0"], "socket": "dummy.sock"},
  "env": [
    {"name": "DEBUG", "settable": ["value"], "value": "0"},
    {"name": "FIXED", "value": "yes"}
  ]
}"#,
    )
    .unwrap();
    dir
}

#[test]
fn plugins_are_created_listed_inspected_and_removed_but_never_enabled() {
    let mut e = Engine::start();
    assert_eq!(e.ok(&["plugin", "ls", "-q"]).trim(), "");
    let inspect = e.docker(&["plugin", "inspect", "vieux/sshfs"]);
    assert_ne!(inspect.code, 0);
    assert!(
        inspect.stderr.contains(r#"plugin "vieux/sshfs" not found"#),
        "{}",
        inspect.stderr
    );
    let rm = e.docker(&["plugin", "rm", "nope"]);
    assert!(
        rm.stderr.contains(r#"plugin "nope" not found"#),
        "{}",
        rm.stderr
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path());
    let dir = dir.to_str().unwrap();
    assert_eq!(
        e.ok(&["plugin", "create", "me/dummy", dir]).trim(),
        "me/dummy"
    );
    let dup = e.docker(&["plugin", "create", "me/dummy", dir]);
    assert!(
        dup.stderr.contains("plugin me/dummy:latest already exists"),
        "{}",
        dup.stderr
    );
    let bad = e.docker(&["plugin", "create", "Me/Dummy", dir]);
    assert!(
        bad.stderr.contains("invalid reference format"),
        "{}",
        bad.stderr
    );

    let ls = e.ok(&[
        "plugin",
        "ls",
        "--format",
        "{{.Name}} {{.Description}} {{.Enabled}}",
    ]);
    assert_eq!(ls.trim(), "me/dummy:latest Dummy test plugin false");
    assert_eq!(
        e.ok(&["plugin", "ls", "-q", "--filter", "capability=volumedriver"])
            .trim()
            .len(),
        12
    );
    assert_eq!(
        e.ok(&["plugin", "ls", "-q", "--filter", "enabled=true"])
            .trim(),
        ""
    );
    let maybe = e.docker(&["plugin", "ls", "--filter", "enabled=maybe"]);
    assert!(
        maybe.stderr.contains("Invalid filter 'enabled=[maybe]'"),
        "{}",
        maybe.stderr
    );
    let id = e.ok(&["plugin", "inspect", "-f", "{{.Id}}", "me/dummy"]);
    let id = id.trim();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let shown = e.ok(&[
        "plugin",
        "inspect",
        "-f",
        "{{.Config.Entrypoint}} {{.Config.Interface.Socket}} {{.Config.Network.Type}} {{.Settings.Env}}",
        &id[..12],
    ]);
    assert_eq!(shown.trim(), "[/dummy] dummy.sock host [DEBUG=0 FIXED=yes]");

    e.ok(&["plugin", "set", "me/dummy", "DEBUG=1"]);
    let fixed = e.docker(&["plugin", "set", "me/dummy", "FIXED=no"]);
    assert!(
        fixed.stderr.contains(r#""FIXED" is not settable"#),
        "{}",
        fixed.stderr
    );
    let disable = e.docker(&["plugin", "disable", "me/dummy"]);
    assert!(
        disable
            .stderr
            .contains("plugin is already disabled: plugin me/dummy:latest found but disabled"),
        "{}",
        disable.stderr
    );
    let enable = e.docker(&["plugin", "enable", "me/dummy"]);
    assert_ne!(enable.code, 0);
    assert!(
        enable
            .stderr
            .contains("Berth does not run plugins: a plugin runs as a privileged host process"),
        "{}",
        enable.stderr
    );

    // The record survives a daemon restart, as other objects do.
    e.restart();
    assert_eq!(
        e.ok(&[
            "plugin",
            "inspect",
            "-f",
            "{{.Enabled}} {{.Settings.Env}}",
            "me/dummy:latest"
        ])
        .trim(),
        "false [DEBUG=1 FIXED=yes]"
    );
    assert_eq!(e.ok(&["plugin", "rm", "me/dummy"]).trim(), "me/dummy");
    assert_eq!(e.ok(&["plugin", "ls", "-q"]).trim(), "");
}

/// docker-py's `test_create_plugin` and `test_plugin_privileges`, plus its
/// plugin calls that work without Docker Hub.
#[test]
fn docker_py_creates_configures_and_removes_a_plugin() {
    let e = Engine::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path());
    let py = e.python(&format!(
        r#"
import docker
c = docker.from_env()
print(c.plugins.list())
for call in (lambda: c.api.inspect_plugin('vieux/sshfs:latest'), lambda: c.api.remove_plugin('vieux/sshfs:latest')):
    try:
        call()
    except docker.errors.NotFound as err:
        print(err.status_code, err.explanation)
print(c.api.create_plugin('docker-sdk-py/dummy', {dir:?}, gzip=True))
data = c.api.inspect_plugin('docker-sdk-py/dummy')
print(data['Name'], data['Config']['Entrypoint'], data['Enabled'])
c.api.configure_plugin('docker-sdk-py/dummy', {{'DEBUG': '1'}})
print(c.api.inspect_plugin('docker-sdk-py/dummy')['Settings']['Env'])
print([p.name for p in c.plugins.list()])
prv = c.api.plugin_privileges('vieux/sshfs')
print(type(prv).__name__)
try:
    c.api.enable_plugin('docker-sdk-py/dummy')
except docker.errors.APIError as err:
    print(err.status_code)
print(c.api.remove_plugin('docker-sdk-py/dummy'))
print(c.api.plugins())
"#
    ));
    assert_eq!(
        py.stdout.lines().collect::<Vec<_>>(),
        [
            "[]",
            r#"404 plugin "vieux/sshfs:latest" not found"#,
            r#"404 plugin "vieux/sshfs:latest" not found"#,
            "True",
            "docker-sdk-py/dummy:latest ['/dummy'] False",
            "['DEBUG=1', 'FIXED=yes']",
            "['docker-sdk-py/dummy:latest']",
            "list",
            "403",
            "True",
            "[]",
        ],
        "{}",
        py.stderr
    );
}

/// A learner's plugin archive is read, never unpacked: `../` members,
/// symlinks out of the tree and hard links reach no host file, and a huge
/// config.json is refused without being read into memory.
#[test]
fn hostile_plugin_archives_touch_nothing_on_the_host() {
    let e = Engine::start();
    let escape = std::env::temp_dir().join(format!("berth-plugin-escape-{}", std::process::id()));
    let _ = std::fs::remove_file(&escape);
    let py = e.python(&format!(
        r#"
import io, json, tarfile, docker
c = docker.from_env()
def archive(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as t:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == 'file':
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == 'sym' else tarfile.LNKTYPE
                info.linkname = data
                t.addfile(info)
    return buf.getvalue()
def create(name, body):
    r = c.api._post(c.api._url('/plugins/create'), params={{'name': name}}, data=body)
    print(r.status_code, r.text.strip()) if r.text.strip() else print(r.status_code)
config = json.dumps({{'entrypoint': ['/x']}}).encode()
create('evil/one', archive([
    ('config.json', 'file', config),
    ('../../../../../../{escape}', 'file', b'pwned'),
    ('rootfs/etc', 'sym', '/etc'),
    ('rootfs/etc/berth-plugin-pwned', 'file', b'pwned'),
    ('rootfs/shadow', 'hard', '/etc/shadow'),
]))
create('evil/huge', archive([('config.json', 'file', b' ' * (8 << 20) + b'{{}}')]))
create('evil/none', archive([('rootfs/x', 'file', b'x')]))
create('evil/notjson', archive([('config.json', 'file', b'[1, 2]')]))
print(c.api.inspect_plugin('evil/one')['Config']['Entrypoint'])
small = archive([('config.json', 'file', config)])
codes = [c.api._post(c.api._url('/plugins/create'), params={{'name': 'many/p%d' % i}}, data=small).status_code for i in range(20)]
print(codes.count(204), codes.count(403), len(c.api.plugins()))
"#,
        escape = escape.display()
    ));
    let lines: Vec<&str> = py.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}\n{}", py.stdout, py.stderr);
    assert_eq!(lines[0], "204", "{}", py.stdout);
    assert!(
        lines[1].starts_with("413") && lines[1].contains("config.json is larger than 256 KiB"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("400") && lines[2].contains("config.json not found"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("400") && lines[3].contains("not a JSON object"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "['/x']");
    // A scope holds at most 16 plugins: evil/one and 15 more.
    assert_eq!(lines[5], "15 5 16");
    assert!(!escape.exists());
    assert!(!std::path::Path::new("/etc/berth-plugin-pwned").exists());
    // Only the records file is stored: no member of the archive was written.
    let stored: Vec<_> = std::fs::read_dir(e.data_dir().join("plugins"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].ends_with(".json"), "{stored:?}");
}

#[test]
fn docker_py_attach_without_stream_replays_the_log_and_ends() {
    let e = Engine::start();
    let py = e.python(
        r#"
import signal, docker
signal.alarm(60)
api = docker.from_env(timeout=30).api
done = api.create_container('busybox', ['sh', '-c', 'echo hello; echo oops >&2'])
api.start(done)
api.wait(done, condition='not-running')
print(repr(api.attach(done, stream=False, logs=True)))
print(repr(api.attach(done, stream=False, logs=True, stderr=False)))
live = api.create_container('busybox', ['sh', '-c', 'echo up; sleep 60'])
api.start(live)
import time
for _ in range(100):
    if api.logs(live):
        break
    time.sleep(0.1)
# A running container: the log so far, then the connection ends.
print(repr(api.attach(live, stream=False, logs=True)))
api.remove_container(live, force=True)
"#,
    );
    assert_eq!(
        py.stdout.lines().collect::<Vec<_>>(),
        ["b'hello\\noops\\n'", "b'hello\\n'", "b'up\\n'"],
        "{}",
        py.stderr
    );
}

/// `com.docker.network.bridge.name` naming an interface that exists (the
/// host's loopback here) would enslave veths to it, and `network rm` would
/// delete it: refused. A fresh name is made and removed with the network.
#[test]
fn a_bridge_name_of_an_existing_interface_is_refused() {
    let e = Engine::start();
    let taken = e.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=lo",
        "grab",
    ]);
    assert_ne!(taken.code, 0);
    assert!(
        taken
            .stderr
            .contains("bridge name lo is already in use by an interface of the host"),
        "{}",
        taken.stderr
    );
    let odd = e.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=../x",
        "odd",
    ]);
    assert!(
        odd.stderr.contains(r#"invalid bridge name: "../x""#),
        "{}",
        odd.stderr
    );
    let name = format!("brf{}", std::process::id() % 100_000);
    e.ok(&[
        "network",
        "create",
        "-o",
        &format!("com.docker.network.bridge.name={name}"),
        "named",
    ]);
    assert!(std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
    e.ok(&["network", "rm", "named"]);
    assert!(!std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
    assert!(std::path::Path::new("/sys/class/net/lo").exists());
}

/// Plugin records are per scope: one learner's plugin is not another's.
#[test]
fn a_learners_plugins_are_their_own() {
    let lab = common::lab::Lab::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(tmp.path());
    lab.ok(&["plugin", "create", "me/dummy", dir.to_str().unwrap()]);
    assert_eq!(
        lab.ok(&["plugin", "ls", "--format", "{{.Name}}"]).trim(),
        "me/dummy:latest"
    );
    let enable = lab.docker(&["plugin", "enable", "me/dummy"]);
    assert!(
        enable.stderr.contains("Berth does not run plugins"),
        "{}",
        enable.stderr
    );
    let (_, other) = lab.classroom.new_session();
    let other = other["id"].as_str().unwrap();
    let socket = lab
        .classroom
        .data_dir()
        .join("sessions")
        .join(other)
        .join("node1")
        .join("docker.sock");
    let docker = |args: &[&str]| -> common::Run {
        std::process::Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .env("DOCKER_CONFIG", tmp.path().join("cli"))
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while docker(&["version"]).code != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ls = docker(&["plugin", "ls", "-q"]);
    assert_eq!((ls.code, ls.stdout.trim()), (0, ""), "{}", ls.stderr);
    let rm = docker(&["plugin", "rm", "me/dummy"]);
    assert!(
        rm.stderr.contains(r#"plugin "me/dummy" not found"#),
        "{}",
        rm.stderr
    );
    assert_eq!(
        lab.ok(&["plugin", "ls", "--format", "{{.Name}}"]).trim(),
        "me/dummy:latest"
    );
}
