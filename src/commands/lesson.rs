//! `berth lesson check [DIR]`: validates lessons, printing each mistake as
//! `file:line: message`.

use std::path::PathBuf;

/// `berth lesson …`.
#[derive(clap::Subcommand)]
pub enum LessonCommand {
    /// Validate the lessons of DIR (default: lessons/): front matter, files, exercises, checks.
    Check {
        #[arg(default_value = "lessons")]
        dir: PathBuf,
    },
}

/// Exit code: 0 when every lesson is valid, 1 otherwise.
pub fn run(cmd: LessonCommand) -> i32 {
    match cmd {
        LessonCommand::Check { dir } => {
            let (lessons, problems) = berth_server::lessons::load_dir(&dir);
            for p in &problems {
                eprintln!("{p}");
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
