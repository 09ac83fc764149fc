//! A claim as it travels on the claim queue: one JSON object per SQS message.
//!
//! ```json
//! {"format": "phoenix-identity-claim/1", "instance_id": "i-...",
//!  "document": "<base64 of the document's exact bytes>", "signature": "<as IMDS served it>",
//!  "public_key": "-----BEGIN PUBLIC KEY-----\n..."}
//! ```
//!
//! The document travels as base64 so that its bytes arrive exactly as IMDS served them
//! (the signature covers those bytes, whitespace included). The public key is the one the
//! instance asks to pin: AWS's signature does not cover it (see the module's docs).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::claim::{IdentityClaim, MAX_DOCUMENT_BYTES, MAX_SIGNATURE_BYTES};
use super::refusal::{quote, ClaimRefusal};
use crate::keys::pem_fingerprint;

/// The value of `format`: a later format gets a new number, and this engine refuses it
/// rather than guessing.
pub const CLAIM_FORMAT: &str = "phoenix-identity-claim/1";

/// The largest message read as a claim: the document's base64, the signature and a public
/// key fit several times over. Anything bigger is refused before it is parsed.
pub const MAX_CLAIM_BYTES: usize = 2 * MAX_DOCUMENT_BYTES + MAX_SIGNATURE_BYTES + 16 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    instance_id: String,
    document: String,
    signature: String,
    public_key: String,
}

/// A claim read off the queue: what AWS must vouch for, and the key it asks to pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    /// The document, signature and instance id, for [`super::verify_claim`].
    pub identity: IdentityClaim,
    /// The minion's public key (PEM), as Salt writes `minion.pub`.
    pub public_key: String,
    /// Salt's fingerprint of `public_key`.
    pub fingerprint: String,
}

impl KeyClaim {
    /// Reads one queue message as a claim. Only the shape is checked here (sizes, fields,
    /// base64, a public key Salt can fingerprint); whether AWS vouches for it is
    /// [`super::verify_claim`]'s to say.
    ///
    /// # Errors
    ///
    /// [`ClaimRefusal::TooLarge`], [`ClaimRefusal::NotAClaim`] or
    /// [`ClaimRefusal::BadPublicKey`].
    pub fn parse(body: &str) -> Result<Self, ClaimRefusal> {
        if body.len() > MAX_CLAIM_BYTES {
            return Err(ClaimRefusal::TooLarge {
                part: "message",
                size: body.len(),
                limit: MAX_CLAIM_BYTES,
            });
        }
        let wire: Wire =
            serde_json::from_str(body).map_err(|err| ClaimRefusal::not_a_claim(err.to_string()))?;
        if wire.format != CLAIM_FORMAT {
            return Err(ClaimRefusal::not_a_claim(format!(
                "format {}, expected {CLAIM_FORMAT}",
                quote(&wire.format)
            )));
        }
        let document = base64::engine::general_purpose::STANDARD
            .decode(wire.document.as_bytes())
            .map_err(|err| ClaimRefusal::not_a_claim(format!("document is not base64: {err}")))?;
        let fingerprint =
            pem_fingerprint(&wire.public_key).map_err(|err| ClaimRefusal::BadPublicKey {
                reason: err.to_string(),
            })?;
        Ok(Self {
            identity: IdentityClaim {
                instance_id: wire.instance_id,
                document,
                signature: wire.signature,
            },
            public_key: wire.public_key,
            fingerprint,
        })
    }

    /// The message an instance sends: its document and signature as IMDS served them, and
    /// the public key it asks to pin.
    pub fn message(
        instance_id: &str,
        document: &[u8],
        signature: &str,
        public_key: &str,
    ) -> String {
        let wire = Wire {
            format: CLAIM_FORMAT.to_owned(),
            instance_id: instance_id.to_owned(),
            document: base64::engine::general_purpose::STANDARD.encode(document),
            signature: signature.to_owned(),
            public_key: public_key.to_owned(),
        };
        // Serializing plain strings cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}
