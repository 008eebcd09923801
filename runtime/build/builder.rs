//! [`Builder`]: runs a parsed Dockerfile as Docker's classic builder does,
//! one image per step, printing the same progress lines.
//!
//! Every step makes an image on the previous one (its `Parent`): a layer
//! for `RUN`, `COPY`, `ADD` and a new `WORKDIR`, a config change for the
//! rest, with a history entry worded as Docker words it. A step's cache key
//! is its parent image, its instruction as history records it and, for
//! `COPY`/`ADD`, a digest of the sources; a step whose key the scope has
//! seen reuses that image (` ---> Using cache`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::context::BuildContext;
use super::expand::{GlobalArgs, Scope, BUILTIN_ARGS};
use super::failure::Failure;
use super::image_config::{self, StageFlags};
use super::instructions::{AddSource, Command, Instruction, KeyValue};
use super::{parse_dockerfile, Dockerfile};
use crate::container::Runtime;
use crate::image::Reference;

#[path = "steps.rs"]
mod steps;

/// What the client asked for, besides the context.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The scope whose images the build uses and makes.
    pub scope: String,
    /// `-t` references, in order.
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--label` values, added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--target`: the stage to stop after.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--network` and `--add-host`: how `RUN` steps are networked (the
    /// engine has checked the network is the scope's own).
    pub networking: crate::net::ContainerNetworking,
    /// `--cache-from`: when set, the only images a step may be reused from
    /// (those named and the images they were built on), as in dockerd.
    pub cache_from: Option<std::collections::HashSet<String>>,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The final image's ID (`sha256:…`).
    pub id: String,
    /// The tags given to it, familiar form.
    pub tags: Vec<String>,
}

/// Runs builds over a runtime.
pub struct Builder<'a> {
    runtime: &'a Arc<Runtime>,
    options: &'a BuildOptions,
    context: &'a BuildContext,
    file: &'a Dockerfile,
    out: &'a mut dyn FnMut(String),
    globals: GlobalArgs,
    /// Images this build made (not reused from the cache), in order.
    made: Vec<String>,
    /// The final image of each finished stage.
    stage_results: Vec<String>,
    /// ARG names the Dockerfile declared (for the unused-args warning).
    declared: BTreeSet<String>,
    /// Whether the client gave up (checked before each step).
    cancelled: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// One stage's build state.
struct StageState {
    image: String,
    raw: Value,
    flags: StageFlags,
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..12.min(hex.len())]
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Parses a Dockerfile, naming the line on errors.
pub fn parse(text: &str) -> Result<Dockerfile, Failure> {
    Ok(parse_dockerfile(text)?)
}

impl<'a> Builder<'a> {
    /// A builder for one build; `out` receives progress text.
    pub fn new(
        runtime: &'a Arc<Runtime>,
        options: &'a BuildOptions,
        context: &'a BuildContext,
        file: &'a Dockerfile,
        out: &'a mut dyn FnMut(String),
    ) -> Result<Self, Failure> {
        let globals = GlobalArgs::resolve(
            &file.global_args,
            &options.build_args,
            file.directives.escape,
        )?;
        Ok(Builder {
            runtime,
            options,
            context,
            file,
            out,
            globals,
            made: Vec::new(),
            stage_results: Vec::new(),
            declared: BTreeSet::new(),
            cancelled: None,
        })
    }

    /// Stops the build before the next step once `cancelled` says so (the
    /// client went away); what the build made so far is removed.
    pub fn cancel_when(mut self, cancelled: &'a (dyn Fn() -> bool + Sync)) -> Self {
        self.cancelled = Some(cancelled);
        self
    }

    fn check_cancelled(&self) -> Result<(), Failure> {
        match self.cancelled {
            Some(f) if f() => Err(Failure::new("build cancelled: the client went away")),
            _ => Ok(()),
        }
    }

    /// Runs the build. On failure the images this build made are removed
    /// again (a failed build leaves nothing).
    pub fn build(mut self) -> Result<Built, Failure> {
        match self.build_stages() {
            Ok(built) => Ok(built),
            Err(e) => {
                let _ = self
                    .runtime
                    .images()
                    .discard_steps(&self.options.scope, &self.made);
                Err(e)
            }
        }
    }

    fn say(&mut self, text: impl Into<String>) {
        (self.out)(text.into());
    }

    /// The stages to build: up to and including `--target`.
    fn last_stage(&self) -> Result<usize, Failure> {
        match &self.options.target {
            None => Ok(self.file.stages.len() - 1),
            Some(t) => self.file.stage_named(t).map(|s| s.index).ok_or_else(|| {
                Failure::bad_request(format!("failed to reach build target {t} in Dockerfile"))
            }),
        }
    }

    fn build_stages(&mut self) -> Result<Built, Failure> {
        let last = self.last_stage()?;
        let label_steps = self.label_instructions();
        let total: usize = self.file.global_args.len()
            + self.file.stages[..=last]
                .iter()
                .map(|s| 1 + s.instructions.len())
                .sum::<usize>()
            + label_steps.len();
        let mut step = 0;
        // Global ARGs are steps of their own that make no image (Docker).
        for arg in &self.file.global_args {
            step += 1;
            self.say(format!("Step {step}/{total} : {}\n", arg.original));
            if let Command::Arg(a) = &arg.command {
                self.declared.insert(a.name.clone());
            }
        }
        let mut final_state = None;
        for index in 0..=last {
            let stage = &self.file.stages[index];
            step += 1;
            self.say(format!("Step {step}/{total} : {}\n", stage.from.original));
            let (mut state, env) = self.from(index)?;
            let escape = self.file.directives.escape;
            let build_args = &self.options.build_args;
            let globals = self.globals.clone();
            let mut scope = Scope::new(escape, build_args, &globals, env);
            state = self.onbuild_triggers(index, state, &mut scope)?;
            let mut instructions: Vec<&Instruction> = stage.instructions.iter().collect();
            if index == last {
                instructions.extend(label_steps.iter());
            }
            for instruction in instructions {
                self.check_cancelled()?;
                step += 1;
                self.say(format!("Step {step}/{total} : {}\n", instruction.original));
                state = self.dispatch(index, state, &mut scope, instruction)?;
            }
            self.stage_results.push(state.image.clone());
            final_state = Some(state);
        }
        let state = final_state.expect("at least one stage");
        self.warn_unused_args();
        Ok(Built {
            id: state.image,
            tags: self.options.tags.clone(),
        })
    }

    /// `--label`s as the LABEL instructions Docker appends to the last
    /// stage: one step per label, sorted by key, echoed as `LABEL key=value`
    /// (the classic builder's `NewLabelCommand`; Compose's build shows it).
    fn label_instructions(&self) -> Vec<Instruction> {
        self.options
            .labels
            .iter()
            .map(|(k, v)| Instruction {
                line: 0,
                original: format!("LABEL {k}={v}"),
                // Values are literal: quote them so expansion leaves them alone.
                command: Command::Label(vec![KeyValue {
                    key: k.clone(),
                    value: format!("'{}'", v.replace('\'', "'\\''")),
                }]),
            })
            .collect()
    }

    fn warn_unused_args(&mut self) {
        let unused: Vec<&String> = self
            .options
            .build_args
            .keys()
            .filter(|k| !self.declared.contains(*k) && !BUILTIN_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let list = unused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            self.say(format!(
                "[Warning] One or more build-args [{list}] were not consumed\n"
            ));
        }
    }

    /// `FROM`: an earlier stage, `scratch`, or an image of the scope.
    fn from(&mut self, index: usize) -> Result<(StageState, Vec<(String, String)>), Failure> {
        let stage = &self.file.stages[index];
        let Command::From(from) = &stage.from.command else {
            unreachable!("a stage starts with FROM");
        };
        let from = self
            .globals
            .expand_from(from, stage.from.line, self.file.directives.escape)?;
        let lower = from.image.to_ascii_lowercase();
        let earlier = self.file.stages[..index]
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
            .map(|s| self.stage_results[s.index].clone());
        let images = self.runtime.images();
        let scope = &self.options.scope;
        let (image, raw) = if let Some(id) = earlier {
            let raw = images.image(&id)?.raw;
            (id, raw)
        } else if lower == "scratch" {
            let raw = json!({
                "architecture": host_arch(),
                "os": "linux",
                "config": {"Env": [format!("PATH={}", image_config::DEFAULT_PATH)]},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            });
            let id = images.put_config(&raw)?;
            images.adopt_step(scope, &id, None, None)?;
            (id, raw)
        } else {
            let image = images.resolve(scope, &from.image).map_err(|e| {
                Failure::new(match e {
                    crate::image::ImageError::NotFound(_) => format!(
                        "pull access denied for {}, repository does not exist or may require 'docker login': no such image in this engine",
                        from.image
                    ),
                    other => other.to_string(),
                })
            })?;
            (image.id, image.raw)
        };
        let has_triggers = raw
            .pointer("/config/OnBuild")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if lower == "scratch" {
            self.say(" ---> \n");
        } else if !has_triggers {
            // With triggers, Docker's next line is "# Executing …".
            self.say(format!(" ---> {}\n", short(&image)));
        }
        let env = image_config::env_pairs(&raw["config"]);
        Ok((
            StageState {
                image,
                raw,
                flags: StageFlags::default(),
            },
            env,
        ))
    }

    /// Runs the base image's `ONBUILD` triggers, as Docker does right
    /// after `FROM`; the stage's image no longer carries them.
    fn onbuild_triggers(
        &mut self,
        index: usize,
        mut state: StageState,
        scope: &mut Scope,
    ) -> Result<StageState, Failure> {
        let triggers: Vec<String> = state.raw["config"]
            .get("OnBuild")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(state);
        }
        let plural = if triggers.len() == 1 { "" } else { "s" };
        self.say(format!(
            "# Executing {} build trigger{plural}\n",
            triggers.len()
        ));
        state.raw["config"]["OnBuild"] = Value::Null;
        for trigger in triggers {
            let parsed = parse_dockerfile(&format!("FROM scratch\n{trigger}\n")).map_err(|e| {
                Failure::new(format!("failed to parse ONBUILD trigger {trigger:?}: {e}"))
            })?;
            for instruction in &parsed.stages[0].instructions {
                state = self.dispatch(index, state, scope, instruction)?;
            }
        }
        Ok(state)
    }

    /// One instruction.
    fn dispatch(
        &mut self,
        index: usize,
        state: StageState,
        scope: &mut Scope,
        instruction: &Instruction,
    ) -> Result<StageState, Failure> {
        let command = scope.apply(instruction)?;
        let shell = image_config::shell(&state.raw["config"]);
        match &command {
            Command::Run(cmd) => self.run(state, scope, &shell, cmd),
            Command::Copy(c) => {
                let from = match &c.from {
                    Some(f) => Some(self.file.resolve_copy_from(index, f, instruction.line)?),
                    None => None,
                };
                let sources: Vec<String> = c.sources.clone();
                self.copy(
                    state,
                    &shell,
                    "COPY",
                    &sources,
                    &c.dest,
                    from,
                    c.chown.as_deref(),
                    c.chmod.as_deref(),
                )
            }
            Command::Add(a) => {
                if let Some(url) = a.sources.iter().find(|s| matches!(s, AddSource::Url(_))) {
                    return Err(Failure::new(format!(
                        "ADD failed: cannot download {}: Berth builds offline; put the file in the build context and COPY it",
                        url.as_str()
                    )));
                }
                let sources: Vec<String> =
                    a.sources.iter().map(|s| s.as_str().to_string()).collect();
                self.copy(
                    state,
                    &shell,
                    "ADD",
                    &sources,
                    &a.dest,
                    None,
                    a.chown.as_deref(),
                    a.chmod.as_deref(),
                )
            }
            Command::Workdir(dir) => self.workdir(state, &shell, &command, dir),
            Command::Arg(a) => {
                self.declared.insert(a.name.clone());
                self.config_step(state, scope, &shell, &command)
            }
            _ => self.config_step(state, scope, &shell, &command),
        }
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Checks `-t` values before anything runs; returns their familiar forms.
pub fn check_tags(tags: &[String]) -> Result<Vec<String>, Failure> {
    tags.iter()
        .map(|t| {
            Reference::parse(t)
                .map(|r| r.familiar())
                .map_err(|e| Failure::bad_request(e.to_string()))
        })
        .collect()
}
