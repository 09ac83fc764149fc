//! Properties of claim verification under generated changes: no change to what AWS signed
//! gets through, and nothing a claim holds makes verification panic.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;

use super::tests::{certificates, claim_of, document, document_of, policy, sign, verify};
use super::tests::{ACCOUNT, INSTANCE, LAUNCHED, NOW_MS, REGION};
use super::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_byte_flip_in_the_document_is_refused(
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut claim = claim_of(&document());
        let index = position.index(claim.document.len());
        claim.document[index] ^= mask;
        prop_assert!(verify(&claim).is_err());
    }

    #[test]
    fn any_byte_flip_in_the_signature_is_refused(
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut claim = claim_of(&document());
        let mut raw = STANDARD.decode(&claim.signature).unwrap();
        let index = position.index(raw.len());
        raw[index] ^= mask;
        claim.signature = STANDARD.encode(raw);
        prop_assert!(
            matches!(verify(&claim), Err(ClaimRefusal::BadSignature { .. })),
            "flipped byte {} by {:#04x}", index, mask
        );
    }

    #[test]
    fn a_signature_never_carries_over_to_another_document(
        instance in "i-[0-9a-f]{17}",
        account in "[0-9]{12}",
        extra_spaces in 0usize..3,
    ) {
        let signed = claim_of(&document());
        let text = document_of(&instance, &account, REGION, LAUNCHED)
            .replace(" : ", &format!("{} : ", " ".repeat(extra_spaces)));
        prop_assume!(text != document());
        let claim = IdentityClaim { document: text.into_bytes(), ..signed };
        let refused = matches!(verify(&claim), Err(ClaimRefusal::BadSignature { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn only_the_signed_instance_account_and_region_are_accepted(
        claimed in prop_oneof![Just(INSTANCE.to_owned()), "i-[0-9a-f]{17}"],
        account in prop_oneof![Just(ACCOUNT.to_owned()), "[0-9]{12}"],
    ) {
        let text = document_of(INSTANCE, &account, REGION, LAUNCHED);
        let claim = IdentityClaim { instance_id: claimed.clone(), ..claim_of(&text) };
        let accepted = verify(&claim).is_ok();
        prop_assert_eq!(accepted, claimed == INSTANCE && account == ACCOUNT);
    }

    #[test]
    fn nothing_a_claim_holds_makes_verification_panic(
        instance in "\\PC{0,40}",
        document in prop::collection::vec(any::<u8>(), 0..600),
        signature in "[A-Za-z0-9+/=\\s]{0,200}|\\PC{0,50}",
        now_ms in any::<i64>(),
    ) {
        let claim = IdentityClaim { instance_id: instance, document, signature };
        let _ = verify_claim(&claim, &certificates(), &policy(), now_ms);
    }

    #[test]
    fn a_signed_document_with_any_json_values_never_panics(
        region in "[a-z]{2}-[a-z]{4,9}-[0-9]|\\PC{0,12}",
        pending in "\\PC{0,30}|20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z",
    ) {
        let text = document_of(INSTANCE, ACCOUNT, "us-east-1", LAUNCHED)
            .replace(r#""region" : "us-east-1""#, &format!(r#""region" : {}"#, serde_json::json!(region)))
            .replace(LAUNCHED, &pending.replace(['"', '\\'], ""));
        let claim = IdentityClaim {
            signature: sign(text.as_bytes()),
            ..claim_of(&text)
        };
        let _ = verify_claim(&claim, &certificates(), &policy(), NOW_MS);
    }
}
