//! Parsing queue messages from Python: the SNS push path and tests feed bodies through the
//! same parser as the engine.

use pyo3::prelude::*;

use super::convert::to_python;
use crate::lifecycle;

/// Parses one SQS message body into a dict (`type` is `instance`, `failed_launch` or
/// `test`). Raises `MessageError` (with `reason`) for a body that can never be applied.
#[pyfunction]
pub fn parse_message<'py>(py: Python<'py>, body: &str) -> PyResult<Bound<'py, PyAny>> {
    let message = lifecycle::parse_message(body).map_err(crate::Error::from)?;
    to_python(py, &message)
}
