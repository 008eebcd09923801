//! Stage three's output: typed instructions, each with its line number.
//!
//! Arguments are kept *unexpanded* (quotes, `$VAR` and escapes as written)
//! because variable values depend on the stage's ARG/ENV scope at the moment
//! the builder reaches the instruction; see [`super::expand`].

use std::time::Duration;

/// Every instruction keyword Docker's classic builder knows, lower-cased.
pub const KEYWORDS: [&str; 18] = [
    "from",
    "run",
    "cmd",
    "entrypoint",
    "copy",
    "add",
    "env",
    "arg",
    "workdir",
    "expose",
    "volume",
    "user",
    "label",
    "healthcheck",
    "shell",
    "stopsignal",
    "onbuild",
    "maintainer",
];

/// One Dockerfile instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line the instruction starts on.
    pub line: usize,
    /// The instruction's text as written (continuations joined).
    pub original: String,
    /// What the instruction says.
    pub command: Command,
}

/// A command in shell form (run by the stage's `SHELL`) or exec form (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `RUN echo hi`: the text, handed to the shell as one string.
    Shell(String),
    /// `RUN ["echo", "hi"]`: argv, no shell.
    Exec(Vec<String>),
}

/// `FROM [--platform=…] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// Image reference or earlier stage name, unexpanded (global ARGs apply).
    pub image: String,
    /// Stage name from `AS name`, lower-cased.
    pub name: Option<String>,
    /// `--platform` value, unexpanded; recorded, Berth builds for the host.
    pub platform: Option<String>,
}

/// Where `COPY --from` reads from, as written (unexpanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths or glob patterns relative to the context (or the stage).
    pub sources: Vec<String>,
    /// Destination path in the image; a trailing `/` means "a directory".
    pub dest: String,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=` octal mode such as `755`.
    pub chmod: Option<String>,
}

/// One `ADD` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddSource {
    /// A path or glob in the build context.
    Path(String),
    /// An `http://` or `https://` URL to download.
    Url(String),
}

impl AddSource {
    /// Classifies a source word as a URL or a context path.
    pub fn classify(word: &str) -> AddSource {
        if is_url(word) {
            AddSource::Url(word.to_string())
        } else {
            AddSource::Path(word.to_string())
        }
    }

    /// The word as written.
    pub fn as_str(&self) -> &str {
        match self {
            AddSource::Path(s) | AddSource::Url(s) => s,
        }
    }
}

/// Whether an `ADD` source is a remote URL (Docker: `http://` or `https://`).
pub fn is_url(word: &str) -> bool {
    word.starts_with("http://") || word.starts_with("https://")
}

/// `ADD [--chown=…] [--chmod=…] src… dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Sources: context paths (tar archives are unpacked) or URLs.
    pub sources: Vec<AddSource>,
    /// Destination path in the image.
    pub dest: String,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=` octal mode.
    pub chmod: Option<String>,
}

/// A `key=value` pair of `ENV` or `LABEL` (value unexpanded, quotes kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value as written.
    pub value: String,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The variable name.
    pub name: String,
    /// The default, unexpanded; `None` for a bare `ARG name`.
    pub default: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    /// `HEALTHCHECK [options] CMD …`.
    Check(HealthcheckCmd),
}

/// The options and command of `HEALTHCHECK CMD`. `None` means "not given"
/// (the image config records zero, i.e. Docker's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    /// The probe; shell form becomes `CMD-SHELL` in the image config.
    pub test: CommandLine,
    /// `--interval`, default 30s.
    pub interval: Option<Duration>,
    /// `--timeout`, default 30s.
    pub timeout: Option<Duration>,
    /// `--start-period`, default 0s.
    pub start_period: Option<Duration>,
    /// `--start-interval`, default 5s.
    pub start_interval: Option<Duration>,
    /// `--retries`, default 3.
    pub retries: Option<u32>,
}

/// What an instruction does. Every string is unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `FROM`: starts a stage.
    From(From),
    /// `RUN`: runs a command in a container and commits a layer.
    Run(CommandLine),
    /// `CMD`: the default command.
    Cmd(CommandLine),
    /// `ENTRYPOINT`: the entrypoint.
    Entrypoint(CommandLine),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Add),
    /// `ENV k=v …` or `ENV k v`.
    Env(Vec<KeyValue>),
    /// `ARG`.
    Arg(Arg),
    /// `WORKDIR path`.
    Workdir(String),
    /// `EXPOSE port[/proto] …`, each word as written (ranges like `8000-8010`).
    Expose(Vec<String>),
    /// `VOLUME`, from a JSON array or a space-separated list.
    Volume(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `LABEL k=v …`.
    Label(Vec<KeyValue>),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL ["exe", "arg"…]` (JSON only).
    Shell(Vec<String>),
    /// `STOPSIGNAL signal`.
    Stopsignal(String),
    /// `ONBUILD INSTRUCTION …`: a trigger stored in the image config.
    Onbuild {
        /// The trigger text as Docker stores it (after `ONBUILD `).
        expression: String,
        /// The trigger, parsed (never FROM, MAINTAINER or ONBUILD).
        trigger: Box<Command>,
    },
    /// `MAINTAINER name` (deprecated; sets the image author).
    Maintainer(String),
}

impl Command {
    /// The instruction keyword in upper case (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Env(_) => "ENV",
            Command::Arg(_) => "ARG",
            Command::Workdir(_) => "WORKDIR",
            Command::Expose(_) => "EXPOSE",
            Command::Volume(_) => "VOLUME",
            Command::User(_) => "USER",
            Command::Label(_) => "LABEL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Shell(_) => "SHELL",
            Command::Stopsignal(_) => "STOPSIGNAL",
            Command::Onbuild { .. } => "ONBUILD",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}
