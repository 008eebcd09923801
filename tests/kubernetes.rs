//! The Kubernetes manifests in `deploy/kubernetes/` against the Kubernetes
//! schema (PyPI's `kubernetes-validate`, which bundles the schemas, so no
//! cluster and no network): every resource passes strictly, the
//! kustomization lists every file, and a manifest with a misspelt field
//! fails (so a pass means something).

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> Option<PathBuf> {
    let python = std::env::var_os("BERTH_PYTHON").map(PathBuf::from)?;
    let tool = python.parent()?.join("kubernetes-validate");
    tool.exists().then_some(tool)
}

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().unwrap() != "kustomization.yaml")
        .collect();
    files.sort();
    files
}

fn validate(tool: &Path, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(tool)
        .arg("--strict")
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn manifests_pass_the_kubernetes_schema() {
    let Some(tool) = validator() else {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "kubernetes-validate is not installed (scripts/test.sh installs it)"
        );
        eprintln!("skipped: kubernetes-validate not installed");
        return;
    };
    let files = manifests();
    let (ok, text) = validate(&tool, &files);
    assert!(ok, "{text}");
    for kind in [
        "deployment/berth-front",
        "service/berth-front",
        "ingress/berth",
        "statefulset/berth-runner",
        "statefulset/berth-postgres",
        "secret/berth-runner",
        "networkpolicy/berth-runner-from-front",
        "persistentvolumeclaim/berth-registry",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind} ")),
            "{kind} not validated:\n{text}"
        );
    }
    let kustomization = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/kustomization.yaml"),
    )
    .unwrap();
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            kustomization.contains(&format!("- {name}")),
            "kustomization.yaml does not list {name}"
        );
    }
}

#[test]
fn a_misspelt_field_fails_validation() {
    let Some(tool) = validator() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runners = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/runners.yaml"),
    )
    .unwrap();
    let broken = dir.path().join("runners.yaml");
    std::fs::write(&broken, runners.replace("procMount:", "procMounts:")).unwrap();
    let (ok, text) = validate(&tool, &[broken]);
    assert!(!ok, "a misspelt field passed:\n{text}");
}
