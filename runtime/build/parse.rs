//! Stage three: a syntax-tree [`Node`] → a typed [`Instruction`], with
//! Docker's checks and error wording.

use super::ast::{parse_json_array, parse_words, split_command, split_whitespace, Node};
use super::duration::parse_go_duration;
use super::error::{BuildError, BuildResult};
use super::flags::Flags;
use super::instructions::{
    Add, AddSource, Arg, Command, CommandLine, Copy, From, Healthcheck, HealthcheckCmd,
    Instruction, KeyValue, KEYWORDS,
};

/// Parses one node. `escape` is the file's escape character.
pub fn parse_node(node: &Node, escape: char) -> BuildResult<Instruction> {
    let line = node.start_line;
    let command = parse_command(&node.keyword, &node.flags, &node.args, escape, line)
        .map_err(|message| BuildError::parse(line, message))?;
    Ok(Instruction {
        line,
        original: node.original.clone(),
        command,
    })
}

/// Docker's wording for a missing argument.
fn at_least_one(keyword: &str) -> String {
    format!("{keyword} requires at least one argument")
}

/// Docker's wording for COPY/ADD without a destination.
fn no_destination(keyword: &str) -> String {
    format!(
        "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined."
    )
}

/// The words of an instruction whose arguments are a JSON array or a
/// whitespace-separated list (COPY, ADD, VOLUME).
fn json_or_words(args: &str, line: usize) -> Result<Vec<String>, String> {
    match parse_json_array(args, line).map_err(|e| message_of(&e))? {
        Some(list) => Ok(list),
        None => Ok(split_whitespace(args)),
    }
}

/// Shell or exec form (RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD).
fn command_line(args: &str, line: usize) -> Result<CommandLine, String> {
    match parse_json_array(args, line).map_err(|e| message_of(&e))? {
        Some(list) => Ok(CommandLine::Exec(list)),
        None => Ok(CommandLine::Shell(args.to_string())),
    }
}

/// The message of an error without its line prefix.
fn message_of(e: &BuildError) -> String {
    match e {
        BuildError::Parse { message, .. } | BuildError::Expand { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `ENV`/`LABEL` arguments: `k v` (old form) or `k=v k2="v 2"`.
fn key_values(keyword: &str, args: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = parse_words(args, escape);
    let Some(first) = words.first() else {
        return Err(at_least_one(keyword));
    };
    let pairs = if !first.contains('=') {
        let mut parts = args.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(str::trim_start).unwrap_or_default();
        if value.is_empty() {
            return Err(format!("{keyword} must have two arguments"));
        }
        vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]
    } else {
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some((k, v)) => Ok(KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                }),
                None => Err(format!(
                    "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if pairs.iter().any(|kv| kv.key.is_empty()) {
        return Err(format!("{keyword} names can not be blank"));
    }
    Ok(pairs)
}

/// Whether a stage name is valid: `^[a-z][a-z0-9-_.]*$` after lower-casing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Whether a `--chmod` value is an octal mode Docker accepts.
fn valid_chmod(mode: &str) -> bool {
    !mode.is_empty() && mode.len() <= 4 && mode.chars().all(|c| ('0'..='7').contains(&c))
}

/// The typed command for one keyword.
fn parse_command(
    keyword: &str,
    flag_words: &[String],
    args: &str,
    escape: char,
    line: usize,
) -> Result<Command, String> {
    let upper = keyword.to_ascii_uppercase();
    let allowed: &'static [&'static str] = match keyword {
        "from" => &["platform"],
        "copy" => &["from", "chown", "chmod"],
        "add" => &["chown", "chmod"],
        "healthcheck" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    };
    // An unknown keyword is reported before its flags are looked at.
    if !KEYWORDS.contains(&keyword) {
        return Err(format!("unknown instruction: {upper}"));
    }
    let flags = Flags::parse(flag_words, allowed).map_err(|e| {
        // RUN --mount/--network/--security are BuildKit features; say so.
        if keyword == "run" && e.starts_with("unknown flag") {
            format!("{e} (RUN flags need BuildKit; Berth builds like Docker's classic builder)")
        } else {
            e
        }
    })?;
    let needs_args = !matches!(keyword, "healthcheck" | "onbuild");
    if needs_args && args.is_empty() {
        return Err(match keyword {
            "arg" | "workdir" | "user" | "stopsignal" | "maintainer" => {
                format!("{upper} requires exactly one argument")
            }
            "copy" | "add" => no_destination(&upper),
            _ => at_least_one(&upper),
        });
    }
    if matches!(keyword, "run" | "copy" | "add") && super::ast::has_heredoc(args) {
        return Err(format!(
            "heredocs (<<) in {upper} are not supported by Berth's builder; \
             put the script in a file and COPY it, or use a shell one-liner"
        ));
    }
    let command = match keyword {
        "from" => {
            let words = split_whitespace(args);
            let name = match words.as_slice() {
                [_] => None,
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    let lower = name.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(format!(
                            "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                        ));
                    }
                    Some(lower)
                }
                _ => return Err("FROM requires either one or three arguments".to_string()),
            };
            Command::From(From {
                image: words[0].clone(),
                name,
                platform: flags.get("platform"),
            })
        }
        "run" => Command::Run(command_line(args, line)?),
        "cmd" => Command::Cmd(command_line(args, line)?),
        "entrypoint" => Command::Entrypoint(command_line(args, line)?),
        "copy" | "add" => {
            let mut words = json_or_words(args, line)?;
            if words.len() < 2 {
                return Err(no_destination(&upper));
            }
            let dest = words.pop().unwrap_or_default();
            let chmod = flags.get("chmod");
            if let Some(mode) = &chmod {
                if !mode.contains('$') && !valid_chmod(mode) {
                    return Err(format!("invalid chmod parameter: {mode}"));
                }
            }
            if keyword == "copy" {
                Command::Copy(Copy {
                    sources: words,
                    dest,
                    from: flags.get("from"),
                    chown: flags.get("chown"),
                    chmod,
                })
            } else {
                Command::Add(Add {
                    sources: words.iter().map(|w| AddSource::classify(w)).collect(),
                    dest,
                    chown: flags.get("chown"),
                    chmod,
                })
            }
        }
        "env" | "label" => {
            let pairs = key_values(&upper, args, escape)?;
            if keyword == "env" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            }
        }
        "arg" => {
            let words = parse_words(args, escape);
            let [word] = words.as_slice() else {
                return Err("ARG requires exactly one argument".to_string());
            };
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (word.clone(), None),
            };
            if name.is_empty() {
                return Err("ARG names can not be blank".to_string());
            }
            Command::Arg(Arg { name, default })
        }
        "workdir" => Command::Workdir(args.to_string()),
        "user" => Command::User(args.to_string()),
        "stopsignal" => Command::Stopsignal(args.to_string()),
        "maintainer" => Command::Maintainer(args.to_string()),
        "expose" => {
            let ports = split_whitespace(args);
            for port in ports.iter().filter(|p| !p.contains('$')) {
                super::shell::parse_port(port).map_err(|e| e.to_string())?;
            }
            Command::Expose(ports)
        }
        "volume" => {
            let volumes = json_or_words(args, line)?;
            if volumes.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".to_string());
            }
            Command::Volume(volumes)
        }
        "shell" => match parse_json_array(args, line).map_err(|e| message_of(&e))? {
            Some(list) if list.is_empty() => return Err(at_least_one("SHELL")),
            Some(list) => Command::Shell(list),
            None => return Err("SHELL requires the arguments to be in JSON form".to_string()),
        },
        "healthcheck" => Command::Healthcheck(healthcheck(&flags, args, line)?),
        _ => onbuild(args, escape, line)?,
    };
    Ok(command)
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD …`.
fn healthcheck(flags: &Flags, args: &str, line: usize) -> Result<Healthcheck, String> {
    let (kind, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], args[i..].trim_start()),
        None => (args, ""),
    };
    if kind.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if rest.is_empty() => Ok(Healthcheck::None),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".to_string()),
        "CMD" => {
            if rest.is_empty() || rest == "[]" {
                return Err("Missing command after HEALTHCHECK CMD".to_string());
            }
            let interval = |name: &str| -> Result<Option<std::time::Duration>, String> {
                let Some(text) = flags.get(name) else {
                    return Ok(None);
                };
                let d = parse_go_duration(&text).map_err(|e| e.to_string())?;
                if !d.is_zero() && d < std::time::Duration::from_millis(1) {
                    return Err(format!("Interval {name:?} cannot be less than 1ms"));
                }
                Ok(Some(d))
            };
            let retries = match flags.get("retries") {
                None => None,
                Some(text) => {
                    let n: i64 = text.parse().map_err(|_| {
                        format!("strconv.ParseInt: parsing {text:?}: invalid syntax")
                    })?;
                    if n < 0 {
                        return Err(format!("--retries cannot be negative ({n})"));
                    }
                    Some(u32::try_from(n).map_err(|_| format!("--retries out of range ({n})"))?)
                }
            };
            Ok(Healthcheck::Check(HealthcheckCmd {
                test: command_line(rest, line)?,
                interval: interval("interval")?,
                timeout: interval("timeout")?,
                start_period: interval("start-period")?,
                start_interval: interval("start-interval")?,
                retries,
            }))
        }
        _ => Err(format!(
            "Unknown type {:?} in HEALTHCHECK (try CMD)",
            kind.to_ascii_uppercase()
        )),
    }
}

/// `ONBUILD INSTRUCTION …`: the trigger is parsed now to report errors early.
fn onbuild(args: &str, escape: char, line: usize) -> Result<Command, String> {
    if args.is_empty() {
        return Err(at_least_one("ONBUILD"));
    }
    let (keyword, flags, rest) = split_command(args);
    match keyword.as_str() {
        "onbuild" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()),
        "from" | "maintainer" => {
            return Err(format!(
                "{} isn't allowed as an ONBUILD trigger",
                keyword.to_ascii_uppercase()
            ))
        }
        _ => {}
    }
    let trigger = parse_command(&keyword, &flags, &rest, escape, line)?;
    Ok(Command::Onbuild {
        expression: args.to_string(),
        trigger: Box::new(trigger),
    })
}
