//! Handing serialisable core values to Python as plain dicts and lists.

use pyo3::prelude::*;
use serde::Serialize;

/// Any serialisable value as the Python object `json.loads` would give for it.
pub fn to_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value)
        .map_err(|err| crate::Error::Internal(format!("serialising a result: {err}")))?;
    py.import("json")?.call_method1("loads", (json,))
}
