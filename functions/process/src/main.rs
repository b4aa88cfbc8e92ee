//! Lambda behind API Gateway: the writes — `POST /{key}?image_process`, `PUT /{key}` (with or without
//! `Pic-Operations`) and `DELETE /{key}` -> service::process.

use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mogr::bootstrap::init_lambda();
    let service = mogr::bootstrap::service_from_env().await?;
    let service = &service;
    run(service_fn(move |mut req: Request| async move {
        let id = req.lambda_context_ref().map(|c| c.request_id.clone());
        let log = mogr::service::AccessLog::start(&mut req, "process", id.as_deref());
        Ok::<Response<Body>, Error>(
            log.finish(service.handle(req, mogr::service::Routes::PROCESS).await)
                .map(Body::from),
        )
    }))
    .await
}
