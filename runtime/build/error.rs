//! Errors from reading a Dockerfile or a `.dockerignore`, worded as Docker words them.

/// An error parsing or expanding a Dockerfile.
///
/// Most errors belong to one instruction and carry its first line (1-based),
/// displayed the way Docker's classic builder displays them:
/// `dockerfile parse error on line 3: unknown instruction: FORM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The file held only directives, comments and blank lines.
    #[error("file with no instructions")]
    NoInstructions,
    /// Only global `ARG`s, no `FROM`.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// An instruction (other than `ARG`) came before the first `FROM`.
    #[error("dockerfile parse error on line {line}: no build stage in current context")]
    NoBuildStage {
        /// Line of the offending instruction.
        line: usize,
    },
    /// The instruction at `line` is malformed; `message` is Docker's wording.
    #[error("dockerfile parse error on line {line}: {message}")]
    Parse {
        /// First line of the instruction (or the directive) that failed.
        line: usize,
        /// What is wrong, without the line prefix.
        message: String,
    },
    /// Variable substitution failed in the instruction at `line`
    /// (`${VAR?message}`, an unterminated quote or `${`).
    #[error("dockerfile parse error on line {line}: {message}")]
    Expand {
        /// First line of the instruction being expanded.
        line: usize,
        /// What is wrong, without the line prefix.
        message: String,
    },
}

impl BuildError {
    /// A [`BuildError::Parse`] at `line`.
    pub(crate) fn parse(line: usize, message: impl Into<String>) -> Self {
        BuildError::Parse {
            line,
            message: message.into(),
        }
    }

    /// The line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            BuildError::NoInstructions | BuildError::NoStages => None,
            BuildError::NoBuildStage { line }
            | BuildError::Parse { line, .. }
            | BuildError::Expand { line, .. } => Some(*line),
        }
    }
}

/// An error reading a Go-style duration such as `1m30s`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {input:?}")]
pub struct DurationError {
    /// The text that failed to parse.
    pub input: String,
}

/// Result with a [`BuildError`].
pub type BuildResult<T> = std::result::Result<T, BuildError>;
