//! Password credentials: SCRAM-SHA-256 verifiers (RFC 5802/7677, stored in PostgreSQL's text
//! form) and the password rules a new password must pass. Pure functions; no I/O.

use std::num::NonZeroU32;

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::settings::SecurityPolicy;

/// The longest password accepted (the vendor caps at 32; we allow long passphrases).
pub const MAX_PASSWORD_LENGTH: usize = 1024;

/// A parsed `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramVerifier {
    /// Derives a verifier for a password with a fresh random salt.
    pub fn derive(password: &str, iterations: u32) -> Self {
        let salt: [u8; 16] = rand::random();
        Self::derive_with_salt(password, &salt, iterations)
    }

    /// Derives a verifier with a given salt (to compare against an old verifier).
    pub fn derive_with_salt(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key)
            .as_ref()
            .to_vec();
        let server_key = hmac_sha256(&salted, b"Server Key");
        Self {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// Parses PostgreSQL's text form.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(Self {
            iterations: iterations.parse().ok().filter(|i| *i > 0)?,
            salt: B64.decode(salt).ok()?,
            stored_key: B64.decode(stored).ok()?,
            server_key: B64.decode(server).ok()?,
        })
    }

    /// PostgreSQL's text form.
    pub fn encode(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    /// Checks a cleartext password (HTTP sign-in) in constant time.
    pub fn verify(&self, password: &str) -> bool {
        let candidate = Self::derive_with_salt(password, &self.salt, self.iterations);
        constant_time::verify_slices_are_equal(&candidate.stored_key, &self.stored_key).is_ok()
    }
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    // SASLprep as libpq does; a password it cannot prepare is used as raw bytes (also as libpq).
    let prepared = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_owned());
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        prepared.as_bytes(),
        &mut out,
    );
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Why a new password was refused. The text never repeats the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRejection {
    Empty,
    TooShort { minimum: i64 },
    TooLong,
    TooSimple { level: i64 },
    Reused { count: i64 },
}

impl std::fmt::Display for PasswordRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "the password must not be empty"),
            Self::TooShort { minimum } => {
                write!(f, "the password must be at least {minimum} characters long")
            }
            Self::TooLong => write!(
                f,
                "the password must be at most {MAX_PASSWORD_LENGTH} characters long"
            ),
            Self::TooSimple { level: 1 } => write!(
                f,
                "the password must contain an upper-case letter, a lower-case letter and a digit \
                 (password_complexity_level 1)"
            ),
            Self::TooSimple { level } => write!(
                f,
                "the password must contain an upper-case letter, a lower-case letter, a digit and \
                 a symbol (password_complexity_level {level})"
            ),
            Self::Reused { count } => write!(
                f,
                "the password was used recently; it must differ from the last {count} passwords \
                 (password_no_repeat_count)"
            ),
        }
    }
}

/// Checks a new password against the policy and the user's previous verifiers (newest first,
/// the current one included). `previous` is only read as far as the no-repeat count reaches.
pub fn check_new_password(
    password: &str,
    policy: &SecurityPolicy,
    previous: &[ScramVerifier],
) -> Result<(), PasswordRejection> {
    let length = password.chars().count();
    if length == 0 {
        return Err(PasswordRejection::Empty);
    }
    if length > MAX_PASSWORD_LENGTH {
        return Err(PasswordRejection::TooLong);
    }
    if policy.minimum_length > 0 && (length as i64) < policy.minimum_length {
        return Err(PasswordRejection::TooShort {
            minimum: policy.minimum_length,
        });
    }
    if policy.complexity_level >= 1 {
        let upper = password.chars().any(char::is_uppercase);
        let lower = password.chars().any(char::is_lowercase);
        let digit = password.chars().any(|c| c.is_ascii_digit());
        let symbol = password.chars().any(|c| !c.is_alphanumeric());
        if !(upper && lower && digit) || (policy.complexity_level >= 2 && !symbol) {
            return Err(PasswordRejection::TooSimple {
                level: policy.complexity_level,
            });
        }
    }
    if policy.no_repeat_count > 0 {
        let reused = previous
            .iter()
            .take(policy.no_repeat_count as usize)
            .any(|old| old.verify(password));
        if reused {
            return Err(PasswordRejection::Reused {
                count: policy.no_repeat_count,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_round_trips_and_verifies() {
        let v = ScramVerifier::derive("correct horse", 4096);
        let parsed = ScramVerifier::parse(&v.encode()).unwrap();
        assert_eq!(parsed, v);
        assert!(parsed.verify("correct horse"));
        assert!(!parsed.verify("correct hors"));
    }

    #[test]
    fn matches_postgresql_for_a_known_vector() {
        // RFC 7677's example password and salt; the expected keys were computed independently
        // with Python's hashlib/hmac, as PostgreSQL stores them.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::derive_with_salt("pencil", &salt, 4096);
        assert_eq!(
            B64.encode(&v.stored_key),
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        );
        assert_eq!(
            B64.encode(&v.server_key),
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn garbage_verifiers_do_not_parse() {
        for bad in [
            "",
            "md5abc",
            "SCRAM-SHA-256$0:AA==$AA==:AA==",
            "SCRAM-SHA-256$x:AA==$AA==:AA==",
            "SCRAM-SHA-256$4096:!!$AA==:AA==",
        ] {
            assert!(ScramVerifier::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn password_rules() {
        let strict = SecurityPolicy {
            minimum_length: 8,
            complexity_level: 2,
            no_repeat_count: 2,
            ..Default::default()
        };
        let old = vec![
            ScramVerifier::derive("Old-pass1", 16),
            ScramVerifier::derive("Older-pass1", 16),
            ScramVerifier::derive("Oldest-pass1", 16),
        ];
        let cases: &[(&str, Result<(), PasswordRejection>)] = &[
            ("", Err(PasswordRejection::Empty)),
            ("Ab1!", Err(PasswordRejection::TooShort { minimum: 8 })),
            ("abcdefgh1!", Err(PasswordRejection::TooSimple { level: 2 })),
            ("Abcdefgh12", Err(PasswordRejection::TooSimple { level: 2 })),
            ("Old-pass1", Err(PasswordRejection::Reused { count: 2 })),
            ("Older-pass1", Err(PasswordRejection::Reused { count: 2 })),
            ("Oldest-pass1", Ok(())),
            ("Brand-new-1", Ok(())),
        ];
        for (pw, want) in cases {
            assert_eq!(&check_new_password(pw, &strict, &old), want, "{pw}");
        }
        let long = "a".repeat(300);
        assert_eq!(
            check_new_password(&long, &SecurityPolicy::default(), &[]),
            Ok(())
        );
        let too_long = "a".repeat(MAX_PASSWORD_LENGTH + 1);
        assert_eq!(
            check_new_password(&too_long, &SecurityPolicy::default(), &[]),
            Err(PasswordRejection::TooLong)
        );
    }
}
