//! `docker commit`: a container's writable layer as a new image, with the
//! container's config (and any `--change`) over the image's, and a history
//! entry.

use std::sync::Arc;

use serde_json::{json, Value};

use super::cgroup::Cgroup;
use super::manager::{Container, Runtime};
use super::state::{now_rfc3339, Status};
use super::ContainerError;
use crate::image::{apply_change, CommitOptions, Reference};
use crate::Result;

impl Runtime {
    /// Commits the container; returns the new image's ID.
    pub fn commit(&self, container: &Arc<Container>, options: CommitOptions) -> Result<String> {
        let record = container.snapshot();
        let image = self.images.resolve(&record.scope, &record.image_id)?;
        let tag = if options.repo.is_empty() {
            None
        } else {
            let text = if options.tag.is_empty() {
                options.repo.clone()
            } else {
                format!("{}:{}", options.repo, options.tag)
            };
            Some(Reference::parse(&text)?.familiar())
        };
        // A running container is frozen while its layer is read, so the
        // layer is one consistent moment.
        let freeze = options.pause && record.state.status == Status::Running;
        let cgroup = if freeze {
            Cgroup::open(&self.cgroups, &self.cgroup_path(&record)).ok()
        } else {
            None
        };
        if let Some(c) = &cgroup {
            c.freeze().map_err(ContainerError::from)?;
        }
        let ids = if self.options.user_namespaces {
            Some(self.id_range(&record.scope)?)
        } else {
            None
        };
        let layer = self.images.add_layer_from_dir(
            &self.dir_of(&record.id).upper(),
            ids.map(|i| i.base).unwrap_or(0),
        );
        if let Some(c) = &cgroup {
            let _ = c.thaw();
        }
        let (diff_id, _) = layer?;
        let mut raw = image.raw.clone();
        let mut config = raw.get("config").cloned().unwrap_or(json!({}));
        // What the container was run with becomes the image's config.
        let c = &record.config;
        if !c.cmd.is_empty() {
            config["Cmd"] = json!(c.cmd);
        }
        if let Some(e) = &c.entrypoint {
            config["Entrypoint"] = json!(e);
        }
        let env = image_env_with(&config, &c.env);
        config["Env"] = json!(env);
        if let Some(w) = &c.workdir {
            config["WorkingDir"] = json!(w);
        }
        if let Some(u) = &c.user {
            config["User"] = json!(u);
        }
        if !c.labels.is_empty() {
            let mut labels = config
                .get("Labels")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or(json!({}));
            for (k, v) in &c.labels {
                labels[k] = json!(v);
            }
            config["Labels"] = labels;
        }
        if let Some(Value::Object(body)) = &options.config {
            for (k, v) in body {
                if !v.is_null() {
                    config[k] = v.clone();
                }
            }
        }
        for change in &options.changes {
            apply_change(&mut config, change)?;
        }
        let now = now_rfc3339();
        raw["config"] = config;
        raw["created"] = json!(now);
        raw["container"] = json!(record.id);
        if !options.author.is_empty() {
            raw["author"] = json!(options.author);
        }
        if !options.comment.is_empty() {
            raw["comment"] = json!(options.comment);
        }
        let mut diff_ids = raw
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        diff_ids.push(json!(diff_id));
        raw["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let mut history = raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let command = std::iter::once(record.path.as_str())
            .chain(record.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let mut entry = json!({"created": now, "created_by": command});
        if !options.comment.is_empty() {
            entry["comment"] = json!(options.comment);
        }
        if !options.author.is_empty() {
            entry["author"] = json!(options.author);
        }
        history.push(entry);
        raw["history"] = json!(history);
        let id =
            self.images
                .create_image(&record.scope, &raw, &tag.into_iter().collect::<Vec<_>>())?;
        // The container's image is the new one's parent (`Parent` in inspect).
        self.images
            .adopt_step(&record.scope, &id, Some(&record.image_id), None)?;
        self.emit(&record, "commit", &[("imageID", id.clone())]);
        Ok(id)
    }
}

/// The image's environment with `overrides` replacing same-named entries.
fn image_env_with(config: &Value, overrides: &[String]) -> Vec<String> {
    let mut env: Vec<String> = config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for o in overrides {
        let key = o.split('=').next().unwrap_or(o);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(o.clone());
    }
    env
}
