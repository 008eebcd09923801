//! Swarm checks, read from the engine's swarm state (`runtime/swarm`): a
//! service (replicas running, image, published port, mode, update state),
//! the swarm the node is in (members, managers) and one of its nodes
//! (availability, role).

use berth_runtime::swarm::{Cluster, Service};

use super::{fail, image_matches, Check, Outcome, Target};

/// Runs `f` on the cluster of the target's node; fails when it is in none.
fn with_cluster(target: &Target, expected: String, f: impl FnOnce(&Cluster) -> Outcome) -> Outcome {
    let state = target.engine.swarm.lock();
    match state.cluster_of(&target.scope) {
        Some(i) => f(&state.clusters[i]),
        None => fail(expected, "this node is not in a swarm"),
    }
}

/// The image a service's tasks run, without the digest the CLI pins.
pub fn service_image(s: &Service) -> String {
    let image = s.spec["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or("");
    image.split('@').next().unwrap_or("").to_string()
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Checks the service `name`.
pub fn service_check(target: &Target, name: &str, c: &Check) -> Outcome {
    with_cluster(target, format!("service {name}"), |cluster| {
        let Some(s) = cluster.services.iter().find(|s| s.name() == name) else {
            let names: Vec<&str> = cluster.services.iter().map(Service::name).collect();
            return fail(
                format!("service {name}"),
                if names.is_empty() {
                    "no services".to_string()
                } else {
                    format!("services {}", names.join(", "))
                },
            );
        };
        let mut found = vec![format!("service {name}")];
        let running = cluster
            .tasks
            .iter()
            .filter(|t| t.service_id == s.id && t.state == "running" && t.desired == "running")
            .count();
        if let Some(want) = &c.mode {
            let mode = if s.replicas().is_some() {
                "replicated"
            } else {
                "global"
            };
            if mode != want {
                return fail(format!("mode {want}"), format!("mode {mode}"));
            }
            found.push(format!("mode {mode}"));
        }
        if let Some(want) = c.replicas {
            let Some(desired) = s.replicas() else {
                return fail(
                    format!("{want} replicas"),
                    "a global service (one task per node)",
                );
            };
            if desired != want || running as u64 != want {
                return fail(
                    format!("{want}/{want} replicas running"),
                    format!("{running}/{desired} running"),
                );
            }
            found.push(format!("{running}/{desired} running"));
        }
        if let Some(want) = &c.uses_image {
            let image = service_image(s);
            if !image_matches(&image, want) {
                return fail(format!("image {want}"), format!("image {image}"));
            }
            found.push(format!("image {image}"));
        }
        if let Some(port) = c.port {
            let ports: Vec<(u64, u64)> = s
                .ports()
                .iter()
                .map(|p| {
                    (
                        p["PublishedPort"].as_u64().unwrap_or(0),
                        p["TargetPort"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            match ports
                .iter()
                .find(|(published, _)| *published == port as u64)
            {
                Some((p, t)) => found.push(format!("port {p} published to {t}")),
                None => {
                    return fail(
                        format!("port {port} published"),
                        if ports.is_empty() {
                            "no published ports".to_string()
                        } else {
                            format!(
                                "published {}",
                                ports
                                    .iter()
                                    .map(|(p, t)| format!("{p}:{t}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
                    )
                }
            }
        }
        if let Some(want) = &c.update {
            let state = s
                .update_status
                .as_ref()
                .map(|u| u.state.as_str())
                .unwrap_or("none");
            if state != want {
                return fail(
                    format!("update state {want}"),
                    if state == "none" {
                        "no update yet".to_string()
                    } else {
                        format!("update state {state}")
                    },
                );
            }
            found.push(format!("update state {state}"));
        }
        Ok(found.join(", "))
    })
}

/// Checks the swarm the target's node is in.
pub fn swarm_check(target: &Target, c: &Check) -> Outcome {
    with_cluster(target, "a swarm".to_string(), |cluster| {
        let nodes = cluster.nodes.len();
        let managers = cluster.nodes.iter().filter(|n| n.role == "manager").count();
        let mut found = vec![format!("a swarm of {}", count(nodes, "node", "nodes"))];
        if let Some(want) = c.nodes {
            if nodes != want {
                return fail(
                    format!("a swarm of {}", count(want, "node", "nodes")),
                    format!("{} ({})", count(nodes, "node", "nodes"), hostnames(cluster)),
                );
            }
        }
        if let Some(want) = c.managers {
            if managers != want {
                return fail(
                    count(want, "manager", "managers"),
                    count(managers, "manager", "managers"),
                );
            }
            found.push(count(managers, "manager", "managers"));
        }
        Ok(found.join(", "))
    })
}

fn hostnames(cluster: &Cluster) -> String {
    cluster
        .nodes
        .iter()
        .map(|n| n.hostname.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the swarm node whose host name is `name`.
pub fn node_check(target: &Target, name: &str, c: &Check) -> Outcome {
    with_cluster(target, format!("swarm node {name}"), |cluster| {
        let Some(n) = cluster.nodes.iter().find(|n| n.hostname == name) else {
            return fail(
                format!("swarm node {name}"),
                format!("nodes {}", hostnames(cluster)),
            );
        };
        let mut found = vec![format!("swarm node {name}")];
        if let Some(want) = &c.availability {
            if &n.availability != want {
                return fail(
                    format!("availability {want}"),
                    format!("availability {}", n.availability),
                );
            }
            found.push(format!("availability {}", n.availability));
        }
        if let Some(want) = &c.role {
            if &n.role != want {
                return fail(format!("role {want}"), format!("role {}", n.role));
            }
            found.push(format!("role {}", n.role));
        }
        Ok(found.join(", "))
    })
}
