//! Image, volume and network checks.

use std::io::Read;
use std::sync::Arc;

use berth_runtime::container::Runtime;
use serde_json::Value;

use super::{fail, short, Check, Outcome};

pub fn image_check(runtime: &Arc<Runtime>, scope: &str, name: &str, c: &Check) -> Outcome {
    let inspect = runtime.images().inspect(scope, name).map_err(|_| {
        let tags: Vec<String> = runtime
            .images()
            .list(scope)
            .map(|l| l.into_iter().flat_map(|s| s.repo_tags).collect())
            .unwrap_or_default();
        (
            format!("image {name}"),
            if tags.is_empty() {
                "no images".to_string()
            } else {
                format!("images {}", tags.join(", "))
            },
        )
    })?;
    let mut found = vec![format!("image {name}")];
    if let Some(want) = c.layers {
        let n = inspect["RootFS"]["Layers"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        if n != want {
            return fail(format!("{want} layers"), format!("{n} layers"));
        }
        found.push(format!("{n} layers"));
    }
    if let Some(max) = c.max_size {
        let size = inspect["Size"].as_u64().unwrap_or(0);
        if size > max {
            return fail(format!("at most {max} bytes"), format!("{size} bytes"));
        }
        found.push(format!("{size} bytes"));
    }
    if let Some(want) = &c.cmd {
        let cmd: Vec<String> = inspect["Config"]["Cmd"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if &cmd != want {
            return fail(format!("CMD {want:?}"), format!("CMD {cmd:?}"));
        }
        found.push(format!("CMD {cmd:?}"));
    }
    if let Some(p) = c.exposes {
        let exposed: Vec<String> = inspect["Config"]["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if !exposed
            .iter()
            .any(|k| k == &format!("{p}/tcp") || k == &p.to_string())
        {
            return fail(
                format!("EXPOSE {p}"),
                if exposed.is_empty() {
                    "no exposed ports".into()
                } else {
                    format!("exposes {}", exposed.join(", "))
                },
            );
        }
        found.push(format!("exposes {p}"));
    }
    if let Some(want) = &c.history {
        let history = runtime.images().history(scope, name).unwrap_or(Value::Null);
        let steps: Vec<String> = history
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h["CreatedBy"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if !steps.iter().any(|s| s.contains(want.as_str())) {
            return fail(
                format!("a build step with {want:?}"),
                format!(
                    "steps {:?}",
                    steps.iter().map(|s| short(s)).collect::<Vec<_>>()
                ),
            );
        }
        found.push(format!("a step with {want:?}"));
    }
    if let Some(want) = &c.user {
        let user = user_of(&inspect);
        if &user != want {
            return fail(format!("USER {want}"), format!("USER {user}"));
        }
        found.push(format!("USER {user}"));
    }
    if let Some(secret) = &c.hides {
        let history = runtime.images().history(scope, name).unwrap_or(Value::Null);
        let shown = revealing(&inspect, &history, secret);
        if !shown.is_empty() {
            return fail(
                format!("{secret:?} nowhere in the image"),
                format!("{secret:?} in {}", shown.join(", ")),
            );
        }
        found.push(format!("{secret:?} in neither history nor config"));
    }
    if let Some(other) = &c.same_as {
        let id = |n: &str| runtime.images().resolve_id(scope, n).ok();
        match (id(name), id(other)) {
            (Some(a), Some(b)) if a == b => found.push(format!("same image as {other}")),
            (_, None) => {
                return fail(
                    format!("the same image as {other}"),
                    format!("no image {other}"),
                )
            }
            (Some(a), Some(b)) => {
                let short_id = |i: &str| {
                    i.trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect::<String>()
                };
                return fail(
                    format!("the same image as {other}"),
                    format!("{name} is {}, {other} is {}", short_id(&a), short_id(&b)),
                );
            }
            (None, _) => return fail(format!("image {name}"), "no such image"),
        }
    }
    Ok(found.join(", "))
}

/// The user an image's containers run as: its `Config.User`, `root` when
/// it sets none (as Docker runs them).
pub fn user_of(inspect: &Value) -> String {
    inspect["Config"]["User"]
        .as_str()
        .filter(|u| !u.is_empty())
        .unwrap_or("root")
        .to_string()
}

/// Where an image shows `secret` to anyone who has it: steps of
/// `docker history` (by number, oldest first) and fields of its config.
pub fn revealing(inspect: &Value, history: &Value, secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(steps) = history.as_array() {
        // docker history lists the newest step first.
        let n = steps.len();
        for (i, h) in steps.iter().enumerate() {
            if h["CreatedBy"].as_str().is_some_and(|s| s.contains(secret)) {
                out.push(format!(
                    "docker history step {} ({})",
                    n - i,
                    short(h["CreatedBy"].as_str().unwrap_or(""))
                ));
            }
        }
    }
    if let Some(config) = inspect["Config"].as_object() {
        for (key, value) in config {
            if value.to_string().contains(secret) {
                out.push(format!("the image's config ({key})"));
            }
        }
    }
    out
}

pub fn volume_check(runtime: &Arc<Runtime>, scope: &str, name: &str, c: &Check) -> Outcome {
    let v = runtime.volumes().get(scope, name).map_err(|_| {
        let names: Vec<String> = runtime
            .volumes()
            .list(scope)
            .into_iter()
            .map(|v| v.name)
            .collect();
        (
            format!("volume {name}"),
            if names.is_empty() {
                "no volumes".to_string()
            } else {
                format!("volumes {}", names.join(", "))
            },
        )
    })?;
    let mut found = vec![format!("volume {name}")];
    if let Some(file) = &c.file {
        let path = v.mountpoint.join(file.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(&path);
        if !meta.as_ref().is_ok_and(|m| m.is_file()) {
            return fail(format!("file {file} in volume {name}"), "no such file");
        }
        if let Some(want) = &c.contains {
            let mut text = String::new();
            let _ = std::fs::File::open(&path).map(|f| f.take(1 << 20).read_to_string(&mut text));
            if !text.contains(want.as_str()) {
                return fail(
                    format!("{file} containing {want:?}"),
                    format!("{file} holds {:?}", short(&text)),
                );
            }
        }
        found.push(format!("file {file}"));
    }
    Ok(found.join(", "))
}

pub fn network_check(runtime: &Arc<Runtime>, scope: &str, name: &str, c: &Check) -> Outcome {
    let net = runtime.net().get(scope, name).map_err(|_| {
        let names: Vec<String> = runtime
            .net()
            .list(scope)
            .map(|l| l.into_iter().map(|n| n.name).collect())
            .unwrap_or_default();
        (
            format!("network {name}"),
            format!("networks {}", names.join(", ")),
        )
    })?;
    let mut found = vec![format!("network {name}")];
    if let Some(want) = &c.members {
        let ids: Vec<String> = runtime
            .net()
            .members(&net.id)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let members: Vec<String> = runtime
            .list(scope)
            .into_iter()
            .filter(|x| ids.contains(&x.id))
            .map(|x| x.snapshot().name)
            .collect();
        let missing: Vec<&String> = want.iter().filter(|m| !members.contains(m)).collect();
        if !missing.is_empty() {
            return fail(
                format!("{} on network {name}", want.join(", ")),
                if members.is_empty() {
                    "no containers on it".into()
                } else {
                    format!("{} on it", members.join(", "))
                },
            );
        }
        found.push(format!("members {}", members.join(", ")));
    }
    Ok(found.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_image_without_user_runs_as_root() {
        assert_eq!(user_of(&json!({"Config": {"User": ""}})), "root");
        assert_eq!(user_of(&json!({"Config": {}})), "root");
        assert_eq!(user_of(&json!({"Config": {"User": "app"}})), "app");
    }

    #[test]
    fn a_secret_in_env_shows_in_history_and_config_a_mounted_one_nowhere() {
        let inspect = json!({"Config": {
            "Env": ["PATH=/bin", "DB_PASSWORD=hunter2"],
            "Cmd": ["sh"],
            "User": "app"
        }});
        let history = json!([
            {"CreatedBy": "CMD [\"sh\"]"},
            {"CreatedBy": "ENV DB_PASSWORD=hunter2"},
            {"CreatedBy": "/bin/sh -c #(nop) ADD file:abc in / "}
        ]);
        assert_eq!(
            revealing(&inspect, &history, "hunter2"),
            [
                "docker history step 2 (ENV DB_PASSWORD=hunter2)",
                "the image's config (Env)"
            ]
        );
        let clean = json!({"Config": {"Env": ["PATH=/bin"], "User": "app"}});
        let clean_history =
            json!([{"CreatedBy": "RUN --mount=type=secret,id=db cat /run/secrets/db"}]);
        assert!(revealing(&clean, &clean_history, "hunter2").is_empty());
    }
}
