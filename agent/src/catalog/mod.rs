//! The catalog of declared metrics and SLOs from every loaded plugin, and the checks that keep
//! what plugins emit inside what they declared.

pub mod model;
pub mod slo;
pub mod validate;

pub use model::{
    HistogramCounts, MetricDecl, MetricKind, PluginDecl, Sample, SampleValues, SloDecl,
};
pub use validate::{Catalog, CatalogError, Rejection};
