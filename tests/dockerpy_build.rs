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
