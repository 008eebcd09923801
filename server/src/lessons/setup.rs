//! Bringing a lab to a lesson's starting point. When a learner opens a
//! lesson: the session gets the nodes the lesson names (added to the
//! running session), the lesson's `files` are copied into every node's
//! /root, and its setup runs — `setup` on node1, then `setup_nodes` on the
//! others — as each lab's root (through exec, like the terminal).
//!
//! Once per runtime session and lesson, remembered in the store (so a
//! server restart does not run it twice); a reset lab is a new runtime
//! session, and the lesson opened last gets its setup again there.

use std::io::{Read, Write};
use std::sync::Arc;

use berth_runtime::container::{Container, ExecConfig, Runtime};

use super::Lesson;
use crate::classroom::{Classroom, LiveSession};

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

/// Copies the lesson's files (its shared folder's, then its own) into
/// one node's /root.
pub fn copy_files(runtime: &Runtime, lab: &Arc<Container>, lesson: &Lesson) -> Result<(), String> {
    for (source, f) in lesson.copies() {
        let bytes = std::fs::read(&source).map_err(|e| format!("read {f}: {e}"))?;
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
    Ok(())
}

/// Runs `commands` in one node's lab, stopping at the first failure.
pub fn run_commands(
    runtime: &Runtime,
    lab: &Arc<Container>,
    commands: &[String],
) -> Result<(), String> {
    for command in commands {
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

/// Copies the files into every node of `nodes` (name, lab) and runs each
/// node's setup, node1 first; the first failure names its node.
pub fn prepare(
    runtime: &Runtime,
    nodes: &[(String, Arc<Container>)],
    lesson: &Lesson,
) -> Result<(), (String, String)> {
    for (name, lab) in nodes {
        copy_files(runtime, lab, lesson).map_err(|e| (name.clone(), e))?;
    }
    for (name, commands) in lesson.meta.setup_plan() {
        let Some((_, lab)) = nodes.iter().find(|(n, _)| *n == name) else {
            return Err((name.clone(), format!("the session has no {name}")));
        };
        run_commands(runtime, lab, &commands).map_err(|e| (name.clone(), e))?;
    }
    Ok(())
}

/// What opening `lesson` does to the learner's lab: adds the nodes it
/// names (awaited, so the page shows their tabs), then, the first time in
/// this lab, copies files and runs setup in the background. A failure is
/// shown in the failing node's terminal.
pub async fn open_lesson(classroom: &Arc<Classroom>, live: &Arc<LiveSession>, lesson: &Lesson) {
    if let Some(pool) = classroom.runners.get() {
        open_remote(classroom, pool, live, lesson).await;
        return;
    }
    let lab = match classroom.ensure_nodes(live, lesson.node_count()).await {
        Ok(lab) => lab,
        Err(e) => {
            tracing::warn!(lesson = %lesson.slug, error = %e, "adding the lesson's nodes failed");
            if let Some(t) = live.lab().and_then(|l| l.terminal("node1")) {
                t.notice(&format!(
                    "this lesson needs {} nodes: {e}",
                    lesson.node_count()
                ));
            }
            return;
        }
    };
    let session = lab.session.id.clone();
    match classroom.store.claim_setup(&session, &lesson.slug) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "recording a lesson setup failed");
            return;
        }
    }
    if !lesson.meta.prepares() {
        let _ = classroom.store.setup_finished(&session, &lesson.slug, "ok");
        return;
    }
    let nodes: Vec<(String, Arc<Container>)> = lab
        .session
        .nodes
        .iter()
        .filter(|n| super::node_number(&n.name).is_some_and(|i| i <= lesson.node_count()))
        .map(|n| (n.name.clone(), n.lab.clone()))
        .collect();
    let runtime = classroom.sessions.engine.runtime.clone();
    let classroom = classroom.clone();
    let lesson = lesson.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = prepare(&runtime, &nodes, &lesson);
        let text = match &outcome {
            Ok(()) => "ok".to_string(),
            Err((node, e)) => format!("{node}: {e}"),
        };
        let _ = classroom
            .store
            .setup_finished(&session, &lesson.slug, &text);
        if let Err((node, e)) = outcome {
            tracing::warn!(lesson = %lesson.slug, %node, error = %e, "lesson setup failed");
            if let Some(t) = lab.terminal(&node) {
                t.notice(&format!("setting up the lesson failed: {e}"));
            }
        }
    });
}

/// [`open_lesson`] for a lab on a runner: its nodes and setup are made
/// there (the runner has the same lessons); the front records the outcome.
async fn open_remote(
    classroom: &Arc<Classroom>,
    pool: &Arc<crate::runner::RunnerPool>,
    live: &Arc<LiveSession>,
    lesson: &Lesson,
) {
    if let Err(e) = classroom
        .ensure_remote_nodes(live, lesson.node_count())
        .await
    {
        tracing::warn!(lesson = %lesson.slug, error = %e, "adding the lesson's nodes on the runner failed");
        return;
    }
    let Some(remote) = live.remote() else { return };
    match classroom.store.claim_setup(&remote.id, &lesson.slug) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "recording a lesson setup failed");
            return;
        }
    }
    if !lesson.meta.prepares() {
        let _ = classroom
            .store
            .setup_finished(&remote.id, &lesson.slug, "ok");
        return;
    }
    let (classroom, pool, slug) = (classroom.clone(), pool.clone(), lesson.slug.clone());
    tokio::spawn(async move {
        let outcome = match pool.setup(remote.runner, &remote.id, &slug).await {
            Ok(o) => o,
            Err(e) => e.to_string(),
        };
        if outcome != "ok" {
            tracing::warn!(lesson = %slug, %outcome, "lesson setup on the runner failed");
        }
        let _ = classroom.store.setup_finished(&remote.id, &slug, &outcome);
    });
}
