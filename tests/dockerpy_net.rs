//! docker-py against `berth daemon`: the network behaviours docker-py's
//! integration suite (api_network_test.py and friends) found missing:
//! IPAM ranges and auxiliary addresses, fixed addresses and MAC addresses,
//! endpoint driver options, scoped inspect and legacy links. Each is
//! asserted as a script sees it and, where it lands there, inside the
//! container (its interface, its /etc/hosts, its environment).

mod common;

use common::engine::Engine;

fn script(body: &str) -> String {
    format!("import signal, docker\nsignal.alarm(90)\nc = docker.from_env(timeout=60)\napi = c.api\nfrom docker.types import IPAMConfig, IPAMPool\n{body}")
}

fn run(e: &Engine, body: &str) -> String {
    let out = e.python(&script(body));
    assert_eq!(
        out.code,
        0,
        "script failed: {}{}\ndaemon log: {}",
        out.stdout,
        out.stderr,
        e.log()
    );
    out.stdout
}

#[test]
fn ipam_range_and_aux_addresses_are_kept_and_addresses_come_from_the_range() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
net = api.create_network('ranged', ipam=IPAMConfig(pool_configs=[IPAMPool(
    subnet='10.231.0.0/16', iprange='10.231.5.0/24', gateway='10.231.5.254',
    aux_addresses={'a': '10.231.5.1'})]))['Id']
print(api.inspect_network(net)['IPAM']['Config'])
ctr = api.create_container('busybox', 'top', host_config=api.create_host_config(network_mode='ranged'))
api.start(ctr)
print(api.inspect_container(ctr)['NetworkSettings']['Networks']['ranged']['IPAddress'])
ex = api.exec_create(ctr, ['ip', '-4', 'addr', 'show', 'eth0'])
print('inside', '10.231.5.2/16' in api.exec_start(ex).decode())
try:
    api.create_network('outside', ipam=IPAMConfig(pool_configs=[IPAMPool(
        subnet='10.233.0.0/16', iprange='10.234.0.0/24')]))
except docker.errors.APIError as err:
    print('refused', err.status_code)
api.remove_container(ctr, force=True)
api.remove_network(net)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "[{'AuxiliaryAddresses': {'a': '10.231.5.1'}, 'Gateway': '10.231.5.254', 'IPRange': '10.231.5.0/24', 'Subnet': '10.231.0.0/16'}]",
        "{out}"
    );
    // The range's first address is an auxiliary one: skipped.
    assert_eq!(lines[1], "10.231.5.2", "{out}");
    assert_eq!(lines[2], "inside True", "{out}");
    assert_eq!(lines[3], "refused 400", "{out}");
}

#[test]
fn a_fixed_ipv4_address_on_create_and_connect_is_the_containers_and_checked() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
api.create_network('fixed', ipam=IPAMConfig(pool_configs=[IPAMPool(subnet='10.232.0.0/16')]))
def make(ip, name=None):
    return api.create_container('busybox', 'top', name=name,
        host_config=api.create_host_config(network_mode='fixed'),
        networking_config=api.create_networking_config({
            'fixed': api.create_endpoint_config(ipv4_address=ip)}))
ctr = make('10.232.0.23')
api.start(ctr)
n = api.inspect_container(ctr)['NetworkSettings']['Networks']['fixed']
print(n['IPAMConfig']['IPv4Address'], n['IPAddress'])
ex = api.exec_create(ctr, ['ip', '-4', 'addr', 'show', 'eth0'])
print('inside', '10.232.0.23/16' in api.exec_start(ex).decode())
twin = make('10.232.0.23')
try:
    api.start(twin)
except docker.errors.APIError as err:
    print('taken', 'Address already in use' in str(err))
for bad in ['10.99.0.5', '10.232.0.1']:
    try:
        make(bad)
    except docker.errors.APIError as err:
        print('outside', err.status_code)
try:
    api.create_container('busybox', 'top', networking_config=api.create_networking_config({
        'bridge': api.create_endpoint_config(ipv4_address='172.17.0.50')}))
except docker.errors.APIError as err:
    print('default bridge', err.status_code)
api.disconnect_container_from_network(ctr, 'fixed')
api.connect_container_to_network(ctr, 'fixed', ipv4_address='10.232.5.24')
n = api.inspect_container(ctr)['NetworkSettings']['Networks']['fixed']
print(n['IPAMConfig']['IPv4Address'], n['IPAddress'])
for x in [ctr, twin]:
    api.remove_container(x, force=True)
api.remove_network('fixed')
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "10.232.0.23 10.232.0.23", "{out}");
    assert_eq!(lines[1], "inside True", "{out}");
    assert_eq!(lines[2], "taken True", "{out}");
    assert_eq!(lines[3], "outside 400", "{out}");
    assert_eq!(lines[4], "outside 400", "gateway: {out}");
    assert_eq!(lines[5], "default bridge 400", "{out}");
    assert_eq!(lines[6], "10.232.5.24 10.232.5.24", "{out}");
}

#[test]
fn a_mac_address_is_set_on_the_containers_interface_and_shown() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
ctr = api.create_container('busybox', 'top', mac_address='02:42:ac:11:00:0a')
api.start(ctr)
print(api.inspect_container(ctr)['NetworkSettings']['MacAddress'])
ex = api.exec_create(ctr, ['cat', '/sys/class/net/eth0/address'])
print(api.exec_start(ex).decode().strip())
api.create_network('macs')
other = api.create_container('busybox', 'top')
api.connect_container_to_network(other, 'macs', mac_address='02:42:ac:11:00:02')
print(api.inspect_container(other)['NetworkSettings']['Networks']['macs']['MacAddress'])
for bad in ['01:00:5e:00:00:01', 'zz:42:ac:11:00:02']:
    try:
        api.create_container('busybox', 'top', mac_address=bad)
    except docker.errors.APIError as err:
        print('refused', err.status_code)
for x in [ctr, other]:
    api.remove_container(x, force=True)
api.remove_network('macs')
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "02:42:ac:11:00:0a", "{out}");
    assert_eq!(lines[1], "02:42:ac:11:00:0a", "{out}");
    assert_eq!(lines[2], "02:42:ac:11:00:02", "{out}");
    assert_eq!(&lines[3..5], ["refused 400", "refused 400"], "{out}");
}

#[test]
fn endpoint_driver_options_are_shown_and_inspect_honours_scope() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
api.create_network('opts')
ctr = c.containers.run('busybox', 'top', network='opts', detach=True,
    networking_config={'opts': api.create_endpoint_config(aliases=['hello'], driver_opt={'key1': 'a'})})
n = api.inspect_container(ctr.id)['NetworkSettings']['Networks']
print(list(n), n['opts']['Aliases'], n['opts']['DriverOpts'])
print(api.inspect_network('opts', scope='local')['Name'])
try:
    api.inspect_network('opts', scope='global')
except docker.errors.NotFound:
    print('not found')
ctr.remove(force=True)
api.remove_network('opts')
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "['opts'] ['hello'] {'key1': 'a'}", "{out}");
    assert_eq!(lines[1], "opts", "{out}");
    assert_eq!(lines[2], "not found", "{out}");
}

#[test]
fn links_resolve_their_alias_give_their_variables_and_can_be_removed() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
api.create_network('linked')
ctr = api.create_container('busybox', 'top',
    host_config=api.create_host_config(network_mode='linked'),
    networking_config=api.create_networking_config({
        'linked': api.create_endpoint_config(links=[('upstream', 'bar')])}))
api.start(ctr)
print(api.inspect_container(ctr)['NetworkSettings']['Networks']['linked']['Links'])
up = api.create_container('busybox', 'top', name='upstream',
    host_config=api.create_host_config(network_mode='linked'))
api.start(up)
ip = api.inspect_container(up)['NetworkSettings']['Networks']['linked']['IPAddress']
ex = api.exec_create(ctr, ['nslookup', 'bar'])
print('resolved', ip in api.exec_start(ex).decode())
# Legacy links on the default bridge: variables and a hosts line.
db = api.create_container('busybox', 'top', name='db', environment={'FOO': '1'})
api.start(db)
dbip = api.inspect_container(db)['NetworkSettings']['IPAddress']
app = api.create_container('busybox', 'sh -c "env; cat /etc/hosts; sleep 600"', name='app',
    host_config=api.create_host_config(links={'db': 'mydb'}))
api.start(app)
import time
for _ in range(100):
    logs = api.logs(app).decode()
    if 'localhost' in logs:
        break
    time.sleep(0.1)
print('MYDB_NAME=/app/mydb' in logs, 'MYDB_ENV_FOO=1' in logs, dbip + '\tmydb' in logs)
api.remove_container('app/mydb', link=True)
try:
    api.remove_container('app/mydb', link=True)
except docker.errors.NotFound:
    print('gone')
# The link is gone, the container stays (counted by its exact name).
print(len([c for c in api.containers(all=True) if '/app' in c['Names']]))
for x in [ctr, up, db, app]:
    api.remove_container(x, force=True)
api.remove_network('linked')
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "['upstream:bar']", "{out}");
    assert_eq!(lines[1], "resolved True", "{out}");
    assert_eq!(lines[2], "True True True", "{out}");
    assert_eq!(lines[3], "gone", "{out}");
    assert_eq!(lines[4], "1", "{out}");
}

/// A learner's chosen address and MAC address stay on their own network,
/// in their session's namespace: the host gets neither, and an address
/// outside the subnet (or the gateway's) is refused.
#[test]
fn a_learners_fixed_ip_and_mac_stay_in_the_session() {
    let lab = common::lab::Lab::new();
    lab.ok(&["network", "create", "--subnet", "10.77.0.0/24", "own"]);
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "own",
        "--ip",
        "10.77.0.9",
        "--mac-address",
        "02:00:00:77:00:09",
        "busybox",
        "top",
    ]);
    let inside = lab.ok(&["exec", "web", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(inside.trim(), "02:00:00:77:00:09");
    let addr = lab.ok(&["exec", "web", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains("10.77.0.9/24"), "{addr}");
    // The host: no interface took the MAC, no address the IP.
    for dev in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let mac = std::fs::read_to_string(dev.path().join("address")).unwrap_or_default();
        assert_ne!(mac.trim(), "02:00:00:77:00:09", "{:?}", dev.path());
    }
    let host = std::process::Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout);
    assert!(!host.contains("10.77.0."), "{host}");
    for ip in ["10.78.0.9", "10.77.0.1"] {
        let r = lab.docker(&[
            "run",
            "--rm",
            "--network",
            "own",
            "--ip",
            ip,
            "busybox",
            "true",
        ]);
        assert_ne!(r.code, 0, "{ip}: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )),
            "{}",
            r.stderr
        );
    }
    let r = lab.docker(&[
        "run",
        "--rm",
        "--mac-address",
        "01:00:5e:00:00:01",
        "busybox",
        "true",
    ]);
    assert!(r.stderr.contains("invalid MAC address"), "{}", r.stderr);
}

#[test]
fn ipv6_networks_give_real_v6_addresses_and_show_them() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
net = api.create_network('six', enable_ipv6=True, ipam=IPAMConfig(driver='default',
    pool_configs=[IPAMPool(subnet='2001:389::/64', iprange='2001:389::0/96', gateway='2001:389::ffff')]))['Id']
info = api.inspect_network(net)
print(info['EnableIPv6'], [p for p in info['IPAM']['Config'] if ':' in p['Subnet']])
fixed = api.create_container('busybox', 'top', host_config=api.create_host_config(network_mode='six'),
    networking_config=api.create_networking_config({'six': api.create_endpoint_config(ipv6_address='2001:389::f00d')}))
api.start(fixed)
s = api.inspect_container(fixed)['NetworkSettings']['Networks']['six']
print(s['IPAMConfig'], s['GlobalIPv6Address'], s['GlobalIPv6PrefixLen'], s['IPv6Gateway'])
other = api.create_container('busybox', 'top', host_config=api.create_host_config(network_mode='six'))
api.start(other)
got = api.inspect_container(other)['NetworkSettings']['Networks']['six']['GlobalIPv6Address']
print('picked', got)
ex = api.exec_create(other, ['ip', '-6', 'addr', 'show', 'eth0'])
print('inside', '2001:389::1/64' in api.exec_start(ex).decode())
ex = api.exec_create(other, ['ping6', '-c', '1', '-W', '5', '2001:389::f00d'])
print('ping', api.exec_inspect(ex['Id'])['ExitCode'] if api.exec_start(ex) is not None else None)
print('members', sorted(c['IPv6Address'] for c in api.inspect_network(net)['Containers'].values()))
# Connect with an address, after a disconnect (the suite's test_connect_with_ipv6_address).
api.disconnect_container_from_network(other, net)
api.connect_container_to_network(other, net, ipv6_address='2001:389::beef')
s = api.inspect_container(other)['NetworkSettings']['Networks']['six']
print('reconnected', s['IPAMConfig']['IPv6Address'], s['GlobalIPv6Address'])
ex = api.exec_create(fixed, ['ping6', '-c', '1', '-W', '5', '2001:389::beef'])
api.exec_start(ex)
print('ping again', api.exec_inspect(ex['Id'])['ExitCode'])
for bad in ('2001:38a::1', '2001:389::f00d'):
    try:
        api.connect_container_to_network(api.create_container('busybox', 'top')['Id'], net, ipv6_address=bad)
        c2 = api.containers(all=True, latest=True)[0]['Id']
        api.start(c2)
        print('accepted', bad)
    except docker.errors.APIError as err:
        print('refused', err.explanation)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "True [{'Gateway': '2001:389::ffff', 'IPRange': '2001:389::/96', 'Subnet': '2001:389::/64'}]",
        "{out}"
    );
    assert_eq!(
        lines[1], "{'IPv6Address': '2001:389::f00d'} 2001:389::f00d 64 2001:389::ffff",
        "{out}"
    );
    assert_eq!(lines[2], "picked 2001:389::1", "{out}");
    assert_eq!(lines[3], "inside True", "{out}");
    assert_eq!(lines[4], "ping 0", "{out}");
    assert_eq!(
        lines[5], "members ['2001:389::1/64', '2001:389::f00d/64']",
        "{out}"
    );
    assert_eq!(
        lines[6], "reconnected 2001:389::beef 2001:389::beef",
        "{out}"
    );
    assert_eq!(lines[7], "ping again 0", "{out}");
    assert_eq!(
        lines[8], "refused no configured subnet or ip-range contain the IP address 2001:38a::1",
        "{out}"
    );
    assert!(
        lines[9].starts_with("refused") && lines[9].contains("Address already in use"),
        "{out}"
    );
    // The bridge holds the gateway address on the host side.
    let bridges = std::process::Command::new("ip")
        .args(["-6", "-o", "addr"])
        .output()
        .unwrap();
    let bridges = String::from_utf8_lossy(&bridges.stdout);
    assert!(bridges.contains("2001:389::ffff/64"), "{bridges}");
}

#[test]
fn ipv6_without_a_subnet_gets_a_unique_local_one_and_link_local_ips_land() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
net = api.create_network('ula', enable_ipv6=True)['Id']
pools = [p['Subnet'] for p in api.inspect_network(net)['IPAM']['Config']]
print(len(pools), [p.startswith('fd') and p.endswith('::/64') for p in pools if ':' in p])
ctr = api.create_container('busybox', 'top',
    networking_config=api.create_networking_config({'bridge': api.create_endpoint_config(link_local_ips=['169.254.8.8', 'fe80::8'])}),
    host_config=api.create_host_config(network_mode='bridge'))
api.start(ctr)
print(api.inspect_container(ctr)['NetworkSettings']['Networks']['bridge']['IPAMConfig'])
ex = api.exec_create(ctr, ['ip', 'addr', 'show', 'eth0'])
text = api.exec_start(ex).decode()
print('inside', '169.254.8.8/16' in text, 'fe80::8/64' in text)
try:
    api.create_container('busybox', 'top', networking_config=api.create_networking_config(
        {'bridge': api.create_endpoint_config(link_local_ips=['172.17.0.1'])}))
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
try:
    api.create_container('busybox', 'top', networking_config=api.create_networking_config(
        {'bridge': api.create_endpoint_config(ipv6_address='fd00::5')}), host_config=api.create_host_config(network_mode='bridge'))
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2 [True]", "{out}");
    assert_eq!(
        lines[1], "{'LinkLocalIPs': ['169.254.8.8', 'fe80::8']}",
        "{out}"
    );
    assert_eq!(lines[2], "inside True True", "{out}");
    assert_eq!(
        lines[3],
        "400 invalid link-local IP address: 172.17.0.1: not in 169.254.0.0/16 or fe80::/10",
        "{out}"
    );
    assert_eq!(
        lines[4], "400 user specified IP address is supported on user defined networks only",
        "{out}"
    );
}
