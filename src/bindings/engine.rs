//! `phoenix_salt._core.Engine`: the instance_manager engine's core, driven by its Python
//! shim (which owns the loop and fires the returned events on Salt's bus).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::engine::{self, BusEvent, ClaimDesk, MasterIdentity, MessageOutcome, QueueMessage};
use crate::registry::LiveMaster;
use crate::replacement::Judge;

/// The engine of one master. Creating it connects to nothing.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct Engine {
    access: AwsAccess,
    identity: Mutex<Option<MasterIdentity>>,
    live: Mutex<Option<Vec<LiveMaster>>>,
    /// Whether "heartbeat not recorded" was said since the last recorded one.
    unrecorded_reported: AtomicBool,
    /// What this master watched of its peers' heartbeats, to judge which to replace.
    judge: Arc<Judge>,
    /// What judges identity claims, once the first poll of the claim queue opened it.
    claim_desk: Mutex<Option<Arc<ClaimDesk>>>,
}

impl Engine {
    fn identity(&self) -> PyResult<MasterIdentity> {
        self.identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                crate::Error::Internal("register_master() must run before heartbeat()".into())
                    .into()
            })
    }
}

#[pymethods]
impl Engine {
    #[new]
    fn new(config: &Config) -> PyResult<Self> {
        config.inner.require_queue_url()?;
        if config.inner.keys.trust == crate::keys::KeyTrust::IdentityDocument {
            config.inner.keys.require_claim_queue_url()?;
        }
        Ok(Self {
            access: AwsAccess::new(config.inner.clone()),
            identity: Mutex::new(None),
            live: Mutex::new(None),
            unrecorded_reported: AtomicBool::new(false),
            judge: Arc::new(Judge::default()),
            claim_desk: Mutex::new(None),
        })
    }

    /// Learns this master's identity (config, else IMDSv2), registers it as running and
    /// records its first heartbeat. Returns the identity.
    fn register_master<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let identity = wait(py, async move {
            let identity = engine::resolve_identity(&config).await?;
            engine::register_master(&clients, &config, &identity).await?;
            Ok(identity)
        })?;
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity.clone());
        to_python(py, &identity)
    }

    /// Records one heartbeat and reads the live list, letting drained masters' terminations
    /// go on; returns the events to fire (`phoenix/masters/changed` when the list moved
    /// since the last call, `phoenix/instance/<id>/drained`).
    fn heartbeat<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let identity = self.identity()?;
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let judge = Arc::clone(&self.judge);
        let beat = wait(py, async move {
            engine::heartbeat(&clients, &config, &identity, &judge).await
        })?;
        // Said once, not every few seconds until the instance is gone.
        if beat.recorded {
            self.unrecorded_reported.store(false, Ordering::Relaxed);
        } else if !self.unrecorded_reported.swap(true, Ordering::Relaxed) {
            log::warn!(
                "this master's row is missing or retiring: its heartbeats are no longer \
                 recorded and it is out of the live list"
            );
        }
        let live = beat.live;
        let mut last = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut events: Vec<BusEvent> = beat.events;
        if last.as_ref() != Some(&live) {
            let previous = last.clone().unwrap_or_default();
            log::info!(
                "live masters: {:?}",
                live.iter()
                    .map(|m| m.instance_id.as_str())
                    .collect::<Vec<_>>()
            );
            events.push(engine::masters_changed(&previous, &live));
            *last = Some(live);
        }
        to_python(py, &events)
    }

    /// Long-polls the queue once (up to `wait_seconds`), applies what arrived, deletes what
    /// is durable. Returns the report, with the events to fire.
    // The literal (not the constant) so that the signature Python sees shows the default.
    #[pyo3(signature = (wait_seconds = 20))]
    fn poll<'py>(&self, py: Python<'py>, wait_seconds: i32) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let report = wait(py, async move {
            engine::poll_once(
                &clients,
                &config,
                wait_seconds.clamp(0, engine::LONG_POLL_SECONDS),
            )
            .await
        })?;
        to_python(py, &report)
    }

    /// Long-polls the claim queue once (up to `wait_seconds`): verifies each identity claim,
    /// pins the key of the first valid one per instance, deletes what is settled. Returns
    /// the report (`pinned`: the ids whose keys to reconcile now; `events` to fire). The
    /// first call learns the cluster's account and region (config, else this master's own
    /// identity document) and raises ConfigError when it cannot.
    #[pyo3(signature = (wait_seconds = 20))]
    fn poll_claims<'py>(&self, py: Python<'py>, wait_seconds: i32) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let known = self
            .identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let desk = self
            .claim_desk
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (report, desk) = wait(py, async move {
            let desk = match desk {
                Some(desk) => desk,
                None => Arc::new(ClaimDesk::open(&config).await?),
            };
            let master = match known {
                Some(identity) => identity.instance_id,
                None => engine::resolve_identity(&config).await?.instance_id,
            };
            let report = engine::poll_claims(
                &clients,
                &config,
                &desk,
                &master,
                wait_seconds.clamp(0, engine::LONG_POLL_SECONDS),
            )
            .await?;
            Ok((report, desk))
        })?;
        self.claim_desk
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(desk);
        to_python(py, &report)
    }

    /// Applies one message body through the same path as the queue (for SNS push delivery
    /// and for tests). Returns {"outcome": done|retry|rejected, "events": [...]}.
    fn apply_body<'py>(&self, py: Python<'py>, body: String) -> PyResult<Bound<'py, PyAny>> {
        let clients = self.access.clients(py)?;
        let config = self.access.config.clone();
        let outcome = wait(py, async move {
            let message = QueueMessage {
                message_id: "direct".to_owned(),
                receipt_handle: String::new(),
                body,
                receive_count: 1,
            };
            Ok(engine::apply_message(&clients, &config, &message).await)
        })?;
        let (name, events) = match outcome {
            MessageOutcome::Done(events) => ("done", events),
            MessageOutcome::Retry(events) => ("retry", events),
            MessageOutcome::Rejected(event) => ("rejected", vec![event]),
        };
        to_python(
            py,
            &serde_json::json!({ "outcome": name, "events": events }),
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "<phoenix_salt Engine cluster={:?}>",
            self.access.config.cluster
        )
    }
}
