//! Renewing a connection: keeping it past its expiry, within the maximum its
//! provider accounts allow. A lead of the requester's team decides alone; an
//! earlier expiry narrows what was approved and needs nobody's consent.

use chrono::{DateTime, Duration, Utc};

use crate::domain::connection::Status;
use crate::error::FieldError;

/// How far ahead a renewal may reach at most.
pub const DEFAULT_MAX_DAYS: i64 = 90;

/// The provider-account setting that lowers that maximum.
pub const MAX_DAYS_SETTING: &str = "renewal_max_days";

/// The maximum of a connection: the smallest its accounts allow (`None` for
/// an account without the setting, or with one that is not a whole number of
/// days from 1 to the default).
pub fn max_days(settings: impl IntoIterator<Item = Option<i64>>) -> i64 {
    settings
        .into_iter()
        .map(|s| {
            s.filter(|d| (1..=DEFAULT_MAX_DAYS).contains(d))
                .unwrap_or(DEFAULT_MAX_DAYS)
        })
        .min()
        .unwrap_or(DEFAULT_MAX_DAYS)
}

/// The expiry a connection in `status` has to renew, or why it cannot be
/// renewed at all (its state, not what was asked: a conflict).
pub fn renewable(status: Status, current: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, String> {
    if status.is_final() || status == Status::Failed {
        return Err(format!(
            "a {} connection cannot be renewed: request it again",
            status.label()
        ));
    }
    current.ok_or_else(|| "this connection has no expiry, so there is nothing to renew".into())
}

/// A new expiry: later than the current one (a lead decides) or earlier (it
/// narrows what was approved, so it applies at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewExpiry {
    Later(DateTime<Utc>),
    Earlier(DateTime<Utc>),
}

impl NewExpiry {
    pub fn at(self) -> DateTime<Utc> {
        match self {
            NewExpiry::Later(t) | NewExpiry::Earlier(t) => t,
        }
    }
}

/// The new expiry of a renewal of `current` asked `now` for `hours` from
/// now, or why not (naming the field `expires_in_hours`).
pub fn new_expiry(
    now: DateTime<Utc>,
    current: DateTime<Utc>,
    hours: i64,
    max_days: i64,
) -> Result<NewExpiry, FieldError> {
    let refuse = |reason: String| FieldError::new("expires_in_hours", reason);
    if !(1..=max_days * 24).contains(&hours) {
        return Err(refuse(format!(
            "must be from 1 to {} hours ({max_days} days, the most its provider accounts allow a renewal)",
            max_days * 24
        )));
    }
    let until = now + Duration::hours(hours);
    if until == current {
        return Err(refuse(format!(
            "is the current expiry, {}: nothing would change",
            current.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    Ok(if until > current {
        NewExpiry::Later(until)
    } else {
        NewExpiry::Earlier(until)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_smallest_account_maximum_wins_and_nonsense_falls_back() {
        assert_eq!(max_days([]), DEFAULT_MAX_DAYS);
        assert_eq!(max_days([None, Some(30)]), 30);
        assert_eq!(
            max_days([Some(0), Some(1000)]),
            DEFAULT_MAX_DAYS,
            "only lowered"
        );
        assert_eq!(max_days([Some(7), Some(30)]), 7);
    }

    #[test]
    fn a_renewal_reaches_past_the_expiry_within_the_maximum() {
        let now = at("2026-12-04T10:00:00Z");
        let soon = at("2026-12-05T10:00:00Z");
        assert_eq!(
            new_expiry(now, soon, 72, 30),
            Ok(NewExpiry::Later(at("2026-12-07T10:00:00Z")))
        );
        assert_eq!(
            new_expiry(now, soon, 12, 30),
            Ok(NewExpiry::Earlier(at("2026-12-04T22:00:00Z"))),
            "an earlier expiry narrows"
        );
        let same = new_expiry(now, soon, 24, 30).unwrap_err();
        assert_eq!(same.field, "expires_in_hours");
        assert!(same.reason.contains("nothing would change"), "{same:?}");
        let long = new_expiry(now, soon, 31 * 24, 30).unwrap_err();
        assert!(long.reason.contains("30 days"), "{long:?}");
    }

    #[test]
    fn only_a_connection_with_an_expiry_that_lives_can_be_renewed() {
        let at_5th = at("2026-12-05T10:00:00Z");
        let soon = Some(at_5th);
        assert!(
            renewable(Status::Active, None)
                .unwrap_err()
                .contains("no expiry")
        );
        assert!(
            renewable(Status::Deleted, soon)
                .unwrap_err()
                .contains("cannot be renewed")
        );
        assert!(renewable(Status::Failed, soon).is_err());
        assert_eq!(renewable(Status::PendingApproval, soon), Ok(at_5th));
        assert_eq!(renewable(Status::Drifted, soon), Ok(at_5th));
    }
}
