//! Turning an AWS SDK error into [`Error`], keeping the AWS error code and whether a later
//! retry may succeed.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::Error;

/// Error codes that mean "slow down", across the services Phoenix calls.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "LimitExceededException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Adds the service and operation to an SDK error, so the log line says which call failed.
pub trait AwsResultExt<T> {
    fn aws_context(self, service: &'static str, operation: &'static str) -> Result<T, Error>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    fn aws_context(self, service: &'static str, operation: &'static str) -> Result<T, Error> {
        self.map_err(|err| from_sdk_error(service, operation, err))
    }
}

pub fn from_sdk_error<E, R>(
    service: &'static str,
    operation: &'static str,
    err: SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    // Transport-level failures never reached the service: the call is safe to try again.
    let transport = matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    );
    let retryable = transport || code.as_deref().is_some_and(is_retryable_code);
    let message = match err.message() {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ => DisplayErrorContext(&err).to_string(),
    };
    if code
        .as_deref()
        .is_some_and(|c| c.ends_with("NotFoundException"))
    {
        return Error::NotFound {
            what: format!("{service} {operation}: {message}"),
            code,
        };
    }
    Error::Aws {
        service,
        operation,
        code,
        message,
        retryable,
    }
}

pub fn is_retryable_code(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_retryable_and_validation_is_not() {
        assert!(is_retryable_code("ThrottlingException"));
        assert!(is_retryable_code("ProvisionedThroughputExceededException"));
        assert!(!is_retryable_code("ValidationException"));
        assert!(!is_retryable_code("ConditionalCheckFailedException"));
    }
}
