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
use tokio::net::TcpListener;

use super::connections::{
    AcceptBackoff, ConnectionLimits, Connections, LogEvery, OnConnectionError,
};
use super::web::WebSecurity;
use super::{status_page, suite_page};
use crate::consumers::{Readiness, StatusBoard};
use crate::export::prometheus::{content_type, exposition};

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

/// What the endpoint serves from.
#[derive(Clone)]
pub struct Sources {
    pub registry: prometheus::Registry,
    /// The same, as OpenMetrics with exemplars.
    pub openmetrics: std::sync::Arc<crate::export::OpenMetrics>,
    pub readiness: std::sync::Arc<Readiness>,
    pub status: std::sync::Arc<StatusBoard>,
    /// Counts refused and failed connections (`testmeter_http_connection_errors_total`).
    pub connection_errors: OnConnectionError,
    /// The per-test history's store, read by the suites' pages; `None` when history is off.
    pub history: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// Serves connections until the task is dropped or aborted. At most `limits.max_connections`
/// are open at once: past it the connection idle longest is closed to make room, and when
/// every one is serving a request the new one is closed as soon as it is accepted. A client has
/// `header_read_timeout` to send each request's headers (and a kept-alive connection waits
/// no longer idle), and a connection is closed after its response once it is
/// `max_connection_age` old. When `accept` fails the loop backs off instead of spinning.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    security: Option<std::sync::Arc<WebSecurity>>,
    limits: ConnectionLimits,
) {
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let connections = std::sync::Arc::new(Connections::default());
    let mut backoff = AcceptBackoff::default();
    let mut refused = LogEvery::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(error) => {
                (sources.connection_errors)("accept");
                let (wait, report) = backoff.failed(std::time::Instant::now());
                if let Some(failures) = report {
                    tracing::warn!(%error, failures, ?wait, "failed to accept /metrics connections; backing off");
                }
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let mut permit = std::sync::Arc::clone(&open).try_acquire_owned().ok();
        if permit.is_none() && connections.evict_idlest() {
            (sources.connection_errors)("evicted");
            let freed = std::sync::Arc::clone(&open).acquire_owned();
            permit = tokio::time::timeout(EVICTION_WAIT, freed)
                .await
                .ok()
                .and_then(Result::ok);
        }
        let Some(permit) = permit else {
            (sources.connection_errors)("limit");
            if let Some(count) = refused.happened(std::time::Instant::now()) {
                tracing::warn!(
                    %peer,
                    refused = count,
                    max_connections = limits.max_connections,
                    "/metrics connections refused at the connection limit"
                );
            }
            drop(stream);
            continue;
        };
        let sources = sources.clone();
        let security = security.clone();
        let slot = std::sync::Arc::new(connections.open(std::time::Instant::now()));
        tokio::spawn(async move {
            let _permit = permit;
            let counted = sources.connection_errors.clone();
            let auth = security.clone();
            let evicted = std::sync::Arc::clone(&slot.evicted);
            let service = service_fn(move |request| {
                let sources = sources.clone();
                let auth = auth.clone();
                let slot = std::sync::Arc::clone(&slot);
                slot.serving(true);
                async move {
                    let allowed = match auth.as_ref() {
                        None => true,
                        Some(security) => {
                            security
                                .authorized(
                                    request
                                        .headers()
                                        .get(AUTHORIZATION)
                                        .map(|value| value.as_bytes()),
                                )
                                .await
                        }
                    };
                    let response = match auth.as_ref() {
                        Some(security) if !allowed => unauthorized(security.challenge()),
                        _ => route(&request, &sources),
                    };
                    slot.serving(false);
                    Ok::<_, Infallible>(response)
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let serving = async {
                match security.as_ref().and_then(|s| s.tls.clone()) {
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(stream),
                        );
                        match handshake.await {
                            Ok(Ok(tls)) => {
                                let connection =
                                    builder.serve_connection(TokioIo::new(tls), service);
                                Some(aged(connection, limits.max_connection_age).await)
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                counted("timeout");
                                tracing::debug!(%peer, "TLS handshake timed out");
                                None
                            }
                        }
                    }
                    None => {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        Some(aged(connection, limits.max_connection_age).await)
                    }
                }
            };
            let served = tokio::select! {
                served = serving => served,
                // Idle longest when a new connection needed room: closed.
                () = evicted.notified() => None,
            };
            if let Some(Err(error)) = served {
                if error.is_timeout() {
                    counted("timeout");
                }
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
}

/// Most time a new connection waits for the room an evicted idle one leaves.
const EVICTION_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves `connection` until it ends, or until it is `max_age` old: then it closes after the
/// response in progress.
async fn aged<I, S>(
    connection: hyper::server::conn::http1::Connection<I, S>,
    max_age: std::time::Duration,
) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => served,
        () = tokio::time::sleep(max_age) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

fn route(request: &Request<Incoming>, sources: &Sources) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") if wants_openmetrics(request) => openmetrics(sources),
        (&Method::GET, "/metrics") => metrics(&sources.registry),
        (&Method::GET, "/") => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            status_page::render(
                &sources.status.snapshot(),
                std::time::SystemTime::now(),
                sources.history.is_some(),
            )
            .into_bytes(),
        ),
        (&Method::GET, path) if path.starts_with("/suite/") => suite(path, sources),
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

/// The scraper's `Accept` names OpenMetrics (Prometheus asks for it first, with
/// `application/openmetrics-text;version=1.0.0`, and for the classic text after it).
fn wants_openmetrics(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            let mut parts = media.split(';').map(str::trim);
            let is_openmetrics = parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case("application/openmetrics-text"));
            // `q=0` refuses it.
            is_openmetrics && !parts.any(|p| p.replace(' ', "") == "q=0")
        })
}

fn openmetrics(sources: &Sources) -> Response<Full<Bytes>> {
    match sources.openmetrics.exposition() {
        Ok(body) => response(
            StatusCode::OK,
            crate::export::openmetrics::CONTENT_TYPE,
            body,
        ),
        Err(error) => {
            tracing::error!(%error, "failed to encode metrics as OpenMetrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to encode metrics\n",
            )
        }
    }
}

fn metrics(registry: &prometheus::Registry) -> Response<Full<Bytes>> {
    match exposition(registry) {
        Ok(body) => response(StatusCode::OK, &content_type(), body),
        Err(error) => {
            tracing::error!(%error, "failed to encode metrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to encode metrics\n",
            )
        }
    }
}

/// A suite's page from the history store, read through a connection of its own: WAL lets it
/// read while the agent writes.
fn suite(path: &str, sources: &Sources) -> Response<Full<Bytes>> {
    let Some(name) = suite_page::suite_of(path) else {
        return text(StatusCode::NOT_FOUND, "not found; try /\n");
    };
    let Some(store) = &sources.history else {
        return text(
            StatusCode::NOT_FOUND,
            "the per-test history is off ([history] enabled = false)\n",
        );
    };
    let page = if store.exists() {
        crate::history::Store::open_read_only(store)
            .and_then(|store| store.suite_page(&name, suite_page::RUNS, suite_page::LISTED))
    } else {
        Ok(crate::history::store::SuitePage::default())
    };
    match page {
        Ok(page) => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            suite_page::render(&name, &page, std::time::SystemTime::now()).into_bytes(),
        ),
        Err(error) => {
            tracing::warn!(error = %crate::log::error_chain(&error), "suite page not rendered");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the per-test history cannot be read now; the log says why\n",
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
