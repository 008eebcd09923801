//! `berth lesson check [DIR]`: validates lessons, printing each mistake as
//! `file:line: message`, and names the images lessons need that the
//! classroom's store (or its image packs) lacks.

use std::path::{Path, PathBuf};

/// `berth lesson …`.
#[derive(clap::Subcommand)]
pub enum LessonCommand {
    /// Validate the lessons of DIR (default: lessons/): front matter, files, exercises, checks.
    Check {
        #[arg(default_value = "lessons")]
        dir: PathBuf,
        /// Directories of image packs `berth serve --images` loads at start
        /// (their images count as present); default /var/cache/berth/images.
        #[arg(long = "images", value_name = "DIR")]
        images: Vec<PathBuf>,
    },
}

/// The images `lessons` need that neither the classroom's shared images in
/// `data_dir` nor a pack in `pack_dirs` has: (lesson, image).
fn missing_images(
    lessons: &[berth_server::lessons::Lesson],
    data_dir: &Path,
    pack_dirs: &[PathBuf],
) -> Vec<(String, String)> {
    use berth_runtime::image::ImageStore;
    let wanted: Vec<(String, String)> = lessons
        .iter()
        .flat_map(|l| l.meta.images.iter().map(|i| (l.slug.clone(), i.clone())))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    // The store is opened only where it exists: a check creates nothing.
    let image_dir = data_dir.join("image");
    let store = image_dir
        .join("scopes")
        .is_dir()
        .then(|| ImageStore::open(&image_dir).ok())
        .flatten();
    let mut packed = std::collections::BTreeSet::new();
    let dirs: Vec<PathBuf> = if pack_dirs.is_empty() {
        vec![PathBuf::from(berth_runtime::image::DEFAULT_PACK_DIR)]
    } else {
        pack_dirs.to_vec()
    };
    for dir in dirs {
        for file in berth_runtime::image::pack_files(&dir).unwrap_or_default() {
            packed.extend(berth_runtime::image::pack_names(&file).unwrap_or_default());
        }
    }
    wanted
        .into_iter()
        .filter(|(_, image)| {
            // A malformed reference is the lesson's problem, reported as such.
            let Ok(familiar) =
                berth_runtime::image::reference::Reference::parse(image).map(|r| r.familiar())
            else {
                return false;
            };
            !packed.contains(&familiar)
                && store.as_ref().is_none_or(|s| {
                    !s.missing(
                        berth_runtime::session::BASE_SCOPE,
                        std::slice::from_ref(image),
                    )
                    .is_empty()
                })
        })
        .collect()
}

/// Exit code: 0 when every lesson is valid, 1 otherwise.
pub fn run(data_dir: &Path, cmd: LessonCommand) -> i32 {
    match cmd {
        LessonCommand::Check { dir, images } => {
            let (lessons, problems) = berth_server::lessons::load_dir(&dir);
            for p in &problems {
                eprintln!("{p}");
            }
            // A missing image is the classroom's to fix, not the lesson's:
            // named, without failing the check.
            for (slug, image) in missing_images(&lessons, data_dir, &images) {
                println!(
                    "{slug}: image {image} is missing from the store: \
                     add it with `berth image load FILE` or `berth serve --images DIR` \
                     (the Debian images: scripts/base-images.sh)"
                );
            }
            if problems.is_empty() {
                let exercises: usize = lessons.iter().map(|l| l.exercises.len()).sum();
                let checks: usize = lessons
                    .iter()
                    .flat_map(|l| &l.exercises)
                    .map(|e| e.checks.len())
                    .sum();
                println!(
                    "{} lesson(s), {exercises} exercise(s), {checks} check(s): all valid",
                    lessons.len()
                );
                0
            } else {
                eprintln!("{} problem(s) found", problems.len());
                1
            }
        }
    }
}
