//! Security of the `/metrics` endpoint, in the spirit of the Prometheus exporter-toolkit's
//! `--web.config.file`: optional TLS (rustls), HTTP basic auth with bcrypt-hashed passwords and
//! bearer tokens stored as SHA-256 digests, read from a YAML file whose permissions are checked.
//! No secret is ever logged.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid web config: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path} is {what} (mode {mode:o}); run `chmod {fix} {path}`")]
    Permissions {
        path: PathBuf,
        what: &'static str,
        mode: u32,
        fix: &'static str,
    },
    #[error("{path}: {reason}")]
    Tls { path: PathBuf, reason: String },
    #[error("basic_auth_users: the hash of user {user:?} is not a bcrypt hash")]
    Hash { user: String },
    #[error("bearer_token_sha256: entry {index} is not a SHA-256 digest in hex (64 characters); make one with `printf %s \"$TOKEN\" | sha256sum`")]
    TokenDigest { index: usize },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    #[serde(default)]
    tls_server_config: Option<TlsFiles>,
    /// User name to bcrypt hash (`$2y$...`), as htpasswd -B writes them.
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    /// SHA-256 digests (hex) of accepted bearer tokens. Tokens are long random strings, so an
    /// unsalted fast digest keeps them safe at rest where a password would need bcrypt.
    #[serde(default)]
    bearer_token_sha256: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// TLS and authentication for the endpoint.
pub struct WebSecurity {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    users: BTreeMap<String, String>,
    tokens: std::collections::BTreeSet<[u8; 32]>,
    /// SHA-256 of `user:password` pairs already verified, so bcrypt's deliberate cost is paid
    /// once per credential, not once per scrape. Never held while bcrypt runs.
    verified: Mutex<std::collections::BTreeSet<[u8; 32]>>,
    /// A hash of the users' cost that an unknown user's password is checked against, so an
    /// unknown user takes as long to refuse as a known one with a wrong password.
    decoy: Option<Arc<str>>,
    /// Bounds the bcrypt checks running at once (on blocking threads, never on the async
    /// workers that serve scrapes).
    verifying: tokio::sync::Semaphore,
}

/// Most time a request waits for a turn to have its password checked; past it, it is refused.
const VERIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Refuses a file that others may change, or a secret that others may read.
fn check_permissions(path: &Path, secret: bool) -> Result<(), WebConfigError> {
    let mode = std::fs::metadata(path)
        .map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o022 != 0 {
        return Err(WebConfigError::Permissions {
            path: path.to_path_buf(),
            what: "writable by group or others",
            mode,
            fix: "go-w",
        });
    }
    if secret && mode & 0o004 != 0 {
        return Err(WebConfigError::Permissions {
            path: path.to_path_buf(),
            what: "readable by others",
            mode,
            fix: "o-rwx",
        });
    }
    Ok(())
}

impl WebSecurity {
    /// Reads and checks a web config file. Paths inside it are relative to its directory.
    pub fn load(path: &Path) -> Result<Arc<Self>, WebConfigError> {
        check_permissions(path, true)?;
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: WebConfigFile =
            serde_yaml::from_str(&text).map_err(|e| WebConfigError::Parse {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        for (user, hash) in &file.basic_auth_users {
            if !hash.starts_with("$2") {
                return Err(WebConfigError::Hash { user: user.clone() });
            }
        }
        let tokens = file
            .bearer_token_sha256
            .iter()
            .enumerate()
            .map(|(index, hex)| parse_digest(hex).ok_or(WebConfigError::TokenDigest { index }))
            .collect::<Result<_, _>>()?;
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match file.tls_server_config {
            None => None,
            Some(files) => {
                let cert = base.join(&files.cert_file);
                let key = base.join(&files.key_file);
                check_permissions(&key, true)?;
                let tls_error = |path: &Path, reason: String| WebConfigError::Tls {
                    path: path.to_path_buf(),
                    reason,
                };
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
                    .and_then(|certs| certs.collect::<Result<_, _>>())
                    .map_err(|e| tls_error(&cert, format!("no PEM certificate chain: {e}")))?;
                let key_der = PrivateKeyDer::from_pem_file(&key)
                    .map_err(|e| tls_error(&key, format!("no PEM private key: {e}")))?;
                let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_error(&cert, e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain, key_der)
                .map_err(|e| tls_error(&cert, format!("certificate and key do not fit: {e}")))?;
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
        };
        let decoy = decoy_for(&file.basic_auth_users);
        let verifiers = std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .max(1);
        Ok(Arc::new(Self {
            tls,
            users: file.basic_auth_users,
            tokens,
            verified: Mutex::new(std::collections::BTreeSet::new()),
            decoy,
            verifying: tokio::sync::Semaphore::new(verifiers),
        }))
    }

    /// The `WWW-Authenticate` challenge of a 401: the schemes this config accepts.
    pub fn challenge(&self) -> &'static str {
        match (self.users.is_empty(), self.tokens.is_empty()) {
            (false, false) => "Basic realm=\"testmeter\", Bearer realm=\"testmeter\"",
            (true, false) => "Bearer realm=\"testmeter\"",
            _ => "Basic realm=\"testmeter\"",
        }
    }

    /// Whether a request with this `Authorization` header may pass. A credential verified
    /// before passes at once; a new one is checked with bcrypt on a blocking thread, a few at
    /// a time, so wrong passwords cannot slow the scrapes of a right one.
    pub async fn authorized(&self, header: Option<&[u8]>) -> bool {
        if self.users.is_empty() && self.tokens.is_empty() {
            return true;
        }
        let Some(header) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
            return false;
        };
        if let Some(token) = header.strip_prefix("Bearer ") {
            let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
            return self.tokens.contains(&digest);
        }
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Some((user, password)) = std::str::from_utf8(&decoded)
            .ok()
            .and_then(|pair| pair.split_once(':'))
        else {
            return false;
        };
        let key: [u8; 32] = Sha256::digest(&decoded).into();
        if self.verified().contains(&key) {
            return true;
        }
        let known = self
            .users
            .get(user)
            .map(|hash| Arc::<str>::from(hash.as_str()));
        let Some(hash) = known.clone().or_else(|| self.decoy.clone()) else {
            return false;
        };
        let Ok(Ok(_turn)) = tokio::time::timeout(VERIFY_WAIT, self.verifying.acquire()).await
        else {
            return false;
        };
        let password = password.to_owned();
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let ok = matches && known.is_some();
        if ok {
            self.verified().insert(key);
        }
        ok
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<[u8; 32]>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A bcrypt hash at the highest cost of `users`' hashes, for [`WebSecurity::decoy`]; none
/// when there are no users. What it hashes does not matter: a match on it never passes.
fn decoy_for(users: &BTreeMap<String, String>) -> Option<Arc<str>> {
    let cost = users
        .values()
        .filter_map(|hash| hash.split('$').nth(2)?.parse::<u32>().ok())
        .max()?;
    bcrypt::hash("testmeter: no such user", cost)
        .ok()
        .map(Arc::from)
}

/// 64 hex characters as 32 bytes.
fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}
