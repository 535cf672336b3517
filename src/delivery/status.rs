//! Where a delivery stands, in the words stored in the delivery log and the
//! words the admin API shows.
//!
//! ```text
//!  waiting ─▶ queued ─▶ sending ─▶ delivered
//!               ▲  │      │  └──▶ gone (the app answered 410) | failed (a dead letter)
//!               │  ▼      ▼
//!               │ held  retrying ─▶ sending …
//!               └──┘
//! failed | gone ─(replay, recover)─▶ replayed, and a new delivery <id>.r<n>
//! ```
//!
//! `waiting`: behind an earlier delivery of its conversation that has not
//! settled (an app with `"ordered": true`). `queued`: to be sent as soon as
//! its turn comes (the app's rate, the requests already out). `sending`: a
//! request is out (until its lease ends). `retrying`: the last attempt
//! failed and the next waits for its time. `held`: not sent while the app
//! is down, paused, or while a recovered backlog drains. The admin API calls
//! the first four `pending`.

/// The stored words of every status not settled (live or held), as SQL's
/// `IN (…)` list takes them: for a statement's text, which must be a
/// constant. A test holds it to [`Status::is_settled`].
macro_rules! unsettled_sql {
    () => {
        "'waiting', 'queued', 'sending', 'retrying', 'held'"
    };
}
pub(crate) use unsettled_sql;

/// A delivery's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Behind an earlier delivery of its conversation that has not settled
    /// (an app that takes its events in order).
    Waiting,
    Queued,
    Sending,
    Retrying,
    Held,
    Delivered,
    Failed,
    Gone,
    Replayed,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Waiting,
        Status::Queued,
        Status::Sending,
        Status::Retrying,
        Status::Held,
        Status::Delivered,
        Status::Failed,
        Status::Gone,
        Status::Replayed,
    ];

    /// The word stored in the `status` column.
    pub const fn sql(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Retrying => "retrying",
            Status::Held => "held",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Gone => "gone",
            Status::Replayed => "replayed",
        }
    }

    /// The word the admin API and the log lines show.
    pub const fn api(self) -> ApiStatus {
        match self {
            Status::Waiting | Status::Queued | Status::Sending | Status::Retrying => ApiStatus::Pending,
            Status::Held => ApiStatus::Held,
            Status::Delivered => ApiStatus::Delivered,
            Status::Failed => ApiStatus::Failed,
            Status::Gone => ApiStatus::Gone,
            Status::Replayed => ApiStatus::Replayed,
        }
    }

    pub fn from_sql(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.sql() == word)
    }

    /// On its way: a queue message or a consumer has it.
    pub const fn is_live(self) -> bool {
        matches!(self, Status::Waiting | Status::Queued | Status::Sending | Status::Retrying)
    }

    /// Done: nothing more will be sent (but a replay).
    pub const fn is_settled(self) -> bool {
        matches!(self, Status::Delivered | Status::Failed | Status::Gone | Status::Replayed)
    }

    /// A dead letter: a replay may send it again.
    pub const fn is_dead(self) -> bool {
        matches!(self, Status::Failed | Status::Gone)
    }
}

/// A status as the admin API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiStatus {
    Pending,
    Held,
    Delivered,
    Failed,
    Gone,
    Replayed,
}

impl ApiStatus {
    pub const ALL: [ApiStatus; 6] =
        [ApiStatus::Pending, ApiStatus::Held, ApiStatus::Delivered, ApiStatus::Failed, ApiStatus::Gone, ApiStatus::Replayed];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApiStatus::Pending => "pending",
            ApiStatus::Held => "held",
            ApiStatus::Delivered => "delivered",
            ApiStatus::Failed => "failed",
            ApiStatus::Gone => "gone",
            ApiStatus::Replayed => "replayed",
        }
    }

    pub fn parse(word: &str) -> Option<ApiStatus> {
        ApiStatus::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The stored statuses it stands for.
    pub fn stored(self) -> &'static [Status] {
        match self {
            ApiStatus::Pending => &[Status::Waiting, Status::Queued, Status::Sending, Status::Retrying],
            ApiStatus::Held => &[Status::Held],
            ApiStatus::Delivered => &[Status::Delivered],
            ApiStatus::Failed => &[Status::Failed],
            ApiStatus::Gone => &[Status::Gone],
            ApiStatus::Replayed => &[Status::Replayed],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_status_has_one_api_word_and_back() {
        for s in Status::ALL {
            assert_eq!(Status::from_sql(s.sql()), Some(s));
            assert!(s.api().stored().contains(&s), "{s:?}");
            assert_eq!(ApiStatus::parse(s.api().as_str()), Some(s.api()));
        }
        let stored: usize = ApiStatus::ALL.iter().map(|a| a.stored().len()).sum();
        assert_eq!(stored, Status::ALL.len(), "each stored status under exactly one API word");
        assert_eq!(Status::from_sql("pending"), None, "pending is an API word only");
    }

    #[test]
    fn the_sql_list_of_unsettled_statuses_is_every_status_not_settled() {
        let listed: Vec<&str> = unsettled_sql!().split(", ").map(|w| w.trim_matches('\'')).collect();
        let unsettled: Vec<&str> = Status::ALL.into_iter().filter(|s| !s.is_settled()).map(Status::sql).collect();
        assert_eq!(listed, unsettled);
    }

    #[test]
    fn live_settled_and_held_partition_the_statuses() {
        for s in Status::ALL {
            let kinds = [s.is_live(), s.is_settled(), s == Status::Held];
            assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{s:?}");
        }
    }
}
