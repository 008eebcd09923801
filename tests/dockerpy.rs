//! docker-py (the most used Docker SDK, from PyPI) as the client of `berth
//! daemon`: each test is a behaviour docker-py's own integration suite found
//! missing or different from dockerd, asserted as a script's user sees it
//! (returned values, exit codes) and, where it lands there, on the host.

mod common;

use common::engine::Engine;

/// Every script gets a hard deadline, so a missing detach or a stream that
/// never ends fails the test instead of hanging it.
fn script(body: &str) -> String {
    format!("import signal, socket, time, docker\nsignal.alarm(90)\nc = docker.from_env(timeout=60)\napi = c.api\n{body}")
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
fn update_changes_a_running_containers_memory_and_restart_policy() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
ctr = api.create_container('busybox', 'top',
    host_config=api.create_host_config(mem_limit=400 * 1024 * 1024,
        restart_policy={'Name': 'always', 'MaximumRetryCount': 0}))
api.start(ctr)
print(api.update_container(ctr, mem_limit=300 * 1024 * 1024))
api.update_container(ctr, restart_policy={'Name': 'on-failure', 'MaximumRetryCount': 42})
h = api.inspect_container(ctr)['HostConfig']
print(h['Memory'], h['RestartPolicy']['Name'], h['RestartPolicy']['MaximumRetryCount'])
print(ctr['Id'])
try:
    api.update_container(ctr, mem_limit=1024)
except docker.errors.APIError as err:
    print('refused', err.status_code)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{'Warnings': []}", "{out}");
    assert_eq!(lines[1], "314572800 on-failure 42", "{out}");
    assert_eq!(lines[3], "refused 400", "{out}");
    // The running container's cgroup took the new limit.
    let id = lines[2];
    let max = e
        .cgroups()
        .into_iter()
        .filter(|d| d.to_string_lossy().contains(id))
        .find_map(|d| {
            std::fs::read_to_string(d.join("memory.max"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.limit_in_bytes")))
                .ok()
        })
        .expect("the container's memory cgroup");
    assert_eq!(max.trim(), "314572800");
    let _ = run(&e, &format!("api.remove_container('{id}', force=True)"));
}

#[test]
fn detach_keys_end_an_exec_and_an_attach_and_leave_the_process_running() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
def detached(sock, keys):
    raw = sock._sock
    raw.settimeout(10)
    for k in keys:
        raw.sendall(k)
        time.sleep(0.3)
    # The daemon closes the stream: reads end (no data, no hang).
    while True:
        try:
            if raw.recv(4096) == b'':
                return 'closed'
        except socket.timeout:
            return 'still open'
        except OSError:
            return 'closed'

ctr = api.create_container('busybox', 'cat', stdin_open=True, tty=True)
api.start(ctr)
ex = api.exec_create(ctr, 'cat', stdin=True, tty=True, stdout=True)
print('exec default keys', detached(api.exec_start(ex, tty=True, socket=True), [b'\x10', b'\x11']))
print('exec still running', api.exec_inspect(ex)['Running'])
api._general_configs['detachKeys'] = 'ctrl-x'
ex = api.exec_create(ctr, 'cat', stdin=True, tty=True, stdout=True)
print('exec configured keys', detached(api.exec_start(ex, tty=True, socket=True), [b'\x18']))
api._general_configs.pop('detachKeys')
sock = api.attach_socket(ctr, params={'stdin': 1, 'stdout': 1, 'stream': 1})
print('attach', detached(sock, [b'\x10', b'\x11']))
print('container', api.inspect_container(ctr)['State']['Status'])
try:
    api._general_configs['detachKeys'] = 'ctrl-1'
    api.exec_create(ctr, 'cat', stdin=True, tty=True)
except docker.errors.APIError as err:
    print('bad keys', err.status_code, err.explanation)
api.remove_container(ctr, force=True)
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "exec default keys closed",
            "exec still running True",
            "exec configured keys closed",
            "attach closed",
            "container running",
            "bad keys 400 Invalid detach keys (ctrl-1) provided",
        ],
        "{out}"
    );
}

#[test]
fn swarm_secrets_and_configs_are_created_listed_inspected_and_removed() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
api.init_swarm(advertise_addr='127.0.0.1', listen_addr='0.0.0.0:2377')
s = api.create_secret('favorite_character', 'sakuya izayoi', labels={'a': 'b'})
spec = api.inspect_secret(s['ID'])['Spec']
print('secret', spec['Name'], spec['Labels'], 'Data' in spec)
print('listed', [x['ID'] == s['ID'] for x in api.secrets(filters={'names': ['favorite_character']})])
print('other name', api.secrets(filters={'names': ['nope']}))
try:
    api.create_secret('favorite_character', 'again')
except docker.errors.APIError as err:
    print('duplicate', err.status_code)
cfg = api.create_config('favorite_character', 'いざよいさくや', templating={'name': 'golang'})
info = api.inspect_config(cfg['ID'])
import base64
print('config', base64.b64decode(info['Spec']['Data']).decode(), info['Spec']['Templating']['Name'], 'Version' in info)
print('listed', len(api.configs(filters={'name': ['favorite_character']})))
print(api.remove_secret(s['ID']), api.remove_config(cfg['ID']))
for f in (api.inspect_secret, api.inspect_config):
    try:
        f(s['ID'])
    except docker.errors.NotFound:
        print('gone')
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "secret favorite_character {'a': 'b'} False",
            "listed [True]",
            "other name []",
            "duplicate 409",
            "config いざよいさくや golang True",
            "listed 1",
            "True True",
            "gone",
            "gone",
        ],
        "{out}"
    );
}

#[test]
fn archives_reach_the_volumes_of_created_and_exited_containers() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
import io, tarfile
def tar_of(name, data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()

# Written by the container into its volume; read back once it has exited.
ctr = api.create_container('busybox', 'sh -c "echo -n The Maid > /vol1/data.txt"', volumes=['/vol1'])
api.start(ctr)
print('exit', api.wait(ctr)['StatusCode'])
strm, stat = api.get_archive(ctr, '/vol1/data.txt')
t = tarfile.open(fileobj=io.BytesIO(b''.join(strm)))
print('got', stat['name'], stat['size'], t.extractfile('data.txt').read().decode())
# Put into the volume of a container that never ran; it reads it at start.
ctr2 = api.create_container('busybox', 'cat /vol2/song', volumes=['/vol2'])
print('put', api.put_archive(ctr2, '/vol2', tar_of('song', b'Deaf To All But The Song')))
api.start(ctr2)
api.wait(ctr2)
print('logs', api.logs(ctr2).decode().strip())
api.remove_container(ctr, v=True)
api.remove_container(ctr2, v=True)
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "exit 0",
            "got data.txt 8 The Maid",
            "put True",
            "logs Deaf To All But The Song",
        ],
        "{out}"
    );
    assert!(e.mounts().is_empty(), "{:?}", e.mounts());
}

#[test]
fn a_restarting_container_is_not_removed_without_force() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
ctr = api.create_container('busybox', ['sleep', '1'],
    host_config=api.create_host_config(restart_policy={'Name': 'always'}, network_mode='none'))
api.start(ctr)
api.wait(ctr)
try:
    api.remove_container(ctr)
    print('removed')
except docker.errors.APIError as err:
    print(err.status_code, 'stop the container before' in err.explanation)
api.remove_container(ctr, force=True)
print('force', [c['Id'] for c in api.containers(all=True)])
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["409 True", "force []"],
        "{out}"
    );
}

#[test]
fn exec_output_is_demuxed_and_healthchecks_take_docker_pys_nulls() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
cmd = 'sh -c "echo hello out ; sleep 0.5 ; echo hello err >&2"'
ctr = api.create_container('busybox', 'cat', detach=True, stdin_open=True)
api.start(ctr)
print(api.exec_start(api.exec_create(ctr, cmd), demux=True))
print(list(api.exec_start(api.exec_create(ctr, cmd), stream=True, demux=True)))
api.remove_container(ctr, force=True)
# docker-py sends "StartPeriod": null for what it is not given.
h = api.create_container('busybox', 'top', healthcheck={'test': 'true',
    'interval': 1000000000, 'timeout': 1000000000, 'retries': 1})
hc = api.inspect_container(h)['Config']['Healthcheck']
print(hc['Test'], hc['Interval'], hc['Retries'])
api.start(h)
deadline = time.time() + 30
while api.inspect_container(h)['State']['Health']['Status'] != 'healthy' and time.time() < deadline:
    time.sleep(0.2)
print(api.inspect_container(h)['State']['Health']['Status'])
api.remove_container(h, force=True)
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "(b'hello out\\n', b'hello err\\n')",
            "[(b'hello out\\n', None), (None, b'hello err\\n')]",
            "['CMD-SHELL', 'true'] 1000000000 1",
            "healthy",
        ],
        "{out}"
    );
}

#[test]
fn networks_by_names_that_need_escaping_and_with_docker_pys_nulls() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
net = api.create_network('test 01')
print(api.inspect_network('test 01')['Name'])
# docker-py sends "Driver": null and IPAM pools with null fields.
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet='172.28.0.0/16', gateway='172.28.5.254')])
n2 = api.create_network('dockerpy-ipam', ipam=ipam)
print(api.inspect_network(n2['Id'])['IPAM']['Config'][0]['Gateway'])
api.remove_network('test 01')
api.remove_network(n2['Id'])
print([n['Name'] for n in api.networks(names=['test 01', 'dockerpy-ipam'])])
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["test 01", "172.28.5.254", "[]"],
        "{out}"
    );
}

#[test]
fn service_modes_from_docker_py_read_back_in_dockers_terms() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
api.init_swarm(advertise_addr='127.0.0.1', listen_addr='0.0.0.0:2377')
task = docker.types.TaskTemplate(docker.types.ContainerSpec('busybox', ['sleep', '300']))
g = api.create_service(task, name='dpy-global', mode=docker.types.ServiceMode('global'))
r = api.create_service(task, name='dpy-replicated', mode=docker.types.ServiceMode('replicated', 2))
print(sorted(api.inspect_service(g['ID'])['Spec']['Mode']))
print(api.inspect_service(r['ID'])['Spec']['Mode'])
info = api.inspect_service(r['ID'])
print('force', info['Spec']['TaskTemplate']['ForceUpdate'])
api.update_service(r['ID'], info['Version']['Index'],
    docker.types.TaskTemplate(docker.types.ContainerSpec('busybox', ['sleep', '300']), force_update=10),
    name='dpy-replicated', mode=docker.types.ServiceMode('replicated', 2))
print('force', api.inspect_service(r['ID'])['Spec']['TaskTemplate']['ForceUpdate'])
api.remove_service(g['ID'])
api.remove_service(r['ID'])
api.leave_swarm(force=True)
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "['Global']",
            "{'Replicated': {'Replicas': 2}}",
            "force 0",
            "force 10"
        ],
        "{out}"
    );
}

#[test]
fn swarm_init_keeps_its_options_and_autolock_has_a_rotating_key() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
spec = api.create_swarm_spec(snapshot_interval=5000, log_entries_for_slow_followers=1200,
    node_cert_expiry=7776000000000000, ca_force_rotate=6000000000000, autolock_managers=True)
api.init_swarm(advertise_addr='127.0.0.1', listen_addr='0.0.0.0:2377', swarm_spec=spec,
    default_addr_pool=['2.0.0.0/16', '3.0.0.0/16'], subnet_size=26, data_path_port=4242)
info = api.inspect_swarm()
print(info['Spec']['Raft']['SnapshotInterval'], info['Spec']['Raft']['LogEntriesForSlowFollowers'],
      info['Spec']['CAConfig']['ForceRotate'], info['Spec']['EncryptionConfig']['AutoLockManagers'])
print(sorted(info['DefaultAddrPool']), info['SubnetSize'], info['DataPathPort'])
k1 = api.get_unlock_key()['UnlockKey']
api.update_swarm(version=info['Version']['Index'], rotate_manager_unlock_key=True)
k2 = api.get_unlock_key()['UnlockKey']
print(k1.startswith('SWMKEY-1-'), k1 != k2)
api.leave_swarm(force=True)
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "5000 1200 6000000000000 True",
            "['2.0.0.0/16', '3.0.0.0/16'] 26 4242",
            "True True",
        ],
        "{out}"
    );
}

#[test]
fn a_commit_names_its_containers_image_as_parent_and_applies_changes() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
ctr = api.create_container('busybox', ['touch', '/test'])
api.start(ctr)
api.wait(ctr)
res = api.commit(ctr, repository='dpy-commit', changes=['EXPOSE 8000', 'CMD ["bash"]'])
img = api.inspect_image(res['Id'])
print(img['Parent'] == api.inspect_image('busybox')['Id'], img['Config']['Cmd'], '8000/tcp' in img['Config']['ExposedPorts'])
api.remove_container(ctr)
api.remove_image('dpy-commit')
"#,
    );
    assert_eq!(out.trim(), "True ['bash'] True", "{out}");
}

#[test]
fn group_add_gives_the_process_more_groups_by_number_and_name() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
for groups in ([1000, 1001], ['1000', 'root']):
    ctr = api.create_container('busybox', 'id -G', host_config=api.create_host_config(group_add=groups))
    api.start(ctr)
    api.wait(ctr)
    print(api.logs(ctr).decode().strip())
    api.remove_container(ctr)
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["0 10 1000 1001", "0 10 1000"],
        "{out}"
    );
}
