//! Variable scoping and expansion, driven by the builder one instruction at
//! a time.
//!
//! Docker's rules, which [`Scope`] follows:
//! - `ARG`s before the first `FROM` are *global*: usable in `FROM` lines only
//!   ([`GlobalArgs`]). A stage sees one only after re-declaring `ARG NAME`
//!   (which then takes the global value unless `--build-arg` overrides it).
//! - `--build-arg NAME=v` overrides an `ARG`'s default but only for `ARG`s
//!   the Dockerfile declares.
//! - `ENV` always wins over an `ARG` of the same name, whichever comes first.
//! - Only ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR (and
//!   ARG defaults) are expanded; RUN, CMD, ENTRYPOINT are left to the shell,
//!   ONBUILD triggers are expanded when they fire in a child build.

use std::collections::BTreeMap;

use super::error::{BuildError, BuildResult};
use super::instructions::{Add, AddSource, Arg, Command, Copy, From, Instruction, KeyValue};
use super::shell::{expand_word, parse_port};

/// Proxy variables Docker lets through as build args without an `ARG` line
/// (and leaves out of the image history).
pub const BUILTIN_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The global (before the first `FROM`) ARG values, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalArgs {
    values: BTreeMap<String, Option<String>>,
}

impl GlobalArgs {
    /// Resolves the global ARGs in order: a `--build-arg` wins over the
    /// default, and a default may use earlier global ARGs.
    pub fn resolve(
        meta_args: &[Instruction],
        build_args: &BTreeMap<String, String>,
        escape: char,
    ) -> BuildResult<GlobalArgs> {
        let mut globals = GlobalArgs::default();
        for instruction in meta_args {
            let Command::Arg(arg) = &instruction.command else {
                continue;
            };
            let value = match (build_args.get(&arg.name), &arg.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(expand(default, escape, instruction.line, &|n| {
                    globals.get(n).map(str::to_string)
                })?),
                (None, None) => None,
            };
            globals.values.insert(arg.name.clone(), value);
        }
        Ok(globals)
    }

    /// A global ARG's value (`None` if undeclared or declared without a value).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.as_deref())
    }

    /// Expands a `FROM` line's image and platform with the global ARGs.
    pub fn expand_from(&self, from: &From, line: usize, escape: char) -> BuildResult<From> {
        let lookup = |n: &str| self.get(n).map(str::to_string);
        let image = expand(&from.image, escape, line, &lookup)?;
        if image.is_empty() {
            return Err(BuildError::Expand {
                line,
                message: format!("base name ({}) should not be blank", from.image),
            });
        }
        Ok(From {
            image,
            name: from.name.clone(),
            // `--platform=$BUILDPLATFORM` with no such ARG expands to nothing:
            // treat it as not given.
            platform: match &from.platform {
                Some(p) => Some(expand(p, escape, line, &lookup)?).filter(|p| !p.is_empty()),
                None => None,
            },
        })
    }
}

/// Expands one word, attaching the line to errors.
fn expand(
    word: &str,
    escape: char,
    line: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> BuildResult<String> {
    expand_word(word, escape, lookup).map_err(|message| BuildError::Expand { line, message })
}

/// The variables of one stage while it is being built.
#[derive(Debug, Clone)]
pub struct Scope<'a> {
    escape: char,
    build_args: &'a BTreeMap<String, String>,
    globals: &'a GlobalArgs,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// The image config's environment, in order (base image, then ENV lines).
    env: Vec<(String, String)>,
}

impl<'a> Scope<'a> {
    /// A scope for a stage whose base image has environment `image_env`.
    pub fn new(
        escape: char,
        build_args: &'a BTreeMap<String, String>,
        globals: &'a GlobalArgs,
        image_env: Vec<(String, String)>,
    ) -> Self {
        Scope {
            escape,
            build_args,
            globals,
            args: BTreeMap::new(),
            env: image_env,
        }
    }

    /// A variable's value for expansion: ENV first, then declared ARGs.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.args.get(name).cloned().flatten()
    }

    /// The environment the image config will hold.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Build args in effect for `RUN` (declared ARGs with a value, not shadowed
    /// by ENV, plus given proxy args), sorted by name.
    pub fn run_args(&self) -> Vec<(String, String)> {
        let shadowed = |k: &str| self.env.iter().any(|(e, _)| e == k);
        let mut out: Vec<(String, String)> = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .chain(BUILTIN_ARGS.iter().filter_map(|k| {
                let v = self.build_args.get(*k)?;
                (!self.args.contains_key(*k)).then(|| (k.to_string(), v.clone()))
            }))
            .filter(|(k, _)| !shadowed(k))
            .collect();
        out.sort();
        out
    }

    /// The build args `RUN`'s history line shows: [`Scope::run_args`]
    /// without the proxy args nobody declared (they may hold credentials).
    pub fn history_args(&self) -> Vec<(String, String)> {
        self.run_args()
            .into_iter()
            .filter(|(k, _)| self.args.contains_key(k) || !BUILTIN_ARGS.contains(&k.as_str()))
            .collect()
    }

    /// Expands one word in this scope.
    pub fn expand(&self, word: &str, line: usize) -> BuildResult<String> {
        expand(word, self.escape, line, &|n| self.lookup(n))
    }

    fn expand_all(&self, words: &[String], line: usize) -> BuildResult<Vec<String>> {
        words.iter().map(|w| self.expand(w, line)).collect()
    }

    fn expand_opt(&self, word: &Option<String>, line: usize) -> BuildResult<Option<String>> {
        word.as_ref().map(|w| self.expand(w, line)).transpose()
    }

    fn expand_pairs(&self, pairs: &[KeyValue], line: usize) -> BuildResult<Vec<KeyValue>> {
        pairs
            .iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.expand(&kv.key, line)?,
                    value: self.expand(&kv.value, line)?,
                })
            })
            .collect()
    }

    /// Expands `instruction` in the current scope, then records its effect
    /// on the scope (`ARG` declares, `ENV` sets). Returns the expanded
    /// command; instructions Docker does not expand come back unchanged.
    pub fn apply(&mut self, instruction: &Instruction) -> BuildResult<Command> {
        let line = instruction.line;
        let command = match &instruction.command {
            Command::Copy(c) => Command::Copy(Copy {
                sources: self.expand_all(&c.sources, line)?,
                dest: self.expand(&c.dest, line)?,
                from: self.expand_opt(&c.from, line)?,
                chown: self.expand_opt(&c.chown, line)?,
                chmod: self.expand_opt(&c.chmod, line)?,
            }),
            Command::Add(a) => Command::Add(Add {
                sources: a
                    .sources
                    .iter()
                    .map(|s| Ok(AddSource::classify(&self.expand(s.as_str(), line)?)))
                    .collect::<BuildResult<_>>()?,
                dest: self.expand(&a.dest, line)?,
                chown: self.expand_opt(&a.chown, line)?,
                chmod: self.expand_opt(&a.chmod, line)?,
            }),
            Command::Env(pairs) => {
                // Every pair sees the scope from before this line: in
                // `ENV abc=bye def=$abc`, `def` gets the old `abc` (Docker).
                let pairs = self.expand_pairs(pairs, line)?;
                for kv in &pairs {
                    match self.env.iter_mut().find(|(k, _)| *k == kv.key) {
                        Some(slot) => slot.1 = kv.value.clone(),
                        None => self.env.push((kv.key.clone(), kv.value.clone())),
                    }
                }
                Command::Env(pairs)
            }
            Command::Label(pairs) => Command::Label(self.expand_pairs(pairs, line)?),
            Command::Expose(ports) => {
                // Docker splits EXPOSE words after expansion: `ARG P="80 443"`
                // then `EXPOSE $P` exposes two ports.
                let ports: Vec<String> = self
                    .expand_all(ports, line)?
                    .iter()
                    .flat_map(|p| p.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                    .collect();
                for port in &ports {
                    parse_port(port).map_err(|e| BuildError::parse(line, e.to_string()))?;
                }
                Command::Expose(ports)
            }
            Command::Volume(v) => Command::Volume(self.expand_all(v, line)?),
            Command::Workdir(w) => Command::Workdir(self.expand(w, line)?),
            Command::User(u) => Command::User(self.expand(u, line)?),
            Command::Stopsignal(s) => Command::Stopsignal(self.expand(s, line)?),
            Command::Arg(arg) => {
                let default = self.expand_opt(&arg.default, line)?;
                let value = match (self.build_args.get(&arg.name), &default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(d.clone()),
                    (None, None) => self.globals.get(&arg.name).map(str::to_string),
                };
                self.args.insert(arg.name.clone(), value);
                // The Dockerfile's own default (expanded), as history records it;
                // the value in effect is available from `lookup`.
                Command::Arg(Arg {
                    name: arg.name.clone(),
                    default,
                })
            }
            other => other.clone(),
        };
        Ok(command)
    }
}
