//! The keystore file `wallet.json`: its format, reading it with every check a secret file
//! needs, and writing it atomically with owner-only permissions.
//!
//! Owns the bytes on disk and nothing else: it must not build transactions or know about
//! the chain state. Secrets are kept as hex in the file (ed25519 seeds, 32 bytes) and
//! never written anywhere else, never logged and never shown by `Debug`.

use super::WalletError;
use crate::chain::Network;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name inside the wallet directory.
pub const FILE_NAME: &str = "wallet.json";

/// The only format version so far; bump it on any change to the file's fields.
pub const VERSION: u32 = 1;

/// Permission bits a keystore must not have: any access by group or others.
#[cfg(unix)]
const FORBIDDEN_MODE_BITS: u32 = 0o077;

/// The file as JSON: `{ "version": 1, "network": "dev", "keys": [...] }`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFile {
    pub version: u32,
    pub network: Network,
    pub keys: Vec<KeyRecord>,
}

/// One key as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRecord {
    pub label: String,
    /// The 32-byte ed25519 seed as 64 hex digits.
    pub secret: String,
    /// Unix time of creation, seconds.
    pub created: u64,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("KeyRecord").field("label", &self.label).field("created", &self.created).finish_non_exhaustive()
    }
}

/// A key loaded from the file.
pub(super) struct LoadedKey {
    pub label: String,
    pub key: SigningKey,
    pub created: u64,
}

/// The path of the keystore in `dir`.
pub(super) fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Refuses a keystore others can read: a secret readable by the group or the world is
/// already leaked, and silently tightening it would hide that.
#[cfg(unix)]
fn check_mode(path: &Path, file: &File) -> Result<(), WalletError> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        file.metadata().map_err(|source| WalletError::Io { path: path.to_path_buf(), source })?.permissions().mode()
            & 0o777;
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(WalletError::Permissions { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _file: &File) -> Result<(), WalletError> {
    // No POSIX modes to check; the directory's ACLs are the user's responsibility.
    Ok(())
}

/// Reads and checks the keystore at `path` for `network`.
pub(super) fn load(path: &Path, network: Network) -> Result<Vec<LoadedKey>, WalletError> {
    let io = |source| WalletError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    check_mode(path, &file)?;
    let parsed: KeyFile = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|error| WalletError::Malformed { path: path.to_path_buf(), error: error.to_string() })?;
    if parsed.version != VERSION {
        return Err(WalletError::UnsupportedVersion { path: path.to_path_buf(), version: parsed.version });
    }
    if parsed.network != network {
        return Err(WalletError::WrongNetwork { path: path.to_path_buf(), found: parsed.network, expected: network });
    }
    parsed
        .keys
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(r.secret.as_bytes(), &mut seed)
                .map_err(|_| WalletError::BadSecret { path: path.to_path_buf(), index })?;
            Ok(LoadedKey { label: r.label, key: SigningKey::from_bytes(&seed), created: r.created })
        })
        .collect()
}

/// Writes `keys` to `path` atomically: a temporary file beside it (mode 0600 from its
/// creation, so the secret is never readable by others even for an instant), fsync,
/// rename over the old file, fsync of the directory so the rename itself is durable.
pub(super) fn save(path: &Path, network: Network, keys: &[LoadedKey]) -> Result<(), WalletError> {
    let file = KeyFile {
        version: VERSION,
        network,
        keys: keys
            .iter()
            .map(|k| KeyRecord { label: k.label.clone(), secret: hex::encode(k.key.to_bytes()), created: k.created })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|error| WalletError::Malformed { path: path.to_path_buf(), error: error.to_string() })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{FILE_NAME}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WalletError::Io { path: p, source }
    };
    // A temp file left by a crash holds at most an older copy of the same keys.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&tmp)(e)),
    }
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    // The umask cannot widen 0600, but a pre-existing ACL default could: set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
    }
    f.write_all(&json).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))?;
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    Ok(())
}

/// Creates the wallet directory (owner-only on Unix) if it does not exist.
pub(super) fn create_dir(dir: &Path) -> Result<(), WalletError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|source| WalletError::Io { path: dir.to_path_buf(), source })
}
