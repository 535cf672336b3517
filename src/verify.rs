//! Is a webhook really from Drift? Drift puts the app's verification token in
//! each event body (`token`); callers may also send it in the
//! `X-Verification-Token` header. The secret may list several tokens,
//! comma-separated, so a token can be rotated without downtime.
//!
//! Comparison is in constant time over SHA-256 digests, so neither the
//! content nor the length of a configured token leaks through timing.

use sha2::{Digest, Sha256};

/// The accepted verification tokens.
#[derive(Clone)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

impl Tokens {
    /// Reads a comma-separated list; blanks around and between tokens are
    /// ignored. `None` when no token is configured at all.
    pub fn parse(secret: &str) -> Option<Tokens> {
        let digests: Vec<[u8; 32]> =
            secret.split(',').map(str::trim).filter(|t| !t.is_empty()).map(digest).collect();
        (!digests.is_empty()).then_some(Tokens { digests })
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `candidate` is one of the tokens. Every configured token is
    /// compared, whatever the outcome.
    pub fn accepts(&self, candidate: &str) -> bool {
        let d = digest(candidate);
        let mut found = 0u8;
        for known in &self.digests {
            found |= constant_time_eq(known, &d);
        }
        found == 1
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 1 when equal, 0 otherwise, without branching on the content.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> u8 {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    u8::from(std::hint::black_box(diff) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_and_blanks() {
        let tokens = Tokens::parse(" old-token , new-token,,").unwrap();
        assert_eq!(tokens.len(), 2);
        for (candidate, accepted) in
            [("old-token", true), ("new-token", true), ("new-token ", false), ("", false), ("old", false)]
        {
            assert_eq!(tokens.accepts(candidate), accepted, "{candidate:?}");
        }
        assert!(Tokens::parse("").is_none());
        assert!(Tokens::parse(" , ").is_none());
    }
}
