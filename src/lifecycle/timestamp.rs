//! Event times as milliseconds since the Unix epoch (UTC).
//!
//! The registry orders events by time so an older event never overwrites a newer one; a plain
//! integer is what it compares and stores. AWS writes times as RFC 3339 (`Time` with
//! milliseconds, EventBridge `time` with whole seconds), sometimes with an offset other than
//! `Z`; all of them are brought to UTC here.

use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

use super::error::MessageError;

/// Parses an RFC 3339 date-time into milliseconds since the epoch, UTC.
///
/// Digits below the millisecond are dropped, rounding towards the past, so two times that
/// differ by less than a millisecond keep their order or compare equal, never swap. A leap
/// second (`:60`) is accepted and counts as the last instant of the second before it.
pub(crate) fn parse_time_ms(field: String, text: &str) -> Result<i64, MessageError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| MessageError::invalid_time(field.clone(), text))?;
    let ms = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
    // RFC 3339 years stop at 9999, far inside i64 milliseconds; the check only keeps this
    // function total.
    i64::try_from(ms).map_err(|_| MessageError::invalid_time(field, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<i64, MessageError> {
        parse_time_ms("Time".into(), text)
    }

    #[test]
    fn aws_time_forms() {
        assert_eq!(ms("2026-11-21T10:00:00.500Z"), Ok(1_795_255_200_500));
        assert_eq!(ms("2026-11-21T15:00:00Z"), Ok(1_795_273_200_000));
        assert_eq!(ms("1970-01-01T00:00:00Z"), Ok(0));
        // RFC 3339 lets applications write a space or lower case for `T` and `Z`.
        assert_eq!(ms("2026-11-21 15:00:00Z"), Ok(1_795_273_200_000));
        assert_eq!(ms("2026-11-21t15:00:00z"), Ok(1_795_273_200_000));
    }

    #[test]
    fn offsets_are_brought_to_utc() {
        assert_eq!(ms("2026-11-21T12:00:00.500+02:00"), Ok(1_795_255_200_500));
        assert_eq!(ms("2026-11-21T05:30:00.500-04:30"), Ok(1_795_255_200_500));
    }

    #[test]
    fn sub_millisecond_digits_round_towards_the_past() {
        assert_eq!(ms("2026-11-21T10:00:00.500999Z"), Ok(1_795_255_200_500));
        assert_eq!(ms("1969-12-31T23:59:59.9995Z"), Ok(-1));
    }

    #[test]
    fn leap_second_is_accepted() {
        assert_eq!(ms("2016-12-31T23:59:60Z"), Ok(1_483_228_799_999));
    }

    #[test]
    fn extreme_years_fit() {
        assert_eq!(ms("0000-01-01T00:00:00Z"), Ok(-62_167_219_200_000));
        assert_eq!(ms("9999-12-31T23:59:59.999Z"), Ok(253_402_300_799_999));
    }

    #[test]
    fn rejects_non_rfc3339() {
        for text in [
            "",
            "2026-11-21",
            "2026-11-21T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-21T25:00:00Z",
            "1795255200500",
            "yesterday",
            "2026-11-21T10:00:00.Z",
        ] {
            assert_eq!(
                ms(text),
                Err(MessageError::invalid_time("Time".into(), text)),
                "{text:?}"
            );
        }
    }
}
