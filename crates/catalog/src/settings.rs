//! The security settings — five password rules, the session idle timeout and the maximum
//! session age — and how the strictest value across the system, a database and a user's
//! groups is chosen.

use portcullis_store::{ScopeRef, SettingRecord};

/// A password security setting (seed 003, "Password security settings").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecuritySetting {
    MinimumLength,
    ComplexityLevel,
    NoRepeatCount,
    LifetimeDays,
    InvalidAttemptLimit,
    /// Seconds without a statement or request after which a session ends (0: none).
    SessionIdleTimeout,
    /// Seconds after sign-in at which a session ends, whatever it does (0: none).
    SessionMaxAge,
}

impl SecuritySetting {
    pub const ALL: [SecuritySetting; 7] = [
        Self::MinimumLength,
        Self::ComplexityLevel,
        Self::NoRepeatCount,
        Self::LifetimeDays,
        Self::InvalidAttemptLimit,
        Self::SessionIdleTimeout,
        Self::SessionMaxAge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MinimumLength => "password_minimum_length",
            Self::ComplexityLevel => "password_complexity_level",
            Self::NoRepeatCount => "password_no_repeat_count",
            Self::LifetimeDays => "password_lifetime_days",
            Self::InvalidAttemptLimit => "password_invalid_attempt_limit",
            Self::SessionIdleTimeout => "session_idle_timeout_seconds",
            Self::SessionMaxAge => "session_max_age_seconds",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The values an administrator may set.
    pub fn valid_range(self) -> (i64, i64) {
        match self {
            Self::MinimumLength => (0, crate::credential::MAX_PASSWORD_LENGTH as i64),
            Self::ComplexityLevel => (0, 2),
            Self::NoRepeatCount => (0, 100),
            Self::LifetimeDays => (0, 36_500),
            Self::InvalidAttemptLimit => (0, 1_000_000),
            // A year at most.
            Self::SessionIdleTimeout | Self::SessionMaxAge => (0, 31_536_000),
        }
    }

    /// Larger is stricter for length, complexity and no-repeat; a smaller non-zero value is
    /// stricter for lifetime, attempt limit, idle timeout and maximum age (0 = not enforced).
    fn stricter(self, a: i64, b: i64) -> i64 {
        match self {
            Self::MinimumLength | Self::ComplexityLevel | Self::NoRepeatCount => a.max(b),
            Self::LifetimeDays
            | Self::InvalidAttemptLimit
            | Self::SessionIdleTimeout
            | Self::SessionMaxAge => match (a, b) {
                (0, x) | (x, 0) => x,
                (x, y) => x.min(y),
            },
        }
    }
}

/// The effective settings for one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityPolicy {
    pub minimum_length: i64,
    pub complexity_level: i64,
    pub no_repeat_count: i64,
    pub lifetime_days: i64,
    pub invalid_attempt_limit: i64,
    pub session_idle_timeout_seconds: i64,
    pub session_max_age_seconds: i64,
}

impl SecurityPolicy {
    fn slot(&mut self, s: SecuritySetting) -> &mut i64 {
        match s {
            SecuritySetting::MinimumLength => &mut self.minimum_length,
            SecuritySetting::ComplexityLevel => &mut self.complexity_level,
            SecuritySetting::NoRepeatCount => &mut self.no_repeat_count,
            SecuritySetting::LifetimeDays => &mut self.lifetime_days,
            SecuritySetting::InvalidAttemptLimit => &mut self.invalid_attempt_limit,
            SecuritySetting::SessionIdleTimeout => &mut self.session_idle_timeout_seconds,
            SecuritySetting::SessionMaxAge => &mut self.session_max_age_seconds,
        }
    }

    /// The strictest value of every setting among the records whose scope is in `scopes`.
    pub fn strictest(records: &[SettingRecord], scopes: &[ScopeRef]) -> Self {
        let mut policy = Self::default();
        for record in records.iter().filter(|r| scopes.contains(&r.scope)) {
            if let Some(setting) = SecuritySetting::from_name(&record.name) {
                let slot = policy.slot(setting);
                *slot = setting.stricter(*slot, record.value);
            }
        }
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(scope: ScopeRef, s: SecuritySetting, value: i64) -> SettingRecord {
        SettingRecord {
            scope,
            name: s.name().into(),
            value,
        }
    }

    #[test]
    fn strictest_wins_per_setting() {
        use SecuritySetting::*;
        let (sys, db, grp) = (ScopeRef::System, ScopeRef::Database(2), ScopeRef::Group(9));
        let records = vec![
            rec(sys, MinimumLength, 8),
            rec(db, MinimumLength, 10),
            rec(grp, MinimumLength, 12),
            rec(sys, LifetimeDays, 90),
            rec(db, LifetimeDays, 0),
            rec(grp, LifetimeDays, 30),
            rec(sys, InvalidAttemptLimit, 0),
            rec(db, InvalidAttemptLimit, 5),
            rec(ScopeRef::Database(3), InvalidAttemptLimit, 1),
            rec(db, ComplexityLevel, 1),
        ];
        let all = SecurityPolicy::strictest(&records, &[sys, db, grp]);
        assert_eq!(
            all,
            SecurityPolicy {
                minimum_length: 12,
                complexity_level: 1,
                no_repeat_count: 0,
                lifetime_days: 30,
                invalid_attempt_limit: 5,
                ..SecurityPolicy::default()
            }
        );
        // At user creation only the system and database count.
        let creation = SecurityPolicy::strictest(&records, &[sys, db]);
        assert_eq!((creation.minimum_length, creation.lifetime_days), (10, 90));
    }
}
