//! Minion keys from Python: Salt's key fingerprint and the key-reconcile plan.
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

use super::convert::to_python;
use crate::keys::{self, KeyPolicy, LocalKey, PinnedKey, RegistryMinion};

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
/// this master; `unmanaged`: exact ids Phoenix never touches. Returns the actions as dicts,
/// each with an `action` key (`delete`, `reject`, `pin`, `accept`, `pre_seed`), in the order
/// to carry them out. Raises `ValueError` for an unknown state name.
#[pyfunction]
pub fn plan_key_actions<'py>(
    py: Python<'py>,
    registry: Vec<PyRegistryMinion>,
    local: Vec<PyLocalKey>,
    unmanaged: Vec<String>,
) -> PyResult<Bound<'py, PyAny>> {
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

/// A state from its serialized name, through the same serde names the plan's output uses.
fn state_named<'de, T: Deserialize<'de>>(name: &'de str, what: &str) -> PyResult<T> {
    let deserializer: StrDeserializer<'de, ValueError> = name.into_deserializer();
    T::deserialize(deserializer).map_err(|err| PyValueError::new_err(format!("{what}: {err}")))
}
