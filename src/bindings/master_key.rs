//! The cluster's master key pair from Python: `phoenix master-bootstrap`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::engine;
use crate::master_key::{self, KeyOrigin, MasterKeyPair};

/// The cluster's master key pair: the stored one, or this candidate (`private_pem`,
/// `public_pem`) stored now if the cluster has none, created exactly once across masters.
/// Returns `{"origin": "created" | "existing", "master.pem": str, "master.pub": str}`.
#[pyfunction]
pub fn master_key_pair<'py>(
    py: Python<'py>,
    config: &Config,
    private_pem: String,
    public_pem: String,
) -> PyResult<Bound<'py, PyDict>> {
    let access = AwsAccess::new(config.inner.clone());
    let clients = access.clients(py)?;
    let config = config.inner.clone();
    let candidate = MasterKeyPair::new(private_pem, public_pem);
    let (pair, origin) = wait(py, async move {
        master_key::get_or_create(&clients, &config, &candidate).await
    })?;
    let result = PyDict::new(py);
    result.set_item(
        "origin",
        match origin {
            KeyOrigin::Created => "created",
            KeyOrigin::Existing => "existing",
        },
    )?;
    result.set_item("master.pem", pair.private_pem)?;
    result.set_item("master.pub", pair.public_pem)?;
    Ok(result)
}

/// Installs the pair into `pki_dir` as `master.pem` (0400) and `master.pub` (0644). Returns
/// "installed", "unchanged" or "replaced"; raises `ConflictError` when another private key
/// is there and `replace` is false.
#[pyfunction]
pub fn install_master_key(
    py: Python<'_>,
    pki_dir: PathBuf,
    private_pem: String,
    public_pem: String,
    replace: bool,
) -> PyResult<&'static str> {
    let pair = MasterKeyPair::new(private_pem, public_pem);
    let installed = py.detach(|| master_key::install(&pki_dir, &pair, replace))?;
    Ok(match installed {
        master_key::Installed::Installed => "installed",
        master_key::Installed::Unchanged => "unchanged",
        master_key::Installed::Replaced => "replaced",
    })
}

/// Registers this booting master as `launching` (identity from `phoenix.master_id` and
/// `phoenix.master_address`, else IMDSv2). Returns `{"instance_id", "address", "group",
/// "availability_zone", "registered": "moved" | "already_newer"}`.
#[pyfunction]
pub fn register_booting_master<'py>(
    py: Python<'py>,
    config: &Config,
) -> PyResult<Bound<'py, PyAny>> {
    let access = AwsAccess::new(config.inner.clone());
    let clients = access.clients(py)?;
    let config = config.inner.clone();
    let (identity, applied) = wait(py, async move {
        let identity = engine::resolve_identity(&config).await?;
        let applied = engine::register_booting_master(&clients, &config, &identity).await?;
        Ok((identity, applied))
    })?;
    let result = to_python(py, &identity)?;
    result.set_item("registered", to_python(py, &applied)?)?;
    Ok(result)
}
