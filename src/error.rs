//! One error type for the whole service. Each kind maps to one HTTP status (with the JSON
//! body `{"error": "...", "detail": ...}`) and to one CLI exit code, so the API and the CLI
//! report the same failure the same way.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

/// What went wrong, as far as a caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something invalid: fix the input and retry.
    BadRequest,
    /// Missing or wrong API token.
    Unauthorized,
    /// A request gaffer refuses whoever sends it (a foreign Host, a cross-site request).
    Forbidden,
    /// The named thing does not exist.
    NotFound,
    /// The request clashes with the current state (duplicate, wrong mode).
    Conflict,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The body is not JSON (or not declared as such).
    UnsupportedMediaType,
    /// A dependency (database, GitHub, Ollama) failed; retrying later may help.
    Unavailable,
    /// A bug or an unexpected state.
    Internal,
}

/// An error a user can act on: a one-line message and optional structured detail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<Value>,
}

/// The result type of every service call.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// Attaches structured detail (which field, what is allowed) for API clients.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The process exit code the CLI uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::BadRequest
            | ErrorKind::PayloadTooLarge
            | ErrorKind::UnsupportedMediaType => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::Conflict => 4,
            ErrorKind::Unauthorized | ErrorKind::Forbidden => 5,
            ErrorKind::Unavailable => 6,
            ErrorKind::Internal => 1,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        AppError::new(ErrorKind::Unavailable, format!("database error: {err}"))
    }
}

impl From<sqlx::migrate::MigrateError> for AppError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        AppError::new(
            ErrorKind::Unavailable,
            format!("database migration failed: {err}"),
        )
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.kind == ErrorKind::Unauthorized {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(json!({ "error": self.message, "detail": self.detail }))
    }
}
