//! Lambda behind API Gateway: `GET /{key}?imageMogr2/...` (and `?imageInfo`, `?imageAve`) -> service::download.
//! Results are cached after answering, the environment held until the writes end (bootstrap::hold).

use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mogr::bootstrap::init_lambda();
    let mut service = mogr::bootstrap::service_from_env().await?;
    let hold = mogr::bootstrap::hold_for_background(&mut service).await;
    let (service, hold) = (&service, &hold);
    run(service_fn(move |mut req: Request| async move {
        let id = req.lambda_context_ref().map(|c| c.request_id.clone());
        let _answering = hold.answering(id.as_deref().unwrap_or_default());
        let log = mogr::service::AccessLog::start(&mut req, "download", id.as_deref());
        Ok::<Response<Body>, Error>(
            log.finish(service.handle(req, mogr::service::Routes::DOWNLOAD).await)
                .map(Body::from),
        )
    }))
    .await
}
