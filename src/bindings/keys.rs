//! Minion keys from Python: Salt's key fingerprint, the key-reconcile plan, and a master's
//! key manager.
//!
//! The plan takes plain lists of dicts, read field by field with PyO3. Going through JSON
//! instead (`json.dumps` here, or JSON strings from the caller) was measured about three
//! times slower for 10,000 registry rows and 10,000 keys: `json.dumps` of the registry, public
//! keys included, costs more than reading the dicts and planning together. State names are
//! read in place (`PyBackedStr`), not copied. The plan, much smaller than its input, goes
//! back through serde and `json.loads`, so the output's shape has one definition: the serde
//! attributes in `crate::keys`.
//!
//! Bad arguments (an unknown state name, a PEM that is not a public key) raise `ValueError`,
//! as other argument errors of `_core` do; a missing dict key raises `KeyError`, a wrong type
//! `TypeError`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::de::{Deserialize, IntoDeserializer};

use std::path::PathBuf;
use std::sync::Arc;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::key_manager;
use crate::keys::{self, KeyPolicy, KeyTrust, LocalKey, LocalKeyState, PinnedKey, RegistryMinion};

/// `{"id": str, "state": str, "pinned": {"fingerprint": str, "public_key": str} | None}`;
/// `pinned` may be left out.
#[derive(FromPyObject)]
pub struct PyRegistryMinion {
    #[pyo3(item)]
    id: String,
    #[pyo3(item)]
    state: PyBackedStr,
    #[pyo3(item, default)]
    pinned: Option<PyPinnedKey>,
}

#[derive(FromPyObject)]
pub struct PyPinnedKey {
    #[pyo3(item)]
    fingerprint: String,
    #[pyo3(item)]
    public_key: String,
}

/// `{"id": str, "state": str, "fingerprint": str}`.
#[derive(FromPyObject)]
pub struct PyLocalKey {
    #[pyo3(item)]
    id: String,
    #[pyo3(item)]
    state: PyBackedStr,
    #[pyo3(item)]
    fingerprint: String,
}

/// Plans this master's key actions. `registry`: every registry minion; `local`: every key on
/// this master; `unmanaged`: exact ids Phoenix never touches; `trust`: `identity_document`
/// (no key found on a master is pinned) or `first_key`. Returns the actions as dicts,
/// each with an `action` key (`delete`, `pin`, `accept`, `pre_seed`), in the order
/// to carry them out. Raises `ValueError` for an unknown state name.
#[pyfunction]
#[pyo3(signature = (registry, local, unmanaged, trust = "identity_document"))]
pub fn plan_key_actions<'py>(
    py: Python<'py>,
    registry: Vec<PyRegistryMinion>,
    local: Vec<PyLocalKey>,
    unmanaged: Vec<String>,
    trust: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(trust) = KeyTrust::named(trust) else {
        return Err(PyValueError::new_err(format!(
            "unknown trust {trust:?}: identity_document or first_key"
        )));
    };
    let registry = registry
        .into_iter()
        .map(|minion| {
            Ok(RegistryMinion {
                state: state_named(&minion.state, "registry state")?,
                id: minion.id,
                pinned: minion.pinned.map(|pinned| PinnedKey {
                    fingerprint: pinned.fingerprint,
                    public_key: pinned.public_key,
                }),
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let local = local
        .into_iter()
        .map(|key| {
            Ok(LocalKey {
                state: state_named(&key.state, "key state")?,
                id: key.id,
                fingerprint: key.fingerprint,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let policy = KeyPolicy {
        unmanaged: unmanaged.into_iter().collect(),
        trust,
    };
    // Milliseconds of pure computation: let Salt's other threads run meanwhile.
    let actions = py.detach(|| keys::plan_key_actions(&registry, &local, &policy));
    to_python(py, &actions)
}

/// Salt's fingerprint of a PEM public key (`hash_type: sha256`), as `salt-call key.finger`
/// prints it. Raises `ValueError` for text that is not a PEM public key.
#[pyfunction]
pub fn pem_fingerprint(pem: &str) -> PyResult<String> {
    keys::pem_fingerprint(pem).map_err(|err| PyValueError::new_err(err.to_string()))
}

/// Whether `path` is a key file Salt 3008's key store is still writing: named like Python's
/// temporary files and renamed away already or written less than ten seconds ago. Such a
/// name in a key folder is no minion id; Phoenix's key listing leaves it out, and so should
/// anything else that reads the key folders or `salt-key -L`.
#[pyfunction]
pub fn salt_write_in_flight(path: PathBuf) -> bool {
    keys::salt_write_in_flight(&path)
}

/// A state from its serialized name, through the same serde names the plan's output uses.
fn state_named<'de, T: Deserialize<'de>>(name: &'de str, what: &str) -> PyResult<T> {
    let deserializer: StrDeserializer<'de, ValueError> = name.into_deserializer();
    T::deserialize(deserializer).map_err(|err| PyValueError::new_err(format!("{what}: {err}")))
}

/// This master's key manager: plans its keys against the registry, pins keys in the registry,
/// pre-seeds pinned keys. `pki_dir` is where Salt keeps this master's minion keys
/// (`cluster_pki_dir` when Salt's master cluster is on). Creating one connects to nothing.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct KeyManager {
    access: AwsAccess,
    manager: Arc<key_manager::KeyManager>,
}

#[pymethods]
impl KeyManager {
    #[new]
    fn new(config: &Config, pki_dir: PathBuf) -> Self {
        Self {
            access: AwsAccess::new(config.inner.clone()),
            manager: Arc::new(key_manager::KeyManager::new(
                config.inner.clone(),
                keys::KeyStore::new(pki_dir),
            )),
        }
    }

    /// The plan for every key on this master, or only for `minion_id`'s keys:
    /// `{"actions": [...], "keys": [...], "mismatches": [...], "held": [...],
    /// "registry_instances": n}`. Actions come in the order to carry them out; a `pin` action
    /// also carries `role` and `public_key`.
    #[pyo3(signature = (minion_id=None))]
    fn plan<'py>(&self, py: Python<'py>, minion_id: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let manager = Arc::clone(&self.manager);
        let plan = wait(py, async move {
            manager.plan(&clients, minion_id.as_deref()).await
        })?;
        to_python(py, &plan)
    }

    /// Pins `public_key` for `minion_id` in the registry unless a key is pinned already.
    /// Returns `{"outcome": "pinned" | "already_pinned" | "pinned_other" | "not_live", ...}`.
    fn pin<'py>(
        &self,
        py: Python<'py>,
        minion_id: String,
        role: &str,
        fingerprint: String,
        public_key: String,
        pinned_by: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let role = super::session::parse_role(role)?;
        let clients = self.access.clients(py)?;
        let manager = Arc::clone(&self.manager);
        let outcome = wait(py, async move {
            manager
                .pin(
                    &clients,
                    role,
                    &minion_id,
                    &fingerprint,
                    &public_key,
                    &pinned_by,
                )
                .await
        })?;
        to_python(py, &outcome)
    }

    /// Records that `master` holds `minion_id`'s pinned key (`fingerprint`) as accepted, so
    /// that the minion's first boot can wait for every live master. Returns False when the
    /// registry no longer pins that key.
    fn record_seeded(
        &self,
        py: Python<'_>,
        minion_id: String,
        role: &str,
        fingerprint: String,
        master: String,
    ) -> PyResult<bool> {
        let role = super::session::parse_role(role)?;
        let clients = self.access.clients(py)?;
        let manager = Arc::clone(&self.manager);
        wait(py, async move {
            manager
                .record_seeded(&clients, role, &minion_id, &fingerprint, &master)
                .await
        })
    }

    /// The fingerprint of `minion_id`'s key in `state` (`accepted`, `pending`, `rejected`,
    /// `denied`) right now, or None.
    fn fingerprint(&self, minion_id: &str, state: &str) -> PyResult<Option<String>> {
        let state: LocalKeyState = state_named(state, "key state")?;
        Ok(self.manager.store().fingerprint(minion_id, state))
    }

    /// Writes `public_key` as `minion_id`'s accepted key unless it has one; returns whether it
    /// wrote.
    fn pre_seed(&self, py: Python<'_>, minion_id: &str, public_key: &str) -> PyResult<bool> {
        Ok(py.detach(|| self.manager.store().pre_seed(minion_id, public_key))?)
    }

    fn __repr__(&self) -> String {
        format!(
            "<phoenix_salt KeyManager cluster={:?} pki_dir={:?}>",
            self.access.config.cluster,
            self.manager.store().pki_dir()
        )
    }
}
