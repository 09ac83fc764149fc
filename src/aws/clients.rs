//! Builds the AWS clients with the SDK's standard credential and region chain, honouring
//! `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_<SERVICE>`), with deliberate
//! timeouts and retries from `phoenix.aws`.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::PhoenixConfig;
use crate::error::{Error, Result};

/// One set of clients, sharing one connection pool and credential cache.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    region: String,
}

impl AwsClients {
    /// Loads the shared SDK configuration and builds every client. Runs on the process's
    /// runtime: resolving credentials and the region may reach IMDS.
    pub async fn load(config: &PhoenixConfig) -> Result<Self> {
        let sdk = sdk_config(config).await;
        let region = sdk.region().map(|r| r.as_ref().to_owned()).ok_or_else(|| {
            Error::config(
                "phoenix.region",
                "no AWS region: set phoenix.region, or AWS_REGION in salt's environment, \
                     or run on EC2 where the instance metadata gives it",
            )
        })?;
        Ok(Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            secretsmanager: aws_sdk_secretsmanager::Client::new(&sdk),
            region,
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

async fn sdk_config(config: &PhoenixConfig) -> SdkConfig {
    let settings = &config.aws;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout())
        .operation_attempt_timeout(settings.attempt_timeout())
        .operation_timeout(settings.operation_timeout())
        .build();
    // Standard mode: exponential backoff with jitter, and a client-side token bucket that
    // stops retry storms when a service is down.
    let retries = RetryConfig::standard().with_max_attempts(settings.max_attempts);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}
