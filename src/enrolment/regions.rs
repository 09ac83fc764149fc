//! Which certificate verifies the identity documents of a region.
//!
//! AWS signs the documents of most commercial regions with one key, the "other regions"
//! certificate's. Regions opened since 2019 (opt-in regions) each have a key of their own, as
//! have the other partitions (China, GovCloud, the isolated regions). Phoenix bundles the
//! certificates of the first four such regions; for a region with a key of its own that is
//! not bundled, the other-regions key must not stand in, so such a document meets
//! [`super::ClaimRefusal::UnknownRegion`] and its message tells the operator what to add.

/// Regions known to have a certificate of their own that Phoenix does not bundle: an operator
/// there adds it to `phoenix.keys.identity_certificates`. A region missing here falls to the
/// other-regions certificate, and a document it does not verify is refused with a message
/// that names the same remedy.
pub const REGIONS_WITH_THEIR_OWN_CERTIFICATE: &[&str] = &[
    "ap-south-2",     // Hyderabad
    "ap-southeast-3", // Jakarta
    "ap-southeast-4", // Melbourne
    "eu-central-2",   // Zurich
    "eu-south-2",     // Spain
    "il-central-1",   // Tel Aviv
    "me-central-1",   // UAE
];

/// Region name prefixes of the partitions other than AWS's commercial one: each has keys of
/// its own (China, GovCloud, the isolated regions, the European Sovereign Cloud).
const OTHER_PARTITIONS: &[&str] = &["cn-", "us-gov-", "us-iso", "eu-iso", "eusc-"];

/// Whether AWS's other-regions certificate verifies documents of `region`, given the regions
/// whose own certificates are bundled.
pub(crate) fn served_by_other_regions(region: &str, bundled_own: &[&str]) -> bool {
    !bundled_own.contains(&region)
        && !REGIONS_WITH_THEIR_OWN_CERTIFICATE.contains(&region)
        && !OTHER_PARTITIONS
            .iter()
            .any(|prefix| region.starts_with(prefix))
}

/// Whether `name` has the form of an AWS region: lower-case words and a number, joined by
/// `-` (us-east-1, eu-central-2, us-gov-west-1, cn-north-1).
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && number.parse::<u8>().is_ok()
        && !number.starts_with('+')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
        ] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-x",
            "US-east-1",
            "us--1",
            "-east-1",
            "us-east-+1",
            "us-east-1 ",
            "us-east-1\n",
            "us-east-999",
        ] {
            assert!(!is_region_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn other_regions_serves_commercial_regions_without_a_key_of_their_own() {
        let bundled = ["ap-east-1"];
        for served in [
            "us-east-1",
            "us-west-2",
            "eu-west-1",
            "ap-northeast-3",
            "sa-east-1",
        ] {
            assert!(served_by_other_regions(served, &bundled), "{served}");
        }
        for own in [
            "ap-east-1",
            "ap-southeast-3",
            "il-central-1",
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-west-1",
            "us-iso-east-1",
            "us-isob-east-1",
        ] {
            assert!(!served_by_other_regions(own, &bundled), "{own}");
        }
    }
}
