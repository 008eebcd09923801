//! Berth's classroom web application: sessions, lab terminals in the
//! browser, the progress store.
//!
//! # Layout
//! - [`config`]: what `berth serve` is told (listen address, limits).
//! - [`classroom`]: live sessions, the pre-warmed pool, capacity, timeouts.
//! - [`terminal`]: a node's shell pty shared by WebSocket viewers, with
//!   replay, flow control and typed messages.
//! - [`routes`]: every route in one table; thin handlers.
//! - [`store`]: SQLite progress store with migrations.
//! - [`assets`], [`pages`]: the embedded browser files and HTML pages.
//! - [`error`]: the one HTTP error type.
//! - [`files`]: the editor's file API (a lab's files, in-root).
//! - [`workshop`]: workshops and the instructor's tools (board, demo).
//! - [`map`]: the live lab map (model, watcher per session, routes).
//! - [`runner`]: past one host: the front ↔ runner API, placement, health.
//!
//! Servers are testable by construction: [`routes::app`] builds the router,
//! [`run`] serves it on a listener until `shutdown` resolves.

pub mod assets;
pub mod classroom;
pub mod config;
pub mod error;
pub mod files;
pub mod grading;
pub mod lessons;
pub mod map;
pub mod pages;
pub mod preview;
pub mod ratelimit;
pub mod routes;
pub mod runner;
pub mod store;
pub mod terminal;
pub mod workshop;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use classroom::Classroom;
pub use config::ClassroomConfig;

/// Serves the classroom on `listener` until `shutdown` resolves (plain HTTP).
pub async fn run(
    listener: tokio::net::TcpListener,
    classroom: Arc<Classroom>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = routes::app(classroom);
    // Keystrokes are tiny writes: without TCP_NODELAY, Nagle's algorithm and
    // delayed ACKs add ~40 ms to every echo.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serves the classroom over HTTPS with the PEM certificate and key given.
pub async fn run_tls(
    listener: std::net::TcpListener,
    classroom: Arc<Classroom>,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let app = routes::app(classroom);
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    axum_server::from_tcp(listener)
        .acceptor(acceptor)
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await
}
