//! The SQLite database file is readable by its owner only. SQLite creates a missing
//! database file with mode 0644 (less the umask), and its `-wal` and `-shm` files with the
//! mode of the database file; so the store creates the file itself, 0600, before SQLite
//! opens it, and narrows the three files of an existing database written by an older
//! version.
//!
//! Deliberately absent: the directory. Where the file lives is the caller's choice (the
//! server creates its data directory 0700).

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

use crate::error::{Result, StoreError};

/// The file of a `sqlite:` URL, as sqlx reads it (after `sqlite://` or `sqlite:`, up to
/// `?`, percent-decoded); `None` for an in-memory database.
pub(crate) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = database.is_empty()
        || database == ":memory:"
        || params.split('&').any(|p| p == "mode=memory");
    if in_memory {
        return None;
    }
    let path = percent_decode_str(database).decode_utf8().ok()?;
    Some(PathBuf::from(path.as_ref()))
}

/// Creates the database file 0600 when it is missing, and takes group and other access
/// away from it and its `-wal` and `-shm` files when they exist.
pub(crate) fn make_private(file: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::fs::{OpenOptions, Permissions};
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

        let failed = |path: &Path, source| StoreError::FileMode {
            path: path.to_owned(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
        {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            // A missing directory: SQLite reports it as it always has.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(failed(file, err)),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let path = PathBuf::from(name);
            let mode = match std::fs::metadata(&path) {
                Ok(metadata) => metadata.permissions().mode(),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(failed(&path, err)),
            };
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, Permissions::from_mode(mode & 0o700))
                    .map_err(|err| failed(&path, err))?;
                tracing::info!(
                    "{} was readable by other users; it is now readable by its owner only",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_of_a_sqlite_url_is_read_as_sqlx_reads_it() {
        for (url, file) in [
            (
                "sqlite:///data/scaffolder.sqlite",
                Some("/data/scaffolder.sqlite"),
            ),
            ("sqlite://rel/db.sqlite?mode=rwc", Some("rel/db.sqlite")),
            ("sqlite:db.sqlite", Some("db.sqlite")),
            ("sqlite:///a%20b/db%3F.sqlite", Some("/a b/db?.sqlite")),
            ("sqlite::memory:", None),
            ("sqlite://:memory:", None),
            ("sqlite://?mode=memory", None),
            ("sqlite:///x.db?mode=memory&cache=shared", None),
            ("postgres://db/x", None),
        ] {
            assert_eq!(sqlite_file(url), file.map(PathBuf::from), "{url}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn database_files_become_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.sqlite");
        make_private(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600, "created private");

        let old = dir.path().join("old.sqlite");
        let wal = dir.path().join("old.sqlite-wal");
        for file in [&old, &wal] {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        make_private(&old).unwrap();
        assert_eq!((mode(&old), mode(&wal)), (0o600, 0o600), "narrowed");
        assert!(!dir.path().join("old.sqlite-shm").exists());

        make_private(&dir.path().join("missing/x.sqlite")).unwrap();
    }
}
