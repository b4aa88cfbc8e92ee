//! The socket side of `mogr serve`: hyper's HTTP/1 server with its timeouts, the cap on connections
//! and each client address's share of it, and a graceful stop.

use anyhow::Result;
use axum::body::Body;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use mogr::service;
use mogr::Error;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What protects the server from slow or greedy clients (conversions themselves queue in the service:
/// `MOGR_WORKERS`, `MOGR_QUEUE`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Guard {
    /// Seconds a client may take to send a request's headers before the connection is closed.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a client may take to send a request's body before it is answered 408.
    #[arg(long, default_value_t = 60)]
    pub body_timeout: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds an answer may stall (the client reading none of it) before the connection is closed.
    #[arg(long, default_value_t = 30)]
    pub send_timeout: u64,
    /// Connections one client address may hold at once (default: half of --max-connections), so that
    /// no one client can take them all; past it, a connection is answered 503 `SlowDown` and closed.
    #[arg(long, value_name = "N")]
    pub client_connections: Option<usize>,
    /// Seconds after which a multipart upload left unfinished is removed with its parts (S3's
    /// lifecycle rule `AbortIncompleteMultipartUpload`); default 7 days.
    #[arg(long, value_name = "SECONDS", default_value_t = 7 * 24 * 3600)]
    pub upload_expiry: u64,
}

impl Guard {
    pub fn client_share(&self) -> usize {
        self.client_connections
            .unwrap_or(self.max_connections / 2)
            .max(1)
    }
}

/// Connections held per client address (see [`Guard::client_connections`]).
#[derive(Default)]
struct PerClient(std::sync::Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its client's share until dropped.
struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `share` already.
    fn take(self: &Arc<Self>, ip: IpAddr, share: usize) -> Option<ClientSlot> {
        let mut counts = self.counts();
        let held = counts.entry(ip).or_default();
        if *held >= share {
            return None;
        }
        *held += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.clients.counts();
        if let Some(held) = counts.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// hyper's HTTP/1 server with a timer, so that its header-read timeout fires (`axum::serve` runs
/// without one), a send timeout (a client that stops reading an answer lets its connection go), a cap
/// on open connections and a share of it per client address, and a graceful stop on Ctrl-C.
pub async fn serve(listener: TcpListener, app: axum::Router, guard: Guard) -> Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(guard.header_timeout))
        .preserve_header_case(true);
    let mut refusing = http.clone();
    refusing.keep_alive(false);
    let open = Arc::new(Semaphore::new(guard.max_connections.max(1)));
    // Connections answered 503 for being past their client's share: as many as are served, then closed
    // unanswered.
    let refusals = Arc::new(Semaphore::new(guard.max_connections.max(1)));
    let clients = Arc::new(PerClient::default());
    let share = guard.client_share();
    let graceful = GracefulShutdown::new();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p?,
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // e.g. out of file descriptors: wait instead of spinning
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true); // small responses go out at once, not after a delayed ACK
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(Duration::from_secs(guard.send_timeout)));
        let io = TokioIo::new(Box::pin(stream));
        let Some(slot) = clients.take(peer.ip(), share) else {
            drop(permit); // an answer of refusal does not hold a place of the served
            let Ok(refusal) = refusals.clone().try_acquire_owned() else {
                continue; // closed unanswered
            };
            tracing::warn!(client = %peer.ip(), share, "connection past its client's share refused");
            let conn = refusing.serve_connection(
                io,
                hyper::service::service_fn(move |mut req| {
                    let log = service::AccessLog::start(&mut req, "serve", None);
                    let refused = Error::new(
                        mogr::Code::SlowDown,
                        format!(
                            "this client address holds {share} connections already, the most one \
                         client may hold here: reuse them (keep-alive) or retry when one closes"
                        ),
                    );
                    let resp = service::error_response(
                        &refused,
                        req.uri().path(),
                        &service::request_id(&req),
                    );
                    let resp = log.finish(unread(resp)).map(Body::from);
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                }),
            );
            tokio::spawn(async move {
                let _ = conn.await;
                drop(refusal);
            });
            continue;
        };
        let conn = http.serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop((slot, permit)); // the client's count first: the next accept may check it at once
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    Ok(())
}

/// An answer to a request whose body was not read: the connection closes after it, so that a client
/// still sending the body does not reuse a connection hyper is about to drop.
pub fn unread(mut resp: http::Response<Vec<u8>>) -> http::Response<Vec<u8>> {
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}
