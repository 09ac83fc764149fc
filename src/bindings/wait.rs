//! Running core futures from Python: the GIL is released while the future runs on this
//! process's runtime, and Ctrl-C (a pending Python signal) interrupts the wait.

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;

use crate::error::Result;
use crate::process;

/// How often a blocked call looks for a pending signal.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

pub fn wait<F, T>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let outcome = py.detach(|| {
        process::block_on_interruptible(future, SIGNAL_CHECK, || {
            Python::attach(|py| py.check_signals())
        })
    })?;
    Ok(outcome??)
}
