//! A proxy in front of the S3-protocol test server that misbehaves on demand: down, slow, answering 5xx
//! or 403, or cutting a response off mid-body — for some requests only, or the first few.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What the proxy does to a request it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The connection is closed before any answer, as a server that is down or restarting.
    Down,
    /// The request reaches the server at once, its answer this late (a write lands; its client may
    /// have given up by then).
    Slow(Duration),
    /// This status with an S3 `<Error>` of this code, without asking the server (500 InternalError,
    /// 503 SlowDown, 403 AccessDenied...).
    Status(u16, &'static str),
    /// The request reaches the server; its answer's body is cut off halfway and the connection
    /// dropped (an answer with no body, a write's, is dropped whole: the write landed, its answer lost).
    CutBody,
}

/// Which requests a fault applies to, and how many times.
#[derive(Debug, Clone)]
pub struct Plan {
    pub fault: Fault,
    /// Only requests with this method (`GET`, `PUT`, `HEAD`, ...); any when `None`.
    pub method: Option<&'static str>,
    /// Only requests whose path contains this; any when `None`.
    pub path: Option<String>,
    /// Only the first this many matching requests; all when `None`.
    pub times: Option<usize>,
}

impl Plan {
    /// `fault` on every request.
    pub fn always(fault: Fault) -> Plan {
        Plan {
            fault,
            method: None,
            path: None,
            times: None,
        }
    }

    /// `fault` on requests with `method` whose path contains `path`.
    pub fn on(fault: Fault, method: &'static str, path: &str) -> Plan {
        Plan {
            fault,
            method: Some(method),
            path: Some(path.to_string()),
            times: None,
        }
    }

    pub fn times(mut self, n: usize) -> Plan {
        self.times = Some(n);
        self
    }
}

#[derive(Default)]
struct State {
    plan: Option<Plan>,
    /// Requests seen, as `METHOD path`, with when they arrived.
    seen: Vec<(Instant, String)>,
    injected: usize,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to `upstream`, passing everything through until [`FaultProxy::set`].
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (state, client) = (shared.clone(), client.clone());
                let service = hyper::service::service_fn(move |req| {
                    relay(req, upstream, state.clone(), client.clone())
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, misbehave as `plan` says (`None`: pass everything through).
    pub fn set(&self, plan: Option<Plan>) {
        let mut s = self.state.lock().unwrap();
        s.plan = plan;
        s.injected = 0;
        s.seen.clear();
    }

    /// How many requests the current plan has hit.
    pub fn injected(&self) -> usize {
        self.state.lock().unwrap().injected
    }

    /// The requests seen since the last [`FaultProxy::set`], as `METHOD path`.
    pub fn seen(&self) -> Vec<String> {
        self.seen_at().into_iter().map(|(_, r)| r).collect()
    }

    /// [`FaultProxy::seen`] with when each request arrived.
    pub fn seen_at(&self) -> Vec<(Instant, String)> {
        self.state.lock().unwrap().seen.clone()
    }

    /// An S3 client through this proxy, with mogr's retries and timeouts as `policy` says.
    pub fn client(&self, policy: mogr::store::S3Policy) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            crate::ACCESS_KEY,
            crate::SECRET_KEY,
            None,
            None,
            "mogr-tests",
        );
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(crate::REGION))
            .credentials_provider(creds)
            .endpoint_url(self.endpoint())
            .force_path_style(true);
        aws_sdk_s3::Client::from_conf(policy.apply(conf).build())
    }
}

type Answer = hyper::Response<Cut>;

async fn relay(
    req: hyper::Request<Incoming>,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    client: Client<HttpConnector, Full<Bytes>>,
) -> Result<Answer, std::io::Error> {
    let fault = {
        let mut s = state.lock().unwrap();
        s.seen.push((
            Instant::now(),
            format!("{} {}", req.method(), req.uri().path()),
        ));
        let hit = s.plan.as_ref().is_some_and(|p| {
            p.method.is_none_or(|m| req.method().as_str() == m)
                && p.path
                    .as_ref()
                    .is_none_or(|path| req.uri().path().contains(path.as_str()))
                && p.times.is_none_or(|n| s.injected < n)
        });
        if hit {
            s.injected += 1;
        }
        hit.then(|| s.plan.as_ref().unwrap().fault.clone())
    };
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    match fault {
        Some(Fault::Down) => return Err(std::io::Error::other("down")),
        Some(Fault::Status(status, code)) => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>"
            );
            return Ok(hyper::Response::builder()
                .status(status)
                .header("content-type", "application/xml")
                .body(Cut::whole(Bytes::from(xml)))
                .unwrap());
        }
        _ => {}
    }
    let mut forward = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(format!(
            "http://{upstream}{}",
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        ));
    for (k, v) in &parts.headers {
        if k != "transfer-encoding" && k != "connection" && k != "content-length" {
            forward = forward.header(k, v);
        }
    }
    let resp = client
        .request(forward.body(Full::new(body)).unwrap())
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if let Some(Fault::Slow(d)) = fault {
        tokio::time::sleep(d).await;
    }
    let body = match fault {
        Some(Fault::CutBody) if body.len() > 1 => Cut::halfway(body),
        Some(Fault::CutBody) => return Err(std::io::Error::other("answer lost")),
        _ => Cut::whole(body),
    };
    Ok(hyper::Response::from_parts(parts, body))
}

/// A response body, whole or cut off halfway with an error (so hyper drops the connection, the
/// announced length unmet).
pub struct Cut {
    data: Option<Bytes>,
    fail: bool,
}

impl Cut {
    fn whole(data: Bytes) -> Cut {
        Cut {
            data: Some(data),
            fail: false,
        }
    }

    fn halfway(data: Bytes) -> Cut {
        Cut {
            data: Some(data.slice(..data.len() / 2)),
            fail: true,
        }
    }
}

impl http_body::Body for Cut {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if std::mem::take(&mut self.fail) {
            return Poll::Ready(Some(Err(std::io::Error::other(
                "cut off by the test proxy",
            ))));
        }
        Poll::Ready(None)
    }
}
