//! Watches the plugins dir (`testmeter run`) and reloads the plugin set when a `.wasm` file
//! is added, replaced or removed, so a new system needs neither a rebuild nor a restart.
//!
//! Events are debounced: a reload starts once the dir has been quiet for `DEBOUNCE`, so a
//! file written in several steps is usually read once, complete. A copy slower than that is
//! caught half-written: a file that fails to load within `plugin::set::SETTLE` of its last write is
//! not reported but loaded again once it settles (or on its next write). Only a file that
//! still fails after it stopped changing is logged and counted. Writers that write under
//! another name and rename into place (as `cargo plugins` does) never hit either case.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::pipeline::Pipeline;

/// Quiet time after the last event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(300);

#[derive(Debug, thiserror::Error)]
#[error("failed to watch the plugins dir {dir}")]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: notify::Error,
}

/// Starts watching; the returned task reloads until it is aborted.
pub fn spawn(pipeline: Arc<Pipeline>) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let dir = pipeline.config.plugins_dir.clone();
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event)
                if changes_content(&event.kind)
                    && event.paths.iter().any(|p| is_plugin_file(p)) =>
            {
                // The receiver only goes away when the agent stops.
                let _ = events.send(());
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "plugins dir watch error"),
        }
    })
    .map_err(|source| WatchError {
        dir: dir.clone(),
        source,
    })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError {
            dir: dir.clone(),
            source,
        })?;
    tracing::info!(dir = %dir.display(), "watching the plugins dir");
    Ok(tokio::spawn(async move {
        // Dropping the watcher stops it: it lives as long as this task.
        let _watcher = watcher;
        // Set while a file is still being written: when its settle time is up, and when the
        // change that led to it was first seen.
        let mut retry: Option<(Duration, Instant)> = None;
        loop {
            let first_seen = match retry {
                None => match changes.recv().await {
                    Some(()) => Instant::now(),
                    None => return,
                },
                Some((settle, first_seen)) => {
                    match tokio::time::timeout(settle, changes.recv()).await {
                        Ok(Some(())) => first_seen,
                        Ok(None) => return,
                        // Nothing more was written: load it as it is.
                        Err(_settled) => {
                            retry = pipeline
                                .reload_plugins(first_seen)
                                .await
                                .map(|settle| (settle, first_seen));
                            continue;
                        }
                    }
                }
            };
            loop {
                match tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            retry = pipeline
                .reload_plugins(first_seen)
                .await
                .map(|settle| (settle, first_seen));
        }
    }))
}

/// Files created, written, renamed or removed. Opening and reading them (the agent's own
/// loads) and metadata changes are not changes: reacting to them would reload forever.
fn changes_content(kind: &EventKind) -> bool {
    use notify::event::ModifyKind;
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}
