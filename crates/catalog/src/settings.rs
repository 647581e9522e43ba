//! The five password security settings and how the strictest value across the system, a
//! database and a user's groups is chosen.

use portcullis_store::{ScopeRef, SettingRecord};

/// A password security setting (seed 003, "Password security settings").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordSetting {
    MinimumLength,
    ComplexityLevel,
    NoRepeatCount,
    LifetimeDays,
    InvalidAttemptLimit,
}

impl PasswordSetting {
    pub const ALL: [PasswordSetting; 5] = [
        Self::MinimumLength,
        Self::ComplexityLevel,
        Self::NoRepeatCount,
        Self::LifetimeDays,
        Self::InvalidAttemptLimit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MinimumLength => "password_minimum_length",
            Self::ComplexityLevel => "password_complexity_level",
            Self::NoRepeatCount => "password_no_repeat_count",
            Self::LifetimeDays => "password_lifetime_days",
            Self::InvalidAttemptLimit => "password_invalid_attempt_limit",
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
        }
    }

    /// Larger is stricter for length, complexity and no-repeat; a smaller non-zero value is
    /// stricter for lifetime and attempt limit (0 = not enforced).
    fn stricter(self, a: i64, b: i64) -> i64 {
        match self {
            Self::MinimumLength | Self::ComplexityLevel | Self::NoRepeatCount => a.max(b),
            Self::LifetimeDays | Self::InvalidAttemptLimit => match (a, b) {
                (0, x) | (x, 0) => x,
                (x, y) => x.min(y),
            },
        }
    }
}

/// The effective settings for one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub minimum_length: i64,
    pub complexity_level: i64,
    pub no_repeat_count: i64,
    pub lifetime_days: i64,
    pub invalid_attempt_limit: i64,
}

impl PasswordPolicy {
    fn slot(&mut self, s: PasswordSetting) -> &mut i64 {
        match s {
            PasswordSetting::MinimumLength => &mut self.minimum_length,
            PasswordSetting::ComplexityLevel => &mut self.complexity_level,
            PasswordSetting::NoRepeatCount => &mut self.no_repeat_count,
            PasswordSetting::LifetimeDays => &mut self.lifetime_days,
            PasswordSetting::InvalidAttemptLimit => &mut self.invalid_attempt_limit,
        }
    }

    /// The strictest value of every setting among the records whose scope is in `scopes`.
    pub fn strictest(records: &[SettingRecord], scopes: &[ScopeRef]) -> Self {
        let mut policy = Self::default();
        for record in records.iter().filter(|r| scopes.contains(&r.scope)) {
            if let Some(setting) = PasswordSetting::from_name(&record.name) {
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

    fn rec(scope: ScopeRef, s: PasswordSetting, value: i64) -> SettingRecord {
        SettingRecord {
            scope,
            name: s.name().into(),
            value,
        }
    }

    #[test]
    fn strictest_wins_per_setting() {
        use PasswordSetting::*;
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
        let all = PasswordPolicy::strictest(&records, &[sys, db, grp]);
        assert_eq!(
            all,
            PasswordPolicy {
                minimum_length: 12,
                complexity_level: 1,
                no_repeat_count: 0,
                lifetime_days: 30,
                invalid_attempt_limit: 5
            }
        );
        // At user creation only the system and database count.
        let creation = PasswordPolicy::strictest(&records, &[sys, db]);
        assert_eq!((creation.minimum_length, creation.lifetime_days), (10, 90));
    }
}
