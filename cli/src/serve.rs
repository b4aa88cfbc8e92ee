//! `mogr serve`: the three ways over HTTP with a local folder as the bucket, calling the very same
//! `Service` functions as the Lambdas. A PUT also fires `on_upload`, as a bucket notification would
//! (before the PUT is answered, so what a client reads afterwards is final).

use crate::listen::{serve, unread, Guard};
use anyhow::{Context, Result};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use mogr::auth::AccessKeys;
use mogr::service::{self, Config, Service};
use mogr::store::DirStore;
use mogr::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Who may use the server.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Access {
    /// A `Host` the server answers to, besides the address it listens on (and `localhost` with its
    /// port when that is a loopback address); `*` answers to any. Other hosts get 403, so a web page
    /// whose name resolves to this machine (DNS rebinding) cannot drive the server. Repeatable.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    pub allow_hosts: Vec<String>,
    /// Writes (PUT, POST, DELETE, multipart uploads) need `Authorization: Bearer <TOKEN>`. Without
    /// it, anyone who reaches the server may write.
    #[arg(long, value_name = "TOKEN", env = "MOGR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// An access key whose signatures are accepted, `ID:SECRET` (repeatable; also `MOGR_ACCESS_KEYS`,
    /// comma-separated). With keys, every write and listing must be signed with one of them, as S3
    /// clients (AWS SigV4) and COS clients sign; downloads stay public.
    #[arg(long = "access-key", value_name = "ID:SECRET")]
    pub access_keys: Vec<String>,
    /// A file of access keys, `ID:SECRET`, one per line or comma-separated (kept out of the command
    /// line and the shell's history).
    #[arg(long, value_name = "FILE")]
    pub access_keys_file: Option<PathBuf>,
}

impl Access {
    /// The access keys of `--access-key` and `--access-keys-file` (the environment's are the
    /// service's own: `MOGR_ACCESS_KEYS`).
    fn keys(&self) -> Result<AccessKeys> {
        let mut all = self.access_keys.clone();
        if let Some(file) = &self.access_keys_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the access keys in {}", file.display()))?;
            all.extend(text.lines().map(str::to_string));
        }
        AccessKeys::parse(&all.join(",")).map_err(|e| anyhow::anyhow!("{}", e.message))
    }
}

/// [`Access`] settled for a listening address.
#[derive(Clone)]
struct Gate {
    /// Lower-case `Host` values answered; `None`: any.
    hosts: Option<Vec<String>>,
    token: Option<String>,
}

impl Gate {
    fn new(access: &Access, local: SocketAddr) -> Gate {
        let any = local.ip().is_unspecified() || access.allow_hosts.iter().any(|h| h == "*");
        let mut hosts = vec![local.to_string()];
        if local.ip().is_loopback() {
            hosts.push(format!("localhost:{}", local.port()));
        }
        hosts.extend(access.allow_hosts.iter().map(|h| h.to_ascii_lowercase()));
        let token = access.token.clone().filter(|t| !t.is_empty());
        Gate {
            hosts: (!any).then_some(hosts),
            token,
        }
    }

    /// Refuses a request whose `Host` is not answered, or a write without the token.
    fn check(&self, req: &Request) -> std::result::Result<(), Error> {
        let denied = |m: String| Error::new(mogr::Code::AccessDenied, m);
        if let Some(hosts) = &self.hosts {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !hosts.contains(&host) {
                return Err(denied(format!(
                    "this server answers to {} only, not Host {host:?}: use that address, or start \
                     mogr serve with --allow-host {host}",
                    hosts.join(", ")
                )));
            }
        }
        let read = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        if let (Some(token), false) = (&self.token, read) {
            let given = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !mogr::auth::same(given.as_bytes(), token.as_bytes()) {
                return Err(denied(format!(
                    "{} needs the server's token: send Authorization: Bearer <token> (the one mogr \
                     serve was started with, --token or MOGR_TOKEN)",
                    req.method()
                )));
            }
        }
        Ok(())
    }
}

pub async fn run(
    root: Option<PathBuf>,
    addr: SocketAddr,
    bucket: Option<String>,
    guard: Guard,
    access: Access,
    metrics: bool,
) -> Result<()> {
    let samples = root.is_none();
    let root = match root {
        Some(root) => root,
        None => samples_copy()?,
    };
    if !root.is_dir() {
        anyhow::bail!(
            "{} is not a folder: name the folder to serve with --root, or create it first (mkdir -p {})",
            root.display(),
            root.display()
        );
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                ": another program (another mogr serve?) listens there; pick another port with \
                 --addr 8081 (MOGR_ADDR=127.0.0.1:8081 for scripts/run.sh)"
            }
            std::io::ErrorKind::PermissionDenied => ": ports below 1024 need root; pick one above",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {addr} ({e}){hint}")
    })?;
    let local = listener.local_addr()?;
    let mut config = Config::from_env()?;
    // `Location` in UploadResult names this server unless the operator names a public host.
    config.public_host.get_or_insert_with(|| local.to_string());
    config.upload_expiry = Some(Duration::from_secs(guard.upload_expiry));
    // a server runs on after it answers: results are kept without holding the answer back
    config.detached_cache_writes = true;
    config.access_keys = std::mem::take(&mut config.access_keys).with(access.keys()?);
    let keys = config.access_keys.len();
    let store = Arc::new(DirStore::new(
        bucket.as_deref().unwrap_or("local"),
        root.clone(),
    ));
    let mut service = Service::new(config, store);
    if bucket.is_none() {
        service = service.answer_to_any_bucket_name();
    }
    let service = Arc::new(service);
    let spellings = cos_spellings().await?;
    let gate = Gate::new(&access, local);
    let signer = service.config.signer.clone();
    let app = axum::Router::new().fallback(handle).with_state(Server {
        service,
        guard,
        spellings,
        gate: Arc::new(gate),
        metrics: metrics.then(mogr::metrics::local_on),
    });
    println!("mogr serves {} at http://{local}/", root.display());
    if samples {
        println!(
            "(a copy of the shipped samples: writes land there, never in the checkout; delete the \
             folder to start over, or serve your own with --root DIR)"
        );
    }
    if let Some(sample) = first_image(&root) {
        let rule = "imageMogr2/format/heif";
        let path = signer
            .url(&sample, rule, 3600)
            .unwrap_or_else(|| format!("/{}?{rule}", mogr::store::encode_key(&sample)));
        println!("try: curl -o out.heic 'http://{local}{path}'");
    }
    let open = keys == 0 && access.token.as_deref().is_none_or(str::is_empty);
    if keys > 0 {
        println!(
            "writes and listings need a signature made with one of {keys} access keys (AWS SigV4 or COS)"
        );
    } else if open {
        println!("open: without --access-key or --token, whoever reaches this address may write");
    }
    if open && !local.ip().is_loopback() {
        eprintln!(
            "WARNING: mogr serves {local}, beyond this machine, with no access keys and no token: anyone \
             on the network may write, overwrite and delete. Give --access-key ID:SECRET (or --token)."
        );
    }
    serve(listener, app, guard).await
}

/// `--addr`: `host:port` (a name is resolved, IPv4 first) or a bare port on 127.0.0.1.
pub fn parse_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let hint = "give host:port (127.0.0.1:8080, localhost:8080) or a bare port (8080)";
    let found: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{s:?} is not an address to listen on ({e}): {hint}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address: {hint}"))
}

fn first_image(root: &std::path::Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| [".jpg", ".jpeg", ".png"].iter().any(|ext| n.ends_with(ext)))
        .collect();
    names.sort();
    names.into_iter().next()
}

#[derive(Clone)]
struct Server {
    service: Arc<Service>,
    guard: Guard,
    /// COS's spelling of response header names (see [`cos_spellings`]).
    spellings: http::Extensions,
    gate: Arc<Gate>,
    /// The Prometheus metrics, unless `--no-metrics`.
    metrics: Option<&'static mogr::metrics::Local>,
}

/// COS spells some response header names in mixed case (`ETag`, `Content-Length`), and Tencent's
/// Python SDK hands headers to its caller as a plain dict, as received: `response['ETag']` must match
/// exactly. hyper writes names in lower case unless a response carries the spellings it recorded
/// while parsing a request with `preserve_header_case` (a private type, meant for proxies forwarding
/// them). So a request spelling those names as COS does is parsed once, here, and its spellings are
/// given to every response.
async fn cos_spellings() -> Result<http::Extensions> {
    use tokio::io::AsyncWriteExt;
    let (mut client, server) = tokio::io::duplex(1024);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let recorder = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(req.extensions().clone());
        }
        async { Ok::<_, std::convert::Infallible>(hyper::Response::new(String::new())) }
    });
    let conn = http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(server), recorder);
    tokio::spawn(conn);
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nETag: x\r\nContent-Length: 0\r\nContent-Type: x\r\n\
              Cache-Control: x\r\nLocation: x\r\nRetry-After: x\r\nVary: x\r\nContent-Range: x\r\n\
              Last-Modified: x\r\nAccept-Ranges: x\r\nContent-Disposition: x\r\n\
              Content-Encoding: x\r\nContent-Language: x\r\nExpires: x\r\n\r\n",
        )
        .await?;
    Ok(rx.await?)
}

async fn handle(State(server): State<Server>, mut req: Request) -> Response {
    // One id per request, ours (a client's own id header is not taken), for the service's answer,
    // the access log and the client.
    let log = service::AccessLog::start(&mut req, "serve", None);
    let rid = service::request_id(&req);
    let mut resp = match server.gate.check(&req) {
        Ok(()) => answer(&server, req, &rid).await,
        Err(e) => unread(service::error_response(&e, req.uri().path(), &rid)),
    };
    if !resp.headers().contains_key("x-cos-request-id") {
        if let Ok(v) = http::HeaderValue::from_str(&rid) {
            resp.headers_mut().insert("x-cos-request-id", v);
        }
    }
    let mut resp = log.finish(resp).map(Body::from);
    resp.extensions_mut().extend(server.spellings);
    resp
}

/// Where `mogr serve` answers its metrics, reserved like every `_mogr/` key.
pub const METRICS_PATH: &str = "/_mogr/metrics";

/// `GET /_mogr/metrics`: the Prometheus metrics, when they are on (`--no-metrics` turns them off;
/// then the path is refused as any `_mogr/` key is).
fn metrics_page(server: &Server, req: &Request) -> Option<http::Response<Vec<u8>>> {
    let metrics = server.metrics?;
    if req.uri().path() != METRICS_PATH || req.method() != http::Method::GET {
        return None;
    }
    let (running, waiting) = server.service.queue_depth();
    let text = metrics.render(running, waiting);
    let mut resp = http::Response::builder()
        .header(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(text.into_bytes())
        .expect("static headers are valid");
    resp.extensions_mut().insert(service::Route("metrics"));
    Some(resp)
}

async fn answer(server: &Server, mut req: Request, rid: &str) -> http::Response<Vec<u8>> {
    let Server { service, guard, .. } = server;
    // Refused before its body is read: another bucket, or what mogr does not implement. From here on
    // the path is the key's, whichever style the client addressed.
    if let Err(e) = service
        .address(&mut req)
        .and_then(|()| service::check_implemented(&req, true))
    {
        return unread(service::error_response(&e, req.uri().path(), rid));
    }
    if let Some(resp) = metrics_page(server, &req) {
        return resp;
    }
    let (parts, body) = req.into_parts();
    // A body refused unread (too large, too slow): the connection closes after the answer.
    let refuse = |e: Error| unread(service::error_response(&e, parts.uri.path(), rid));
    let limit = service.config.limits.max_input_bytes;
    let too_large = || {
        Error::new(
            mogr::Code::EntityTooLarge,
            format!("the request body is over {limit} bytes, the limit"),
        )
    };
    // Refused from its header, before a byte of a body announced too large is read.
    let announced = (parts.headers.get(http::header::CONTENT_LENGTH))
        .map(|v| v.to_str().ok().and_then(|n| n.parse::<u64>().ok()));
    if announced.flatten() > Some(limit as u64) {
        return refuse(too_large());
    }
    // A body is held within the memory budget the service's work shares, before it is read.
    let body_bytes = match announced {
        Some(n) => n.unwrap_or(0),
        None if parts.headers.contains_key(http::header::TRANSFER_ENCODING) => limit as u64,
        None => 0,
    };
    let _held = match service.hold(body_bytes, "the request body") {
        Ok(held) => held,
        Err(e) => return refuse(e),
    };
    let timeout = Duration::from_secs(guard.body_timeout);
    let bytes = match tokio::time::timeout(timeout, to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return refuse(too_large()),
        Err(_) => {
            return refuse(Error::new(
                mogr::Code::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    guard.body_timeout
                ),
            ))
        }
    };
    let req = http::Request::from_parts(parts, bytes);
    // Listings hand out every key: off while downloads must be signed (the HTML index too while
    // listings need a signature).
    let listings = !service.config.signer.is_on();
    let page = listings && !service.keys_required();
    if let Some(mut resp) = crate::index::page(service, &req, page).await {
        resp.extensions_mut().insert(service::Route("index"));
        return resp;
    }
    let routes = service::Routes {
        writes: true,
        listings,
        notify: true,
    };
    service.handle(req, routes).await
}

/// The samples shipped with mogr (examples/), inside the binary.
const SAMPLES: &[(&str, &[u8])] = &[
    ("photo.jpg", include_bytes!("../../examples/photo.jpg")),
    ("photo.png", include_bytes!("../../examples/photo.png")),
    ("alpha.png", include_bytes!("../../examples/alpha.png")),
    (
        "screenshot.png",
        include_bytes!("../../examples/screenshot.png"),
    ),
    (
        "animated.gif",
        include_bytes!("../../examples/animated.gif"),
    ),
];

/// The folder `mogr serve` serves when given none: `mogr/samples` in the user's cache folder
/// (`$XDG_CACHE_HOME`, else `~/.cache`), holding the samples — written where missing, so what a user
/// wrote there stays, and a sample deleted comes back.
fn samples_copy() -> Result<PathBuf> {
    let cache = (std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set: name the folder to serve with --root")?;
    let dir = cache.join("mogr/samples");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, bytes) in SAMPLES {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str, method: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri("/x.jpg")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn the_gate_answers_its_own_hosts_and_writes_with_the_token() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let access = Access {
            allow_hosts: vec!["Photos.Example".into()],
            token: Some("t0ken".into()),
            ..Access::default()
        };
        let gate = Gate::new(&access, local);
        for ok in ["127.0.0.1:8080", "localhost:8080", "photos.example"] {
            assert!(gate.check(&with_host(ok, "GET")).is_ok(), "{ok}");
        }
        for no in ["evil.example", "127.0.0.1:9090", ""] {
            assert!(gate.check(&with_host(no, "GET")).is_err(), "{no:?}");
        }
        assert!(gate.check(&with_host("localhost:8080", "PUT")).is_err());
        let mut put = with_host("localhost:8080", "DELETE");
        put.headers_mut()
            .insert("authorization", "Bearer t0ken".parse().unwrap());
        assert!(gate.check(&put).is_ok());
        // Every interface: the names it is reached by are unknown, so any; `*` likewise.
        let any = Gate::new(&Access::default(), "0.0.0.0:8080".parse().unwrap());
        assert!(any.check(&with_host("anything", "PUT")).is_ok());
        let star = Access {
            allow_hosts: vec!["*".into()],
            ..Access::default()
        };
        assert!(Gate::new(&star, local)
            .check(&with_host("x", "GET"))
            .is_ok());
    }
}
