//! The HTTP endpoint and what it serves: `/metrics`, the `/` status page, each suite's page
//! from the per-test history (`suite_page.rs`), `/healthz` and `/readyz` (`http.rs`), its connection limits (`connections.rs`) and its web config (`web.rs`:
//! TLS, basic auth).

pub mod connections;
mod html;
pub mod http;
pub mod status_page;
pub mod suite_page;
pub mod web;

pub use http::{bind, serve, ServerError, Sources};
