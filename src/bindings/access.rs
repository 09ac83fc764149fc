//! AWS clients for one configuration, built once per process on first use.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::aws::AwsClients;
use crate::config::PhoenixConfig;
use crate::process::{self, PerProcess};

pub struct AwsAccess {
    pub config: PhoenixConfig,
    clients: PerProcess<AwsClients>,
}

impl AwsAccess {
    pub fn new(config: PhoenixConfig) -> Self {
        Self {
            config,
            clients: PerProcess::new(),
        }
    }

    /// This process's clients; the first call loads the SDK configuration (credentials,
    /// region) with the GIL released.
    pub fn clients(&self, py: Python<'_>) -> PyResult<Arc<AwsClients>> {
        let config = &self.config;
        Ok(py.detach(|| {
            self.clients
                .get_or_try_init(|| process::block_on(AwsClients::load(config))?)
        })?)
    }
}
