//! The `created_by` text Docker's classic builder writes into image history,
//! so `docker history` on a Berth-built image reads like Docker's.
//!
//! Config-only instructions commit an empty layer whose command is the shell
//! followed by `#(nop) ` and a description; `RUN` records the command it ran,
//! prefixed with `|N KEY=value…` when build args were in effect.

use std::time::Duration;

use super::duration::format_go_duration;
use super::instructions::{Command, CommandLine, Healthcheck};

/// The shell Docker uses when the stage set none with `SHELL`.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

/// Quotes like Go's `%q` for a string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
fn go_list(list: &[String]) -> String {
    format!("[{}]", list.join(" "))
}

/// The argv a command line becomes in the image config (shell form is
/// wrapped in the stage's shell).
pub fn argv(shell: &[String], cmd: &CommandLine) -> Vec<String> {
    match cmd {
        CommandLine::Exec(list) => list.clone(),
        CommandLine::Shell(text) => shell.iter().cloned().chain([text.clone()]).collect(),
    }
}

/// `created_by` for an instruction that only changes the config, given the
/// *expanded* command; `None` for RUN, COPY, ADD and FROM.
pub fn nop(shell: &[String], command: &Command) -> Option<String> {
    let description = match command {
        Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::From(_) => return None,
        // WORKDIR uses a single-space form in Docker; the others two spaces.
        Command::Workdir(dir) => return Some(format!("{} #(nop) WORKDIR {dir}", shell.join(" "))),
        Command::Cmd(cmd) => format!("CMD {}", go_quote_list(&argv(shell, cmd))),
        Command::Entrypoint(cmd) => format!("ENTRYPOINT {}", go_quote_list(&argv(shell, cmd))),
        Command::Env(pairs) | Command::Label(pairs) => {
            let mut text = command.keyword().to_string();
            for kv in pairs {
                text.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            text
        }
        Command::Arg(arg) => match &arg.default {
            Some(v) => format!("ARG {}={v}", arg.name),
            None => format!("ARG {}", arg.name),
        },
        Command::Expose(ports) => format!("EXPOSE {}", ports.join(" ")),
        Command::Volume(v) => format!("VOLUME {}", go_list(v)),
        Command::User(u) => format!("USER {u}"),
        Command::Stopsignal(s) => format!("STOPSIGNAL {s}"),
        Command::Shell(s) => format!("SHELL {}", go_list(s)),
        Command::Maintainer(m) => format!("MAINTAINER {m}"),
        Command::Onbuild { expression, .. } => format!("ONBUILD {expression}"),
        Command::Healthcheck(h) => format!("HEALTHCHECK {}", healthcheck_text(h)),
    };
    Some(format!("{} #(nop)  {description}", shell.join(" ")))
}

/// Go's `%q` of a `*container.HealthConfig`, as Docker prints it.
fn healthcheck_text(h: &Healthcheck) -> String {
    let Healthcheck::Check(check) = h else {
        return "&{[\"NONE\"] \"0s\" \"0s\" \"0s\" \"0s\" '\\x00'}".to_string();
    };
    let test = match &check.test {
        CommandLine::Exec(list) => [vec!["CMD".to_string()], list.clone()].concat(),
        CommandLine::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
    };
    let d = |d: Option<Duration>| go_quote(&format_go_duration(d.unwrap_or_default()));
    let retries = check.retries.unwrap_or(0);
    let retries = match char::from_u32(retries) {
        Some(c) if (c as u32) >= 0x20 && c != '\'' && c != '\\' && c as u32 != 0x7f => {
            format!("'{c}'")
        }
        _ if retries < 0x100 => format!("'\\x{retries:02x}'"),
        _ => format!("'\\u{retries:04x}'"),
    };
    format!(
        "&{{{} {} {} {} {} {retries}}}",
        go_quote_list(&test),
        d(check.interval),
        d(check.timeout),
        d(check.start_period),
        d(check.start_interval),
    )
}

/// `created_by` for `RUN`: the command run, prefixed with `|N K=v…` when
/// build args were in effect (`run_args` from [`super::Scope::history_args`]).
pub fn run(shell: &[String], cmd: &CommandLine, run_args: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    if !run_args.is_empty() {
        let mut args: Vec<String> = run_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.sort();
        parts.push(format!("|{}", args.len()));
        parts.extend(args);
    }
    parts.extend(argv(shell, cmd));
    parts.join(" ")
}

/// `created_by` for `COPY`/`ADD`: `keyword` is `"COPY"` or `"ADD"`,
/// `source` is Docker's source description such as `file:<sha256 hex>` or
/// `dir:<sha256 hex>` (or `multi:<sha256 hex>` for several sources).
pub fn copy(shell: &[String], keyword: &str, source: &str, dest: &str) -> String {
    format!("{} #(nop) {keyword} {source} in {dest} ", shell.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::instructions::{HealthcheckCmd, KeyValue};

    fn sh() -> Vec<String> {
        default_shell()
    }

    #[test]
    fn nop_forms_match_docker_history() {
        let cmd = Command::Cmd(CommandLine::Exec(vec!["sh".into()]));
        assert_eq!(
            nop(&sh(), &cmd).unwrap(),
            r#"/bin/sh -c #(nop)  CMD ["sh"]"#
        );
        let cmd = Command::Cmd(CommandLine::Shell("echo \"hi\"".into()));
        assert_eq!(
            nop(&sh(), &cmd).unwrap(),
            r#"/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo \"hi\""]"#
        );
        let wd = Command::Workdir("/app".into());
        assert_eq!(nop(&sh(), &wd).unwrap(), "/bin/sh -c #(nop) WORKDIR /app");
        let env = Command::Env(vec![KeyValue {
            key: "A".into(),
            value: "b c".into(),
        }]);
        assert_eq!(nop(&sh(), &env).unwrap(), "/bin/sh -c #(nop)  ENV A=b c");
        let vol = Command::Volume(vec!["/data".into(), "/logs".into()]);
        assert_eq!(
            nop(&sh(), &vol).unwrap(),
            "/bin/sh -c #(nop)  VOLUME [/data /logs]"
        );
        assert_eq!(
            nop(&sh(), &Command::Run(CommandLine::Shell("x".into()))),
            None
        );
    }

    #[test]
    fn healthcheck_reads_like_go() {
        let h = Command::Healthcheck(Healthcheck::Check(HealthcheckCmd {
            test: CommandLine::Shell("curl -f http://localhost/ || exit 1".into()),
            interval: Some(Duration::from_secs(300)),
            timeout: Some(Duration::from_secs(3)),
            start_period: None,
            start_interval: None,
            retries: Some(3),
        }));
        assert_eq!(
            nop(&sh(), &h).unwrap(),
            r#"/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "5m0s" "3s" "0s" "0s" '\x03'}"#
        );
    }

    #[test]
    fn run_and_copy_forms() {
        let cmd = CommandLine::Shell("apk add curl".into());
        assert_eq!(run(&sh(), &cmd, &[]), "/bin/sh -c apk add curl");
        let args = [
            ("B".to_string(), "2".to_string()),
            ("A".to_string(), "1".to_string()),
        ];
        assert_eq!(
            run(&sh(), &cmd, &args),
            "|2 A=1 B=2 /bin/sh -c apk add curl"
        );
        let exec = CommandLine::Exec(vec!["echo".into(), "hi".into()]);
        assert_eq!(run(&sh(), &exec, &[]), "echo hi");
        assert_eq!(
            copy(&sh(), "COPY", "file:abc", "/app"),
            "/bin/sh -c #(nop) COPY file:abc in /app "
        );
    }
}
