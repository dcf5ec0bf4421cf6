//! Replicas of `scaffolder serve` on one database, each with its own data directory and
//! configuration, for the replica chaos test and the replica benchmark.

use std::path::{Path, PathBuf};

use super::Server;

/// One replica: its name (the `environment.parameters.replica` its templates see), data
/// directory and configuration, and its server while it runs.
pub struct Replica {
    pub name: String,
    data: tempfile::TempDir,
    config: PathBuf,
    templates: PathBuf,
    server: Option<Server>,
}

impl Replica {
    /// A replica on the PostgreSQL database at `database_url` with the task secrets key
    /// `secrets_key` (base64), serving the templates under `templates`; `scaffolder` is
    /// more of the configuration's `scaffolder:` mapping, each line indented two spaces.
    pub fn new(
        name: &str,
        database_url: &str,
        secrets_key: &str,
        templates: &Path,
        scaffolder: &str,
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("app-config.yaml");
        std::fs::write(
            &config,
            format!(
                "backend:\n  database:\n    client: pg\n    connection: {database_url}\n\
                 scaffolder:\n  taskSecrets:\n    key: {secrets_key}\n\
                 \x20 defaultEnvironment:\n    parameters:\n      replica: {name}\n{scaffolder}"
            ),
        )
        .unwrap();
        Self {
            name: name.to_owned(),
            data,
            config,
            templates: templates.to_owned(),
            server: None,
        }
    }

    /// Starts (or starts again) the server on the replica's data directory; returns once
    /// it listens.
    pub fn start(&mut self) {
        let args = [
            "--config",
            self.config.to_str().unwrap(),
            "--templates",
            self.templates.to_str().unwrap(),
        ];
        self.server = Some(Server::spawn(
            self.data.path(),
            &args,
            &[("RUST_LOG", "warn")],
        ));
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the replica was started")
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.server
            .as_mut()
            .expect("the replica was started")
            .kill();
    }
}

/// Starts every replica: the first alone, which compiles the plugins into its data
/// directory's cache, then the others at once with a copy of that cache (as replicas
/// started from one image would have), so a test does not wait for three compilations.
pub fn start_all(replicas: &mut [Replica]) {
    let Some((first, others)) = replicas.split_first_mut() else {
        return;
    };
    first.start();
    let cache = first.data.path().join("cache");
    std::thread::scope(|scope| {
        for replica in others {
            copy_dir(&cache, &replica.data.path().join("cache"));
            scope.spawn(|| replica.start());
        }
    });
}

/// An event's `createdAt` in milliseconds since the epoch.
pub fn created_ms(event: &serde_json::Value) -> Option<i64> {
    let text = event["createdAt"].as_str()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()?
            .timestamp_millis(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
