//! Bringing a lab to a lesson's starting point: the lesson's `files` are
//! copied into node1's /root and its `setup` commands run there, once per
//! session and lesson, as the lab's root (through exec, like the terminal).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use berth_runtime::container::{Container, ExecConfig, Runtime};

use super::Lesson;

/// Which (session, lesson) pairs were set up already, and how far.
#[derive(Default)]
pub struct SetupDone(Mutex<HashMap<(String, String), SetupState>>);

/// Where a lesson's setup stands in one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupState {
    Running,
    Done,
    Failed(String),
}

impl SetupState {
    /// `running`, `done` or `failed: …`, as `GET /api/lessons` shows it.
    pub fn label(&self) -> String {
        match self {
            SetupState::Running => "running".into(),
            SetupState::Done => "done".into(),
            SetupState::Failed(e) => format!("failed: {e}"),
        }
    }
}

impl SetupDone {
    /// True the first time for `session` and `slug` (the setup is then running).
    pub fn first(&self, session: &str, slug: &str) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (session.to_string(), slug.to_string());
        if m.contains_key(&key) {
            return false;
        }
        m.insert(key, SetupState::Running);
        true
    }

    /// Records how the setup ended.
    pub fn finish(&self, session: &str, slug: &str, result: Result<(), String>) {
        let state = match result {
            Ok(()) => SetupState::Done,
            Err(e) => SetupState::Failed(e),
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((session.to_string(), slug.to_string()), state);
    }

    /// The state of `slug`'s setup in `session`; `None` when it never started.
    pub fn state(&self, session: &str, slug: &str) -> Option<SetupState> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(session.to_string(), slug.to_string()))
            .cloned()
    }
}

fn exec(
    runtime: &Runtime,
    lab: &Arc<Container>,
    cmd: Vec<String>,
    input: Option<&[u8]>,
) -> Result<(i32, String), String> {
    let config = ExecConfig {
        cmd,
        env: vec![],
        workdir: Some("/root".into()),
        user: None,
        tty: false,
        stdin: input.is_some(),
        console_size: None,
    };
    let mut p = runtime.exec(lab, &config).map_err(|e| e.to_string())?;
    if let (Some(mut stdin), Some(bytes)) = (p.stdin.take(), input) {
        stdin.write_all(bytes).map_err(|e| e.to_string())?;
    }
    let err = p.stderr.take().map(|mut f| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = Read::take(&mut f, 1 << 16).read_to_end(&mut s);
            s
        })
    });
    let mut out = Vec::new();
    if let Some(mut f) = p.stdout.take() {
        let _ = Read::take(&mut f, 1 << 16).read_to_end(&mut out);
    }
    if let Some(h) = err {
        out.extend(h.join().unwrap_or_default());
    }
    Ok((p.wait(), String::from_utf8_lossy(&out).into_owned()))
}

/// Copies the lesson's files into the lab and runs its setup commands;
/// the first failure is returned.
pub fn prepare(runtime: &Runtime, lab: &Arc<Container>, lesson: &Lesson) -> Result<(), String> {
    for f in &lesson.meta.files {
        let bytes = std::fs::read(lesson.dir.join(f)).map_err(|e| format!("read {f}: {e}"))?;
        let target = format!("/root/{f}");
        let (code, out) = exec(
            runtime,
            lab,
            vec![
                "sh".into(),
                "-c".into(),
                "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"".into(),
                "sh".into(),
                target.clone(),
            ],
            Some(&bytes),
        )?;
        if code != 0 {
            return Err(format!("copy {f} to {target}: {out}"));
        }
    }
    for command in &lesson.meta.setup {
        let (code, out) = exec(
            runtime,
            lab,
            vec!["sh".into(), "-lc".into(), command.clone()],
            None,
        )?;
        if code != 0 {
            return Err(format!(
                "setup `{command}` exited with {code}: {}",
                out.trim()
            ));
        }
    }
    Ok(())
}
