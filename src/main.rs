//! `berth`: the Docker classroom in one binary.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "A Docker classroom in one binary")]
struct Cli {
    /// Data directory holding images, containers and state.
    #[arg(long, global = true, env = "BERTH_DATA_DIR", default_value = berth_runtime::datadir::DEFAULT_DATA_DIR)]
    data_dir: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = cli.data_dir;
    match cli.command {}
}
