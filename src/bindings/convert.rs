//! Handing serialisable core values to Python as plain dicts and lists, and back.

use pyo3::prelude::*;
use serde::Serialize;

/// Any serialisable value as the Python object `json.loads` would give for it.
pub fn to_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(value)
        .map_err(|err| crate::Error::Internal(format!("serialising a result: {err}")))?;
    py.import("json")?.call_method1("loads", (json,))
}

/// A plain Python value (dicts, lists, strings, numbers) as the core's type `T`, through
/// `json.dumps`: for values that cross rarely, not on a hot path.
pub fn from_python<T: serde::de::DeserializeOwned>(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
) -> PyResult<T> {
    let json: String = py
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()?;
    serde_json::from_str(&json).map_err(|err| {
        pyo3::exceptions::PyTypeError::new_err(format!("not a plain JSON value: {err}"))
    })
}
