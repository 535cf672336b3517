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
    // Never quote a secret, not even the byte at fault.
    let key = decode_base64(encoded).ok_or("the part after whsec_ is not valid base64")?;
    if key.len() < 16 {
        return Err(format!("the key is {} bytes; use at least 16 (24 to 64 is usual)", key.len()));
    }
    Ok(key)
}

/// Standard base64 with its padding, strictly (what `whsec_` secrets are).
/// Written out rather than taken from the base64 crate, whose decoder would
/// add 5 KB to the wasm that serves webhooks, which checks every secret as
/// it reads the configuration.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if padding > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i == bytes.len() / 4 - 1;
        let pad = if last { padding } else { 0 };
        let mut n = 0u32;
        for (j, c) in chunk.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { value(*c)? };
            n = n << 6 | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits past the last byte must be zero (a canonical encoding).
        if (pad == 1 && decoded[2] != 0) || (pad == 2 && decoded[1] != 0) {
            return None;
        }
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
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
    fn base64_is_read_strictly_as_the_standard_engine_reads_it() {
        use base64::Engine;
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = STANDARD.encode(&bytes);
            assert_eq!(decode_base64(&text), (len > 0).then(|| bytes.clone()), "{text}");
        }
        for bad in ["", "A", "AA==A", "AAA", "A===", "AB==", "AAB=", "!!!!", "AA=A", "YWJj\n"] {
            assert_eq!(decode_base64(bad), STANDARD.decode(bad).ok().filter(|b| !b.is_empty()), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_checked() {
        assert!(key_from_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err().contains("whsec_"));
        assert!(key_from_secret("whsec_!!!").unwrap_err().contains("not valid base64"));
        assert!(key_from_secret("whsec_YWJj").unwrap_err().contains("at least 16"));
    }
}
