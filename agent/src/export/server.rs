//! The HTTP endpoint: `/metrics` in the Prometheus text format, the `/` status page, `/healthz`
//! and `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;

use super::status_page;
use super::web::WebSecurity;
use crate::status::StatusBoard;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the listener; call before starting suites so a taken port fails fast.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Which suites have not finished a run since the agent started: `/readyz` answers 503 until
/// every suite has, so a scrape after readiness sees real values.
#[derive(Debug, Default)]
pub struct Readiness {
    pending: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Readiness {
    pub fn new<'a>(suites: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            pending: std::sync::Mutex::new(suites.into_iter().map(str::to_owned).collect()),
        }
    }

    /// Marks a suite's first run as done.
    pub fn ran(&self, suite: &str) {
        self.lock().remove(suite);
    }

    /// The suites still waiting for their first run.
    pub fn pending(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the endpoint serves from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub registry: prometheus::Registry,
    pub readiness: std::sync::Arc<Readiness>,
    pub status: std::sync::Arc<StatusBoard>,
}

/// Serves connections until the task is dropped or aborted.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    security: Option<std::sync::Arc<WebSecurity>>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "failed to accept a /metrics connection");
                continue;
            }
        };
        let sources = sources.clone();
        let security = security.clone();
        tokio::spawn(async move {
            let auth = security.clone();
            let service = service_fn(move |request| {
                let sources = sources.clone();
                let auth = auth.clone();
                async move {
                    let allowed = auth.as_ref().is_none_or(|security| {
                        security.authorized(
                            request
                                .headers()
                                .get(AUTHORIZATION)
                                .map(|value| value.as_bytes()),
                        )
                    });
                    Ok::<_, Infallible>(match auth.as_ref() {
                        Some(security) if !allowed => unauthorized(security.challenge()),
                        _ => route(&request, &sources),
                    })
                }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            let served = match security.as_ref().and_then(|s| s.tls.clone()) {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
}

fn route(request: &Request<Incoming>, sources: &Sources) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => metrics(&sources.registry),
        (&Method::GET, "/") => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            status_page::render(&sources.status.snapshot(), std::time::SystemTime::now())
                .into_bytes(),
        ),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => match sources.readiness.pending().as_slice() {
            [] => text(StatusCode::OK, "ready\n"),
            pending => response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("waiting for the first run of: {}\n", pending.join(", ")).into_bytes(),
            ),
        },
        (&Method::GET, _) => text(StatusCode::NOT_FOUND, "not found; try / or /metrics\n"),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

/// The registry in the Prometheus text exposition format, as `/metrics` serves it.
pub fn exposition(registry: &prometheus::Registry) -> Result<Vec<u8>, prometheus::Error> {
    let mut body = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut body)?;
    Ok(body)
}

fn metrics(registry: &prometheus::Registry) -> Response<Full<Bytes>> {
    match exposition(registry) {
        Ok(body) => response(StatusCode::OK, TextEncoder::new().format_type(), body),
        Err(error) => {
            tracing::error!(%error, "failed to encode metrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to encode metrics\n",
            )
        }
    }
}

/// 401 with the challenge; which part of the credentials was wrong is never told or logged.
fn unauthorized(challenge: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static(challenge),
    );
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
