//! Managing the accounts that may use the API: what the command line's user commands do.

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::auth::password::{HashError, PasswordHasher};
use crate::db::models::{NewUserRow, UserRow};
use crate::db::{Database, DbError, user_repository};
use crate::domain::user::{NewPassword, Username};

/// The account created on first start when there is none.
pub const INITIAL_ADMIN: &str = "admin";

/// Why an account command failed; `Display` is meant for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username breaks the username rule.
    #[error("{0}")]
    InvalidUsername(String),
    /// The password breaks the password rule.
    #[error("{0}")]
    InvalidPassword(String),
    /// Another account has this username.
    #[error("a user named {0:?} already exists")]
    UsernameTaken(String),
    /// No account has this username.
    #[error("there is no user named {0:?}")]
    NoSuchUser(String),
    /// Hashing failed (bad cost settings).
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbError),
}

/// What kind of account to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May log in but not use the API.
    Regular,
    /// May use the API (`IsAdminUser`).
    Staff,
    /// Staff, created by `createsuperuser`.
    Superuser,
}

fn now_unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Creates an account.
pub fn create(
    database: &Database,
    hasher: &PasswordHasher,
    username: &Username,
    password: &NewPassword,
    role: Role,
) -> Result<UserRow, AccountError> {
    let hash = hasher.hash(password.expose())?;
    let row = NewUserRow {
        username: username.as_ref(),
        password_hash: &hash,
        is_staff: role != Role::Regular,
        is_superuser: role == Role::Superuser,
        is_active: true,
        date_joined: now_unix_seconds(),
    };
    database
        .write_blocking(|conn| user_repository::insert(conn, &row))
        .map_err(|error| {
            if error.is_unique_violation() {
                AccountError::UsernameTaken(username.to_string())
            } else {
                AccountError::Database(error)
            }
        })
}

/// Sets a new password; every server process stops accepting the old one at once.
pub fn change_password(
    database: &Database,
    hasher: &PasswordHasher,
    username: &Username,
    password: &NewPassword,
) -> Result<(), AccountError> {
    let hash = hasher.hash(password.expose())?;
    let changed = database.write_blocking(|conn| {
        user_repository::set_password_hash(conn, username.as_ref(), &hash)
    })?;
    if changed {
        Ok(())
    } else {
        Err(AccountError::NoSuchUser(username.to_string()))
    }
}

/// Deletes an account.
pub fn delete(database: &Database, username: &Username) -> Result<(), AccountError> {
    let deleted =
        database.write_blocking(|conn| user_repository::delete(conn, username.as_ref()))?;
    if deleted {
        Ok(())
    } else {
        Err(AccountError::NoSuchUser(username.to_string()))
    }
}

/// Every account, by username.
pub fn list(database: &Database) -> Result<Vec<UserRow>, AccountError> {
    Ok(database.blocking(user_repository::list)?)
}

/// Where the first superuser's password comes from, when there are no accounts at all.
#[derive(Debug)]
pub enum InitialPassword {
    /// The operator's (`--admin-password-file`).
    Given(NewPassword),
    /// A random one, which the caller shows once (on a terminal).
    Generated,
    /// None may be made up: nobody would see it.
    Withheld,
}

/// What the first start did about the first superuser.
#[derive(Debug, PartialEq, Eq)]
pub enum InitialAdmin {
    /// Accounts exist (or another instance starting at the same moment created the admin).
    NotNeeded,
    /// Created with the operator's password.
    CreatedWithGivenPassword,
    /// Created with this random password, to be shown once.
    CreatedWithGeneratedPassword(String),
    /// No accounts, and none created: no password was given and a generated one could not be
    /// shown safely.
    Missing,
}

/// When there are no accounts at all, creates the `admin` superuser (nobody could use an
/// admin-only API otherwise), with the password `initial` says.
pub fn ensure_initial_admin(
    database: &Database,
    hasher: &PasswordHasher,
    initial: InitialPassword,
) -> Result<InitialAdmin, AccountError> {
    if database.blocking(user_repository::count)? > 0 {
        return Ok(InitialAdmin::NotNeeded);
    }
    let (password, created) = match initial {
        InitialPassword::Withheld => return Ok(InitialAdmin::Missing),
        InitialPassword::Given(password) => (password, InitialAdmin::CreatedWithGivenPassword),
        InitialPassword::Generated => {
            let generated: String = rand::rng()
                .sample_iter(&Alphanumeric)
                .take(24)
                .map(char::from)
                .collect();
            let password =
                NewPassword::parse(generated.clone()).map_err(AccountError::InvalidPassword)?;
            (
                password,
                InitialAdmin::CreatedWithGeneratedPassword(generated),
            )
        }
    };
    let username = Username::parse(INITIAL_ADMIN).map_err(AccountError::InvalidUsername)?;
    match create(database, hasher, &username, &password, Role::Superuser) {
        Ok(_) => Ok(created),
        // Another instance starting at the same moment created it first.
        Err(AccountError::UsernameTaken(_)) => Ok(InitialAdmin::NotNeeded),
        Err(other) => Err(other),
    }
}
