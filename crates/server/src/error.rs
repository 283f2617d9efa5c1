//! The one place errors become HTTP responses.
//!
//! Every error body is JSON: `{"error": "<code>", "message": "<sentence>"}`, plus
//! `"fields": [{"field", "message"}]` when specific input fields were wrong.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use warden_core::FieldError;
use warden_store::StoreError;
use warden_store::log::LogError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The input is wrong; `fields` says where.
    #[error("{message}")]
    InvalidRequest {
        /// Summary.
        message: String,
        /// Each bad field.
        fields: Vec<FieldError>,
    },
    /// No valid credential.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid credential that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Nothing is at that address (yet).
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the endpoint accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The log cannot do its job right now; nothing was done (fail closed).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// A bad value in one named field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::InvalidRequest {
            message: format!("`{field}` {message}"),
            fields: vec![FieldError { field: field.to_owned(), message }],
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    fields: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, fields): (StatusCode, &str, &[FieldError]) = match &self {
            Self::InvalidRequest { fields, .. } => (StatusCode::BAD_REQUEST, "invalid_request", fields),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", &[]),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", &[]),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", &[]),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", &[]),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &[]),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", &[])
            }
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "log_unavailable", &[]),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed closed");
        }
        let body = Body { error: code, message: self.to_string(), fields };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(format!("the log could not complete the request: {e}"))
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::BadRequest(m) => Self::InvalidRequest { message: m, fields: Vec::new() },
            LogError::NotFound(m) => Self::NotFound(m),
            LogError::Store(s) => s.into(),
        }
    }
}
