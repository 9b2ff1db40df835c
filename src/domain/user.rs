//! Accounts that may use the API: who they are and what a password must be.

use std::fmt;

use validator::ValidateLength;

/// Django's limit for `User.username`.
pub const USERNAME_MAX_CHARS: u64 = 150;
/// The shortest password accepted (Django's `MinimumLengthValidator` default).
pub const PASSWORD_MIN_CHARS: u64 = 8;
/// A bound on the work one password hash may cost us.
pub const PASSWORD_MAX_BYTES: usize = 4096;

/// A login name: 1–150 characters of letters, digits and `@ . + - _` (Django's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks the name against Django's username rule.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("A username is required.".to_owned());
        }
        if !raw.validate_length(None, Some(USERNAME_MAX_CHARS), None) {
            return Err(format!(
                "Ensure the username has no more than {USERNAME_MAX_CHARS} characters."
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
        {
            return Err("Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: at least 8 characters, at most 4 KiB. Never printed.
pub struct NewPassword(String);

impl NewPassword {
    /// Checks a password someone wants to set.
    pub fn parse(raw: String) -> Result<Self, String> {
        if !raw.validate_length(Some(PASSWORD_MIN_CHARS), None, None) {
            return Err(format!(
                "This password is too short. It must contain at least {PASSWORD_MIN_CHARS} characters."
            ));
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(format!(
                "This password is too long. It must be at most {PASSWORD_MAX_BYTES} bytes."
            ));
        }
        Ok(Self(raw))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_djangos_rule() {
        assert!(Username::parse("admin").is_ok());
        assert!(Username::parse("field.device+7@site_a-1").is_ok());
        assert!(Username::parse("Ünïcode").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("colon:name").is_err());
        assert!(Username::parse(&"a".repeat(150)).is_ok());
        assert!(Username::parse(&"a".repeat(151)).is_err());
    }

    #[test]
    fn passwords_need_eight_characters_and_stay_bounded() {
        assert!(NewPassword::parse("1234567".to_owned()).is_err());
        assert!(NewPassword::parse("12345678".to_owned()).is_ok());
        assert!(NewPassword::parse("ééééééé".to_owned()).is_err());
        assert!(NewPassword::parse("x".repeat(4097)).is_err());
        let secret = NewPassword::parse("correct horse".to_owned()).unwrap();
        assert!(!format!("{secret:?}").contains("horse"));
    }
}
