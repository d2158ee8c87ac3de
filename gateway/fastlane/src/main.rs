//! fhirlab-fastlane: the compiled front of the fhirlab FHIR gateway.
//!
//! Listens on the gateway's public port, serves by itself only plain reads and searches the
//! Python gateway vetted the token for (checked exactly as the gateway would check them), and
//! relays every other request to the Python gateway unchanged (gateway/fast_lane.py).
//!
//! Usage: `fhirlab-fastlane CONFIG.json`. This file: configuration, runtime, accept loop and
//! shutdown (SIGTERM/SIGINT: stop accepting, finish in-flight requests for up to 10 s, flush
//! the events, exit 0).

mod checks;
mod config;
mod events;
mod grants;
mod json;
mod lane;
mod server;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::events::Events;
use crate::server::App;

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = args.as_slice() else {
        eprintln!("usage: fhirlab-fastlane CONFIG.json");
        return ExitCode::from(2);
    };
    let cfg = match Config::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("fastlane: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = if cfg.threads > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fastlane: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run(cfg));
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn run(cfg: Config) -> ExitCode {
    let listener = match TcpListener::bind(cfg.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fastlane: cannot listen on {}: {e}", cfg.listen);
            return ExitCode::from(2);
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("fastlane: cannot watch for SIGTERM/SIGINT");
        return ExitCode::from(2);
    };
    let (events, writer) = Events::start(Box::new(std::io::stdout()));
    let app = Arc::new(App::new(cfg, events.clone()));
    match listener.local_addr() {
        Ok(addr) => eprintln!("fastlane: listening on {addr}"),
        Err(_) => eprintln!("fastlane: listening on {}", app.cfg.listen),
    }
    serve(listener, app, async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
    .await;
    events.stop();
    if writer.join().is_err() {
        eprintln!("fastlane: the event writer failed");
    }
    ExitCode::SUCCESS
}

/// Accept connections until `shutdown` completes, then let in-flight requests finish (up to
/// `DRAIN`).
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()); // header read timeout (slow clients)
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // out of file descriptors and the like: do not spin
                    eprintln!("fastlane: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| server::handle(app.clone(), req));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await; // a client gone mid-request is not worth a line
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("fastlane: requests still running after {DRAIN:?}; stopping anyway");
    }
}
