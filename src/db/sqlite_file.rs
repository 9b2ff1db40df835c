//! The SQLite database file: made once, when the service starts, and then only opened while it
//! exists; each pooled connection watches that its path still leads to the file it has open.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::DbError;

/// Makes the database file at `path` if it is missing, once, as the service starts; the pool
/// opens only a file that exists ([`existing_file_uri`]), so while it is gone requests fail (503)
/// instead of writing to a new, empty database. Fails when its directory does not exist.
pub(super) fn create_once(path: &str) -> Result<PathBuf, DbError> {
    let cannot = |cause: String| DbError::Connect {
        target: format!("the SQLite database {path}"),
        cause,
    };
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        return Err(cannot(format!(
            "its directory {} does not exist",
            parent.display()
        )));
    }
    if !Path::new(path).exists() {
        <diesel::SqliteConnection as diesel::Connection>::establish(path).map_err(|e| {
            let detail = std::fs::File::create(path).err();
            cannot(match detail {
                Some(io) => format!("creating it failed: {e} ({io})"),
                None => format!("creating it failed: {e}"),
            })
        })?;
    }
    Ok(PathBuf::from(path))
}

/// Whether SQLite could write the file at `path`: opened for writing, which file modes do not
/// stop for root but a read-only mount or an immutable file does. Blocks on the file system.
pub(super) fn is_writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

/// How often a pooled SQLite connection checks, at checkout, that its file is still the one at
/// the database's path.
const FILE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// The SQLite file a connection opened, to notice when the path stops leading to it: moved,
/// deleted or replaced, the file a connection keeps open is no longer the database, and what it
/// reads is stale and what it writes is lost.
pub(super) struct OpenedFile {
    path: String,
    identity: Option<(u64, u64)>,
    checked: Instant,
}

impl OpenedFile {
    /// The file now at `path`, as a connection just opened there.
    pub(super) fn at(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            identity: file_identity(path),
            checked: Instant::now(),
        }
    }

    /// False once the path leads elsewhere, or nowhere; checks at most every
    /// [`FILE_CHECK_EVERY`].
    pub(super) fn still_there(&mut self) -> bool {
        if self.checked.elapsed() < FILE_CHECK_EVERY {
            return true;
        }
        self.checked = Instant::now();
        self.identity.is_some() && file_identity(&self.path) == self.identity
    }
}

/// The device and inode of the file at `path`, if there is one.
#[cfg(unix)]
fn file_identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;

    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Where inodes are not to be had, only whether something is at `path`.
#[cfg(not(unix))]
fn file_identity(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// A `file:` URI that opens the SQLite database at `path` only if it exists (`mode=rw`): the
/// pool must fail while the file is gone, not make a new, empty database in its place.
pub(super) fn existing_file_uri(path: &str) -> String {
    let mut uri = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    uri
}

#[cfg(test)]
mod tests {
    use diesel::{Connection as _, SqliteConnection};

    use super::*;

    #[test]
    fn the_pool_opens_only_an_existing_file_whatever_its_name() {
        assert_eq!(existing_file_uri("station.db"), "file:station.db?mode=rw");
        assert_eq!(
            existing_file_uri("/srv/a b/100%?#.db"),
            "file:/srv/a b/100%25%3f%23.db?mode=rw"
        );
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.db");
        let uri = existing_file_uri(missing.to_str().unwrap());
        assert!(SqliteConnection::establish(&uri).is_err());
        assert!(!missing.exists(), "no new, empty database was made");
    }
}
