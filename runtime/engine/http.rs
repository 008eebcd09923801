//! HTTP plumbing of the Engine API: the response body type (whole or
//! streamed), Docker's error shape, query strings and `filters`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use crate::container::ContainerError;
use crate::image::ImageError;
use crate::net::NetError;
use crate::volume::VolumeError;

/// The API version Berth speaks (the 28.x CLI's own; 20.10's 1.41 is accepted).
pub const API_VERSION: &str = "1.50";
/// The oldest API version accepted in paths.
pub const MIN_API_VERSION: &str = "1.24";

/// A response body: bytes at once, or a stream fed by a task.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    /// A whole body's length, so hyper sends `Content-Length` as dockerd
    /// does for every answer that is not a stream: docker-py raises an
    /// error answer of `/build` (and others it reads as streams) only when
    /// it is not chunked.
    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(bytes) => {
                hyper::body::SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// A response of the Engine API.
pub type Reply = Response<Body>;

/// A streamed response's writer: send chunks; dropping it ends the body.
pub type Sink = mpsc::Sender<Bytes>;

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Reply {
    let mut r = Response::new(Body::Full(None));
    *r.status_mut() = status;
    r
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut r = Response::new(Body::Full(Some(Bytes::from(
        serde_json::to_vec(value).unwrap_or_default(),
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A streamed response with `content_type`; returns the response (to send
/// now, so the client sees the headers at once) and its writer.
pub fn stream(content_type: &'static str) -> (Reply, Sink) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = Response::new(Body::Stream(rx));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    (r, tx)
}

/// An error as Docker answers it: a status and `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The response carrying this error.
    pub fn reply(&self) -> Reply {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, message = %self.message, "request failed");
        }
        json(self.status, &serde_json::json!({ "message": self.message }))
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        let message = e.to_string();
        let status = match &e {
            E::Container(c) => match c {
                ContainerError::NotFound(_) | ContainerError::PathNotFound(_) => {
                    StatusCode::NOT_FOUND
                }
                ContainerError::Conflict(_) => StatusCode::CONFLICT,
                ContainerError::Forbidden(_) => StatusCode::FORBIDDEN,
                ContainerError::NoCommand
                | ContainerError::InvalidConfig(_)
                | ContainerError::Ambiguous(_) => StatusCode::BAD_REQUEST,
                ContainerError::Cgroup(c) if c.is_invalid_limits() => StatusCode::BAD_REQUEST,
                ContainerError::Image(ImageError::NotFound(_)) => StatusCode::NOT_FOUND,
                ContainerError::Image(ImageError::InvalidReference | ImageError::Uppercase(_)) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            E::Image(ImageError::NotFound(_)) => StatusCode::NOT_FOUND,
            E::Image(
                ImageError::InvalidReference | ImageError::Uppercase(_) | ImageError::Invalid(_),
            ) => StatusCode::BAD_REQUEST,
            E::Image(ImageError::Conflict(_)) => StatusCode::CONFLICT,
            E::Net(n) => match n {
                NetError::NotFound(_) => StatusCode::NOT_FOUND,
                NetError::Conflict(_) => StatusCode::CONFLICT,
                NetError::Invalid(_) => StatusCode::BAD_REQUEST,
                NetError::Forbidden(_) => StatusCode::FORBIDDEN,
                NetError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            E::Volume(v) => match v {
                VolumeError::NotFound(_) => StatusCode::NOT_FOUND,
                VolumeError::Conflict(_) => StatusCode::CONFLICT,
                VolumeError::Invalid(_) => StatusCode::BAD_REQUEST,
                VolumeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self { status, message }
    }
}

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<NetError> for ApiError {
    fn from(e: NetError) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        crate::Error::from(e).into()
    }
}

/// What a handler returns.
pub type ApiResult = Result<Reply, ApiError>;

/// A request's query string, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key (`t=a&t=b`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Docker's booleans: `1`, `true`, `True` (and a bare key).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True" | "TRUE" | ""))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v}"))),
        }
    }

    /// The `filters` parameter: `{"key":{"value":true}}` or `{"key":["value"]}`.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        let Some(raw) = self.get("filters").filter(|f| !f.is_empty()) else {
            return Ok(Filters::default());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let mut map = BTreeMap::new();
        if let serde_json::Value::Object(obj) = value {
            for (key, v) in obj {
                let values: Vec<String> = match v {
                    serde_json::Value::Object(m) => m
                        .into_iter()
                        .filter(|(_, on)| on.as_bool().unwrap_or(true))
                        .map(|(k, _)| k)
                        .collect(),
                    serde_json::Value::Array(a) => a
                        .into_iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    serde_json::Value::String(s) => vec![s],
                    _ => Vec::new(),
                };
                map.insert(key, values);
            }
        } else {
            return Err(ApiError::bad_request("invalid filter: not an object"));
        }
        Ok(Filters(map))
    }
}

/// Decoded `filters`: each key with its accepted values (any one matches).
#[derive(Debug, Default, Clone)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Fails on keys outside `known`, with Docker's message.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// Whether `labels` satisfy every `label` filter (`key` or `key=value`).
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.values("label")
            .iter()
            .all(|f| match f.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(f.as_str()),
            })
    }
}

/// Reads a whole request body (chunked or not) into memory, at most
/// `limit` bytes: for small JSON bodies. Large ones (archives, build
/// contexts) go to disk with [`super::body::spool_body`].
pub async fn read_body(body: hyper::body::Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limit);
    limited.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large: more than {} KiB", limit >> 10),
            )
        } else {
            ApiError::bad_request(format!("reading request body: {e}"))
        }
    })
}

/// Parses a JSON request body (an empty body is `T::default()`).
pub fn parse_json<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}
