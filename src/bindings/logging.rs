//! Rust `log` records into Python's `logging`, so they land in Salt's log files.
//!
//! Each record goes through `logging.getLogger(<module path>).log(level, message)`, the
//! public API. (A bridge that calls `Logger.makeRecord` directly does not work inside Salt:
//! Salt installs its own logger class, whose `makeRecord` needs the `extra` fields that only
//! Salt's own `Logger._log` adds, and raises without them.)

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;

/// Phoenix's own records from debug up; other crates' (the AWS SDK's) from warnings up.
struct PythonLogging;

const OWN_TARGET: &str = "phoenix_salt";

impl Log for PythonLogging {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if metadata.target().starts_with(OWN_TARGET) {
            metadata.level() <= Level::Debug
        } else {
            metadata.level() <= Level::Warn
        }
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let name = record.target().replace("::", ".");
        let level = match record.level() {
            Level::Error => 40,
            Level::Warn => 30,
            Level::Info => 20,
            Level::Debug | Level::Trace => 10,
        };
        let message = record.args().to_string();
        // try_attach: nothing to do when the interpreter is gone (a record logged by a
        // runtime thread while Python shuts down).
        let _ = Python::try_attach(|py| -> PyResult<()> {
            py.import("logging")?
                .call_method1("getLogger", (name,))?
                .call_method1("log", (level, "%s", message))?;
            Ok(())
        });
    }

    fn flush(&self) {}
}

static LOGGER: PythonLogging = PythonLogging;

/// Installs the bridge once per process. Installing starts nothing.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
}
