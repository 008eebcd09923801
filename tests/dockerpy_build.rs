//! docker-py's build, exec, create and load behaviours that its own
//! integration suite found different from dockerd, asserted as a docker-py
//! script's user sees them (returned values, raised errors).

mod common;

use common::engine::Engine;

/// Every script gets a hard deadline, so a stream that never ends fails the
/// test instead of hanging it.
fn script(body: &str) -> String {
    format!("import io, signal, socket, docker\nsignal.alarm(90)\nc = docker.from_env(timeout=60)\napi = c.api\n{body}")
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

/// docker-py's `exec_start` sends `Tty: false` for an exec created with a
/// terminal and reads stdcopy frames: dockerd frames the terminal's output
/// as stdout then, whole from its first byte.
#[test]
fn exec_with_a_terminal_is_framed_as_the_start_request_asks() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
ctr = api.create_container('busybox', 'cat', stdin_open=True)
api.start(ctr)
cmd = ['sh', '-c', 'echo hello out; echo hello err >&2']
x = api.exec_create(ctr, cmd, tty=True)
print(repr(api.exec_start(x)))
x = api.exec_create(ctr, cmd, tty=True)
print(repr(api.exec_start(x, demux=True)))
x = api.exec_create(ctr, cmd, tty=True)
print(repr(b''.join(api.exec_start(x, stream=True))))
x = api.exec_create(ctr, cmd, tty=True)
print(repr(api.exec_start(x, tty=True)))
x = api.exec_create(ctr, ['printf', 'yay'], tty=True)
s = api.exec_start(x, socket=True)
from docker.utils.socket import next_frame_header, read_exactly
stream, size = next_frame_header(s)
print(stream, size, read_exactly(s, size))
api.remove_container(ctr, force=True)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    let whole = r"b'hello out\r\nhello err\r\n'";
    assert_eq!(lines[0], whole, "{out}");
    assert_eq!(lines[1], format!("({whole}, None)"), "{out}");
    assert_eq!(lines[2], whole, "{out}");
    // A client that asks for raw bytes still gets them raw.
    assert_eq!(lines[3], whole, "{out}");
    assert_eq!(lines[4], "1 3 b'yay'", "{out}");
}

/// An unknown log driver is refused at create, in dockerd's words.
#[test]
fn an_unknown_log_driver_is_refused_at_create() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
lc = docker.types.LogConfig(type='asdf', config={})
try:
    ctr = api.create_container('busybox', ['true'], host_config=api.create_host_config(log_config=lc))
    api.start(ctr)
    print('accepted')
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)
print(len(api.containers(all=True)))
"#,
    );
    assert_eq!(
        out, "400 logger: no log driver named 'asdf' is registered\n0\n",
        "{out}"
    );
}

/// A `docker load` body that is no image archive raises docker-py's
/// ImageLoadError (dockerd reports it in the JSON stream).
#[test]
fn loading_a_body_that_is_no_archive_raises_image_load_error() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
for body in [b'abc', b'\0' * 1024]:
    try:
        c.images.load(body)
        print('loaded')
    except docker.errors.ImageLoadError as err:
        print('ImageLoadError', bool(str(err)))
"#,
    );
    assert_eq!(out, "ImageLoadError True\nImageLoadError True\n", "{out}");
}

/// A Dockerfile from outside the context: docker-py sends it under a random
/// name that its `.dockerignore` lists, and dockerd leaves both out of what
/// `COPY .` sees. `!` lines of a `.dockerignore` bring files back.
#[test]
fn build_leaves_out_what_dockerignore_lists_even_the_dockerfile() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
import os, tempfile
base = tempfile.mkdtemp()
def put(rel, text='x'):
    p = os.path.join(base, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, 'w').write(text)
put('file.txt', 'hello world')
put('.dockerignore', '.dockerignore\n')
df = os.path.join(tempfile.mkdtemp(), 'Dockerfile')
open(df, 'w').write('FROM busybox\nCOPY . /src\nWORKDIR /src\n')
for chunk in api.build(path=base, dockerfile=df, tag='outside', decode=True):
    if 'errorDetail' in chunk:
        print('failed', chunk)
print(c.containers.run('outside', 'ls -A', remove=True).decode().split())

base = tempfile.mkdtemp()
put('Dockerfile', 'FROM busybox\nADD . /test\n')
put('.dockerignore', 'ignored\nDockerfile\n.dockerignore\n ignored-with-spaces \n!ignored/subdir/excepted-file\n! ignored/subdir/excepted-with-spaces  \n#*')
for rel in ['not-ignored', '#file.txt', 'ignored-with-spaces', 'ignored/subdir/file',
            'ignored/subdir/excepted-file', 'ignored/subdir/excepted-with-spaces']:
    put(rel)
for chunk in api.build(path=base, tag='ignoring', decode=True):
    if 'errorDetail' in chunk:
        print('failed', chunk)
print(sorted(c.containers.run('ignoring', ['find', '/test', '-type', 'f'], remove=True).decode().split()))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "['file.txt']", "{out}");
    assert_eq!(
        lines[1],
        "['/test/#file.txt', '/test/ignored/subdir/excepted-file', '/test/ignored/subdir/excepted-with-spaces', '/test/not-ignored']",
        "{out}"
    );
}

/// `extrahosts` become lines of `/etc/hosts` in `RUN` steps; `networkmode`
/// puts them on one of the session's networks, or on none.
#[test]
fn build_steps_take_extra_hosts_and_the_network_asked_for() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
# Three RUN steps that leave the same files: one layer listed three times,
# which must still mount.
df = b'FROM busybox\nRUN ping -c1 v6.test\nRUN ping -c1 extrahost.local.test\nRUN cp /etc/hosts /hosts-file\n'
for chunk in api.build(fileobj=io.BytesIO(df), tag='hosts', decode=True,
                       extra_hosts={'extrahost.local.test': '127.0.0.1', 'v6.test': '::1'}):
    if 'errorDetail' in chunk:
        print('failed', chunk)
hosts = c.containers.run('hosts', 'cat /hosts-file', remove=True).decode()
print('127.0.0.1\textrahost.local.test' in hosts, '::1\tv6.test' in hosts)
try:
    list(api.build(fileobj=io.BytesIO(df), extra_hosts=['bad\nname:1.2.3.4']))
except docker.errors.APIError as err:
    print(err.status_code, err.explanation)

net = api.create_network('buildnet')['Id']
target = api.create_container('busybox', 'top')
api.start(target)
api.connect_container_to_network(target, net, aliases=['pingtarget.docker'])
df = b'FROM busybox\nRUN ping -c1 pingtarget.docker\n'
for chunk in api.build(fileobj=io.BytesIO(df), network_mode=net, tag='onnet', decode=True):
    if 'errorDetail' in chunk:
        print('failed', chunk)
print(bool(api.inspect_image('onnet')))
logs = list(api.build(fileobj=io.BytesIO(df), network_mode='none', tag='nonet', nocache=True, decode=True))
print(logs[-1].get('errorDetail', {}).get('code'))
try:
    list(api.build(fileobj=io.BytesIO(df), network_mode='nosuchnet'))
except docker.errors.APIError as err:
    print(err.status_code)
api.remove_container(target, force=True)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "True True", "{out}");
    assert!(lines[1].starts_with("400 bad format for add-host"), "{out}");
    assert_eq!(lines[2], "True", "{out}");
    assert_eq!(lines[3], "1", "{out}");
    assert_eq!(lines[4], "400", "{out}");
}

/// With `cache_from`, a step is reused only from the images named (and the
/// images they were built on): none of them, no cache.
#[test]
fn build_cache_from_limits_the_cache_to_the_images_named() {
    let e = Engine::start();
    let out = run(
        &e,
        r#"
df = b'FROM busybox\nENV FOO=bar\nRUN touch baz\nRUN touch bax\n'
def hits(**kw):
    n = 0
    for chunk in api.build(fileobj=io.BytesIO(df), decode=True, **kw):
        if 'errorDetail' in chunk:
            print('failed', chunk)
        n += 'Using cache' in chunk.get('stream', '')
    return n
print(hits(tag='build1'))
print(hits(tag='build2', cache_from=['build1']))
api.remove_image('build2')
print(hits(tag='build2', cache_from=['nosuchtag']))
print(hits(tag='build3'))
"#,
    );
    assert_eq!(out, "0\n3\n0\n3\n", "{out}");
}
