//! Lambda behind API Gateway: `POST /{key}?image_process` and `PUT /{key}` with `Pic-Operations`
//! -> service::process.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mogr::bootstrap::init_tracing(true);
    let service = mogr::bootstrap::service_from_env().await?;
    let service = &service;
    run(service_fn(move |req: Request| async move {
        Ok::<Response<Body>, Error>(service.process(req).await.map(Body::from))
    }))
    .await
}
