//! The HTTP endpoint and what it serves: `/metrics`, the `/` status page, `/healthz` and
//! `/readyz` (`http.rs`), its connection limits (`connections.rs`) and its web config (`web.rs`:
//! TLS, basic auth).

pub mod connections;
pub mod http;
pub mod status_page;
pub mod web;

pub use http::{bind, serve, ServerError, Sources};
