//! Everything that reads a run, each a [`Consumer`](crate::pipeline::Consumer) of the
//! pipeline's events: the agent's own metrics, the status board (the `/` page and the closing
//! table), readiness (`/readyz`), the per-test history, and for one-shot commands the summary
//! and the live progress.
//! The agent lists the standing ones in `Agent::start`.

pub mod history;
pub mod progress;
pub mod readiness;
pub mod self_metrics;
pub mod status;
pub mod summary;
pub mod traces;

pub use history::History;
pub use progress::Progress;
pub use readiness::Readiness;
pub use status::StatusBoard;
pub use summary::Summary;
pub use traces::Traces;
