//! `crowsnest run`: the daemon. Serves HTTP at once (liveness, readiness,
//! metrics, status, webhooks), opens or clones the repository, then lets
//! the scheduler scan and reconcile until SIGTERM or SIGINT.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use crate::cli::{Exit, RunArgs};
use crate::commands::report;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::model::{Secret, Shard};
use crate::registry::Registry;
use crate::scheduler::{Scheduler, SchedulerOptions};
use crate::status::{Status, timestamp};
use crate::tagcache::TagCache;

/// Webhook triggers waiting for the scheduler before hooks answer 503.
const TRIGGER_QUEUE: usize = 1024;

pub async fn run(args: RunArgs) -> Exit {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return Exit::Usage;
        }
    };
    let shard = match args.shard.as_deref().map(Shard::parse).transpose() {
        Ok(shard) => shard,
        Err(message) => {
            eprintln!("error: --shard: {message}");
            return Exit::Usage;
        }
    };
    let token = match &config.http.webhook_token_file {
        Some(path) => match Secret::read_file(path) {
            Ok(token) if !token.expose().trim().is_empty() => Some(token),
            Ok(_) => {
                eprintln!(
                    "error: {}: http.webhookTokenFile {} is empty",
                    config.source.display(),
                    path.display()
                );
                return Exit::Usage;
            }
            Err(e) => {
                eprintln!(
                    "error: {}: cannot read http.webhookTokenFile {}: {e}",
                    config.source.display(),
                    path.display()
                );
                return Exit::Usage;
            }
        },
        None => None,
    };
    let registry = match Registry::new(&config.registries) {
        Ok(registry) => registry,
        Err(e) => {
            report(&e);
            return Exit::Failed;
        }
    };
    let cache = match TagCache::open(&config.state_dir.join("tags")) {
        Ok(cache) => cache,
        Err(e) => {
            report(&e);
            return Exit::Failed;
        }
    };
    let metrics = Arc::new(Metrics::new(|r| registry.register_metrics(r)));
    let status = Arc::new(RwLock::new(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        shard: shard.map(|s| s.to_string()),
        started_at: timestamp(SystemTime::now()),
        ..Status::default()
    }));
    let listener = match tokio::net::TcpListener::bind(config.http.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "error: {}: cannot listen on http.listen {}: {e}",
                config.source.display(),
                config.http.listen
            );
            return Exit::Failed;
        }
    };
    let (trigger_tx, trigger_rx) = mpsc::channel(TRIGGER_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let app = http::router(Arc::new(AppState {
        status: status.clone(),
        metrics: metrics.clone(),
        triggers: trigger_tx,
        token,
    }));
    let address = listener.local_addr().unwrap_or(config.http.listen);
    info!(listen = %address, cached_repositories = cache.len(), shard = shard.map(|s| s.to_string()).unwrap_or_default(), "crowsnest run: serving");
    let mut server_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested");
        let _ = shutdown_tx.send(true);
    });
    let scheduler = Scheduler::new(
        config,
        SchedulerOptions {
            shard,
            shutdown_deadline: args.shutdown_timeout,
            ..SchedulerOptions::default()
        },
        registry,
        Arc::new(cache),
        status,
        metrics,
    );
    scheduler.run(trigger_rx, shutdown_rx).await;
    match server.await {
        Ok(Ok(())) => {
            info!("stopped cleanly");
            Exit::Ok
        }
        Ok(Err(e)) => {
            error!(error = %e, "the HTTP server failed");
            Exit::Failed
        }
        Err(e) => {
            error!(error = %e, "the HTTP server task failed");
            Exit::Failed
        }
    }
}

/// SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
