//! Dockerfiles: parsing, variable scoping, `.dockerignore`, history text.
//!
//! # Layout (one stage per file, as Docker's own parser is staged)
//! - [`lines`]: text → parser directives and logical lines (continuations).
//! - [`ast`]: a logical line → a [`Node`] (keyword, flags, raw args).
//! - [`parse`]: a node → a typed [`Instruction`] with Docker's checks.
//! - [`instructions`]: the typed instructions the builder executes.
//! - [`shell`] and [`expand`]: `$VAR` expansion and ARG/ENV scoping, applied
//!   by the builder instruction by instruction ([`Scope::apply`]).
//! - [`created_by`]: the `created_by` history text of Docker's classic builder.
//! - [`dockerignore`]: `.dockerignore` patterns.
//! - [`duration`]: Go-style durations for HEALTHCHECK.
//!
//! The builder (Docker's classic builder, step by step):
//! - [`context`]: the request body unpacked, `.dockerignore` applied.
//! - [`builder`]: stages and instructions, progress lines; its `steps`
//!   module makes each step's image (cache probe, commit, RUN, COPY/ADD).
//! - [`run`]: `RUN` as a real container, its writable layer committed.
//! - [`copy`]: `COPY`/`ADD` into a new layer with Docker's path rules.
//! - [`rootfs`]: an image's files read through its layers.
//! - [`image_config`]: what config-only instructions do to the config.
//! - [`failure`]: why a build stopped, as the client prints it.
//!
//! Parsing never expands variables: values depend on `--build-arg`s and on
//! the base image's ENV, which only the builder knows.

pub mod ast;
pub mod builder;
pub mod context;
pub mod copy;
pub mod created_by;
pub mod dockerignore;
pub mod duration;
pub mod error;
pub mod expand;
pub mod failure;
mod flags;
pub mod image_config;
pub mod instructions;
pub mod lines;
pub mod parse;
pub mod rootfs;
pub mod run;
#[cfg(test)]
mod scope_tests;
pub mod shell;
#[cfg(test)]
mod tests;

pub use ast::Node;
pub use builder::{BuildOptions, Builder, Built};
pub use context::BuildContext;
pub use dockerignore::{parse_dockerignore, Ignore};
pub use error::{BuildError, BuildResult, DurationError};
pub use expand::{GlobalArgs, Scope};
pub use failure::Failure;
pub use instructions::{Command, CommandLine, Instruction};
pub use lines::Directives;

/// A parsed Dockerfile: directives, global ARGs and stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The parser directives at the top of the file.
    pub directives: Directives,
    /// `ARG` instructions before the first `FROM` (global scope).
    pub global_args: Vec<Instruction>,
    /// The build stages in order; the last one is the default target.
    pub stages: Vec<Stage>,
    /// Things Docker warns about but accepts (empty continuation lines).
    pub warnings: Vec<Warning>,
}

/// A problem Docker accepts with a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// First line of the instruction concerned.
    pub line: usize,
    /// Docker's wording.
    pub message: String,
}

/// One `FROM` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in the file, 0-based (what `COPY --from=0` names).
    pub index: usize,
    /// The `FROM` line (its `command` is always [`Command::From`]).
    pub from: Instruction,
    /// The stage's instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The `AS name` of the stage, lower-cased.
    pub fn name(&self) -> Option<&str> {
        match &self.from.command {
            Command::From(f) => f.name.as_deref(),
            _ => None,
        }
    }
}

/// What an (expanded) `COPY --from` value refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
}

impl Dockerfile {
    /// Resolves an expanded `--from` value seen in stage `current`: a stage
    /// name or index must refer to an earlier stage; anything else is an image.
    pub fn resolve_copy_from(
        &self,
        current: usize,
        from: &str,
        line: usize,
    ) -> BuildResult<CopyFrom> {
        if let Ok(index) = from.parse::<usize>() {
            if index >= current {
                return Err(BuildError::parse(
                    line,
                    format!(
                        "invalid from flag value {from}: refers to current or future build stage"
                    ),
                ));
            }
            return Ok(CopyFrom::Stage(index));
        }
        let lower = from.to_ascii_lowercase();
        match self
            .stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
        {
            Some(stage) if stage.index < current => Ok(CopyFrom::Stage(stage.index)),
            Some(_) => Err(BuildError::parse(
                line,
                format!("invalid from flag value {from}: refers to current or future build stage"),
            )),
            None => Ok(CopyFrom::Image(from.to_string())),
        }
    }

    /// The stage named `target` (case-insensitive), for `--target`.
    pub fn stage_named(&self, target: &str) -> Option<&Stage> {
        let lower = target.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
    }
}

/// Parses a Dockerfile into directives, global ARGs and stages.
pub fn parse_dockerfile(text: &str) -> BuildResult<Dockerfile> {
    let (directives, lines) = lines::split_lines(text)?;
    let mut file = Dockerfile {
        directives,
        global_args: Vec::new(),
        stages: Vec::new(),
        warnings: Vec::new(),
    };
    if lines.is_empty() {
        return Err(BuildError::NoInstructions);
    }
    for line in &lines {
        if line.empty_continuation {
            file.warnings.push(Warning {
                line: line.start_line,
                message: format!(
                    "Empty continuation line found in: {}; empty continuation lines will become errors in a future release",
                    line.text.trim()
                ),
            });
        }
        let node = Node::from_line(line);
        let instruction = parse::parse_node(&node, file.directives.escape)?;
        match (&instruction.command, file.stages.last_mut()) {
            (Command::From(_), _) => file.stages.push(Stage {
                index: file.stages.len(),
                from: instruction,
                instructions: Vec::new(),
            }),
            (Command::Arg(_), None) => file.global_args.push(instruction),
            (_, None) => {
                return Err(BuildError::NoBuildStage {
                    line: instruction.line,
                })
            }
            (_, Some(stage)) => stage.instructions.push(instruction),
        }
    }
    if file.stages.is_empty() {
        return Err(BuildError::NoStages);
    }
    if let Some(dup) = duplicate_stage_name(&file.stages) {
        return Err(BuildError::parse(
            dup.from.line,
            format!("duplicate stage name {:?}", dup.name().unwrap_or_default()),
        ));
    }
    Ok(file)
}

/// The first stage whose name an earlier stage already uses.
fn duplicate_stage_name(stages: &[Stage]) -> Option<&Stage> {
    stages.iter().enumerate().find_map(|(i, s)| {
        let name = s.name()?;
        stages[..i]
            .iter()
            .any(|p| p.name() == Some(name))
            .then_some(s)
    })
}
