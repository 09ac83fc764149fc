//! `phoenix_salt._core.send_claim`: an instance's identity claim for its minion key, and
//! `claim_message`, the claim as it travels; `ClaimVerifier`, the core's verification alone.

use pyo3::prelude::*;

use super::access::AwsAccess;
use super::config::Config;
use super::convert::to_python;
use super::wait::wait;
use crate::claimant;
use crate::enrolment::{
    verify_claim, ClaimRefusal, EnrolmentPolicy, IdentityCertificates, KeyClaim,
};
use crate::error::Error;

/// Reads this instance's identity document and signature from IMDS (`imds_endpoint`
/// overrides where it is) and sends them with `public_key` (PEM) to the claim queue, as
/// `minion_id`. Returns `{"instance_id", "fingerprint", "message_id"}`. Raises ConfigError
/// (no claim queue configured, or `minion_id` is not this instance's id), NotFoundError (no
/// metadata service), ClaimError (a key Salt cannot fingerprint, a document that is not
/// one) or AwsError.
#[pyfunction]
#[pyo3(signature = (config, minion_id, public_key, imds_endpoint=None))]
pub fn send_claim<'py>(
    py: Python<'py>,
    config: &Config,
    minion_id: String,
    public_key: String,
    imds_endpoint: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let access = AwsAccess::new(config.inner.clone());
    let clients = access.clients(py)?;
    let config = config.inner.clone();
    let sent = wait(py, async move {
        claimant::send_claim(
            &clients,
            &config,
            &minion_id,
            &public_key,
            imds_endpoint.as_deref(),
        )
        .await
    })?;
    to_python(py, &sent)
}

/// Where `minion_id`'s enrolment stands: `{"pinned": fingerprint | None, "seeded": [...],
/// "waiting_for": [...]}` (live masters that hold the pinned key as accepted, and those that
/// do not yet).
#[pyfunction]
pub fn enrolment_status<'py>(
    py: Python<'py>,
    config: &Config,
    minion_id: String,
) -> PyResult<Bound<'py, PyAny>> {
    let access = AwsAccess::new(config.inner.clone());
    let clients = access.clients(py)?;
    let config = config.inner.clone();
    let status = wait(py, async move {
        claimant::enrolment_status(&clients, &config, &minion_id).await
    })?;
    to_python(py, &status)
}

/// The claim queue message for `document` (its exact bytes), `signature` (base64, as IMDS
/// serves it) and `public_key`, as `instance_id` claims: what `send_claim` sends. For tools
/// and tests that make claims of their own.
#[pyfunction]
pub fn claim_message(
    instance_id: &str,
    document: &[u8],
    signature: &str,
    public_key: &str,
) -> String {
    KeyClaim::message(instance_id, document, signature, public_key)
}

/// Verifies claims as an engine does, without the registry: the signature, the instance,
/// `phoenix.keys.account_id` and `phoenix.region` (both required here), the enrolment
/// window. For checking a claim by hand and for measuring the core's verification.
#[pyclass(frozen, module = "phoenix_salt._core")]
pub struct ClaimVerifier {
    certificates: IdentityCertificates,
    policy: EnrolmentPolicy,
}

#[pymethods]
impl ClaimVerifier {
    #[new]
    fn new(config: &Config) -> PyResult<Self> {
        let inner = &config.inner;
        let account_id = inner.keys.account_id.clone().ok_or_else(|| {
            Error::config(
                "phoenix.keys.account_id",
                "must be set to verify claims here",
            )
        })?;
        let region = inner
            .region
            .clone()
            .ok_or_else(|| Error::config("phoenix.region", "must be set to verify claims here"))?;
        Ok(Self {
            certificates: IdentityCertificates::new(&inner.keys.identity_certificates)?,
            policy: EnrolmentPolicy {
                account_id,
                region,
                window_ms: inner.keys.enrolment_window_ms(),
            },
        })
    }

    /// Verifies one claim message (as it travels on the claim queue) at `now_ms` (default:
    /// now). Returns `{"instance_id", "fingerprint", "certificate", "launched_ms"}`; raises
    /// ClaimError with the refusal's `reason`.
    #[pyo3(signature = (body, now_ms = None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        body: &str,
        now_ms: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now_ms = now_ms.unwrap_or_else(crate::clock::now_ms);
        let verified = py.detach(|| -> Result<serde_json::Value, ClaimRefusal> {
            let claim = KeyClaim::parse(body)?;
            let attested = verify_claim(&claim.identity, &self.certificates, &self.policy, now_ms)?;
            Ok(serde_json::json!({
                "instance_id": attested.document.instance_id,
                "fingerprint": claim.fingerprint,
                "certificate": attested.certificate,
                "launched_ms": attested.launched_ms,
            }))
        });
        let verified = verified.map_err(Error::from)?;
        to_python(py, &verified)
    }
}

/// This master's instance id: `phoenix.master_id`, else the instance metadata's (IMDSv2).
/// What the live list, pins and `seeded_on` call a master. Raises ConfigError off EC2 without
/// `phoenix.master_id`.
#[pyfunction]
pub fn master_instance_id(py: Python<'_>, config: &Config) -> PyResult<String> {
    let config = config.inner.clone();
    wait(py, async move {
        Ok(crate::engine::resolve_identity(&config).await?.instance_id)
    })
}
