//! A minion following the live masters, from Python: the `master_list` beacon's follower
//! and `phoenix minion-config`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::config::PhoenixConfig;
use crate::dropin::{self, DropInChange};
use crate::follow::{first_boot, refresher, Follower, Running, SnapshotSlot, Timing};
use crate::process;
use crate::registry::LiveMaster;

/// One minion's follower: a background refresher that reads the live masters, and a
/// `check` cheap enough for Salt's main loop.
///
/// Creating it starts nothing; the first `check` starts the refresher on this process's
/// runtime (and a forked child that checks starts its own). The refresher stops within one
/// interval once the follower is gone.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct MasterFollower {
    config: PhoenixConfig,
    minion_id: String,
    path: PathBuf,
    slot: Arc<SnapshotSlot>,
    follower: Mutex<Follower>,
    /// The process whose runtime runs the refresher.
    refresher_pid: Mutex<Option<u32>>,
    epoch: Instant,
}

impl MasterFollower {
    fn ensure_refresher(&self) -> PyResult<()> {
        let pid = std::process::id();
        let mut started = self.refresher_pid.lock().unwrap_or_else(|p| p.into_inner());
        if *started != Some(pid) {
            process::runtime()?.spawn(refresher::run(
                Arc::downgrade(&self.slot),
                self.config.clone(),
                self.minion_id.clone(),
            ));
            *started = Some(pid);
        }
        Ok(())
    }
}

#[pymethods]
impl MasterFollower {
    /// `drop_in_path`: the drop-in to keep right. `own_master`: the instance id of the
    /// master this minion runs beside, put first while it is live.
    #[new]
    #[pyo3(signature = (config, minion_id, drop_in_path, own_master=None))]
    fn new(
        config: &Config,
        minion_id: String,
        drop_in_path: PathBuf,
        own_master: Option<String>,
    ) -> Self {
        let config = config.inner.clone();
        let timing = Timing::from_config(&config);
        Self {
            follower: Mutex::new(Follower::new(
                minion_id.clone(),
                own_master,
                config.drop_in.master_type,
                timing,
            )),
            config,
            minion_id,
            path: drop_in_path,
            slot: Arc::new(SnapshotSlot::new()),
            refresher_pid: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    /// One beacon check, given the running minion's master (`None` when connected to none)
    /// and the master list it loaded. Returns `(events, restart)`: the events to return to
    /// Salt (dicts with a `tag`), and, when the restart command must run now, a dict with
    /// `reason` and `masters`, else `None`. Never waits on AWS.
    fn check<'py>(
        &self,
        py: Python<'py>,
        master: Option<&str>,
        masters: Vec<String>,
    ) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
        self.ensure_refresher()?;
        let snapshot = self.slot.latest();
        let now_ms = self.epoch.elapsed().as_millis() as i64;
        let outcome = {
            let mut follower = self.follower.lock().unwrap_or_else(|p| p.into_inner());
            follower.check(
                snapshot.as_deref(),
                Running {
                    master,
                    masters: &masters,
                },
                now_ms,
                &mut |list| dropin::update(&self.path, list, &self.config.drop_in),
            )
        };
        let events = if outcome.events.is_empty() {
            PyList::empty(py).into_any()
        } else {
            to_python(py, &outcome.events)?
        };
        let restart = outcome
            .restart
            .map(|order| to_python(py, &order))
            .transpose()?;
        Ok((events, restart))
    }

    /// The restart command failed with `error`; returns the event that reports it.
    fn restart_failed<'py>(&self, py: Python<'py>, error: &str) -> PyResult<Bound<'py, PyAny>> {
        let event = self
            .follower
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .restart_failed(error);
        to_python(py, &event)
    }

    /// The refresher's counters and the latest snapshot (`None` before the first good
    /// read), for status output and tests.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let health = PyDict::new(py);
        health.set_item("refresh", to_python(py, &self.slot.health())?)?;
        health.set_item("snapshot", to_python(py, &self.slot.latest().as_deref())?)?;
        health.set_item("drop_in", self.path.to_string_lossy())?;
        Ok(health)
    }

    #[getter]
    fn minion_id(&self) -> &str {
        &self.minion_id
    }

    #[getter]
    fn drop_in_path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "<phoenix_salt MasterFollower minion={:?} drop_in={:?}>",
            self.minion_id, self.path
        )
    }
}

/// Reads the live masters once and makes the drop-in at `drop_in_path` carry them in
/// `minion_id`'s order, `own_master` first while live. `starting_master_address`: this host
/// runs the master `own_master`, starting at that address and not live yet (a master's first
/// boot): it is listed, first. Returns `{"changed": bool, "old": list | None, "masters":
/// list}`. Raises `NotFoundError` when there is no master to write yet.
#[pyfunction]
#[pyo3(signature = (config, minion_id, drop_in_path, own_master=None, starting_master_address=None))]
pub fn write_minion_config<'py>(
    py: Python<'py>,
    config: &Config,
    minion_id: String,
    drop_in_path: PathBuf,
    own_master: Option<String>,
    starting_master_address: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let starting = match (starting_master_address, &own_master) {
        (Some(address), Some(instance_id)) => Some(LiveMaster {
            instance_id: instance_id.clone(),
            address,
        }),
        (Some(_), None) => {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "starting_master_address needs own_master: the id of the master starting here",
            ))
        }
        (None, _) => None,
    };
    let access = AwsAccess::new(config.inner.clone());
    let clients = access.clients(py)?;
    let config = config.inner.clone();
    let change = wait(py, async move {
        first_boot::write_minion_config(
            &clients,
            &config,
            &minion_id,
            own_master.as_deref(),
            starting.as_ref(),
            &drop_in_path,
        )
        .await
    })?;
    let result = PyDict::new(py);
    match change {
        DropInChange::Unchanged { masters } => {
            result.set_item("changed", false)?;
            result.set_item("old", &masters)?;
            result.set_item("masters", masters)?;
        }
        DropInChange::Written { old, new } => {
            result.set_item("changed", true)?;
            result.set_item("old", old)?;
            result.set_item("masters", new)?;
        }
    }
    Ok(result)
}

/// The master list of the Phoenix drop-in at `drop_in_path`, `None` when there is none.
/// Raises `ConflictError` for a file that is not Phoenix's or cannot be read back.
#[pyfunction]
pub fn read_drop_in(drop_in_path: PathBuf) -> PyResult<Option<Vec<String>>> {
    Ok(dropin::read_masters(&drop_in_path)?)
}

/// The master ids in the order `minion_id` tries them (rendezvous hashing,
/// docs/architecture.md invariant 8), with `own_master` first when listed.
#[pyfunction]
#[pyo3(signature = (minion_id, master_ids, own_master=None))]
pub fn order_masters(
    minion_id: &str,
    master_ids: Vec<String>,
    own_master: Option<&str>,
) -> Vec<String> {
    crate::ordering::order_masters(minion_id, &master_ids, own_master)
        .into_iter()
        .map(str::to_owned)
        .collect()
}
