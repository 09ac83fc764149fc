//! The EC2 instance metadata service (IMDSv2), as every Phoenix component reads it: a session
//! token first, then the reads with it (the SDK's client does both).

use std::time::Duration;

use crate::error::{Error, Result};

/// IMDS answers in milliseconds on EC2; off EC2 nothing answers, so fail fast.
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
const IMDS_ATTEMPTS: u32 = 2;

/// Where the instance's identity document and AWS's signature of it are served.
pub const DOCUMENT_PATH: &str = "/latest/dynamic/instance-identity/document";
pub const SIGNATURE_PATH: &str = "/latest/dynamic/instance-identity/signature";

/// The metadata client. `endpoint` overrides where IMDS is (else the SDK's own choice:
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, then the link-local address).
pub fn client(endpoint: Option<&str>) -> Result<aws_config::imds::Client> {
    let mut builder = aws_config::imds::Client::builder()
        .connect_timeout(IMDS_TIMEOUT)
        .read_timeout(IMDS_TIMEOUT)
        .max_attempts(IMDS_ATTEMPTS);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint(endpoint).map_err(|err| {
            Error::config(
                "instance metadata endpoint",
                format!("{endpoint:?} is not a URL: {err}"),
            )
        })?;
    }
    Ok(builder.build())
}

/// Reads `path`, or says which read failed and that off EC2 there is no metadata service.
pub async fn read(client: &aws_config::imds::Client, path: &str) -> Result<String> {
    client
        .get(path)
        .await
        .map(|value| value.as_ref().to_owned())
        .map_err(|err| Error::NotFound {
            what: format!(
                "the instance metadata service did not answer {path} ({err}); off EC2 there \
                 is none"
            ),
            code: None,
        })
}

/// This instance's identity document, byte for byte as served, and AWS's base64 signature
/// of it.
pub async fn identity_document(client: &aws_config::imds::Client) -> Result<(String, String)> {
    let document = read(client, DOCUMENT_PATH).await?;
    let signature = read(client, SIGNATURE_PATH).await?;
    Ok((document, signature))
}
