//! `postgres:database:create` through the engine and the sandbox against the real
//! PostgreSQL server on 127.0.0.1:5432; every effect is checked on the server itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use scaffolder_builtins_tests::{Harness, TaskRun};
use scaffolder_engine::Environment;
use scaffolder_runtime::Grants;
use scaffolder_test_artifacts::scram;
use serde_json::{Value as Json, json};
use sqlx::{Connection, PgConnection, Row};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database and role name no other test (or earlier run) uses.
fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

async fn harness_with_admin_url(admin_url: &str, tcp: &str) -> Harness {
    let environment = Environment {
        secrets: json!({ "POSTGRES_ADMIN_URL": admin_url })
            .as_object()
            .unwrap()
            .clone(),
        ..Environment::default()
    };
    let grants = Grants {
        tcp: vec![tcp.to_owned()],
        secrets: vec!["POSTGRES_ADMIN_URL".to_owned()],
        ..Grants::default()
    };
    Harness::configured(&grants, &BTreeMap::new(), environment).await
}

async fn harness() -> Harness {
    harness_with_admin_url(ADMIN_URL, "127.0.0.1:5432").await
}

async fn admin(database: &str) -> PgConnection {
    PgConnection::connect(&format!("postgres://postgres@127.0.0.1:5432/{database}"))
        .await
        .unwrap()
}

/// Drops what a test created.
async fn drop_database_and_role(name: &str) {
    let mut admin = admin("postgres").await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("DROP ROLE IF EXISTS \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// Creates the database, then writes the password secret into the workspace with
/// `fetch:template` (so the test can check it) and logs it (so the test can check it is
/// redacted).
fn steps(input: Json) -> Json {
    json!([
        { "id": "database", "name": "Create database", "action": "postgres:database:create", "input": input },
        {
            "id": "env", "name": "Write settings", "action": "fetch:template",
            "input": { "url": "./skeleton", "values": { "password": "${{ secrets.POSTGRES_PASSWORD }}" } }
        },
        { "id": "log", "name": "Log", "action": "debug:log", "input": { "message": "password: ${{ secrets.POSTGRES_PASSWORD }}" } }
    ])
}

async fn create(harness: &Harness, input: Json) -> TaskRun {
    harness
        .run(
            steps(input),
            json!({}),
            &[("skeleton/db.env", "PASSWORD=${{ values.password }}\n")],
        )
        .await
}

fn password_of(run: &TaskRun) -> String {
    run.read("db.env")
        .strip_prefix("PASSWORD=")
        .unwrap()
        .trim_end()
        .to_owned()
}

/// Whether the password PostgreSQL stores for `role` is `password`.
async fn password_matches(role: &str, password: &str) -> bool {
    let mut admin = admin("postgres").await;
    let stored: String = sqlx::query("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(role)
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    scram::verifier_matches(&stored, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_a_role_that_owns_a_new_database_and_nothing_else() {
    let name = unique_name("svc");
    let harness = harness().await;
    let run = create(
        &harness,
        json!({ "database": name, "schema": "app", "extensions": ["pgcrypto"] }),
    )
    .await;
    assert!(run.succeeded(), "{:#?}", run.events);

    let output = run.step_output("database");
    assert_eq!(
        output["connectionUrl"],
        json!(format!("postgres://{name}@127.0.0.1:5432/{name}"))
    );
    assert_eq!(output["role"], json!(name));
    assert_eq!(output["passwordSecret"], json!("POSTGRES_PASSWORD"));

    let password = password_of(&run);
    assert!(password.len() >= 32, "a long random password: {password}");
    assert!(password_matches(&name, &password).await);
    let stored = harness.stored_task_text(&run.task_id).await;
    assert!(
        !stored.contains(&password),
        "the password is in the task's row or events"
    );
    assert!(
        run.messages().iter().any(|m| m.ends_with(": ***")),
        "{:#?}",
        run.messages()
    );

    let mut admin_conn = admin("postgres").await;
    let role = sqlx::query(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, \
         (SELECT count(*) FROM pg_auth_members WHERE member = r.oid) AS memberships \
         FROM pg_roles r WHERE rolname = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin_conn)
    .await
    .unwrap();
    let flags: Vec<bool> = (0..6).map(|i| role.get(i)).collect();
    assert_eq!(flags, [false, false, false, false, false, true]);
    assert_eq!(role.get::<i64, _>("memberships"), 0);
    let database = sqlx::query(
        "SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin_conn)
    .await
    .unwrap();
    assert_eq!(database.get::<String, _>("owner"), name);
    let acl: String = database.get("acl");
    assert!(
        !acl.contains("{=") && !acl.contains(",="),
        "PUBLIC may not connect: {acl}"
    );
    let extensions: Vec<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension ORDER BY 1")
            .fetch_all(&mut admin(&name).await)
            .await
            .unwrap();
    assert!(
        extensions.contains(&"pgcrypto".to_owned()),
        "{extensions:?}"
    );

    // The role logs in to its database and creates tables there...
    let mut as_role = PgConnection::connect(&format!(
        "postgres://{name}:{password}@127.0.0.1:5432/{name}"
    ))
    .await
    .unwrap();
    sqlx::query("CREATE TABLE app.orders (id int primary key)")
        .execute(&mut as_role)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE public.items (id int)")
        .execute(&mut as_role)
        .await
        .unwrap();
    // ...but may create neither databases nor tables in another database.
    let denied = sqlx::query(&format!("CREATE DATABASE \"{name}_other\""))
        .execute(&mut as_role)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    as_role.close().await.unwrap();
    let mut elsewhere = PgConnection::connect(&format!(
        "postgres://{name}:{password}@127.0.0.1:5432/postgres"
    ))
    .await
    .unwrap();
    let denied = sqlx::query("CREATE TABLE public.intruder (id int)")
        .execute(&mut elsewhere)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    elsewhere.close().await.unwrap();

    drop_database_and_role(&name).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_again_in_the_same_task_changes_nothing_but_the_password() {
    let name = unique_name("again");
    let harness = harness().await;
    let input = json!({ "database": name, "schema": "app" });
    let run = harness
        .run(
            json!([
                { "id": "first", "name": "First", "action": "postgres:database:create", "input": input },
                { "id": "second", "name": "Second", "action": "postgres:database:create", "input": input },
                {
                    "id": "env", "name": "Write settings", "action": "fetch:template",
                    "input": { "url": "./skeleton", "values": { "password": "${{ secrets.POSTGRES_PASSWORD }}" } }
                }
            ]),
            json!({}),
            &[("skeleton/db.env", "PASSWORD=${{ values.password }}\n")],
        )
        .await;
    assert!(run.succeeded(), "{:#?}", run.events);
    let messages = run.messages().join("\n");
    assert!(
        messages.contains(&format!(
            "Database {name} already exists and is owned by {name}; leaving it as it is"
        )),
        "{messages}"
    );
    assert!(
        messages.contains(&format!(
            "Role {name} exists from an earlier run of this task"
        )),
        "{messages}"
    );
    assert_eq!(run.step_output("first"), run.step_output("second"));
    // The secret later steps see is the password the role has now.
    assert!(password_matches(&name, &password_of(&run)).await);
    drop_database_and_role(&name).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_roles_and_databases_it_did_not_create_for_this_task() {
    let name = unique_name("taken");
    let harness = harness().await;
    let first = create(&harness, json!({ "database": name })).await;
    assert!(first.succeeded(), "{:#?}", first.events);

    let second = create(&harness, json!({ "database": name })).await;
    let error = second.error().unwrap();
    assert!(
        error.contains(&format!("role {name} already exists"))
            && error.contains(&first.task_id)
            && error.contains("choose another"),
        "{error}"
    );

    let foreign = create(
        &harness,
        json!({ "database": "postgres", "role": "postgres" }),
    )
    .await;
    let error = foreign.error().unwrap();
    assert!(
        error.contains("role postgres already exists and the scaffolder did not create it"),
        "{error}"
    );
    drop_database_and_role(&name).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explains_an_unreachable_server_and_bad_input() {
    let port = scaffolder_test_artifacts::backstage::free_port();
    let harness = harness_with_admin_url(
        &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        "127.0.0.1:*",
    )
    .await;
    let run = create(&harness, json!({ "database": unique_name("down") })).await;
    let error = run.error().unwrap();
    assert!(
        error.contains(&format!(
            "could not connect to PostgreSQL at 127.0.0.1:{port}"
        )) && error.contains("Check that the server is running"),
        "{error}"
    );
    let run = create(&harness, json!({ "database": "Bad-Name" })).await;
    let error = run.error().unwrap();
    assert!(error.contains("database"), "{error}");
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_only_to_granted_addresses() {
    let harness = harness_with_admin_url(ADMIN_URL, "127.0.0.1:6543").await;
    let run = create(&harness, json!({ "database": unique_name("denied") })).await;
    let error = run.error().unwrap();
    assert!(
        error.contains("denied") || error.contains("not granted"),
        "{error}"
    );
    harness.finish().await;
}
