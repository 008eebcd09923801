//! `berth registry --listen ADDR`: the classroom registry alone.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use berth_runtime::registry::{Access, Grant, Server};

/// Arguments of `berth registry`.
#[derive(clap::Args)]
pub struct RegistryArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: String,
    /// Grant a token its namespace (`TOKEN=NAMESPACE`, repeatable). Without
    /// any, the registry is open to every client.
    #[arg(long = "token", value_name = "TOKEN=NAMESPACE")]
    tokens: Vec<String>,
    /// A namespace every token may read (repeatable).
    #[arg(long = "shared", value_name = "NAMESPACE")]
    shared: Vec<String>,
}

/// Serves until SIGINT or SIGTERM. Storage is `<data-dir>/registry`.
pub fn run(data_dir: &Path, args: RegistryArgs) -> anyhow::Result<()> {
    let access = if args.tokens.is_empty() {
        Access::Open
    } else {
        let mut map = HashMap::new();
        for t in &args.tokens {
            let (token, namespace) = t
                .split_once('=')
                .with_context(|| format!("--token {t}: expected TOKEN=NAMESPACE"))?;
            map.insert(
                token.to_string(),
                Grant {
                    namespace: namespace.to_string(),
                },
            );
        }
        Access::Tokens(map)
    };
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let server = Server::open(&data_dir.join("registry"), access)?;
    for ns in &args.shared {
        server.open_shared(ns);
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        // The address on stdout, so whoever started us on port 0 learns it.
        println!("berth registry listening on {}", listener.local_addr()?);
        use std::io::Write;
        std::io::stdout().flush()?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = server.serve(listener) => r?,
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok(())
    })
}
