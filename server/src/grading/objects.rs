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
    Ok(found.join(", "))
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
