//! `berth image load|save|pack|import|ls`: the image store of the data
//! directory, for offline classrooms (scope `host`, what `berth daemon`
//! serves; `load` also gives the classroom's sessions what it loads).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_runtime::image::ImageStore;
use berth_runtime::DataDir;

/// `berth image …`.
#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Load images from a `docker save` or OCI layout tar: into the
    /// classroom's shared images (every session of `berth serve` started
    /// afterwards has them) and the host's (`berth daemon`). Images already
    /// present are skipped by digest.
    Load {
        /// The archive (also accepted as `-i FILE`).
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
        file: Option<PathBuf>,
        /// Load into this scope only.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Write the images a course needs to one `docker save` tar (which
    /// `docker load`, `berth image load` and `berth serve --images DIR` read).
    Pack {
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(required = true)]
        images: Vec<String>,
        /// The scope the images are taken from (`classroom-base` holds
        /// what `berth serve` loaded).
        #[arg(long, default_value = "host")]
        scope: String,
    },
    /// Save images to a tar that `docker load` reads.
    Save {
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(required = true)]
        images: Vec<String>,
        #[arg(long, default_value = "host")]
        scope: String,
    },
    /// Make a one-layer image from a rootfs tar.
    Import {
        file: PathBuf,
        reference: Option<String>,
        /// Dockerfile instructions applied to the config (`CMD ["sh"]`).
        #[arg(short = 'c', long = "change")]
        changes: Vec<String>,
        #[arg(long, default_value = "host")]
        scope: String,
    },
    /// List images.
    Ls {
        #[arg(long, default_value = "host")]
        scope: String,
    },
}

fn store(data_dir: &Path) -> anyhow::Result<(DataDir, ImageStore)> {
    let data = DataDir::open(data_dir)?;
    let store = ImageStore::open(&data.image_dir())?;
    Ok((data, store))
}

/// Runs an image subcommand.
pub fn run(data_dir: &Path, command: ImageCommand) -> anyhow::Result<()> {
    let (_data, store) = store(data_dir)?;
    match command {
        ImageCommand::Load { input, file, scope } => {
            let path = input
                .or(file)
                .context("name the archive: berth image load -i FILE")?;
            let shared = berth_runtime::session::BASE_SCOPE;
            let load = store.load_pack(scope.as_deref().unwrap_or(shared), &path)?;
            if scope.is_none() {
                let tagged: Vec<String> = load
                    .names
                    .iter()
                    .filter(|n| !n.starts_with("sha256:"))
                    .cloned()
                    .collect();
                store.copy_tags(shared, "host", &tagged)?;
            }
            for name in &load.names {
                match (name.starts_with("sha256:"), load.present) {
                    (true, _) => println!("Loaded image ID: {name}"),
                    (false, false) => println!("Loaded image: {name}"),
                    (false, true) => println!("Loaded image: {name} (already present)"),
                }
            }
        }
        ImageCommand::Pack {
            output,
            images,
            scope,
        } => {
            let refs: Vec<&str> = images.iter().map(String::as_str).collect();
            // Written beside the target and renamed: a pack directory never
            // holds half a pack under its final name.
            let tmp = output.with_extension("tar.partial");
            let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let written = store
                .save(&scope, &refs, &mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    use std::io::Write;
                    out.flush()?;
                    Ok(())
                });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &output)
                .with_context(|| format!("write {}", output.display()))?;
            let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            println!(
                "{}: {} image(s), {:.1} MB",
                output.display(),
                images.len(),
                size as f64 / 1e6
            );
        }
        ImageCommand::Save {
            output,
            images,
            scope,
        } => {
            let refs: Vec<&str> = images.iter().map(String::as_str).collect();
            let file =
                File::create(&output).with_context(|| format!("create {}", output.display()))?;
            store.save(&scope, &refs, std::io::BufWriter::new(file))?;
        }
        ImageCommand::Import {
            file,
            reference,
            changes,
            scope,
        } => {
            let reader = File::open(&file).with_context(|| format!("open {}", file.display()))?;
            let id = store.import(
                &scope,
                std::io::BufReader::new(reader),
                reference.as_deref(),
                &changes,
                "",
            )?;
            println!("{id}");
        }
        ImageCommand::Ls { scope } => {
            let _ = store.ensure_busybox(&scope);
            println!(
                "{:<20} {:<10} {:<15} {:<22} SIZE",
                "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
            );
            for image in store.list(&scope)? {
                let short = &image.id.trim_start_matches("sha256:")[..12];
                let created = humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(image.created.max(0) as u64),
                );
                let size = format!("{:.2}MB", image.size as f64 / 1e6);
                if image.repo_tags.is_empty() {
                    println!(
                        "{:<20} {:<10} {short:<15} {created:<22} {size}",
                        "<none>", "<none>"
                    );
                }
                for tag in &image.repo_tags {
                    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
                    println!("{repo:<20} {t:<10} {short:<15} {created:<22} {size}");
                }
            }
        }
    }
    Ok(())
}
