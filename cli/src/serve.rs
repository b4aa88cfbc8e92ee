//! `mogr serve`: the three ways over HTTP with a local folder as the bucket, calling the very same
//! `Service` functions as the Lambdas. A PUT also fires `on_upload`, as a bucket notification would
//! (before the PUT is answered, so what a client reads afterwards is final).

use anyhow::{Context, Result};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use mogr::service::{self, Config, Service};
use mogr::store::DirStore;
use mogr::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub async fn run(root: PathBuf, addr: SocketAddr, bucket: String) -> Result<()> {
    mogr::bootstrap::init_tracing(false);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let config = Config::from_env()?;
    let service = Arc::new(Service::new(
        config,
        Arc::new(DirStore::new(bucket, root.clone())),
    ));
    let app = axum::Router::new().fallback(handle).with_state(service);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!("mogr serves {} at http://{local}/", root.display());
    if let Some(sample) = first_image(&root) {
        println!(
            "try: curl -o out.heic 'http://{local}/{}?imageMogr2/format/heif'",
            mogr::store::encode_key(&sample)
        );
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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

async fn handle(State(service): State<Arc<Service>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let limit = service.config.limits.max_input_bytes;
    let bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = Error::new(
                mogr::Code::EntityTooLarge,
                format!("the request body is over {limit} bytes"),
            );
            return service::error_response(&e, parts.uri.path(), "local").map(Body::from);
        }
    };
    let req = http::Request::from_parts(parts, bytes);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match method {
        http::Method::GET | http::Method::HEAD => service.download(req).await,
        http::Method::POST => service.process(req).await,
        http::Method::PUT => {
            let resp = service.process(req).await;
            if resp.status().is_success() {
                if let Ok(key) = mogr::store::key_of(&path) {
                    match service.on_upload(&key).await {
                        Ok(outcome) => {
                            tracing::info!(key, outcome = ?outcome, "upload notification")
                        }
                        Err(e) => tracing::warn!(key, error = %e, "upload notification failed"),
                    }
                }
            }
            resp
        }
        m => {
            let e = Error::invalid(format!(
                "{m} is not supported: use GET, HEAD, POST ?image_process or PUT"
            ));
            service::error_response(&e, &path, "local")
        }
    };
    resp.map(Body::from)
}
