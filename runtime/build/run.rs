//! `RUN`: the command runs as a real container of Berth's runtime (create
//! with the image's config, start attached, stream its output, wait), then
//! its writable layer becomes the step's layer. The container is removed
//! afterwards, whether the command succeeded or not.

use std::io::Read;
use std::sync::Arc;

use super::failure::Failure;
use crate::container::attach::{split_frames, ControlRequest, STDERR};
use crate::container::{Container, ContainerConfig, Runtime, WaitCondition};

/// What a finished `RUN` left.
pub struct RunOutcome {
    /// The layer's diff ID, or `None` when the command changed nothing.
    pub layer: Option<String>,
}

/// Docker's red for a build's stderr lines.
const RED: &str = "\u{1b}[91m";
const RESET: &str = "\u{1b}[0m";

/// A container made for one build step, removed when dropped.
pub struct StepContainer<'a> {
    runtime: &'a Arc<Runtime>,
    pub container: Arc<Container>,
}

impl Drop for StepContainer<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.remove(&self.container, true) {
            tracing::warn!(id = %self.container.id, error = %e, "removing build container");
        }
    }
}

impl<'a> StepContainer<'a> {
    /// Creates a container of `image` in `scope` running `argv` with the
    /// image's entrypoint cleared and `env` added.
    pub fn create(
        runtime: &'a Arc<Runtime>,
        scope: &str,
        image: &str,
        argv: Vec<String>,
        env: Vec<String>,
        networking: crate::net::ContainerNetworking,
    ) -> Result<Self, Failure> {
        let config = ContainerConfig {
            image: image.to_string(),
            cmd: argv,
            entrypoint: Some(Vec::new()),
            env,
            networking,
            ..ContainerConfig::default()
        };
        let container = runtime.create(scope, None, config)?;
        Ok(StepContainer { runtime, container })
    }

    /// The short ID Docker prints.
    pub fn short_id(&self) -> &str {
        &self.container.id[..12]
    }

    /// Starts the container, passes its output to `out` (stderr in red, as
    /// Docker marks it) and returns its exit code.
    pub fn run(&self, out: &mut dyn FnMut(String)) -> Result<i32, Failure> {
        let attach = ControlRequest::Attach {
            stdin: false,
            stdout: true,
            stderr: true,
            close_stdin: false,
        };
        let stream = self.runtime.start(&self.container, Some(attach))?;
        if let Some(mut stream) = stream {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                for (kind, data) in split_frames(&mut buf) {
                    let text = String::from_utf8_lossy(&data).into_owned();
                    if kind == STDERR {
                        out(format!("{RED}{text}{RESET}"));
                    } else {
                        out(text);
                    }
                }
            }
        }
        Ok(self
            .runtime
            .wait(&self.container, WaitCondition::NotRunning))
    }

    /// Turns the container's writable layer into a layer of the store;
    /// `None` when it is empty.
    pub fn commit_layer(&self) -> Result<Option<String>, Failure> {
        let record = self.container.snapshot();
        let upper = self.runtime.dir_of(&record.id).upper();
        let empty = std::fs::read_dir(&upper)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        if empty {
            return Ok(None);
        }
        // The scope's own uid range (a classroom session's, shared by its
        // nodes), as `docker commit` uses: files go in as the container saw them.
        let base = if self.runtime.options.user_namespaces {
            self.runtime
                .id_range(&record.scope)
                .map_err(|e| Failure::new(e.to_string()))?
                .base
        } else {
            0
        };
        let (diff_id, _) = self.runtime.images().add_layer_from_dir(&upper, base)?;
        Ok(Some(diff_id))
    }
}

/// Runs `argv` for a `RUN` step; `announce` gets the container's short ID
/// before it starts, `out` its output.
pub fn run_step(
    runtime: &Arc<Runtime>,
    scope: &str,
    image: &str,
    argv: Vec<String>,
    env: Vec<String>,
    networking: &crate::net::ContainerNetworking,
    out: &mut dyn FnMut(String),
) -> Result<RunOutcome, Failure> {
    let step = StepContainer::create(runtime, scope, image, argv.clone(), env, networking.clone())?;
    out(format!(" ---> Running in {}\n", step.short_id()));
    let code = step.run(out)?;
    if code != 0 {
        let command = argv.join(" ");
        return Err(Failure {
            message: format!("The command '{command}' returned a non-zero code: {code}"),
            code: Some(code),
            bad_request: false,
        });
    }
    let layer = step.commit_layer()?;
    let id = step.short_id().to_string();
    drop(step);
    out(format!("Removing intermediate container {id}\n"));
    Ok(RunOutcome { layer })
}
