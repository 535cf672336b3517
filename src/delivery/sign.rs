//! Standard Webhooks signatures: receivers verify
//! `webhook-signature: v1,<base64 HMAC-SHA256("{webhook-id}.{webhook-timestamp}.{body}")>`
//! with the destination's `whsec_…` secret, whose part after `whsec_` is the
//! base64 key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HMAC key inside a `whsec_…` secret.
pub fn key_from_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.trim().strip_prefix("whsec_").ok_or("must start with whsec_ (a Standard Webhooks secret)")?;
    // The decoder's own error names the offending byte: never quote a secret.
    let key = STANDARD.decode(encoded).map_err(|_| "the part after whsec_ is not valid base64".to_owned())?;
    if key.len() < 16 {
        return Err(format!("the key is {} bytes; use at least 16 (24 to 64 is usual)", key.len()));
    }
    Ok(key)
}

/// The `webhook-signature` header value.
pub fn signature(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks a `webhook-signature` header (which may list several space-separated
/// signatures) the way a receiver does, in constant time.
pub fn verify(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &str, header: &str) -> bool {
    let expected = signature(key, msg_id, timestamp_secs, body);
    header.split(' ').any(|candidate| {
        candidate.len() == expected.len()
            && candidate.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let key = key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#, &format!("v1,bogus {sig}")));
        assert!(!verify(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, r#"{"test": 2432232314}"#, &sig));
    }

    #[test]
    fn secrets_are_checked() {
        assert!(key_from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err().contains("whsec_"));
        assert!(key_from_secret("whsec_!!!").unwrap_err().contains("not valid base64"));
        assert!(key_from_secret("whsec_YWJj").unwrap_err().contains("at least 16"));
    }
}
