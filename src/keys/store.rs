//! A master's minion keys as Salt stores them: one PEM file per minion id in four folders of
//! the master's `pki_dir` (`minions`, `minions_pre`, `minions_rejected`, `minions_denied`).
//!
//! This is the on-disk layout of Salt 3006 and 3007, and of Salt 3008's default key store
//! (`keys.cache_driver: localfs_key`, a shim over the same folders). Phoenix reads it to plan
//! and writes to it only to pre-seed an accepted key; accepting, rejecting and deleting go
//! through Salt's own wheel key functions.

use std::ffi::OsStr;
use std::fs;
use std::io::{ErrorKind, Read, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::fingerprint::{pem_fingerprint, MAX_PEM_BYTES};
use super::plan::{LocalKey, LocalKeyState};
use crate::error::{Error, Result};
use crate::lifecycle::InstanceId;

/// Every key state, in the order Salt lists them.
pub const KEY_STATES: [LocalKeyState; 4] = [
    LocalKeyState::Accepted,
    LocalKeyState::Pending,
    LocalKeyState::Rejected,
    LocalKeyState::Denied,
];

/// Where Phoenix stages a pre-seeded key before linking it into `minions/`. A folder of its
/// own, because Salt lists every plain file in `minions/` as a key and every plain file at the
/// top of `pki_dir` as a master key, but does not look into sub-folders.
const STAGING_DIR: &str = ".phoenix-staging";

/// How long a file named like one of Salt's temporary key files is taken for a write in
/// flight. Salt 3008's key store (`localfs_key`, salt/cache/localfs_key.py `store`) writes each
/// key to `tempfile.mkstemp(dir=<the key's folder>)` and renames it into place a moment later,
/// so for that moment a file named `tmp` and eight of `[a-z0-9_]` sits among the keys. The
/// write and the rename are one function call, done within milliseconds even on a loaded
/// machine; ten seconds leaves a wide margin. A file of that name that is older is listed like
/// any key (a key Salt really holds under such an id, or the leftover of a write that failed),
/// so nothing a master holds for long is hidden.
pub const SALT_WRITE_IN_FLIGHT: Duration = Duration::from_secs(10);

/// One key file, read and fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key: LocalKey,
    /// The PEM text as stored.
    pub public_key: String,
}

/// The minion keys of one master.
#[derive(Debug, Clone)]
pub struct KeyStore {
    pki_dir: PathBuf,
}

impl KeyStore {
    /// The store under `pki_dir` (the master's `pki_dir`, or `cluster_pki_dir` when Salt's
    /// master cluster is on).
    pub fn new(pki_dir: impl Into<PathBuf>) -> Self {
        Self {
            pki_dir: pki_dir.into(),
        }
    }

    pub fn pki_dir(&self) -> &Path {
        &self.pki_dir
    }

    /// Every key file of every state. Files that are not a public key (too large, not PEM,
    /// unreadable) are left out with a warning: the plan never acts on a key it could not
    /// fingerprint. A missing folder means no keys in that state (Salt creates them lazily).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `pki_dir` itself cannot be read: planning on a master whose keys
    /// are invisible would delete nothing but pre-seed everything.
    pub fn list(&self) -> Result<Vec<StoredKey>> {
        fs::metadata(&self.pki_dir).map_err(|source| Error::Io {
            path: self.pki_dir.clone(),
            source,
        })?;
        let mut keys = Vec::new();
        for state in KEY_STATES {
            let dir = self.pki_dir.join(state.salt_list());
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Io {
                        path: dir.clone(),
                        source,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(|source| Error::Io {
                    path: dir.clone(),
                    source,
                })?;
                let name = entry.file_name();
                let Some(id) = key_file_id(&name) else {
                    continue;
                };
                if salt_write_in_flight(&entry.path()) {
                    log::debug!("skipping {:?}: Salt is still writing it", entry.path());
                    continue;
                }
                keys.extend(load(&entry.path(), id, state));
            }
        }
        Ok(keys)
    }

    /// The keys of one minion id, in every state.
    pub fn get(&self, id: &str) -> Result<Vec<StoredKey>> {
        if !is_key_file_name(id) {
            return Ok(Vec::new());
        }
        Ok(KEY_STATES
            .into_iter()
            .filter_map(|state| load(&self.key_path(id, state), id, state))
            .collect())
    }

    /// The fingerprint of `id`'s key in `state` now, or None when there is no such key (or it
    /// is not a public key). Actions check it just before they act, so a key that changed
    /// since the plan was made is left to the next plan.
    pub fn fingerprint(&self, id: &str, state: LocalKeyState) -> Option<String> {
        if !is_key_file_name(id) {
            return None;
        }
        load(&self.key_path(id, state), id, state).map(|stored| stored.key.fingerprint)
    }

    /// Where Salt keeps `id`'s key in `state` (the caller has checked the name).
    fn key_path(&self, id: &str, state: LocalKeyState) -> PathBuf {
        self.pki_dir.join(state.salt_list()).join(id)
    }

    /// Writes `public_key` as the accepted key of `id`, unless `id` already has an accepted
    /// key (never overwritten). Returns whether it wrote.
    ///
    /// The key is written in full to a staging file and then hard-linked into place, so Salt
    /// never sees a partial key and an existing key is never replaced.
    pub fn pre_seed(&self, id: &str, public_key: &str) -> Result<bool> {
        if id.parse::<InstanceId>().is_err() {
            return Err(Error::Internal(format!(
                "refusing to pre-seed a key for {id:?}: not an instance id"
            )));
        }
        let accepted = self.pki_dir.join(LocalKeyState::Accepted.salt_list());
        let staging = self.pki_dir.join(STAGING_DIR);
        for dir in [&accepted, &staging] {
            fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        }
        let target = accepted.join(id);
        let staged = staging.join(format!("{id}.{}", std::process::id()));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&staged)?;
            file.write_all(public_key.as_bytes())?;
            file.sync_all()?;
            // The mode passed to open() is filtered by the umask; make it what Salt writes.
            fs::set_permissions(&staged, fs::Permissions::from_mode(0o644))
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&staged);
            return Err(io_error(&staged, source));
        }
        let linked = fs::hard_link(&staged, &target);
        let _ = fs::remove_file(&staged);
        match linked {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(io_error(&target, source)),
        }
    }
}

/// The key file of `id` in `state`, read and fingerprinted; None when there is none, or
/// (with a warning) when it cannot be read or is not a public key: the plan never acts on a
/// key it could not fingerprint.
fn load(path: &Path, id: &str, state: LocalKeyState) -> Option<StoredKey> {
    let refused = |err: &dyn std::fmt::Display| {
        log::warn!(
            "leaving the {} key of {id:?} alone: {err}",
            state.salt_list()
        );
        None
    };
    let public_key = match read_key(path) {
        Ok(Some(text)) => text,
        Ok(None) => return None,
        Err(err) => return refused(&err),
    };
    match pem_fingerprint(&public_key) {
        Ok(fingerprint) => Some(StoredKey {
            key: LocalKey {
                id: id.to_owned(),
                state,
                fingerprint,
            },
            public_key,
        }),
        Err(err) => refused(&err),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `path` is one of Salt's temporary key files, still being written (see
/// [`SALT_WRITE_IN_FLIGHT`]): named `tmp` and eight of `[a-z0-9_]`, and either gone already
/// (renamed into place) or modified less than [`SALT_WRITE_IN_FLIGHT`] ago. A modification
/// time in the future counts as recent. Any other file, of any age, is not in flight.
pub fn salt_write_in_flight(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(OsStr::to_str) else {
        return false;
    };
    if !is_salt_temp_name(name) {
        return false;
    }
    match fs::symlink_metadata(path).and_then(|meta| meta.modified()) {
        Ok(modified) => SystemTime::now()
            .duration_since(modified)
            .map_or(true, |age| age < SALT_WRITE_IN_FLIGHT),
        Err(err) => err.kind() == ErrorKind::NotFound,
    }
}

/// Python's `tempfile` names: the prefix `tmp` and eight characters of its random-name
/// alphabet (`tempfile._RandomNameSequence.characters`).
fn is_salt_temp_name(name: &str) -> bool {
    name.strip_prefix("tmp").is_some_and(|rest| {
        rest.len() == 8
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// The minion id a key file stands for, or None for files Salt itself skips (dot files such
/// as its `.key_cache`) and names that are not valid UTF-8.
fn key_file_id(name: &OsStr) -> Option<&str> {
    name.to_str().filter(|name| is_key_file_name(name))
}

fn is_key_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// The text of a regular key file, or None when there is none. Symbolic links are not
/// followed (Salt skips them too), and a file above the size limit is not read.
fn read_key(path: &Path) -> std::io::Result<Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    let mut text = String::new();
    let limit = MAX_PEM_BYTES as u64 + 1;
    match fs::File::open(path) {
        Ok(file) => {
            file.take(limit).read_to_string(&mut text)?;
        }
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("fixtures/minion-2048.pub");
    const OTHER: &str = include_str!("fixtures/minion-4096.pub");
    const ID: &str = "i-0123456789abcdef0";

    fn store() -> (tempfile::TempDir, KeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        (dir, store)
    }

    fn put(store: &KeyStore, state: LocalKeyState, id: &str, text: &str) {
        let dir = store.pki_dir().join(state.salt_list());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(id), text).unwrap();
    }

    #[test]
    fn lists_every_state_and_skips_what_is_not_a_key() {
        let (_dir, store) = store();
        put(&store, LocalKeyState::Accepted, ID, KEY);
        put(&store, LocalKeyState::Pending, "i-1111111111111111a", OTHER);
        put(&store, LocalKeyState::Denied, ID, OTHER);
        put(&store, LocalKeyState::Accepted, ".key_cache", "not a key");
        put(&store, LocalKeyState::Rejected, "web1", "garbage");
        let mut keys = store.list().unwrap();
        keys.sort_by(|a, b| (&a.key.id, a.key.state).cmp(&(&b.key.id, b.key.state)));
        let seen: Vec<(&str, LocalKeyState)> = keys
            .iter()
            .map(|k| (k.key.id.as_str(), k.key.state))
            .collect();
        assert_eq!(
            seen,
            vec![
                (ID, LocalKeyState::Accepted),
                (ID, LocalKeyState::Denied),
                ("i-1111111111111111a", LocalKeyState::Pending),
            ]
        );
        assert_eq!(keys[0].key.fingerprint, pem_fingerprint(KEY).unwrap());
        assert_eq!(keys[0].public_key, KEY);
    }

    fn age(path: &Path, seconds: u64) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(seconds))
            .unwrap();
    }

    #[test]
    fn a_key_salt_is_still_writing_is_not_listed_until_it_has_aged() {
        let (_dir, store) = store();
        put(&store, LocalKeyState::Accepted, ID, KEY);
        // What Salt 3008's key store leaves for a moment: the key, under mkstemp's name.
        put(&store, LocalKeyState::Accepted, "tmpf8wdsmi0", KEY);
        put(&store, LocalKeyState::Pending, "tmp_0a9zq1x", "");
        let ids = |store: &KeyStore| {
            let mut ids: Vec<String> = store
                .list()
                .unwrap()
                .into_iter()
                .map(|k| k.key.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&store), vec![ID.to_owned()]);
        // A file of that name that stays is no write in flight: it is listed like any key
        // (the empty one is still no key).
        let accepted = store.pki_dir().join("minions");
        age(&accepted.join("tmpf8wdsmi0"), 11);
        age(&store.pki_dir().join("minions_pre").join("tmp_0a9zq1x"), 11);
        assert_eq!(ids(&store), vec![ID.to_owned(), "tmpf8wdsmi0".to_owned()]);
    }

    #[test]
    fn only_mkstemp_names_can_be_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["tmpf8wdsmi0", "tmp_0a9zq1x", "tmp12345678"] {
            // Gone: renamed into place since it was listed.
            assert!(salt_write_in_flight(&dir.path().join(name)), "{name}");
            fs::write(dir.path().join(name), KEY).unwrap();
            assert!(salt_write_in_flight(&dir.path().join(name)), "{name}");
        }
        for name in [
            ID,
            "tmp1234567",
            "tmp123456789",
            "tmpABCDEFGH",
            "xtmp1234567",
            "tmp1234-678",
        ] {
            fs::write(dir.path().join(name), KEY).unwrap();
            assert!(!salt_write_in_flight(&dir.path().join(name)), "{name}");
            assert!(!salt_write_in_flight(
                &dir.path().join(format!("{name}.gone"))
            ));
        }
        age(&dir.path().join("tmpf8wdsmi0"), 11);
        assert!(!salt_write_in_flight(&dir.path().join("tmpf8wdsmi0")));
    }

    #[test]
    fn an_unreadable_pki_dir_is_an_error_not_an_empty_list() {
        let store = KeyStore::new("/nonexistent/phoenix/pki");
        assert!(matches!(store.list(), Err(Error::Io { .. })));
    }

    #[test]
    fn pre_seed_writes_once_and_never_overwrites() {
        let (_dir, store) = store();
        assert!(store.pre_seed(ID, KEY).unwrap());
        assert!(!store.pre_seed(ID, OTHER).unwrap());
        let path = store.pki_dir().join("minions").join(ID);
        assert_eq!(fs::read_to_string(&path).unwrap(), KEY);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Nothing is left behind where Salt looks for keys.
        let staged: Vec<_> = fs::read_dir(store.pki_dir().join(STAGING_DIR))
            .unwrap()
            .collect();
        assert!(staged.is_empty());
        assert_eq!(
            store.fingerprint(ID, LocalKeyState::Accepted),
            Some(pem_fingerprint(KEY).unwrap())
        );
        assert_eq!(store.fingerprint(ID, LocalKeyState::Pending), None);
    }

    #[test]
    fn pre_seed_refuses_ids_that_are_not_instance_ids() {
        let (_dir, store) = store();
        assert!(store.pre_seed("../master", KEY).is_err());
        assert!(store.pre_seed("web*", KEY).is_err());
    }

    #[test]
    fn get_reads_one_id_and_refuses_paths() {
        let (_dir, store) = store();
        put(&store, LocalKeyState::Pending, ID, KEY);
        let keys = store.get(ID).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key.state, LocalKeyState::Pending);
        assert!(store.get("../minions_pre/x").unwrap().is_empty());
    }
}
