//! `berth image load|save|import|ls`: the image store of the data directory,
//! for offline classrooms (scope `host`, what `berth daemon` serves).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_runtime::image::ImageStore;
use berth_runtime::DataDir;

/// `berth image …`.
#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Load images from a `docker save` or OCI layout tar.
    Load {
        /// The archive (also accepted as `-i FILE`).
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
        file: Option<PathBuf>,
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
            let reader = File::open(&path).with_context(|| format!("open {}", path.display()))?;
            for name in store.load(&scope, std::io::BufReader::new(reader))? {
                if name.starts_with("sha256:") {
                    println!("Loaded image ID: {name}");
                } else {
                    println!("Loaded image: {name}");
                }
            }
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
