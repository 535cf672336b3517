//! When a failed delivery is tried again: exponential backoff with jitter.
//!
//! The n-th retry waits `base × 3^(n-1)` seconds, capped at six hours, and
//! scaled by a random factor in [0.5, 1) so that retries of many messages
//! spread out instead of arriving together. With the default base of 10 s:
//!
//! | retry | nominal wait |
//! |------:|-------------:|
//! | 1 | 10 s |
//! | 2 | 30 s |
//! | 3 | 1.5 min |
//! | 4 | 4.5 min |
//! | 5 | 13.5 min |
//! | 6 | 40.5 min |
//! | 7 | 2 h 1.5 min |
//! | 8–11 | 6 h |
//!
//! After [`MAX_ATTEMPTS`] attempts (the queue consumer's `max_retries` + 1)
//! the message goes to the dead-letter queue: about 27 hours nominal
//! (13.5 to 27 hours with jitter) after the first attempt.

/// Attempts in all, the first included (`max_retries = 11` in wrangler.toml).
pub const MAX_ATTEMPTS: u32 = 12;
/// Longest wait between two attempts.
pub const CAP_SECONDS: u32 = 6 * 60 * 60;
/// Default first wait; `RETRY_BASE_SECONDS` changes it (tests use 0).
pub const DEFAULT_BASE_SECONDS: u32 = 10;

/// The nominal wait before retry number `retry` (1-based).
pub fn nominal_seconds(base: u32, retry: u32) -> u32 {
    let factor = 3u64.saturating_pow(retry.saturating_sub(1));
    (u64::from(base).saturating_mul(factor)).min(u64::from(CAP_SECONDS)) as u32
}

/// The wait before retry number `retry`, with `jitter` drawn uniformly from
/// [0, 1) by the caller (the core has no randomness of its own).
pub fn delay_seconds(base: u32, retry: u32, jitter: f64) -> u32 {
    let nominal = f64::from(nominal_seconds(base, retry));
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    (nominal * factor).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_schedule() {
        let waits: Vec<u32> = (1..MAX_ATTEMPTS).map(|r| nominal_seconds(DEFAULT_BASE_SECONDS, r)).collect();
        assert_eq!(waits, [10, 30, 90, 270, 810, 2430, 7290, 21600, 21600, 21600, 21600]);
        let total: u32 = waits.iter().sum();
        assert_eq!(total, 97_330, "about 27 hours before the dead-letter queue");
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for retry in 1..20 {
            let nominal = nominal_seconds(10, retry);
            assert_eq!(delay_seconds(10, retry, 0.999_999), nominal);
            assert_eq!(delay_seconds(10, retry, 0.0), (f64::from(nominal) / 2.0).round() as u32);
        }
        assert_eq!(delay_seconds(0, 5, 0.7), 0, "tests retry at once");
        assert_eq!(nominal_seconds(10, 1000), CAP_SECONDS, "no overflow");
    }
}
