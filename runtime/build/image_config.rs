//! What config-only instructions do to an image config (Docker's JSON
//! `config` object): CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, VOLUME, USER,
//! WORKDIR, HEALTHCHECK, SHELL, STOPSIGNAL, ONBUILD, MAINTAINER.

use serde_json::{json, Map, Value};

use super::created_by::argv;
use super::instructions::{Command, CommandLine, Healthcheck};
use super::rootfs::components;

/// The PATH Docker gives a `FROM scratch` stage.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Per-stage state that is not in the image config.
#[derive(Debug, Clone, Default)]
pub struct StageFlags {
    /// A `CMD` was given in this stage (then `ENTRYPOINT` keeps it).
    pub cmd_set: bool,
}

fn object<'a>(config: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !config.get(key).is_some_and(Value::is_object) {
        config[key] = json!({});
    }
    config[key].as_object_mut().expect("made an object above")
}

/// The stage's shell (`SHELL` or `/bin/sh -c`).
pub fn shell(config: &Value) -> Vec<String> {
    config
        .get("Shell")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_else(super::created_by::default_shell)
}

/// The config's environment as pairs.
pub fn env_pairs(config: &Value) -> Vec<(String, String)> {
    config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the environment back.
pub fn set_env(config: &mut Value, env: &[(String, String)]) {
    let list: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    config["Env"] = json!(list);
}

/// The absolute directory `WORKDIR dir` leads to from the current one.
pub fn workdir(config: &Value, dir: &str) -> String {
    let current = config
        .get("WorkingDir")
        .and_then(Value::as_str)
        .unwrap_or("");
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{current}/{dir}")
    };
    format!("/{}", components(&joined).join("/"))
}

fn nanos(d: Option<std::time::Duration>) -> Option<u64> {
    d.map(|d| d.as_nanos() as u64).filter(|n| *n > 0)
}

/// Applies an expanded config-only command to `config` (the `config`
/// object of the image) and to the stage's flags. `author` receives
/// `MAINTAINER`'s value.
pub fn apply(
    config: &mut Value,
    flags: &mut StageFlags,
    command: &Command,
    author: &mut Option<String>,
) {
    let sh = shell(config);
    match command {
        Command::Cmd(cmd) => {
            config["Cmd"] = json!(argv(&sh, cmd));
            flags.cmd_set = true;
        }
        Command::Entrypoint(cmd) => {
            let list = argv(&sh, cmd);
            // `ENTRYPOINT []` clears it; an inherited CMD is dropped unless
            // this stage set one (Docker's classic builder).
            config["Entrypoint"] = match cmd {
                CommandLine::Exec(l) if l.is_empty() => Value::Null,
                _ => json!(list),
            };
            if !flags.cmd_set {
                config["Cmd"] = Value::Null;
            }
        }
        Command::Label(pairs) => {
            let labels = object(config, "Labels");
            for kv in pairs {
                labels.insert(kv.key.clone(), json!(kv.value));
            }
        }
        Command::Expose(ports) => {
            let exposed = object(config, "ExposedPorts");
            for p in ports {
                let key = if p.contains('/') {
                    p.to_ascii_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                exposed.insert(key, json!({}));
            }
        }
        Command::Volume(dirs) => {
            let volumes = object(config, "Volumes");
            for d in dirs {
                volumes.insert(d.clone(), json!({}));
            }
        }
        Command::User(u) => config["User"] = json!(u),
        Command::Workdir(dir) => config["WorkingDir"] = json!(workdir(config, dir)),
        Command::Stopsignal(s) => config["StopSignal"] = json!(s),
        Command::Shell(s) => config["Shell"] = json!(s),
        Command::Onbuild { expression, .. } => {
            let mut list = config
                .get("OnBuild")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            list.push(json!(expression));
            config["OnBuild"] = json!(list);
        }
        Command::Maintainer(m) => *author = Some(m.clone()),
        Command::Healthcheck(Healthcheck::None) => {
            config["Healthcheck"] = json!({"Test": ["NONE"]});
        }
        Command::Healthcheck(Healthcheck::Check(check)) => {
            let test = match &check.test {
                CommandLine::Exec(list) => [vec!["CMD".to_string()], list.clone()].concat(),
                CommandLine::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
            };
            let mut h = json!({"Test": test});
            for (key, value) in [
                ("Interval", nanos(check.interval)),
                ("Timeout", nanos(check.timeout)),
                ("StartPeriod", nanos(check.start_period)),
                ("StartInterval", nanos(check.start_interval)),
            ] {
                if let Some(v) = value {
                    h[key] = json!(v);
                }
            }
            if let Some(r) = check.retries.filter(|r| *r > 0) {
                h["Retries"] = json!(r);
            }
            config["Healthcheck"] = h;
        }
        // ENV is applied through the stage's scope; ARG changes no config;
        // RUN, COPY, ADD and FROM are not config-only.
        Command::Env(_)
        | Command::Arg(_)
        | Command::Run(_)
        | Command::Copy(_)
        | Command::Add(_)
        | Command::From(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::instructions::KeyValue;

    #[test]
    fn entrypoint_drops_an_inherited_cmd_but_not_this_stages() {
        let mut config = json!({"Cmd": ["sh"]});
        let mut flags = StageFlags::default();
        let mut author = None;
        let ep = Command::Entrypoint(CommandLine::Exec(vec!["httpd".into()]));
        apply(&mut config, &mut flags, &ep, &mut author);
        assert_eq!(config["Cmd"], Value::Null);
        let cmd = Command::Cmd(CommandLine::Exec(vec!["-f".into()]));
        apply(&mut config, &mut flags, &cmd, &mut author);
        apply(&mut config, &mut flags, &ep, &mut author);
        assert_eq!(config["Cmd"], json!(["-f"]));
        assert_eq!(config["Entrypoint"], json!(["httpd"]));
    }

    #[test]
    fn ports_labels_and_workdirs() {
        let mut config = json!({"WorkingDir": "/app"});
        let mut flags = StageFlags::default();
        let mut author = None;
        apply(
            &mut config,
            &mut flags,
            &Command::Expose(vec!["80".into(), "53/UDP".into()]),
            &mut author,
        );
        apply(
            &mut config,
            &mut flags,
            &Command::Label(vec![KeyValue {
                key: "a".into(),
                value: "b c".into(),
            }]),
            &mut author,
        );
        assert_eq!(config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(config["Labels"], json!({"a": "b c"}));
        assert_eq!(workdir(&config, "web/../site"), "/app/site");
        assert_eq!(workdir(&config, "/srv"), "/srv");
    }
}
