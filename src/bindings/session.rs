//! `phoenix_salt._core.Session`: AWS access for one configuration, one set of clients per
//! process (rebuilt in a forked child).

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::clock::now_ms;
use crate::engine::dead_letters;
use crate::lifecycle::Role;
use crate::registry;

/// AWS access for one `phoenix:` configuration. Creating a session connects to nothing;
/// the clients are built on the first call, in the process that makes it.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct Session {
    access: AwsAccess,
}

pub(super) fn parse_role(role: &str) -> PyResult<Role> {
    match role {
        "master" => Ok(Role::Master),
        "minion" => Ok(Role::Minion),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "role must be 'master' or 'minion', not {other:?}"
        ))),
    }
}

#[pymethods]
impl Session {
    #[new]
    fn new(config: &Config) -> Self {
        Self {
            access: AwsAccess::new(config.inner.clone()),
        }
    }

    /// The region the clients use (from `phoenix.region` or the SDK's chain).
    fn region(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.access.clients(py)?.region().to_owned())
    }

    /// Creates the masters and minions tables where missing (the schema of `cfn/`) and
    /// returns `[(table, created_now), ...]`.
    fn create_registry_tables(&self, py: Python<'_>) -> PyResult<Vec<(String, bool)>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        wait(py, async move {
            registry::create_tables(&clients, &config).await
        })
    }

    /// DescribeTable as a dict: name, status, key_schema, item_count.
    fn describe_table<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyDict>> {
        let clients = self.access.clients(py)?;
        let table = wait(py, async move {
            registry::describe_table(&clients, &name).await
        })?;
        let dict = PyDict::new(py);
        dict.set_item("name", table.name)?;
        dict.set_item("status", table.status)?;
        dict.set_item("key_schema", table.key_schema)?;
        dict.set_item("item_count", table.item_count)?;
        Ok(dict)
    }

    /// Every unexpired row of `role` ("master" or "minion") in this cluster.
    fn list_instances<'py>(&self, py: Python<'py>, role: &str) -> PyResult<Bound<'py, PyAny>> {
        let role = parse_role(role)?;
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let rows = wait(py, async move {
            registry::list(&clients, &config, role, now_ms()).await
        })?;
        to_python(py, &rows)
    }

    /// One row, or None.
    fn get_instance<'py>(
        &self,
        py: Python<'py>,
        role: &str,
        instance_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let role = parse_role(role)?;
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let row = wait(py, async move {
            registry::get(&clients, &config, role, &instance_id).await
        })?;
        to_python(py, &row)
    }

    /// The live masters (running, fresh heartbeat), sorted by instance id.
    fn live_masters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let live = wait(py, async move {
            registry::read_live_masters(&clients, &config).await
        })?;
        to_python(py, &live)
    }

    /// Up to `max` messages of the events queue's dead-letter queue, each with the engine's
    /// verdict (`phoenix dlq list`): `{"dead_letter_queue_url": ..., "messages": [...]}`.
    /// The messages are visible again when it returns.
    #[pyo3(signature = (max = 100))]
    fn dead_letters<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let (url, messages) = wait(py, async move {
            dead_letters::list(&clients, &config, max).await
        })?;
        to_python(
            py,
            &serde_json::json!({"dead_letter_queue_url": url, "messages": messages}),
        )
    }

    /// Sends every dead-lettered message the engine would not reject back to the events
    /// queue, up to `max` (`phoenix dlq redrive`); `dry_run`: judge only.
    #[pyo3(signature = (max = 100, dry_run = false))]
    fn redrive_dead_letters<'py>(
        &self,
        py: Python<'py>,
        max: usize,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let report = wait(py, async move {
            dead_letters::redrive(&clients, &config, max, dry_run).await
        })?;
        to_python(py, &report)
    }

    fn __repr__(&self) -> String {
        format!(
            "<phoenix_salt Session cluster={:?}>",
            self.access.config.cluster
        )
    }
}
