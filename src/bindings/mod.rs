//! The binding layer: `phoenix_salt._core`. Thin on purpose: each function converts
//! arguments, releases the GIL, runs the domain code on this process's runtime and maps the
//! outcome back. Importing the module starts nothing (no thread, runtime or client).

mod access;
mod claims;
mod config;
mod convert;
mod engine;
mod errors;
mod events;
mod follow;
mod highstate;
mod keys;
mod logging;
mod master_key;
mod messages;
mod session;
mod sns;
mod wait;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    config::register(m)?;
    events::register(m)?;
    m.add_class::<session::Session>()?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<keys::KeyManager>()?;
    m.add_class::<follow::MasterFollower>()?;
    m.add_class::<highstate::FirstHighstate>()?;
    m.add_class::<sns::SnsReceiver>()?;
    m.add_class::<claims::ClaimVerifier>()?;
    m.add_function(wrap_pyfunction!(messages::parse_message, m)?)?;
    m.add_function(wrap_pyfunction!(keys::plan_key_actions, m)?)?;
    m.add_function(wrap_pyfunction!(claims::send_claim, m)?)?;
    m.add_function(wrap_pyfunction!(claims::claim_message, m)?)?;
    m.add_function(wrap_pyfunction!(claims::enrolment_status, m)?)?;
    m.add_function(wrap_pyfunction!(claims::master_instance_id, m)?)?;
    m.add_function(wrap_pyfunction!(keys::pem_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(keys::salt_write_in_flight, m)?)?;
    m.add_function(wrap_pyfunction!(follow::write_minion_config, m)?)?;
    m.add_function(wrap_pyfunction!(follow::order_masters, m)?)?;
    m.add_function(wrap_pyfunction!(follow::read_drop_in, m)?)?;
    m.add_function(wrap_pyfunction!(master_key::master_key_pair, m)?)?;
    m.add_function(wrap_pyfunction!(master_key::install_master_key, m)?)?;
    m.add_function(wrap_pyfunction!(master_key::register_booting_master, m)?)?;
    Ok(())
}
