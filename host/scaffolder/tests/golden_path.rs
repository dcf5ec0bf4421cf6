//! `examples/golden-path` end to end, as an operator runs it: `scaffolder serve` with the
//! example's own `app-config.yaml`, a real git server (`git http-backend`), the real
//! PostgreSQL on 127.0.0.1:5432 and a real Backstage catalog. Each effect is checked on
//! the server that holds it, never through our own outputs.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, get_as, post_as, repo, wait_for_event_as};
use scaffolder_test_artifacts::backstage::{self, Backstage, free_port};
use scaffolder_test_artifacts::git_server::{GitServer, git};
use scaffolder_test_artifacts::scram;
use serde_json::{Value as Json, json};
use sqlx::{Column, Connection, PgConnection, Row, SqliteConnection};

/// The callers' token: ours and the Backstage catalog's (as a user's token is both).
const TOKEN: &str = "golden-path-caller-token";
const GIT_TOKEN: &str = "golden-path-git-token-4f1d";
const ADMIN_PASSWORD: &str = "admin-password-9c2e";

/// A service name no other test (or earlier run) uses.
fn unique_service() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "gp-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// Everything one run needs: the three real servers and ours.
struct World {
    backstage: Backstage,
    git: GitServer,
    server: Server,
    data: tempfile::TempDir,
}

impl World {
    /// Starts everything; the PostgreSQL admin connection goes to `postgres_port`.
    fn start(postgres_port: u16) -> Self {
        let data = tempfile::tempdir().unwrap();
        let catalog = data.path().join("catalog.yaml");
        std::fs::write(
            &catalog,
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n",
        )
        .unwrap();
        let backstage = Backstage::start(Some(&catalog), TOKEN);
        let git = GitServer::start(Some(GIT_TOKEN));
        let examples = repo().join("examples");
        let config = examples.join("golden-path/app-config.yaml");
        let admin_url =
            format!("postgres://postgres:{ADMIN_PASSWORD}@127.0.0.1:{postgres_port}/postgres");
        let address = format!("127.0.0.1:{postgres_port}");
        let server = Server::spawn(
            &data.path().join("scaffolder"),
            &[
                "--config",
                config.to_str().unwrap(),
                "--templates",
                examples.to_str().unwrap(),
            ],
            &[
                ("SCAFFOLDER_TOKEN", TOKEN),
                ("BACKSTAGE_BASE_URL", &backstage.base),
                ("GIT_TOKEN", GIT_TOKEN),
                ("GIT_ORIGIN", &git.base),
                ("POSTGRES_ADMIN_URL", &admin_url),
                ("POSTGRES_ADDRESS", &address),
            ],
        );
        Self {
            backstage,
            git,
            server,
            data,
        }
    }

    /// Starts the golden path for `service` into the repository `team/<service>`.
    fn scaffold(&self, service: &str) -> String {
        let remote = self.git.create_repo(&format!("team/{service}"));
        let (status, body) = post_as(
            &self.server.base,
            "/v2/tasks",
            json!({
                "templateRef": "template:default/golden-path",
                "values": { "name": service, "owner": "group:default/team-a", "remoteUrl": remote }
            }),
            Some(TOKEN),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn events_until_completion(&self, task_id: &str) -> Vec<Json> {
        wait_for_event_as(&self.server.base, task_id, Some(TOKEN), |e| {
            e["type"] == "completion"
        })
    }

    /// The catalog's entity `component:default/<name>`, waiting for the catalog to
    /// process the registered location.
    fn catalog_component(&self, name: &str) -> Json {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, entity) = get_as(
                &self.backstage.base,
                &format!("/api/catalog/entities/by-name/component/default/{name}"),
                Some(TOKEN),
            );
            if status == 200 {
                return entity;
            }
            assert!(
                Instant::now() < deadline,
                "component {name} never appeared in the catalog ({status} {entity})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every text value of every row of the server's SQLite database.
    fn database_text(&self) -> String {
        let file = self.data.path().join("scaffolder/scaffolder.sqlite");
        assert!(
            file.exists(),
            "{} is where serve keeps its tasks",
            file.display()
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut db = SqliteConnection::connect(&format!("sqlite://{}?mode=ro", file.display()))
                .await
                .unwrap();
            let mut text = String::new();
            for table in ["tasks", "task_events"] {
                let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                    .fetch_all(&mut db)
                    .await
                    .unwrap();
                for row in rows {
                    for column in row.columns() {
                        if let Ok(Some(value)) = row.try_get::<Option<String>, _>(column.ordinal())
                        {
                            text.push_str(&value);
                            text.push('\n');
                        }
                    }
                }
            }
            text
        })
    }
}

async fn postgres_admin() -> PgConnection {
    PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap()
}

/// `(owner of the database, whether the role may log in)`, if the database exists.
fn database_owner(database: &str) -> Option<(String, bool)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut admin = postgres_admin().await;
        sqlx::query(
            "SELECT pg_get_userbyid(d.datdba), r.rolcanlogin FROM pg_database d \
             JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1",
        )
        .bind(database)
        .fetch_optional(&mut admin)
        .await
        .unwrap()
        .map(|row| (row.get(0), row.get(1)))
    })
}

fn drop_database(database: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut admin = postgres_admin().await;
        for statement in [
            format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
            format!("DROP ROLE IF EXISTS \"{database}\""),
        ] {
            sqlx::query(&statement).execute(&mut admin).await.unwrap();
        }
    });
}

/// The steps that finished, in order.
fn completed_steps(events: &[Json]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["body"]["status"] == "completed")
        .filter_map(|e| e["body"]["stepId"].as_str().map(str::to_owned))
        .collect()
}

fn clone(git: &GitServer, service: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git.clone_into(&format!("team/{service}"), None, &dir.path().join("repo"));
    dir
}

fn in_repo(dir: &tempfile::TempDir, args: &[&str]) -> String {
    git(&dir.path().join("repo"), args)
}

fn assert_no_secret(place: &str, text: &str) {
    for secret in [TOKEN, GIT_TOKEN, ADMIN_PASSWORD] {
        assert!(!text.contains(secret), "a secret appears in {place}");
    }
}

/// Whether the password PostgreSQL keeps for `role` appears in `text`. The plugin made
/// it and nobody may see it, so look for it: every token of 32 characters of its
/// alphabet (24 random bytes in URL-safe base64) is checked against the role's verifier.
fn contains_generated_password(role: &str, text: &str) -> bool {
    let verifier: String = tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(role)
            .fetch_one(&mut postgres_admin().await)
            .await
            .unwrap()
    });
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|token| token.len() == 32)
        .any(|token| scram::verifier_matches(&verifier, token))
}

impl World {
    /// No secret in the events, in what the server logged, or in its database's rows:
    /// neither the operator's and caller's, nor the password generated for `role`.
    fn assert_no_secret_anywhere(&self, events: &[Json], role: &str) {
        let places = [
            ("the events", serde_json::to_string(events).unwrap()),
            ("the server's log", self.server.output()),
            ("the task store", self.database_text()),
        ];
        for (place, text) in places {
            assert_no_secret(place, &text);
            assert!(
                !contains_generated_password(role, &text),
                "the database password appears in {place}"
            );
        }
    }
}

#[test]
fn the_golden_path_creates_a_repository_a_database_and_a_catalog_entry() {
    let world = World::start(5432);
    let service = unique_service();
    let database = service.replace('-', "_");
    let id = world.scaffold(&service);
    let events = world.events_until_completion(&id);
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: completed",
        "{events:#?}"
    );
    assert_eq!(
        completed_steps(&events),
        ["fetch", "publish", "database", "register"]
    );

    // The repository, as git sees it.
    let repo = clone(&world.git, &service);
    assert!(
        in_repo(&repo, &["show", "HEAD:catalog-info.yaml"]).contains(&format!("name: {service}"))
    );
    assert_eq!(
        in_repo(
            &repo,
            &[
                "ls-tree",
                "--format=%(objectmode)",
                "HEAD",
                "scripts/dev.sh"
            ]
        )
        .trim(),
        "100755"
    );
    assert_eq!(
        in_repo(&repo, &["log", "--format=%an <%ae>|%s"]).trim(),
        format!("Golden Path <golden-path@example.com>|Create {service} on the golden path")
    );
    assert_eq!(world.git.pushes(&format!("team/{service}")), 1);

    // The database, as PostgreSQL sees it.
    assert_eq!(database_owner(&database), Some((database.clone(), true)));

    // The catalog entry, as Backstage sees it.
    let entity = world.catalog_component(&service);
    assert_eq!(entity["spec"]["owner"], "group:default/team-a", "{entity}");
    let location = entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
        .as_str()
        .unwrap_or_default();
    assert!(
        location.contains(&format!(
            "/team/{service}/raw/branch/main/catalog-info.yaml"
        )),
        "{entity}"
    );

    let output = &completion["body"]["output"];
    assert_eq!(
        output["links"],
        json!([
            { "title": "Repository", "url": world.git.url(&format!("team/{service}")) },
            { "title": "Open in catalog", "icon": "catalog", "entityRef": format!("component:default/{service}") }
        ])
    );
    let text = output["text"][0]["content"].as_str().unwrap();
    assert!(
        text.contains(&format!("postgres://{database}@127.0.0.1:5432/{database}")),
        "{text}"
    );

    world.assert_no_secret_anywhere(&events, &database);
    drop_database(&database);
}

/// Forwards connections on `port` to PostgreSQL: the database server "coming back".
fn forward_to_postgres(port: u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = std::net::TcpStream::connect("127.0.0.1:5432").unwrap();
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut client_read, &mut server_write));
            std::thread::spawn(move || std::io::copy(&mut server_read, &mut client_write));
        }
    });
}

#[test]
fn a_failed_database_step_is_retried_without_pushing_the_repository_twice() {
    // The admin URL names a port where nothing listens yet: the database is down.
    let port = free_port();
    let world = World::start(port);
    let service = unique_service();
    let database = service.replace('-', "_");
    let id = world.scaffold(&service);
    let events = world.events_until_completion(&id);
    let completion = events.last().unwrap();
    assert_eq!(
        completion["body"]["message"], "Run completed with status: failed",
        "{events:#?}"
    );
    let error = completion["body"]["error"]["message"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "could not connect to PostgreSQL at 127.0.0.1:{port}"
        )) && error.contains("Check that the server is running"),
        "{error}"
    );
    assert_no_secret("the failure", error);
    assert_eq!(completed_steps(&events), ["fetch", "publish"]);
    assert_eq!(world.git.pushes(&format!("team/{service}")), 1);
    let (_, task) = get_as(&world.server.base, &format!("/v2/tasks/{id}"), Some(TOKEN));
    assert_eq!(task["status"], "failed");

    // The database comes back; the user retries.
    forward_to_postgres(port);
    let (status, body) = post_as(
        &world.server.base,
        &format!("/v2/tasks/{id}/retry"),
        json!({}),
        Some(TOKEN),
    );
    assert_eq!(status, 201, "{body}");
    let events = wait_for_event_as(&world.server.base, &id, Some(TOKEN), |e| {
        e["type"] == "completion" && e["body"]["message"] == "Run completed with status: completed"
    });
    let retried = &events[events
        .iter()
        .position(|e| e["type"] == "recovered")
        .unwrap()..];
    assert_eq!(
        completed_steps(retried),
        ["fetch", "publish", "database", "register"]
    );
    assert!(
        retried.iter().any(|e| e["body"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Skipping step publish because it was already completed"))),
        "{retried:#?}"
    );

    assert_eq!(
        world.git.pushes(&format!("team/{service}")),
        1,
        "the retry did not push again"
    );
    let repo = clone(&world.git, &service);
    assert_eq!(in_repo(&repo, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(database_owner(&database), Some((database.clone(), true)));
    world.catalog_component(&service);
    world.assert_no_secret_anywhere(&events, &database);
    drop_database(&database);
}

/// The value after `label` on the line of `text` that starts with it.
fn line_after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no line starting with {label:?} in:\n{text}"))
        .trim()
}

/// The README's one command, `examples/golden-path/run-local.sh`, run as a newcomer runs
/// it (with this build's binary and Backstage's packages already installed by the other
/// tests): it starts its own git server, Backstage backend and scaffolder, runs the
/// template on the local PostgreSQL, reports what it made, and stops what it started.
#[test]
fn the_one_command_local_run_creates_everything_and_stops_its_servers() {
    backstage::install_packages();
    let service = unique_service();
    let database = service.replace('-', "_");
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(repo().join("examples/golden-path/run-local.sh"))
        .env("SCAFFOLDER", env!("CARGO_BIN_EXE_scaffolder"))
        .env("SERVICE", &service)
        .env_remove("POSTGRES_ADMIN_URL")
        .env_remove("POSTGRES_ADDRESS")
        .env_remove("KEEP_RUNNING")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "run-local.sh failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    assert!(
        started.elapsed() < Duration::from_secs(180),
        "took {:?}",
        started.elapsed()
    );

    let task = line_after(&stdout, "golden path: task ");
    assert!(task.ends_with(" completed"), "{stdout}");
    let git_base = line_after(&stderr, "git server:")
        .split(' ')
        .next()
        .unwrap();
    let repository = line_after(&stdout, "repository");
    assert!(
        repository.starts_with(&format!("{git_base}/team/{service}.git (commit "))
            && repository.ends_with(&format!(" Create {service} on the golden path)")),
        "{stdout}"
    );
    assert_eq!(
        line_after(&stdout, "database"),
        format!("{database} on 127.0.0.1:5432, owned by the role {database}")
    );
    assert_eq!(
        line_after(&stdout, "catalog"),
        format!(
            "component:default/{service}, read from {git_base}/team/{service}/raw/branch/main/catalog-info.yaml"
        )
    );

    // The database outlives the run; PostgreSQL holds it, owned by its login role.
    assert_eq!(database_owner(&database), Some((database.clone(), true)));
    drop_database(&database);

    // Every server the script started is gone.
    let backstage_base = line_after(&stderr, "Backstage:");
    let scaffolder_base = line_after(&stderr, "scaffolder:");
    for base in [git_base, backstage_base, scaffolder_base] {
        let address = base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        assert!(
            std::net::TcpStream::connect(address).is_err(),
            "{base} still answers after run-local.sh exited"
        );
    }
}
