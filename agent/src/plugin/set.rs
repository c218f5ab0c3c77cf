//! The plugin set: every plugin loaded from the plugins dir, the files that failed to load, and
//! the catalog their declarations registered. One consistent set; a reload makes a new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{LoadedPlugin, PluginError, PluginRuntime};
use crate::catalog::{Catalog, CatalogError, MetricKind};
use crate::log::error_chain;

/// The plugins loaded from the plugins dir and what their declarations registered.
#[derive(Debug, Default)]
pub struct PluginSet {
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub load_failures: Vec<LoadFailure>,
    /// On a reload: files that failed to load within [`SETTLE`] of their last write, taken as
    /// still being copied in. Not reported yet; the watcher loads them again once they settle.
    pub pending: Vec<PathBuf>,
    pub catalog_errors: Vec<CatalogError>,
    pub catalog: Catalog,
}

/// A plugin file that failed to load.
#[derive(Debug)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub error: PluginError,
}

impl LoadFailure {
    /// The file stem names a plugin that could not tell its own name.
    pub fn label(&self) -> String {
        self.path.file_stem().map_or_else(
            || self.path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    }
}

/// How long after its last write a `.wasm` that fails to load on a reload is taken as still
/// being written (a slow copy in place) rather than broken.
pub const SETTLE: Duration = Duration::from_secs(2);

/// True when `path` was written less than [`SETTLE`] ago.
fn still_being_written(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < SETTLE)
}

impl PluginSet {
    /// The kind of `metric` if `plugin` declared it (and the catalog took it).
    pub fn catalog_kind(&self, plugin: &str, metric: &str) -> Option<MetricKind> {
        self.catalog.get(plugin, metric).map(|decl| decl.kind)
    }

    /// The plugins that derive runs of `system`.
    pub fn handling<'a>(&'a self, system: &'a str) -> impl Iterator<Item = &'a Arc<LoadedPlugin>> {
        self.plugins.iter().filter(move |p| p.handles(system))
    }

    /// Every failure to load and every refused declaration, one line each: empty when the
    /// catalog is whole.
    pub fn problems(&self) -> Vec<String> {
        self.load_failures
            .iter()
            .map(|f| f.error.to_string())
            .chain(self.catalog_errors.iter().map(ToString::to_string))
            .collect()
    }

    /// Loads every plugin in `dir`, logs what failed, and registers the declarations. On a
    /// reload, `previous` is the set being replaced: a file that fails to load but loaded
    /// before keeps its previous version serving, and a file written moments ago that fails
    /// is taken as still being copied in ([`PluginSet::pending`]).
    pub async fn load(runtime: &PluginRuntime, dir: &Path, previous: Option<&PluginSet>) -> Self {
        let (loaded, failures) = load_plugins(runtime, dir).await;
        let mut plugins: Vec<Arc<LoadedPlugin>> = loaded.into_iter().map(Arc::new).collect();
        let (pending, mut load_failures): (Vec<LoadFailure>, Vec<LoadFailure>) = failures
            .into_iter()
            .partition(|failure| previous.is_some() && still_being_written(&failure.path));
        for failure in &pending {
            tracing::debug!(path = %failure.path.display(), error = %error_chain(&failure.error), "plugin file still being written; loading it again once it settles");
        }
        // A file that fails to load but loaded before (a replacement caught half-written, or
        // a broken new version) keeps its previous version serving; the failure is still
        // logged and reported.
        let failed = pending.iter().map(|f| (f, false));
        for (failure, reported) in failed.chain(load_failures.iter().map(|f| (f, true))) {
            let kept = previous.and_then(|set| set.plugins.iter().find(|p| p.path == failure.path));
            if let Some(kept) = kept {
                if reported {
                    tracing::warn!(path = %failure.path.display(), plugin = kept.decl.name, version = kept.decl.version, "the new file failed to load; the previous version keeps serving");
                }
                plugins.push(Arc::clone(kept));
            }
        }
        plugins.sort_by(|a, b| a.path.cmp(&b.path));
        let (plugins, refused) = one_file_per_name(plugins, previous);
        load_failures.extend(refused);
        for failure in &load_failures {
            tracing::error!(path = %failure.path.display(), error = %error_chain(&failure.error), "plugin not loaded");
        }
        for plugin in &plugins {
            tracing::info!(
                plugin = plugin.decl.name,
                version = plugin.decl.version,
                wit = plugin.wit.as_str(),
                systems = ?plugin.decl.systems,
                metrics = plugin.decl.metrics.len(),
                path = %plugin.path.display(),
                load_time = ?plugin.load_time,
                cache = %plugin.cache,
                "plugin loaded"
            );
        }
        let mut catalog = Catalog::default();
        let decls: Vec<_> = plugins.iter().map(|p| &p.decl).collect();
        let refused_slos = plugins.iter().flat_map(|p| p.refused_slos.iter().cloned());
        let catalog_errors: Vec<CatalogError> =
            refused_slos.chain(catalog.register_all(&decls)).collect();
        for error in &catalog_errors {
            tracing::error!(%error, "metric declaration refused");
        }
        if plugins
            .iter()
            .any(|p| !matches!(p.cache, super::cache::CacheOutcome::Hit))
        {
            super::trim_heap();
        }
        PluginSet {
            plugins,
            load_failures,
            pending: pending.into_iter().map(|failure| failure.path).collect(),
            catalog_errors,
            catalog,
        }
    }
}

/// A plugin's identity is its declared name, and one file holds it, so no two files can merge
/// their self-metrics, own each other's metrics or share a quarantine. Of files that declare
/// the same name (`plugins` sorted by path):
/// - the file that held the name before this reload keeps it, and the others are refused;
/// - else, when they are byte-for-byte copies, `<name>.wasm` (or the first) keeps it and the
///   copies are refused;
/// - else every one of them is refused: which file sorts first must not decide who a plugin is.
fn one_file_per_name(
    plugins: Vec<Arc<LoadedPlugin>>,
    previous: Option<&PluginSet>,
) -> (Vec<Arc<LoadedPlugin>>, Vec<LoadFailure>) {
    let mut by_name: std::collections::BTreeMap<&str, Vec<&Arc<LoadedPlugin>>> =
        std::collections::BTreeMap::new();
    for plugin in &plugins {
        by_name.entry(&plugin.decl.name).or_default().push(plugin);
    }
    let mut refused = Vec::new();
    let mut kept_paths = Vec::new();
    for (name, files) in by_name {
        let [first, rest @ ..] = files.as_slice() else {
            continue;
        };
        if rest.is_empty() {
            kept_paths.push(first.path.clone());
            continue;
        }
        let holder = previous.and_then(|set| {
            set.plugins
                .iter()
                .find(|p| p.decl.name == name)
                .and_then(|held| files.iter().find(|f| f.path == held.path))
        });
        let copies = rest.iter().all(|f| f.digest == first.digest);
        let named = files
            .iter()
            .find(|f| f.path.file_stem().is_some_and(|stem| stem == name))
            .unwrap_or(first);
        let kept = holder.or(copies.then_some(named));
        for file in &files {
            if kept.is_some_and(|k| k.path == file.path) {
                continue;
            }
            let error = match kept {
                Some(kept) if kept.digest == file.digest => PluginError::Copy {
                    path: file.path.clone(),
                    of: kept.path.clone(),
                    name: name.to_owned(),
                },
                _ => PluginError::SameName {
                    path: file.path.clone(),
                    name: name.to_owned(),
                    others: files
                        .iter()
                        .filter(|other| other.path != file.path)
                        .map(|other| other.path.clone())
                        .collect(),
                    kept: kept.map(|k| k.path.clone()),
                },
            };
            refused.push(LoadFailure {
                path: file.path.clone(),
                error,
            });
        }
        kept_paths.extend(kept.map(|k| k.path.clone()));
    }
    let plugins = plugins
        .into_iter()
        .filter(|p| kept_paths.contains(&p.path))
        .collect();
    (plugins, refused)
}

async fn load_plugins(
    runtime: &PluginRuntime,
    dir: &Path,
) -> (Vec<LoadedPlugin>, Vec<LoadFailure>) {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
            .collect(),
        Err(error) => {
            tracing::error!(dir = %dir.display(), %error, "cannot read the plugins dir; no plugins loaded");
            Vec::new()
        }
    };
    paths.sort();
    let mut plugins = Vec::new();
    let mut failures = Vec::new();
    for path in paths {
        match runtime.load(&path).await {
            Ok(plugin) => plugins.push(plugin),
            Err(error) => failures.push(LoadFailure { path, error }),
        }
    }
    (plugins, failures)
}
