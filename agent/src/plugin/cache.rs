//! The compiled-component cache: `Component::serialize` output kept on disk, keyed by the
//! SHA-256 of the `.wasm` and the engine's compatibility hash (wasmtime version and config).
//!
//! Deserializing trusts its input (it maps native code), so the agent loads only what it wrote
//! itself: the directory and files must belong to the agent's user and not be writable by
//! anyone else, and every file carries a SHA-256 of its payload. A stale, corrupt or foreign
//! entry is ignored and rebuilt, never fatal.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

const MAGIC: &[u8; 8] = b"TMCWASM1";

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache configured.
    Disabled,
    /// Loaded from the cache.
    Hit,
    /// Compiled, and stored for next time (or `store_error` says why not).
    Miss { store_error: Option<String> },
    /// A cache entry existed but was refused (`reason`), so the component was compiled again.
    Rebuilt { reason: String },
}

impl std::fmt::Display for CacheOutcome {
    /// As a log value: `hit`, `miss`, `disabled`, or why a compiled component was not stored
    /// or a cache entry was refused.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheOutcome::Disabled => f.write_str("disabled"),
            CacheOutcome::Hit => f.write_str("hit"),
            CacheOutcome::Miss { store_error: None } => f.write_str("miss"),
            CacheOutcome::Miss {
                store_error: Some(error),
            } => write!(f, "miss (not stored: {error})"),
            CacheOutcome::Rebuilt { reason } => write!(f, "rebuilt ({reason})"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("failed to create the compiled-plugin cache dir {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("compiled-plugin cache dir {path} is not private to this user (owner uid {uid}, mode {mode:o})")]
    NotPrivate { path: PathBuf, uid: u32, mode: u32 },
}

/// An opened cache directory for one engine.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
    engine_key: [u8; 32],
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash becomes a stable key.
struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// True when `metadata` belongs to us and nobody else may write it.
fn private(metadata: &std::fs::Metadata) -> bool {
    metadata.uid() == euid() && metadata.mode() & 0o022 == 0
}

impl CompiledCache {
    /// Creates `dir` (mode 0700) if needed and checks that it is private to this user.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CacheError::Create {
                path: dir.to_path_buf(),
                source,
            })?;
        let metadata = std::fs::metadata(dir).map_err(|source| CacheError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        if !private(&metadata) {
            return Err(CacheError::NotPrivate {
                path: dir.to_path_buf(),
                uid: metadata.uid(),
                mode: metadata.mode() & 0o7777,
            });
        }
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_key: hasher.0.finalize().into(),
        })
    }

    /// The directory the entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for `wasm` lives (whether or not it exists).
    pub fn entry_path(&self, wasm: &[u8]) -> PathBuf {
        let mut key = Sha256::new();
        key.update(self.engine_key);
        key.update(Sha256::digest(wasm));
        let hex: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.cwasm"))
    }

    /// The component for `wasm`, from the cache when a valid entry exists, else compiled.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        self.load_or_compile_at(engine, wasm, &self.entry_path(wasm))
    }

    /// [`Self::load_or_compile`] with the entry path already computed.
    pub fn load_or_compile_at(
        &self,
        engine: &Engine,
        wasm: &[u8],
        path: &Path,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let refused = match self.read_entry(engine, path) {
            Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
            Ok(None) => None,
            Err(reason) => Some(reason),
        };
        let component = Component::new(engine, wasm)?;
        let store_error = self.write_entry(path, &component).err();
        let outcome = match refused {
            Some(reason) => CacheOutcome::Rebuilt { reason },
            None => CacheOutcome::Miss { store_error },
        };
        Ok((component, outcome))
    }

    /// `Ok(None)`: no entry. `Err`: an entry exists but may not or cannot be used.
    fn read_entry(&self, engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
        let metadata = match std::fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("unreadable: {e}")),
        };
        if !metadata.is_file() || !private(&metadata) {
            return Err("not a private regular file written by this user".to_owned());
        }
        let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
        let payload = bytes
            .strip_prefix(MAGIC.as_slice())
            .filter(|rest| rest.len() > 32)
            .ok_or("not a testmeter cache file")?;
        let (digest, payload) = payload.split_at(32);
        if Sha256::digest(payload).as_slice() != digest {
            return Err("checksum mismatch (corrupt)".to_owned());
        }
        // SAFETY: the payload is a `Component::serialize` output that this agent wrote (the
        // file is private to our user) and that is intact (its SHA-256 matches). Wasmtime itself
        // rejects output of another version or engine configuration.
        unsafe { Component::deserialize(engine, payload) }
            .map(Some)
            .map_err(|e| format!("incompatible: {e}"))
    }

    /// Writes to a private temporary file, then renames it into place.
    fn write_entry(&self, path: &Path, component: &Component) -> Result<(), String> {
        let payload = component.serialize().map_err(|e| e.to_string())?;
        let partial = path.with_extension(format!("partial.{}", std::process::id()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(&payload))?;
            file.write_all(&payload)?;
            file.sync_all()?;
            std::fs::rename(&partial, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// The smallest valid component.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn cache(dir: &Path) -> (Engine, CompiledCache) {
        let engine = Engine::default();
        let cache = CompiledCache::open(dir, &engine).expect("opens");
        (engine, cache)
    }

    #[test]
    fn miss_then_hit_then_rebuild_after_corruption_or_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, cache) = cache(&dir.path().join("c"));
        let (_, first) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT)
            .expect("compiles");
        assert_eq!(first, CacheOutcome::Miss { store_error: None });
        let (_, second) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT)
            .expect("loads");
        assert_eq!(second, CacheOutcome::Hit);

        let entry = cache.entry_path(EMPTY_COMPONENT);
        let mut bytes = std::fs::read(&entry).expect("entry");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).expect("corrupt it");
        let (_, third) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT)
            .expect("rebuilds");
        assert_eq!(
            third,
            CacheOutcome::Rebuilt {
                reason: "checksum mismatch (corrupt)".to_owned()
            }
        );
        assert_eq!(
            cache
                .load_or_compile(&engine, EMPTY_COMPONENT)
                .expect("loads")
                .1,
            CacheOutcome::Hit
        );

        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let (_, fourth) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT)
            .expect("rebuilds");
        assert_eq!(
            fourth,
            CacheOutcome::Rebuilt {
                reason: "not a private regular file written by this user".to_owned()
            }
        );
    }

    #[test]
    fn another_engine_config_gets_its_own_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (engine, cache) = cache(dir.path());
        cache
            .load_or_compile(&engine, EMPTY_COMPONENT)
            .expect("compiles");
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).expect("engine");
        let other_cache = CompiledCache::open(dir.path(), &other).expect("opens");
        let (_, outcome) = other_cache
            .load_or_compile(&other, EMPTY_COMPONENT)
            .expect("compiles");
        assert_eq!(outcome, CacheOutcome::Miss { store_error: None });
    }

    #[test]
    fn a_shared_writable_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let error = CompiledCache::open(dir.path(), &Engine::default()).expect_err("refused");
        assert!(
            matches!(error, CacheError::NotPrivate { mode: 0o777, .. }),
            "{error}"
        );
    }
}
