//! The events Python fires of its own, built by the core's one home of events
//! (`crate::events`), and the tags Python and the reactor wiring match on.

use pyo3::prelude::*;
use serde_json::Value;

use super::convert::{from_python, to_python};
use crate::events;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("INSTANCE_TAG_PREFIX", events::INSTANCE_TAG_PREFIX)?;
    m.add("INSTANCE_TERMINATED_TAGS", events::INSTANCE_TERMINATED_TAGS)?;
    m.add("RECONCILED_ACTIONS_MAX", events::RECONCILED_ACTIONS_MAX)?;
    m.add_function(wrap_pyfunction!(key_pinned_by_operator_event, m)?)?;
    m.add_function(wrap_pyfunction!(key_mismatch_event, m)?)?;
    m.add_function(wrap_pyfunction!(key_reconciled_event, m)?)?;
    m.add_function(wrap_pyfunction!(push_rejected_event, m)?)?;
    Ok(())
}

/// `phoenix/key/pinned` on an operator's word.
#[pyfunction]
fn key_pinned_by_operator_event<'py>(
    py: Python<'py>,
    id: &str,
    role: &str,
    fingerprint: &str,
    pinned_by: &str,
) -> PyResult<Bound<'py, PyAny>> {
    to_python(
        py,
        &events::key_pinned_by_operator(id, role, fingerprint, pinned_by),
    )
}

/// `phoenix/key/mismatch`.
#[pyfunction]
fn key_mismatch_event<'py>(
    py: Python<'py>,
    id: &str,
    key_state: &str,
    fingerprint: &str,
    pinned: &str,
    action: &str,
    master: &str,
) -> PyResult<Bound<'py, PyAny>> {
    to_python(
        py,
        &events::key_mismatch(id, key_state, fingerprint, pinned, action, master),
    )
}

/// `phoenix/key/reconciled`. `done` and `counts` are the reconcile's own results, plain
/// JSON-able values; they cross as JSON once per reconcile that did something.
#[pyfunction]
fn key_reconciled_event<'py>(
    py: Python<'py>,
    master: &str,
    done: &Bound<'py, PyAny>,
    counts: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let done: Vec<Value> = from_python(py, done)?;
    let counts: Value = from_python(py, counts)?;
    to_python(py, &events::key_reconciled(master, done, counts))
}

/// `phoenix/message/rejected` for a refused SNS push.
#[pyfunction]
#[pyo3(signature = (message_id, reason, error))]
fn push_rejected_event<'py>(
    py: Python<'py>,
    message_id: Option<&str>,
    reason: &str,
    error: &str,
) -> PyResult<Bound<'py, PyAny>> {
    to_python(py, &events::push_rejected(message_id, reason, error))
}
