//! The Python exception hierarchy, rooted at `phoenix_salt.PhoenixError`, and the one
//! conversion from the core's [`Error`] to it. Structured fields ride on the exception as
//! attributes (`key`, `code`, `operation`, `retryable`), so callers never parse messages.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::error::Error;

create_exception!(
    phoenix_salt,
    PhoenixError,
    PyException,
    "Root of every error Phoenix raises."
);
create_exception!(
    phoenix_salt,
    ConfigError,
    PhoenixError,
    "A `phoenix:` setting is missing, mistyped or out of range; `key` names it."
);
create_exception!(
    phoenix_salt,
    AwsError,
    PhoenixError,
    "An AWS call failed; `code`, `service`, `operation` and `retryable` say how."
);
create_exception!(
    phoenix_salt,
    NotFoundError,
    PhoenixError,
    "Something the call needs does not exist; `code` is the AWS error code where there is one."
);
create_exception!(
    phoenix_salt,
    ConflictError,
    PhoenixError,
    "The world is not as the call expected and Phoenix will not overwrite it."
);
create_exception!(
    phoenix_salt,
    MessageError,
    PhoenixError,
    "A queue message that can never be applied; `reason` is its machine-readable kind."
);
create_exception!(
    phoenix_salt,
    ClaimError,
    PhoenixError,
    "An identity claim Phoenix will not let pin a key; `reason` is its machine-readable kind."
);
create_exception!(
    phoenix_salt,
    InternalError,
    PhoenixError,
    "A bug in Phoenix: please report it with the log."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PhoenixError", py.get_type::<PhoenixError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("AwsError", py.get_type::<AwsError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("MessageError", py.get_type::<MessageError>())?;
    m.add("ClaimError", py.get_type::<ClaimError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| to_python(py, err))
    }
}

fn to_python(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    let (pyerr, fields): (PyErr, Vec<(&str, Py<PyAny>)>) = match err {
        Error::Config { key, .. } => (
            ConfigError::new_err(message),
            vec![("key", object(py, key))],
        ),
        Error::Aws {
            service,
            operation,
            code,
            retryable,
            ..
        } => (
            AwsError::new_err(message),
            vec![
                ("service", object(py, service)),
                ("operation", object(py, operation)),
                ("code", object(py, code)),
                ("retryable", object(py, retryable)),
            ],
        ),
        Error::NotFound { code, .. } => (
            NotFoundError::new_err(message),
            vec![("code", object(py, code))],
        ),
        Error::Conflict(_) => (ConflictError::new_err(message), vec![]),
        Error::Io { path, source } => {
            let filename = path.display().to_string();
            // An error that Phoenix worded itself (which step failed) has no errno; an
            // OSError built with errno 0 would print "[Errno 0]".
            return match source.raw_os_error() {
                Some(errno) => PyOSError::new_err((errno, source.to_string(), filename)),
                None => PyOSError::new_err(format!("{filename}: {source}")),
            };
        }
        Error::Message(reason) => (
            MessageError::new_err(message),
            vec![("reason", object(py, reason.kind()))],
        ),
        Error::Sns(rejection) => (
            MessageError::new_err(message),
            vec![("reason", object(py, rejection.kind()))],
        ),
        Error::Claim(refusal) => (
            ClaimError::new_err(message),
            vec![("reason", object(py, refusal.kind()))],
        ),
        Error::Internal(_) => (InternalError::new_err(message), vec![]),
    };
    let value = pyerr.value(py);
    for (name, field) in fields {
        // An attribute that cannot be set still leaves a correct exception class and message.
        let _ = value.setattr(name, field);
    }
    pyerr
}

fn object<'py, T>(py: Python<'py>, value: T) -> Py<PyAny>
where
    T: IntoPyObject<'py>,
{
    value.into_py_any(py).unwrap_or_else(|_| py.None())
}
