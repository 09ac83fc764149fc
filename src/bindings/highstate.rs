//! `phoenix_salt._core.FirstHighstate`: the registry side of every minion's first
//! highstate, driven by the `highstate_runner` runner (which publishes the Salt job) and the
//! instance_manager engine (which hands back job returns and sweeps).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::clock::now_ms;
use crate::highstate::{self, AttemptOutcome, ClaimMode, Status};
use crate::lifecycle::Role;
use crate::registry;

fn parse_mode(mode: &str) -> PyResult<ClaimMode> {
    match mode {
        "first" => Ok(ClaimMode::First),
        "retry" => Ok(ClaimMode::Retry),
        "rerun" => Ok(ClaimMode::Rerun),
        other => Err(PyValueError::new_err(format!(
            "mode must be 'first', 'retry' or 'rerun', not {other:?}"
        ))),
    }
}

/// First highstates of one cluster. Creating one connects to nothing.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct FirstHighstate {
    access: AwsAccess,
    /// When this process last heartbeat each waiting launch (instance id -> ms).
    heartbeats: Arc<Mutex<HashMap<String, i64>>>,
    /// This master's instance id, learnt once.
    master_id: Mutex<Option<String>>,
}

#[pymethods]
impl FirstHighstate {
    #[new]
    fn new(config: &Config) -> Self {
        Self {
            access: AwsAccess::new(config.inner.clone()),
            heartbeats: Arc::new(Mutex::new(HashMap::new())),
            master_id: Mutex::new(None),
        }
    }

    /// This master's instance id (`phoenix.master_id`, else the EC2 instance metadata),
    /// which records name as the master of an attempt.
    fn master_id(&self, py: Python<'_>) -> PyResult<String> {
        if let Some(id) = self
            .master_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(id);
        }
        let config = self.access.config.clone();
        let identity = wait(
            py,
            async move { crate::engine::resolve_identity(&config).await },
        )?;
        *self.master_id.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(identity.instance_id.clone());
        Ok(identity.instance_id)
    }

    /// Starts an attempt of `minion_id`'s first highstate as job `jid` of `master` when it
    /// is due (`mode`: "first", "retry" or "rerun"). Returns `{"claimed": bool, "attempt",
    /// "skip", "reason", "record", "events"}`; publish the job only when claimed.
    fn claim<'py>(
        &self,
        py: Python<'py>,
        minion_id: String,
        master: String,
        jid: String,
        mode: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mode = parse_mode(mode)?;
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let report = wait(py, async move {
            highstate::claim(&clients, &config, &minion_id, &master, &jid, mode, now_ms()).await
        })?;
        to_python(py, &report)
    }

    /// Records the end of the running attempt from its job return (the data of
    /// `salt/job/<jid>/ret/<minion>`, as JSON). Returns `{"recorded": bool, "reason",
    /// "record", "lifecycle", "events"}`; a job that is not the running attempt changes
    /// nothing.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        minion_id: String,
        jid: String,
        job_return: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data: serde_json::Value = serde_json::from_str(job_return)
            .map_err(|err| PyValueError::new_err(format!("job_return is not JSON: {err}")))?;
        let outcome = highstate::summarize(&data);
        self.end(py, minion_id, jid, outcome)
    }

    /// Records the running attempt `jid` as failed with `error` (its job could not be
    /// published). Same return as `finish`.
    fn fail<'py>(
        &self,
        py: Python<'py>,
        minion_id: String,
        jid: String,
        error: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.end(py, minion_id, jid, AttemptOutcome::error(error))
    }

    /// One sweep by master `master`: records attempts past their timeout, completes launches
    /// whose first highstate is done, heartbeats launches that wait. Returns `{"retry_due":
    /// [ids], "timed_out", "completed", "heartbeats", "failures", "events"}`.
    fn sweep<'py>(&self, py: Python<'py>, master: String) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let heartbeats = Arc::clone(&self.heartbeats);
        let report = wait(py, async move {
            let mut sent = heartbeats.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let report = highstate::sweep(&clients, &config, &master, &mut sent, now_ms()).await;
            *heartbeats.lock().unwrap_or_else(|p| p.into_inner()) = sent;
            report
        })?;
        to_python(py, &report)
    }

    /// `minion_id`'s registry row (`first_highstate` holds the record), or None.
    fn status<'py>(&self, py: Python<'py>, minion_id: String) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let found = wait(py, async move {
            highstate::find(&clients, &config, &minion_id).await
        })?;
        to_python(py, &found.map(|(_, row)| row))
    }

    /// Every live instance (minions, then masters) whose first highstate has not succeeded.
    fn pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let rows = wait(py, async move {
            let now = now_ms();
            let mut rows = registry::list(&clients, &config, Role::Minion, now).await?;
            rows.extend(registry::list(&clients, &config, Role::Master, now).await?);
            rows.retain(|row| {
                row.state.is_live()
                    && row
                        .first_highstate
                        .as_ref()
                        .is_none_or(|record| record.status != Status::Succeeded)
            });
            Ok(rows)
        })?;
        to_python(py, &rows)
    }

    fn __repr__(&self) -> String {
        format!(
            "<phoenix_salt FirstHighstate cluster={:?}>",
            self.access.config.cluster
        )
    }
}

impl FirstHighstate {
    fn end<'py>(
        &self,
        py: Python<'py>,
        minion_id: String,
        jid: String,
        outcome: AttemptOutcome,
    ) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let report = wait(py, async move {
            highstate::finish(&clients, &config, &minion_id, &jid, &outcome, now_ms()).await
        })?;
        to_python(py, &report)
    }
}
