//! AWS access: the one place that builds clients, and the mapping of SDK errors.

pub mod autoscaling;
mod clients;
mod error;
pub mod sqs;

pub use clients::AwsClients;
pub use error::{from_sdk_error, is_retryable_code, AwsResultExt};
