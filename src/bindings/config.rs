//! `phoenix_salt._core.Config`: the validated `phoenix:` block.

use pyo3::prelude::*;

use crate::config::PhoenixConfig;

/// The validated `phoenix:` configuration block, with defaults filled in.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct Config {
    pub inner: PhoenixConfig,
}

#[pymethods]
impl Config {
    /// Validates the `phoenix:` block given as a JSON document. Raises `ConfigError`
    /// naming the bad key.
    #[staticmethod]
    fn from_json(json: &str) -> PyResult<Self> {
        Ok(Self {
            inner: PhoenixConfig::from_json(json)?,
        })
    }

    #[getter]
    fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    /// The effective configuration (every default filled in) as a JSON document.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner)
            .map_err(|err| crate::Error::Internal(format!("serialising the config: {err}")).into())
    }

    fn __repr__(&self) -> String {
        format!("<phoenix_salt Config cluster={:?}>", self.inner.cluster)
    }
}
