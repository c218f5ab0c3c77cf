//! One plugin's derivation of one run, in its own limited store: made when the run's report
//! starts to be read, fed each batch of cases, and finished once for the samples. Every step
//! is one call with the whole call budget. A 0.4.0 or 0.3.0 plugin streams (0.3.0's records
//! in their own shape, `compat`); a plugin built against an earlier WIT version keeps the
//! batches and gets the run whole at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Instance, ResourceAny};
use wasmtime::Store;

use super::bindings::v0_3::testmeter::plugin::types as v0_3;
use super::bindings::v0_4::testmeter::plugin::types as wit;
use super::compat;
use super::conversions::{CaseBatch, CaseBatchInput, RunEndInput, RunStartInput};
use super::host::HostState;
use super::runtime::{DerivationExports, LoadedPlugin, PluginError, PluginRuntime, Pre};
use crate::catalog::Sample;

/// The batches of one stretch of a run: one per set of case fields the run's plugins read.
pub type Batches = Arc<Vec<CaseBatch>>;

/// What a `finish` (or a whole-run `derive`) returns, in the current types.
type Finished = Result<Vec<wit::Sample>, String>;

/// What a 0.3.0 `finish` (or a 0.2.0 `derive`) returns: samples as lists of values.
type FinishedV0_3 = Result<Vec<v0_3::Sample>, String>;

/// The streaming WIT versions, whose records differ in shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Streamed {
    V0_3,
    V0_4,
}

/// A run's derivation by one plugin.
pub struct Derivation<'r> {
    runtime: &'r PluginRuntime,
    plugin: &'r LoadedPlugin,
    start: &'r RunStartInput<'r>,
    /// Which of each stretch's [`Batches`] holds the fields this plugin reads.
    class: usize,
    stage: Stage,
    /// Time spent in the plugin's calls so far.
    busy: Duration,
}

enum Stage {
    /// A streaming (0.3.0 or later) plugin's live `derivation` resource.
    Streaming {
        store: Store<HostState>,
        instance: Instance,
        exports: DerivationExports,
        resource: ResourceAny,
        version: Streamed,
    },
    /// A plugin built against an earlier WIT version: the batches it is derived from at the
    /// end.
    Whole(Vec<Batches>),
    /// A step failed; nothing more is called.
    Failed(PluginError),
}

impl std::fmt::Debug for Derivation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derivation")
            .field("plugin", &self.plugin.decl.name)
            .finish_non_exhaustive()
    }
}

impl<'r> Derivation<'r> {
    /// Starts a derivation of the run that begins with `start`, to be fed the `class`th batch
    /// of each stretch. A plugin that fails here is a failed derivation, not an error: its
    /// error comes out of [`Self::finish`].
    pub async fn start(
        runtime: &'r PluginRuntime,
        plugin: &'r LoadedPlugin,
        start: &'r RunStartInput<'r>,
        class: usize,
    ) -> Derivation<'r> {
        let mut derivation = Derivation {
            runtime,
            plugin,
            start,
            class,
            stage: Stage::Whole(Vec::new()),
            busy: Duration::ZERO,
        };
        derivation.stage = derivation.begin().await;
        derivation
    }

    async fn begin(&mut self) -> Stage {
        let (instance_pre, derivation, version) = match &self.plugin.pre {
            Pre::V0_4 { pre, derivation } => (pre.instance_pre(), derivation, Streamed::V0_4),
            Pre::V0_3 { pre, derivation } => (pre.instance_pre(), derivation, Streamed::V0_3),
            Pre::V0_2(_) | Pre::V0_1(_) => return Stage::Whole(Vec::new()),
        };
        let name = self.plugin.decl.name.as_str();
        let mut store = self.runtime.store(name);
        let started = Instant::now();
        let start = self.start;
        let made =
            self.runtime
                .call(&mut store, self.busy, async |store| {
                    let instance = instance_pre.instantiate_async(&mut *store).await?;
                    let (resource,) = match version {
                        Streamed::V0_4 => {
                            instance
                                .get_typed_func::<(&RunStartInput<'_>,), (ResourceAny,)>(
                                    &mut *store,
                                    &derivation.constructor,
                                )?
                                .call_async(&mut *store, (start,))
                                .await?
                        }
                        Streamed::V0_3 => instance
                            .get_typed_func::<(&compat::RunStartInputV0_3<'_>,), (ResourceAny,)>(
                                &mut *store,
                                &derivation.constructor,
                            )?
                            .call_async(&mut *store, (&compat::run_start_v0_3(start),))
                            .await?,
                    };
                    Ok((instance, resource))
                })
                .await;
        self.busy += started.elapsed();
        match made {
            Ok((instance, resource)) => Stage::Streaming {
                store,
                instance,
                exports: derivation.clone(),
                resource,
                version,
            },
            Err(error) => Stage::Failed(error),
        }
    }

    /// Feeds the next cases.
    pub async fn feed(&mut self, batches: &Batches) {
        let name = self.plugin.decl.name.as_str();
        let Some(batch) = batches.get(self.class) else {
            return;
        };
        let result = match &mut self.stage {
            Stage::Failed(_) => return,
            Stage::Whole(kept) => {
                kept.push(Arc::clone(batches));
                return;
            }
            Stage::Streaming {
                store,
                instance,
                exports,
                resource,
                version,
            } => {
                let started = Instant::now();
                let resource = *resource;
                let fed = self
                    .runtime
                    .call(store, self.busy, async |store| {
                        let (result,) = match version {
                            Streamed::V0_4 => {
                                instance
                                    .get_typed_func::<
                                        (ResourceAny, &CaseBatchInput<'_>),
                                        (Result<(), String>,),
                                    >(&mut *store, &exports.feed)?
                                    .call_async(&mut *store, (resource, &batch.input()))
                                    .await?
                            }
                            Streamed::V0_3 => {
                                instance
                                    .get_typed_func::<
                                        (ResourceAny, &compat::CaseBatchInputV0_3<'_>),
                                        (Result<(), String>,),
                                    >(&mut *store, &exports.feed)?
                                    .call_async(
                                        &mut *store,
                                        (resource, &compat::case_batch_v0_3(batch)),
                                    )
                                    .await?
                            }
                        };
                        Ok(result)
                    })
                    .await;
                self.busy += started.elapsed();
                match fed {
                    Ok(Ok(())) => return,
                    Ok(Err(message)) => PluginError::Guest {
                        plugin: name.to_owned(),
                        message,
                    },
                    Err(error) => error,
                }
            }
        };
        self.stage = Stage::Failed(result);
    }

    /// Forgets every case fed: the run's report is read again from its start.
    pub async fn restart(&mut self) {
        self.stage = self.begin().await;
    }

    /// Every case has been fed: the run's samples, checked against the output limits.
    pub async fn finish(
        self,
        end: &RunEndInput<'_>,
    ) -> (Result<Vec<Sample>, PluginError>, Duration) {
        let Derivation {
            runtime,
            plugin,
            start,
            class,
            stage,
            mut busy,
        } = self;
        let name = plugin.decl.name.as_str();
        let started = Instant::now();
        let finished = match stage {
            Stage::Failed(error) => return (Err(error), busy),
            Stage::Streaming {
                mut store,
                instance,
                exports,
                resource,
                version,
            } => {
                runtime
                    .call(&mut store, busy, async |store| {
                        Ok(match version {
                            Streamed::V0_4 => {
                                instance
                                    .get_typed_func::<(ResourceAny, &RunEndInput<'_>), (Finished,)>(
                                        &mut *store,
                                        &exports.finish,
                                    )?
                                    .call_async(&mut *store, (resource, end))
                                    .await?
                                    .0
                            }
                            Streamed::V0_3 => instance
                                .get_typed_func::<(ResourceAny, &RunEndInput<'_>), (FinishedV0_3,)>(
                                    &mut *store,
                                    &exports.finish,
                                )?
                                .call_async(&mut *store, (resource, end))
                                .await?
                                .0
                                .map(|samples| {
                                    samples.into_iter().map(compat::sample_v0_3).collect()
                                }),
                        })
                    })
                    .await
            }
            Stage::Whole(kept) => {
                let batches = kept.iter().filter_map(|stretch| stretch.get(class));
                whole(runtime, plugin, start, batches, end, busy).await
            }
        };
        busy += started.elapsed();
        let result = finished.and_then(|result| {
            result.map_err(|message| PluginError::Guest {
                plugin: name.to_owned(),
                message,
            })
        });
        (
            result.and_then(|samples| checked(runtime, name, samples)),
            busy,
        )
    }
}

/// Derives a run whole for a plugin built against a WIT version before 0.3.0.
async fn whole<'b>(
    runtime: &PluginRuntime,
    plugin: &LoadedPlugin,
    start: &RunStartInput<'_>,
    batches: impl Iterator<Item = &'b CaseBatch>,
    end: &RunEndInput<'_>,
    busy: Duration,
) -> Result<Finished, PluginError> {
    let name = plugin.decl.name.as_str();
    let cases = batches
        .flat_map(|batch| {
            batch
                .cases
                .iter()
                .map(move |case| compat::test_case_v0_2(batch, case))
        })
        .collect();
    let run = compat::suite_run_v0_2(start, cases, end);
    let mut store = runtime.store(name);
    runtime
        .call(&mut store, busy, async |store| match &plugin.pre {
            // Called through a typed func rather than the bindings' `call_derive`, so the
            // borrowed run is lowered as it is, without an owned copy first.
            Pre::V0_2(pre) => {
                let instance = pre.instance_pre().instantiate_async(&mut *store).await?;
                let derive = instance
                    .get_typed_func::<(&compat::SuiteRunV0_2<'_>,), (FinishedV0_3,)>(
                        &mut *store,
                        "derive",
                    )?;
                let (result,) = derive.call_async(&mut *store, (&run,)).await?;
                Ok(result.map(|samples| samples.into_iter().map(compat::sample_v0_3).collect()))
            }
            Pre::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance
                    .call_derive(&mut *store, &compat::suite_run_v0_1(&run))
                    .await?;
                Ok(result.map(|samples| samples.into_iter().map(compat::sample_v0_1).collect()))
            }
            Pre::V0_3 { .. } | Pre::V0_4 { .. } => Err(wasmtime::format_err!(
                "a streaming plugin is derived as a stream"
            )),
        })
        .await
}

/// The samples, unless they break the output limits: too many values in all, or a name or
/// label longer than allowed.
fn checked(
    runtime: &PluginRuntime,
    plugin: &str,
    samples: Vec<wit::Sample>,
) -> Result<Vec<Sample>, PluginError> {
    let limits = runtime.limits();
    // Every value counts (a counted histogram its buckets), and a sample without values as one.
    let count: usize = samples
        .iter()
        .map(|s| match &s.values {
            wit::SampleValues::Values(values) => values.len().max(1),
            wit::SampleValues::Histogram(counts) => counts.bucket_counts.len() + 3,
        })
        .sum();
    if count > limits.max_samples {
        return Err(PluginError::Output {
            plugin: plugin.to_owned(),
            count,
            limit: limits.max_samples,
        });
    }
    let longest = samples
        .iter()
        .flat_map(|s| {
            std::iter::once(s.metric.len())
                .chain(s.labels.iter().flat_map(|(k, v)| [k.len(), v.len()]))
        })
        .max()
        .unwrap_or(0);
    if longest > limits.max_string_bytes {
        return Err(PluginError::OutputString {
            plugin: plugin.to_owned(),
            length: longest,
            limit: limits.max_string_bytes,
        });
    }
    Ok(samples.into_iter().map(Sample::from).collect())
}
