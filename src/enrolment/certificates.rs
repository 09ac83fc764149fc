//! The certificates whose keys verify instance identity documents: AWS's own, bundled from
//! the EC2 User Guide, and any the operator adds (`phoenix.keys.identity_certificates`).
//!
//! A certificate here is only a container for AWS's public key. Its validity dates are not
//! checked: AWS still signs with keys whose certificates expired (the other-regions one on
//! 2024-06-05), and its own documented check is the bare signature against the key
//! (`openssl dgst -sha256 -verify`). Nor is a chain checked: these certificates are
//! self-signed, and trust in them comes from being compiled in or configured, not from an
//! issuer.

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use rsa::PublicKey;
use serde::Serialize;
use sha2::Sha256;
use x509_cert::der::Encode;
use x509_cert::Certificate;

use super::regions::served_by_other_regions;
use crate::error::{Error, Result};

/// AWS's certificates for the base64-encoded RSA signature
/// (`/latest/dynamic/instance-identity/signature`): the file and the one region each serves,
/// or `None` for the other-regions certificate.
const AWS_CERTIFICATES: [(&str, &str, Option<&str>); 5] = [
    (
        "other-regions",
        include_str!("certificates/other-regions.pem"),
        None,
    ),
    (
        "hong-kong",
        include_str!("certificates/hong-kong.pem"),
        Some("ap-east-1"),
    ),
    (
        "bahrain",
        include_str!("certificates/bahrain.pem"),
        Some("me-south-1"),
    ),
    (
        "cape-town",
        include_str!("certificates/cape-town.pem"),
        Some("af-south-1"),
    ),
    (
        "milan",
        include_str!("certificates/milan.pem"),
        Some("eu-south-1"),
    ),
];

/// The regions whose documents a certificate verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Serves {
    /// One region (AWS's per-region certificates, and every configured one).
    Region(String),
    /// Every commercial region without a certificate of its own (AWS's other-regions one).
    OtherRegions,
}

/// One certificate's public key, with what an operator needs to recognise it in a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityCertificate {
    /// Where it comes from: "AWS's other-regions certificate", or the configured file or
    /// setting.
    pub name: String,
    /// The regions whose documents it verifies.
    pub serves: Serves,
    /// The certificate's subject, as RFC 4514 writes it.
    pub subject: String,
    /// The certificate's notAfter; shown, never enforced (see the module comment).
    pub not_after: String,
    /// Size of the RSA modulus in bits.
    pub key_bits: usize,
    #[serde(skip)]
    key: VerifyingKey<Sha256>,
}

impl IdentityCertificate {
    /// Every certificate of `pem` (one or more `CERTIFICATE` blocks), each serving `serves`.
    /// `name` says where the text came from; a text with several certificates numbers them.
    ///
    /// # Errors
    ///
    /// A reason in words when the text holds no certificate, a block that is not one, or a
    /// certificate whose key is not RSA.
    pub fn parse_pem(
        pem: &str,
        name: &str,
        serves: Serves,
    ) -> std::result::Result<Vec<Self>, String> {
        // A private key pasted by mistake gets a reason of its own; it is never quoted.
        if pem.contains("PRIVATE KEY-----") {
            return Err("holds a private key: give the certificate, never a key".to_owned());
        }
        let certificates = Certificate::load_pem_chain(pem.as_bytes())
            .map_err(|err| format!("not PEM certificates ({err})"))?;
        if certificates.is_empty() {
            return Err("holds no -----BEGIN CERTIFICATE----- block".to_owned());
        }
        let several = certificates.len() > 1;
        certificates
            .iter()
            .enumerate()
            .map(|(index, certificate)| {
                let name = if several {
                    format!("{name} #{}", index + 1)
                } else {
                    name.to_owned()
                };
                Self::from_certificate(certificate, name, serves.clone())
            })
            .collect()
    }

    fn from_certificate(
        certificate: &Certificate,
        name: String,
        serves: Serves,
    ) -> std::result::Result<Self, String> {
        let tbs = certificate.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|err| format!("{name}: unreadable public key ({err})"))?;
        let key = PublicKey::from_public_key_der(&spki)
            .map_err(|err| format!("{name}: the key is not an RSA key Phoenix can use ({err})"))?;
        Ok(IdentityCertificate {
            subject: tbs.subject().to_string(),
            not_after: tbs.validity().not_after.to_string(),
            key_bits: key.n().bit_width_vartime() as usize,
            key: VerifyingKey::new(key),
            serves,
            name,
        })
    }

    /// Whether `signature` is this key's RSASSA-PKCS1-v1_5 SHA-256 signature of exactly
    /// `document`.
    pub(crate) fn verifies(&self, document: &[u8], signature: &Signature) -> bool {
        self.key.verify(document, signature).is_ok()
    }

    /// Whether this certificate verifies documents of `region`.
    fn serves(&self, region: &str, bundled_own: &[&str]) -> bool {
        match &self.serves {
            Serves::Region(own) => own == region,
            Serves::OtherRegions => served_by_other_regions(region, bundled_own),
        }
    }
}

/// AWS's bundled certificates and the operator's, looked up by a document's region.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityCertificates {
    certificates: Vec<IdentityCertificate>,
}

impl IdentityCertificates {
    /// AWS's bundled certificates, then `configured` (`phoenix.keys.identity_certificates`).
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] if a bundled certificate does not parse: a broken build, never
    /// input (a test parses each one).
    pub fn new(configured: &[IdentityCertificate]) -> Result<Self> {
        let mut certificates = aws_certificates()?;
        certificates.extend_from_slice(configured);
        Ok(IdentityCertificates { certificates })
    }

    /// The certificates that verify documents of `region`: the operator's for that region
    /// and AWS's, the other-regions one standing in only where AWS uses it.
    pub fn for_region(&self, region: &str) -> Vec<&IdentityCertificate> {
        let bundled_own: Vec<&str> = AWS_CERTIFICATES
            .iter()
            .filter_map(|(_, _, region)| *region)
            .collect();
        self.certificates
            .iter()
            .filter(|certificate| certificate.serves(region, &bundled_own))
            .collect()
    }

    /// Every certificate, AWS's first.
    pub fn all(&self) -> &[IdentityCertificate] {
        &self.certificates
    }
}

/// AWS's certificates as bundled with Phoenix.
fn aws_certificates() -> Result<Vec<IdentityCertificate>> {
    let mut certificates = Vec::with_capacity(AWS_CERTIFICATES.len());
    for (file, pem, region) in AWS_CERTIFICATES {
        let serves = match region {
            Some(region) => Serves::Region(region.to_owned()),
            None => Serves::OtherRegions,
        };
        let parsed =
            IdentityCertificate::parse_pem(pem, &format!("AWS's {file} certificate"), serves)
                .map_err(|reason| {
                    Error::Internal(format!("bundled certificate {file}: {reason}"))
                })?;
        certificates.extend(parsed);
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_CERT: &str = include_str!("fixtures/identity-cert.pem");
    const EC_CERT: &str = include_str!("fixtures/ec-cert.pem");

    fn names(certificates: &[&IdentityCertificate]) -> Vec<String> {
        certificates.iter().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn every_aws_certificate_parses_and_holds_a_1024_bit_rsa_key() {
        let all = aws_certificates().unwrap();
        assert_eq!(all.len(), AWS_CERTIFICATES.len());
        for certificate in &all {
            assert_eq!(certificate.key_bits, 1024, "{}", certificate.name);
            assert!(
                certificate.subject.contains("Seattle"),
                "{}",
                certificate.subject
            );
        }
        // The keys differ: each region that has its own really has its own.
        for (index, one) in all.iter().enumerate() {
            for other in all.iter().skip(index + 1) {
                assert_ne!(one.key, other.key, "{} {}", one.name, other.name);
            }
        }
    }

    #[test]
    fn the_other_regions_certificate_expired_and_is_kept() {
        let all = aws_certificates().unwrap();
        let other = all
            .iter()
            .find(|c| c.serves == Serves::OtherRegions)
            .unwrap();
        assert!(
            other.not_after.starts_with("2024-06-05"),
            "{}",
            other.not_after
        );
    }

    #[test]
    fn each_region_gets_its_certificate() {
        let certificates = IdentityCertificates::new(&[]).unwrap();
        for (region, file) in [
            ("us-east-1", "other-regions"),
            ("us-west-2", "other-regions"),
            ("eu-west-1", "other-regions"),
            ("ap-northeast-3", "other-regions"),
            ("ap-east-1", "hong-kong"),
            ("me-south-1", "bahrain"),
            ("af-south-1", "cape-town"),
            ("eu-south-1", "milan"),
        ] {
            assert_eq!(
                names(&certificates.for_region(region)),
                vec![format!("AWS's {file} certificate")],
                "{region}"
            );
        }
        for own in [
            "ap-southeast-3",
            "il-central-1",
            "cn-north-1",
            "us-gov-east-1",
        ] {
            assert!(certificates.for_region(own).is_empty(), "{own}");
        }
    }

    #[test]
    fn configured_certificates_add_to_their_region_only() {
        let jakarta = IdentityCertificate::parse_pem(
            FIXTURE_CERT,
            "/etc/phoenix/jakarta.pem",
            Serves::Region("ap-southeast-3".into()),
        )
        .unwrap();
        let lab =
            IdentityCertificate::parse_pem(FIXTURE_CERT, "lab", Serves::Region("us-east-1".into()))
                .unwrap();
        let configured: Vec<_> = jakarta.into_iter().chain(lab).collect();
        let certificates = IdentityCertificates::new(&configured).unwrap();
        assert_eq!(
            names(&certificates.for_region("ap-southeast-3")),
            vec!["/etc/phoenix/jakarta.pem"]
        );
        assert_eq!(
            names(&certificates.for_region("us-east-1")),
            vec!["AWS's other-regions certificate", "lab"]
        );
        assert_eq!(
            names(&certificates.for_region("eu-west-1")),
            vec!["AWS's other-regions certificate"]
        );
        assert_eq!(certificates.all().len(), AWS_CERTIFICATES.len() + 2);
    }

    #[test]
    fn a_bundle_yields_each_certificate_numbered() {
        let bundle = format!(
            "{}\n{}",
            include_str!("certificates/milan.pem"),
            FIXTURE_CERT
        );
        let parsed =
            IdentityCertificate::parse_pem(&bundle, "bundle.pem", Serves::Region("x-y-1".into()))
                .unwrap();
        let names: Vec<_> = parsed.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["bundle.pem #1", "bundle.pem #2"]);
    }

    #[test]
    fn what_is_not_an_rsa_certificate_is_refused_with_a_reason() {
        let serves = || Serves::Region("us-east-1".into());
        for (pem, expected) in [
            ("", "no -----BEGIN CERTIFICATE-----"),
            ("just text", "not PEM certificates"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not PEM certificates",
            ),
            (include_str!("fixtures/identity-key.pem"), "a private key"),
            (EC_CERT, "not an RSA key"),
        ] {
            let err = IdentityCertificate::parse_pem(pem, "x", serves()).unwrap_err();
            assert!(err.contains(expected), "{pem:?}: {err}");
        }
    }
}
