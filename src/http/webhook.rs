//! `POST /webhook` (and `/github/webhook`): read the body up to the limit (413 beyond it,
//! without reading it all), then hand it to [`crate::webhook`]. GitHub signs deliveries,
//! so this route takes no API token.

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use futures_util::StreamExt;

use crate::error::{AppError, ErrorKind};
use crate::webhook::{self, Incoming};
use crate::Gaffer;

fn too_large(limit: usize) -> AppError {
    AppError::new(
        ErrorKind::PayloadTooLarge,
        format!("webhook body over {limit} bytes (GAFFER_WEBHOOK_MAX_BODY)"),
    )
}

#[utoipa::path(post, path = "/webhook", tag = "webhooks",
    responses((status = 200, description = "ping answered"), (status = 202, description = "accepted (or a replay, or ignored)"),
              (status = 400, description = "not JSON, or a GitHub header missing"), (status = 401, description = "missing or wrong signature"),
              (status = 413, description = "body over the limit")))]
pub async fn receive(
    req: HttpRequest,
    mut payload: web::Payload,
    gaffer: web::Data<Gaffer>,
) -> Result<HttpResponse, AppError> {
    let limit = gaffer.settings.webhook.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::bad_request(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let incoming = Incoming {
        event: header("x-github-event"),
        delivery: header("x-github-delivery"),
        signature: header("x-hub-signature-256"),
    };
    let ack = webhook::accept(&gaffer.into_inner(), incoming, &body).await?;
    Ok(
        HttpResponse::build(StatusCode::from_u16(ack.status).unwrap_or(StatusCode::ACCEPTED))
            .json(ack.body),
    )
}
