//! `berth`: the Docker classroom in one binary.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
#[command(name = "berth", version, about = "A Docker classroom in one binary")]
struct Cli {
    /// Data directory holding images, containers and state.
    #[arg(long, global = true, env = "BERTH_DATA_DIR", default_value = berth_runtime::datadir::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container and wait for it (exit code = the container's).
    Run(Box<commands::run::RunArgs>),
    /// Serve the classroom: web terminal, sessions and their labs.
    Serve(Box<commands::serve::ServeArgs>),
    /// Hold labs for a classroom front (`berth serve --runners`): the
    /// engine, the sessions, their terminals, behind the runner API.
    Runner(Box<commands::serve::ServeArgs>),
    /// Serve the Docker Engine API for the host, like dockerd.
    Daemon(commands::daemon::DaemonArgs),
    /// Manage the image store (load, save, import, ls).
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Work with lessons (`berth lesson check [DIR]`).
    #[command(subcommand)]
    Lesson(commands::lesson::LessonCommand),
    /// Serve the classroom registry (OCI Distribution API) alone.
    Registry(commands::registry::RegistryArgs),
    /// A container's monitor process (started by the engine, not by hand).
    #[command(name = "__init", hide = true)]
    Init,
    /// A `docker exec` process (started by the engine, not by hand).
    #[command(name = "__exec", hide = true)]
    Exec,
    /// A `docker cp` process (started by the engine, not by hand).
    #[command(name = "__archive", hide = true)]
    Archive { job: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Init => berth_runtime::container::monitor::main(),
        Command::Exec => berth_runtime::container::exec::main(),
        Command::Archive { job } => berth_runtime::container::archive::main(&job),
        Command::Serve(args) => {
            commands::serve::run(&cli.data_dir, *args, commands::serve::Role::Classroom)
        }
        Command::Runner(args) => {
            commands::serve::run(&cli.data_dir, *args, commands::serve::Role::Runner)
        }
        Command::Daemon(args) => commands::daemon::run(&cli.data_dir, args),
        Command::Image(cmd) => commands::image::run(&cli.data_dir, cmd),
        Command::Registry(args) => commands::registry::run(&cli.data_dir, args),
        Command::Lesson(cmd) => std::process::exit(commands::lesson::run(&cli.data_dir, cmd)),
        Command::Run(args) => {
            let code = commands::run::run(&cli.data_dir, *args)?;
            std::process::exit(code)
        }
    }
}
