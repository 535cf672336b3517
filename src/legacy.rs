//! When an inactive, manual-push or push event also yields a legacy close.
//!
//! Drift re-broadcast those events as `conversation_status_updated` closes
//! only from 2020-06-01 until 2020-10-01. Apps still built on the legacy
//! webhook usually want them for ever (`always`); replays of 2020 traffic can
//! ask for Drift's own behaviour (`timeline`).

use std::fmt;
use std::str::FromStr;

/// 2020-06-01T00:00:00Z in milliseconds: Drift starts re-broadcasting.
pub const BROADCAST_START_MS: i64 = 1_590_969_600_000;
/// 2020-10-01T00:00:00Z in milliseconds: the legacy webhook is gone.
pub const BROADCAST_END_MS: i64 = 1_601_510_400_000;

/// Which inactive, manual-push and push events also yield a legacy close.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LegacyPolicy {
    /// Every one of them (the default): legacy apps keep working today.
    #[default]
    Always,
    /// Drift's 2020 behaviour: only when the event time is in
    /// [2020-06-01T00:00:00Z, 2020-10-01T00:00:00Z).
    Timeline,
    /// None.
    Never,
}

impl LegacyPolicy {
    pub const ALL: [LegacyPolicy; 3] = [LegacyPolicy::Always, LegacyPolicy::Timeline, LegacyPolicy::Never];

    pub const fn as_str(self) -> &'static str {
        match self {
            LegacyPolicy::Always => "always",
            LegacyPolicy::Timeline => "timeline",
            LegacyPolicy::Never => "never",
        }
    }

    /// Whether an event at `event_time_ms` (ms since the epoch, UTC) yields
    /// a legacy close.
    pub fn allows(self, event_time_ms: i64) -> bool {
        match self {
            LegacyPolicy::Always => true,
            LegacyPolicy::Never => false,
            LegacyPolicy::Timeline => (BROADCAST_START_MS..BROADCAST_END_MS).contains(&event_time_ms),
        }
    }
}

impl fmt::Display for LegacyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a policy name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown legacy policy {}; expected always, timeline or never", crate::escape::quoted(&self.0))
    }
}

impl std::error::Error for UnknownPolicy {}

impl FromStr for LegacyPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LegacyPolicy::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

/// The value of a JSON integer's text, saturated to `i64`; the text has been
/// checked to be an integer already, and any length is accepted.
pub(crate) fn integer_ms(text: &str) -> i64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut value: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b.wrapping_sub(b'0'));
        value = match value.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(v) => v,
            None => return if negative { i64::MIN } else { i64::MAX },
        };
    }
    if negative {
        -value
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_drifts_dates() {
        // Checked against the calendar: 2020-06-01 is 18414 days after the
        // epoch, 2020-10-01 is 18536.
        assert_eq!(BROADCAST_START_MS, 18_414 * 86_400_000);
        assert_eq!(BROADCAST_END_MS, 18_536 * 86_400_000);
    }

    #[test]
    fn integer_ms_saturates() {
        assert_eq!(integer_ms("1591813767000"), 1_591_813_767_000);
        assert_eq!(integer_ms("-5"), -5);
        assert_eq!(integer_ms("0"), 0);
        assert_eq!(integer_ms("99999999999999999999999"), i64::MAX);
        assert_eq!(integer_ms("-99999999999999999999999"), i64::MIN);
    }

    #[test]
    fn parses_names() {
        for p in LegacyPolicy::ALL {
            assert_eq!(p.as_str().parse::<LegacyPolicy>(), Ok(p));
        }
        assert!("Always".parse::<LegacyPolicy>().unwrap_err().to_string().contains("always, timeline or never"));
    }
}
