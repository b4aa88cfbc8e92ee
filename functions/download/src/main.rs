//! Lambda behind API Gateway: `GET /{key}?imageMogr2/...` (and `?imageInfo`, `?imageAve`) -> service::download.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mogr::bootstrap::init_tracing(true);
    let service = mogr::bootstrap::service_from_env().await?;
    let service = &service;
    run(service_fn(move |req: Request| async move {
        let log = mogr::service::AccessLog::start(&req);
        Ok::<Response<Body>, Error>(
            log.finish(service.handle(req, mogr::service::Routes::DOWNLOAD).await)
                .map(Body::from),
        )
    }))
    .await
}
