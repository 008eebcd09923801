//! The steps of [`Builder`] that make images: the cache probe, the commit
//! of a step's image, config-only steps, `RUN`, `COPY`/`ADD`, `WORKDIR`.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::super::context::content_digest;
use super::super::copy::{parse_chmod, resolve_chown, resolve_sources, Attrs, CopyJob};
use super::super::created_by;
use super::super::expand::Scope;
use super::super::failure::Failure;
use super::super::image_config::{self, StageFlags};
use super::super::instructions::{Command, CommandLine};
use super::super::rootfs::RootView;
use super::super::run::{run_step, StepContainer};
use super::super::CopyFrom;
use super::{sha, short, Builder, StageState};
use crate::container::names::new_id;
use crate::container::state::now_rfc3339;

impl Builder<'_> {
    /// The image a cached step made, announced, if the cache has it.
    pub(super) fn probe_cache(&mut self, key: &str) -> Result<Option<StageState>, Failure> {
        if self.options.no_cache {
            return Ok(None);
        }
        let Some(id) = self.runtime.images().cached_step(&self.options.scope, key) else {
            return Ok(None);
        };
        if let Some(allowed) = &self.options.cache_from {
            if !allowed.contains(&id) {
                return Ok(None);
            }
        }
        let Ok(image) = self.runtime.images().image(&id) else {
            return Ok(None);
        };
        self.say(" ---> Using cache\n");
        self.say(format!(" ---> {}\n", short(&id)));
        Ok(Some(StageState {
            image: id,
            raw: image.raw,
            flags: StageFlags::default(),
        }))
    }

    /// Stores the step's image: `raw` with a history entry (and `layer`).
    pub(super) fn commit(
        &mut self,
        parent: &StageState,
        mut raw: Value,
        created_by: &str,
        layer: Option<String>,
        key: &str,
    ) -> Result<StageState, Failure> {
        let now = now_rfc3339();
        raw["created"] = json!(now);
        raw["config"]["Image"] = json!(parent.image);
        let mut entry = json!({"created": now, "created_by": created_by});
        match layer {
            Some(diff_id) => {
                let mut ids = raw
                    .pointer("/rootfs/diff_ids")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                ids.push(json!(diff_id));
                raw["rootfs"] = json!({"type": "layers", "diff_ids": ids});
            }
            None => entry["empty_layer"] = json!(true),
        }
        let mut history = raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        history.push(entry);
        raw["history"] = json!(history);
        let images = self.runtime.images();
        let id = images.put_config(&raw)?;
        images.adopt_step(&self.options.scope, &id, Some(&parent.image), Some(key))?;
        self.made.push(id.clone());
        self.say(format!(" ---> {}\n", short(&id)));
        Ok(StageState {
            image: id,
            raw,
            flags: parent.flags.clone(),
        })
    }

    /// A config-only step. Docker commits it through a container that never
    /// runs; Berth does the same so the progress lines name a real one.
    pub(super) fn config_step(
        &mut self,
        state: StageState,
        scope: &Scope,
        shell: &[String],
        command: &Command,
    ) -> Result<StageState, Failure> {
        let created_by = created_by::nop(shell, command).unwrap_or_default();
        let key = sha(&[&state.image, "nop", &created_by]);
        let mut flags = state.flags.clone();
        let mut raw = state.raw.clone();
        let mut author = None;
        image_config::apply(&mut raw["config"], &mut flags, command, &mut author);
        if let Command::Env(_) = command {
            image_config::set_env(&mut raw["config"], scope.env());
        }
        if let Some(a) = author {
            raw["author"] = json!(a);
        }
        if let Some(mut hit) = self.probe_cache(&key)? {
            hit.flags = flags;
            return Ok(hit);
        }
        self.nop_container(&state)?;
        let mut next = self.commit(&state, raw, &created_by, None, &key)?;
        next.flags = flags;
        Ok(next)
    }

    /// The container Docker's classic builder commits a config step through:
    /// created on the parent and removed without running.
    pub(super) fn nop_container(&mut self, state: &StageState) -> Result<(), Failure> {
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "#(nop) ".to_string(),
        ];
        let step = StepContainer::create(
            self.runtime,
            &self.options.scope,
            &state.image,
            argv,
            Vec::new(),
            self.options.networking.clone(),
        )?;
        let id = step.short_id().to_string();
        self.say(format!(" ---> Running in {id}\n"));
        drop(step);
        self.say(format!("Removing intermediate container {id}\n"));
        Ok(())
    }

    pub(super) fn run(
        &mut self,
        state: StageState,
        scope: &Scope,
        shell: &[String],
        cmd: &CommandLine,
    ) -> Result<StageState, Failure> {
        let created_by = created_by::run(shell, cmd, &scope.history_args());
        let key = sha(&[&state.image, "run", &created_by]);
        if let Some(mut hit) = self.probe_cache(&key)? {
            hit.flags = state.flags;
            return Ok(hit);
        }
        let argv = created_by::argv(shell, cmd);
        let env: Vec<String> = scope
            .run_args()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let runtime = self.runtime;
        let scope_name = self.options.scope.clone();
        let out = &mut *self.out;
        let networking = &self.options.networking;
        let outcome = run_step(
            runtime,
            &scope_name,
            &state.image,
            argv,
            env,
            networking,
            &mut |t| out(t),
        )?;
        let raw = state.raw.clone();
        self.commit(&state, raw, &created_by, outcome.layer, &key)
    }

    /// A view of an image's filesystem.
    fn view_of(&self, image: &str) -> Result<RootView, Failure> {
        Ok(RootView::new(
            self.runtime.images().image(image)?.layer_dirs,
        ))
    }

    /// A private directory for a new layer, removed after use.
    fn scratch_dir(&self) -> Result<TempLayer, Failure> {
        let dir = self
            .runtime
            .scratch_dir(&self.options.scope)
            .join(format!("build-layer-{}", &new_id()[..16]));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::new(format!("create {}: {e}", dir.display())))?;
        Ok(TempLayer(dir))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy(
        &mut self,
        state: StageState,
        shell: &[String],
        keyword: &str,
        sources: &[String],
        dest: &str,
        from: Option<CopyFrom>,
        chown: Option<&str>,
        chmod: Option<&str>,
    ) -> Result<StageState, Failure> {
        let image_view = self.view_of(&state.image)?;
        let (source_view, from_id) = match &from {
            None => (RootView::new(vec![self.context.dir().to_path_buf()]), None),
            Some(CopyFrom::Stage(i)) => {
                let id = self.stage_results[*i].clone();
                (self.view_of(&id)?, Some(id))
            }
            Some(CopyFrom::Image(name)) => {
                let image = self.runtime.images().resolve(&self.options.scope, name)?;
                (RootView::new(image.layer_dirs), Some(image.id))
            }
        };
        let found = resolve_sources(&source_view, sources, keyword, from.is_none())?;
        let abs_dest = if dest.starts_with('/') {
            dest.to_string()
        } else {
            let trailing = if dest.ends_with('/') || dest == "." {
                "/"
            } else {
                ""
            };
            format!(
                "{}{trailing}",
                image_config::workdir(&state.raw["config"], dest)
            )
            .replace("//", "/")
        };
        // Docker's history names the sources by a digest of their content.
        let digests: Vec<String> = match &from_id {
            None => found
                .iter()
                .map(|f| content_digest(&source_view, f).unwrap_or_default())
                .collect(),
            Some(id) => found.iter().map(|f| sha(&[id, &f.path])).collect(),
        };
        let source_text = match found.as_slice() {
            [one] if one.meta.is_dir() => format!("dir:{}", digests[0]),
            [_] => format!("file:{}", digests[0]),
            _ => format!(
                "multi:{}",
                sha(&digests.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        };
        // Docker 20.10 writes `--chown=` straight before the source, no space.
        let source_text = match chown {
            Some(c) => format!("--chown={c}{source_text}"),
            None => source_text,
        };
        let created_by = created_by::copy(shell, keyword, &source_text, dest);
        let key = sha(&[
            &state.image,
            keyword,
            &created_by,
            chown.unwrap_or(""),
            chmod.unwrap_or(""),
            &abs_dest,
        ]);
        if let Some(mut hit) = self.probe_cache(&key)? {
            hit.flags = state.flags;
            return Ok(hit);
        }
        let attrs = Attrs {
            owner: match chown {
                Some(spec) => resolve_chown(&image_view, spec)?,
                None => (0, 0),
            },
            mode: chmod.map(parse_chmod).transpose()?,
        };
        let job = CopyJob {
            keyword,
            source: &source_view,
            sources: found,
            dest: abs_dest,
            image: &image_view,
            attrs,
            unpack_archives: keyword == "ADD" && from.is_none(),
        };
        let layer = self.scratch_dir()?;
        job.write(&layer.0)?;
        let (diff_id, _) = self.runtime.images().add_layer_from_dir(&layer.0, 0)?;
        drop(layer);
        let raw = state.raw.clone();
        self.commit(&state, raw, &created_by, Some(diff_id), &key)
    }

    /// `WORKDIR`: the config changes; a directory that does not exist yet is
    /// made in a layer of its own.
    pub(super) fn workdir(
        &mut self,
        state: StageState,
        shell: &[String],
        command: &Command,
        dir: &str,
    ) -> Result<StageState, Failure> {
        let created_by = created_by::nop(shell, command).unwrap_or_default();
        let key = sha(&[&state.image, "workdir", &created_by]);
        let mut flags = state.flags.clone();
        let mut raw = state.raw.clone();
        let mut author = None;
        image_config::apply(&mut raw["config"], &mut flags, command, &mut author);
        if let Some(mut hit) = self.probe_cache(&key)? {
            hit.flags = flags;
            return Ok(hit);
        }
        let target = image_config::workdir(&state.raw["config"], dir);
        let view = self.view_of(&state.image)?;
        let layer = if view.is_dir(&target) {
            None
        } else {
            let user = state.raw["config"]
                .get("User")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map(|u| resolve_chown(&view, u))
                .transpose()?
                .unwrap_or((0, 0));
            let tmp = self.scratch_dir()?;
            let empty = RootView::new(vec![tmp.0.clone()]);
            let job = CopyJob {
                keyword: "WORKDIR",
                source: &empty,
                sources: vec![],
                dest: format!("{target}/"),
                image: &view,
                attrs: Attrs {
                    owner: user,
                    mode: None,
                },
                unpack_archives: false,
            };
            let layer_dir = tmp.0.join("layer");
            std::fs::create_dir(&layer_dir)
                .map_err(|e| Failure::new(format!("WORKDIR failed: {e}")))?;
            job.make_dirs(&layer_dir, &target)?;
            let (diff_id, _) = self.runtime.images().add_layer_from_dir(&layer_dir, 0)?;
            Some(diff_id)
        };
        self.nop_container(&state)?;
        let mut next = self.commit(&state, raw, &created_by, layer, &key)?;
        next.flags = flags;
        Ok(next)
    }
}

/// A temporary directory removed on drop.
struct TempLayer(PathBuf);

impl Drop for TempLayer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
