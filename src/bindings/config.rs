//! `phoenix_salt._core.Config`: the validated `phoenix:` block, each setting a typed
//! property, each section (`phoenix.keys`, `phoenix.beacon`, ...) an object of its own.
//!
//! Python reads `config.keys.trust`, not `as_dict(config)["keys"]["trust"]`: a misspelt
//! setting is then an AttributeError that stubtest and the type checker see, not a KeyError
//! at run time. `to_json` stays for showing the whole effective configuration.

use pyo3::prelude::*;

use super::convert::to_python;
use crate::config::PhoenixConfig;

/// A frozen class wrapping one validated settings struct. Plain fields (numbers, strings,
/// lists, optionals) are cloned out; `names` (enums) cross as the string an operator writes,
/// without a JSON round trip (the beacon reads `drop_in.master_type` every second);
/// `python` fields (records) cross as what `json.loads` gives for their serde form;
/// `sections` are the nested settings classes.
macro_rules! settings_class {
    (
        $(#[$meta:meta])*
        $class:ident($inner:ty) {
            $($field:ident: $ty:ty),* $(,)?
        }
        $(names { $($name:ident),* $(,)? })?
        $(python { $($python:ident),* $(,)? })?
        $(sections { $($section:ident: $section_class:ident),* $(,)? })?
        $(methods { $($methods:tt)* })?
    ) => {
        $(#[$meta])*
        #[pyclass(frozen, module = "phoenix_salt._core")]
        pub struct $class {
            pub inner: $inner,
        }

        #[pymethods]
        impl $class {
            $(
                #[getter]
                fn $field(&self) -> $ty {
                    self.inner.$field.clone()
                }
            )*
            $($(
                #[getter]
                fn $name(&self) -> &'static str {
                    self.inner.$name.as_str()
                }
            )*)?
            $($(
                #[getter]
                fn $python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    to_python(py, &self.inner.$python)
                }
            )*)?
            $($(
                #[getter]
                fn $section(&self) -> $section_class {
                    $section_class {
                        inner: self.inner.$section.clone(),
                    }
                }
            )*)?
            $($($methods)*)?

            fn __repr__(&self) -> String {
                let json = serde_json::to_string(&self.inner).unwrap_or_default();
                format!("<phoenix_salt {} {json}>", stringify!($class))
            }
        }
    };
}

settings_class! {
    /// `phoenix.aws`: timeouts and retries of every AWS client.
    AwsSettings(crate::config::AwsSettings) {
        connect_timeout: f64,
        attempt_timeout: f64,
        operation_timeout: f64,
        max_attempts: u32,
    }
}

settings_class! {
    /// `phoenix.keys`: how the masters manage minion keys.
    KeySettings(crate::config::KeySettings) {
        reconcile_interval: f64,
        unmanaged: Vec<String>,
        require_group: bool,
        verify_autoscaling: bool,
        enrolment_window: f64,
        claim_queue_url: Option<String>,
        account_id: Option<String>,
    }
    names { trust }
    python { identity_certificates }
}

settings_class! {
    /// `phoenix.drop_in`: the Salt options of the minion drop-in, and where it lives.
    DropInSettings(crate::dropin::DropInSettings) {
        path: Option<String>,
        master_port: u16,
        publish_port: Option<u16>,
        master_alive_interval: u32,
        master_tries: i32,
        master_failback: bool,
        master_failback_interval: u32,
        retry_dns: u32,
        auth_timeout: u32,
        auth_tries: u32,
        tcp_keepalive: bool,
        tcp_keepalive_idle: u32,
        tcp_keepalive_cnt: u32,
        tcp_keepalive_intvl: u32,
    }
    names { master_type }
}

settings_class! {
    /// `phoenix.beacon`: how a minion follows the live masters.
    BeaconSettings(crate::config::BeaconSettings) {
        refresh_interval: f64,
        restart_command: Option<Vec<String>>,
        restart_service: String,
        restart_jitter: f64,
        restart_splay: f64,
        min_restart_interval: f64,
    }
}

settings_class! {
    /// `phoenix.highstate`: how the masters run every new minion's first highstate.
    HighstateSettings(crate::config::HighstateSettings) {
        attempts: u32,
        retry_delay: f64,
        retry_max_delay: f64,
        timeout: f64,
        check_interval: f64,
        lifecycle_heartbeat_interval: f64,
    }
}

settings_class! {
    /// `phoenix.sns`: SNS push delivery through salt-api's webhook.
    SnsSettings(crate::sns::SnsSettings) {
        topics: Vec<String>,
        cert_hosts: Vec<String>,
        max_age: f64,
        ca_bundle: Option<String>,
    }
}

settings_class! {
    /// `phoenix.replacement`: when the live masters report a silent peer to AutoScaling.
    ReplacementSettings(crate::replacement::ReplacementSettings) {
        enabled: bool,
        replace_after: f64,
        launch_grace: f64,
        max_in_flight: u32,
    }
}

settings_class! {
    /// `phoenix.retry`: when a lifecycle message that failed on a passing error is tried
    /// again.
    RetrySettings(crate::engine::RetrySettings) {
        first_delay: f64,
        max_delay: f64,
    }
}

settings_class! {
    /// The validated `phoenix:` configuration block, with defaults filled in.
    Config(PhoenixConfig) {
        cluster: String,
        region: Option<String>,
        masters_table: String,
        minions_table: String,
        queue_url: Option<String>,
        master_key_secret: String,
        master_groups: Vec<String>,
        minion_groups: Vec<String>,
        pollers: u32,
        heartbeat_interval: f64,
        master_stale_after: f64,
        serve_timeout: f64,
        terminated_ttl: u64,
        master_id: Option<String>,
        master_address: Option<String>,
        master_drain_time: f64,
        highstate_gating: bool,
    }
    sections {
        aws: AwsSettings,
        keys: KeySettings,
        drop_in: DropInSettings,
        beacon: BeaconSettings,
        highstate: HighstateSettings,
        sns: SnsSettings,
        replacement: ReplacementSettings,
        retry: RetrySettings,
    }
    methods {
        /// Validates the `phoenix:` block given as a JSON document. Raises `ConfigError`
        /// naming the bad key.
        #[staticmethod]
        fn from_json(json: &str) -> PyResult<Self> {
            Ok(Self {
                inner: PhoenixConfig::from_json(json)?,
            })
        }

        /// The effective configuration (every default filled in) as a JSON document.
        fn to_json(&self) -> PyResult<String> {
            serde_json::to_string(&self.inner).map_err(|err| {
                crate::Error::Internal(format!("serialising the config: {err}")).into()
            })
        }
    }
}

/// Adds every settings class to the module, so that they can be named and checked.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Config>()?;
    m.add_class::<AwsSettings>()?;
    m.add_class::<KeySettings>()?;
    m.add_class::<DropInSettings>()?;
    m.add_class::<BeaconSettings>()?;
    m.add_class::<HighstateSettings>()?;
    m.add_class::<SnsSettings>()?;
    m.add_class::<ReplacementSettings>()?;
    m.add_class::<RetrySettings>()?;
    Ok(())
}
