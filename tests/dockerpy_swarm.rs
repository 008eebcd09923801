//! docker-py (from PyPI) as the client of a swarm on `berth daemon`: the
//! service behaviours docker-py's own suite found missing or different from
//! dockerd (its `api_service_test.py` and `models_services_test.py`),
//! asserted as the script sees them and, where it lands there, on the host.

mod common;

use common::engine::Engine;

/// A swarm on the engine and a deadline, so a stream that never ends fails
/// the test instead of hanging it; `task_container(name)` waits for a
/// service's running task and returns its container's ID.
fn script(body: &str) -> String {
    format!(
        r#"import signal, time, docker
signal.alarm(150)
c = docker.from_env(timeout=60)
api = c.api
api.init_swarm(advertise_addr='127.0.0.1', listen_addr='0.0.0.0:2377')

def task_container(name):
    for _ in range(600):
        found = api.containers(filters={{'name': name + '.'}})
        if found:
            return found[0]['Id']
        time.sleep(0.1)
    raise SystemExit('no task container for ' + name)

def run(ctr, cmd):
    return api.exec_start(api.exec_create(ctr, cmd)).decode()
{body}"#
    )
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
fn a_services_secrets_and_configs_are_files_in_its_tasks() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
sid = api.create_secret('favorite_touhou', b'phantasmagoria of flower view')
cid = api.create_config('app_conf', 'listen=80\n')
spec = docker.types.ContainerSpec('busybox', ['sleep', '999'],
    secrets=[docker.types.SecretReference(sid, 'favorite_touhou'),
             docker.types.SecretReference(sid, 'favorite_touhou', filename='/etc/pw', uid='100', gid='101', mode=0o400)],
    configs=[docker.types.ConfigReference(cid, 'app_conf')])
svc = api.create_service(docker.types.TaskTemplate(spec), name='withsecrets')
ctr = task_container('withsecrets')
print(repr(run(ctr, 'cat /run/secrets/favorite_touhou')))
print(repr(run(ctr, 'cat /app_conf')))
print(run(ctr, 'stat -c "%u %g %a" /etc/pw /run/secrets/favorite_touhou').split())
print(repr(run(ctr, 'sh -c "echo changed > /run/secrets/favorite_touhou; cat /run/secrets/favorite_touhou"')))
import json
print('LEAK' if 'phantasmagoria' in json.dumps(api.inspect_container(ctr)) + json.dumps(api.inspect_service(svc)) else 'no leak')
print(ctr)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "'phantasmagoria of flower view'", "{out}");
    assert_eq!(lines[1], "'listen=80\\n'", "{out}");
    assert_eq!(
        lines[2], "['100', '101', '400', '0', '0', '444']",
        "owner and mode as the reference asks: {out}"
    );
    assert!(
        lines[3].contains("Read-only file system") && lines[3].contains("phantasmagoria"),
        "a secret is read-only: {out}"
    );
    assert_eq!(lines[4], "no leak", "{out}");
    // On the host: the data is only in the engine's own 0700 directory.
    let ctr = lines[5];
    let files = e.data_dir().join("containers").join(ctr).join("files");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", files.display());
}

#[test]
fn a_missing_secret_is_refused_with_swarmkits_words() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
spec = docker.types.ContainerSpec('busybox', ['true'],
    secrets=[docker.types.SecretReference('nosuchid', 'nosuch')])
try:
    api.create_service(docker.types.TaskTemplate(spec), name='bad')
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
"#,
    );
    assert_eq!(
        out.trim(),
        "400 rpc error: code = InvalidArgument desc = secret not found: nosuch",
        "{out}"
    );
}

#[test]
fn service_networks_are_stored_by_id_and_keep_their_attachment_options() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
n1 = api.create_network('dockerpytest_1', driver='overlay', attachable=True)['Id']
n2 = api.create_network('dockerpytest_2', driver='overlay')['Id']
spec = docker.types.ContainerSpec('busybox', ['sleep', '999'])
tmpl = docker.types.TaskTemplate(spec, networks=['dockerpytest_1', {'Target': 'dockerpytest_2'}])
svc = api.create_service(tmpl, name='netsvc')
print(api.inspect_service(svc)['Spec']['TaskTemplate']['Networks'] == [{'Target': n1}, {'Target': n2}])
att = docker.types.NetworkAttachmentConfig(target='dockerpytest_1', aliases=['alias1'], options={'foo': 'bar'})
svc2 = api.create_service(docker.types.TaskTemplate(spec, networks=[att]), name='attached')
print(api.inspect_service(svc2)['Spec']['TaskTemplate']['Networks'] == [{'Target': n1, 'Aliases': ['alias1'], 'DriverOpts': {'foo': 'bar'}}])
ctr = task_container('netsvc')
print(sorted(api.inspect_container(ctr)['NetworkSettings']['Networks']))
try:
    api.create_service(docker.types.TaskTemplate(spec, networks=['nosuchnet']), name='nonet')
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "True", "{out}");
    assert_eq!(lines[1], "True", "aliases and driver options kept: {out}");
    assert_eq!(lines[2], "['dockerpytest_1', 'dockerpytest_2']", "{out}");
    assert_eq!(lines[3], "404 network nosuchnet not found", "{out}");
}

#[test]
fn service_capabilities_reach_the_spec_and_the_task() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
svc = c.services.create('busybox', ['sleep', '999'], name='caps',
    cap_add=['CAP_SYSLOG'], cap_drop=['CAP_CHOWN'])
cs = api.services(filters={'name': 'caps'})[0]['Spec']['TaskTemplate']['ContainerSpec']
print(cs['CapabilityAdd'], cs['CapabilityDrop'])
ctr = task_container('caps')
eff = int([l for l in run(ctr, 'cat /proc/self/status').splitlines() if l.startswith('CapEff')][0].split()[1], 16)
print('syslog' if eff & (1 << 34) else 'no syslog', 'chown' if eff & 1 else 'no chown')
try:
    api.create_service(docker.types.TaskTemplate(docker.types.ContainerSpec('busybox', ['true'], cap_add=['CAP_FOO'])), name='badcap')
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "['CAP_SYSLOG'] ['CAP_CHOWN']", "{out}");
    assert_eq!(lines[1], "syslog no chown", "{out}");
    assert_eq!(
        lines[2], "400 invalid CapAdd: unknown capability: \"CAP_FOO\"",
        "{out}"
    );
}

#[test]
fn inspect_inserts_swarmkits_defaults_and_keys_are_read_without_case() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
svc = c.services.create('busybox', 'sleep 300', name='dflt', rollback_config={'order': 'start-first'})
spec = svc.attrs['Spec']
print(spec['RollbackConfig'])
plain = api.inspect_service(svc.id)['Spec']
full = api.inspect_service(svc.id, insert_defaults=True)['Spec']
print('UpdateConfig' in plain, full['UpdateConfig'] == {'Parallelism': 1, 'FailureAction': 'pause', 'Monitor': 5000000000, 'MaxFailureRatio': 0, 'Order': 'stop-first'})
print(full['RollbackConfig']['Order'], full['RollbackConfig']['Parallelism'])
print(full['TaskTemplate']['RestartPolicy'] == {'Condition': 'any', 'Delay': 5000000000, 'MaxAttempts': 0}, full['TaskTemplate']['ContainerSpec']['StopGracePeriod'])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{'Order': 'start-first'}", "{out}");
    assert_eq!(lines[1], "False True", "swarmkit's update defaults: {out}");
    assert_eq!(
        lines[2], "start-first 1",
        "the spec's own values win: {out}"
    );
    assert_eq!(lines[3], "True 10000000000", "{out}");
}

#[test]
fn a_finished_tasks_logs_stay_and_its_network_goes_with_its_service() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
net = api.create_network('tasknet', driver='overlay')['Id']
spec = docker.types.ContainerSpec('busybox', ['sh', '-c', 'echo hello; sleep 1'])
svc = api.create_service(docker.types.TaskTemplate(spec, networks=['tasknet']), name='echoer')
for _ in range(300):
    tasks = api.tasks(filters={'service': 'echoer'})
    if any(t['Status']['State'] == 'complete' for t in tasks):
        break
    time.sleep(0.1)
print(next(api.service_logs(svc, stdout=True, is_tty=False)).decode().strip())
api.remove_service(svc)
api.remove_network(net)
print([n['Name'] for n in api.networks(names=['tasknet'])])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello", "the exited task's logs: {out}");
    assert_eq!(lines[1], "[]", "the network went: {out}");
    // The reconcile loop removed the kept container with its task's service.
    let gone = common::engine::eventually(std::time::Duration::from_secs(30), || {
        e.ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.swarm.service.name=echoer",
        ])
        .trim()
        .is_empty()
    });
    assert!(gone, "{}", e.ok(&["ps", "-a"]));
}

#[test]
fn swarm_init_makes_an_ingress_network_that_can_be_remade() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
n = api.inspect_network('ingress')
print(n['Driver'], n['Scope'], n['Ingress'], n['Attachable'])
api.remove_network('ingress')
made = api.create_network('mesh', driver='overlay', ingress=True)['Id']
print(api.inspect_network(made)['Ingress'])
print(api.prune_networks()['NetworksDeleted'])
api.leave_swarm(force=True)
print([x['Name'] for x in api.networks() if x['Ingress']])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "overlay swarm True False", "{out}");
    assert_eq!(lines[1], "True", "{out}");
    assert_eq!(lines[2], "[]", "prune leaves the ingress network: {out}");
    assert_eq!(lines[3], "[]", "leave drops it: {out}");
}

/// docker-py's `test_service_logs` failed under load: asked before the
/// first task had a container, the answer was a JSON `""`, which docker-py
/// read as a broken frame header instead of an empty stream.
#[test]
fn logs_of_a_service_without_a_task_container_are_an_empty_stream() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
spec = docker.types.ContainerSpec('busybox', ['echo', 'hello'])
tmpl = docker.types.TaskTemplate(spec, placement=['node.labels.nowhere==1'])
svc = api.create_service(tmpl, name='unplaced')
print(list(api.service_logs(svc, stdout=True, is_tty=False)))
"#,
    );
    assert_eq!(out.trim(), "[]", "{out}");
}
