//! `postgres:database:create`: a login role and a database it owns, on the PostgreSQL
//! server named by the operator's `POSTGRES_ADMIN_URL` secret.
//!
//! The plugin speaks PostgreSQL's wire protocol (`protocol.rs`, on the `postgres-protocol`
//! crate's messages and SCRAM) over a `wasi:sockets` TCP connection, so it reaches only
//! the addresses the operator granted.
//! The role's password is generated here from `wasi:random`, sent to the server only as a
//! SCRAM verifier, and handed to later steps only as a task secret.

mod admin_url;
mod protocol;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postgres_protocol::escape::{escape_identifier, escape_literal};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, json, plugin};
use serde::{Deserialize, Serialize};

use admin_url::AdminUrl;
use protocol::Connection;

/// The operator's secret with the admin connection URL.
const ADMIN_SECRET: &str = "POSTGRES_ADMIN_URL";
/// The task secret the new role's password goes to unless `passwordSecret` says otherwise.
const DEFAULT_PASSWORD_SECRET: &str = "POSTGRES_PASSWORD";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    database: String,
    role: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    extensions: Vec<String>,
    password_secret: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    database: String,
    role: String,
    host: String,
    port: u16,
    /// `postgres://role@host:port/database`, without the password.
    connection_url: String,
    /// The task secret holding the role's password.
    password_secret: String,
}

/// Creates a PostgreSQL role and a database owned by it.
pub struct CreateDatabase;

impl Action for CreateDatabase {
    const ID: &'static str = "postgres:database:create";
    type Input = Input;
    type Output = Output;

    fn info() -> ActionInfo {
        let identifier = |description: &str| {
            json!({
                "type": "string",
                "pattern": "^[a-z_][a-z0-9_]{0,62}$",
                "description": description
            })
        };
        ActionInfo::new(
            "Creates a login role and a database owned by it on the PostgreSQL server of the operator's POSTGRES_ADMIN_URL secret. The role's generated password is handed to later steps as a task secret; outputs carry no password. Running it again for the same task changes nothing but the role's password.",
        )
        .input_schema(json!({
            "type": "object",
            "required": ["database"],
            "properties": {
                "database": identifier("Name of the database to create (lower-case letters, digits, underscores)."),
                "role": identifier("Name of the login role that owns it. Defaults to the database name."),
                "schema": identifier("A schema to create in the database, owned by the role."),
                "extensions": {
                    "type": "array",
                    "items": { "type": "string", "pattern": "^[a-z_][a-z0-9_-]{0,62}$" },
                    "description": "Extensions to create in the database (as the admin user), e.g. pgcrypto."
                },
                "passwordSecret": {
                    "type": "string",
                    "description": "The task secret that receives the role's password, for later steps as ${{ secrets.<name> }}. Default POSTGRES_PASSWORD."
                }
            },
            "additionalProperties": false
        }))
        .output_schema(json!({
            "type": "object",
            "properties": {
                "database": { "type": "string" },
                "role": { "type": "string" },
                "host": { "type": "string" },
                "port": { "type": "number" },
                "connectionUrl": { "type": "string", "description": "postgres://role@host:port/database, without the password" },
                "passwordSecret": { "type": "string", "description": "The task secret holding the password" }
            }
        }))
        .requests_tcp("*:*")
        .requests_secret(ADMIN_SECRET)
        .idempotent(true)
        .destructive(false)
        .example(
            "Create a database for a new service",
            "steps:\n  - id: database\n    action: postgres:database:create\n    name: Create database\n    input:\n      database: ${{ parameters.name | replace('-', '_') }}\n      extensions: [pgcrypto]\n",
        )
    }

    fn run(ctx: &Context, input: Input) -> Result<Output> {
        let role = input.role.clone().unwrap_or_else(|| input.database.clone());
        check_identifier("database", &input.database)?;
        check_identifier("role", &role)?;
        if role.starts_with("pg_") {
            return Err(ActionError::invalid_input(format!(
                "role '{role}': names starting with pg_ are reserved by PostgreSQL"
            )));
        }
        if let Some(schema) = &input.schema {
            check_identifier("schema", schema)?;
        }
        for extension in &input.extensions {
            if extension.is_empty() || extension.contains(['"', '\0']) {
                return Err(ActionError::invalid_input(format!(
                    "'{extension}' is not an extension name"
                )));
            }
        }
        let password_secret = input
            .password_secret
            .clone()
            .unwrap_or_else(|| DEFAULT_PASSWORD_SECRET.to_owned());

        let admin = AdminUrl::parse(&ctx.required_secret(ADMIN_SECRET)?).map_err(|reason| {
            ActionError::failed(format!(
                "the secret {ADMIN_SECRET} is not a usable PostgreSQL URL: {reason}"
            ))
        })?;
        let password = URL_SAFE_NO_PAD.encode(random_bytes(24));
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        let marker = format!("created by the scaffolder for task {}", ctx.task_id());

        let mut server = connect(&admin, &admin.database)?;
        ensure_role(ctx, &mut server, &role, &verifier, &marker)?;
        ensure_database(ctx, &mut server, &input.database, &role)?;
        server.close();

        if input.schema.is_some() || !input.extensions.is_empty() {
            let mut database = connect(&admin, &input.database)?;
            for extension in &input.extensions {
                run(
                    &mut database,
                    &format!(
                        "CREATE EXTENSION IF NOT EXISTS {}",
                        escape_identifier(extension)
                    ),
                )?;
                ctx.info(format!(
                    "Extension {extension} is installed in {}",
                    input.database
                ));
            }
            if let Some(schema) = &input.schema {
                run(
                    &mut database,
                    &format!(
                        "CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}",
                        escape_identifier(schema),
                        escape_identifier(&role)
                    ),
                )?;
                ctx.info(format!("Schema {schema} exists, owned by {role}"));
            }
            database.close();
        }

        ctx.add_secret(&password_secret, &password);
        Ok(Output {
            connection_url: format!(
                "postgres://{role}@{}:{}/{}",
                host_for_url(&admin.host),
                admin.port,
                input.database
            ),
            database: input.database,
            role,
            host: admin.host,
            port: admin.port,
            password_secret,
        })
    }
}

/// Creates the role, or, when this task created it in an earlier run, gives it the new
/// password. A role anybody else made is never touched.
fn ensure_role(
    ctx: &Context,
    server: &mut Connection,
    role: &str,
    verifier: &str,
    marker: &str,
) -> Result<()> {
    let existing = run(
        server,
        &format!(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = {}",
            escape_literal(role)
        ),
    )?;
    let Some(row) = existing.first() else {
        run(
            server,
            &format!(
                "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}",
                escape_identifier(role),
                escape_literal(verifier)
            ),
        )?;
        run(
            server,
            &format!(
                "COMMENT ON ROLE {} IS {}",
                escape_identifier(role),
                escape_literal(marker)
            ),
        )?;
        ctx.info(format!("Created role {role}"));
        return Ok(());
    };
    match row.first().cloned().flatten() {
        Some(comment) if comment == marker => {
            run(
                server,
                &format!(
                    "ALTER ROLE {} WITH PASSWORD {}",
                    escape_identifier(role),
                    escape_literal(verifier)
                ),
            )?;
            ctx.info(format!(
                "Role {role} exists from an earlier run of this task; it gets a new password, since the old one was never stored"
            ));
            Ok(())
        }
        Some(comment) if comment.starts_with("created by the scaffolder for task ") => {
            Err(ActionError::failed(format!(
                "role {role} already exists ({comment}): choose another role or database name"
            )))
        }
        _ => Err(ActionError::failed(format!(
            "role {role} already exists and the scaffolder did not create it: choose another role or database name"
        ))),
    }
}

/// Creates the database owned by `role`, closed to everybody else; one that exists
/// already must be owned by `role`.
fn ensure_database(
    ctx: &Context,
    server: &mut Connection,
    database: &str,
    role: &str,
) -> Result<()> {
    let existing = run(
        server,
        &format!(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {}",
            escape_literal(database)
        ),
    )?;
    match existing
        .first()
        .and_then(|row| row.first().cloned().flatten())
    {
        None => {
            run(
                server,
                &format!(
                    "CREATE DATABASE {} OWNER {}",
                    escape_identifier(database),
                    escape_identifier(role)
                ),
            )?;
            run(
                server,
                &format!(
                    "REVOKE ALL ON DATABASE {} FROM PUBLIC",
                    escape_identifier(database)
                ),
            )?;
            ctx.info(format!("Created database {database} owned by {role}"));
            Ok(())
        }
        Some(owner) if owner == role => {
            ctx.info(format!(
                "Database {database} already exists and is owned by {role}; leaving it as it is"
            ));
            Ok(())
        }
        Some(owner) => Err(ActionError::failed(format!(
            "database {database} already exists and is owned by {owner}, not {role}: choose another database name"
        ))),
    }
}

fn connect(admin: &AdminUrl, database: &str) -> Result<Connection> {
    Connection::connect(admin, database).map_err(|err| {
        ActionError::failed(format!(
            "could not log in to PostgreSQL at {}:{} as {} (database {database}): {err}. Check that the server is running and that the {ADMIN_SECRET} secret is right",
            admin.host, admin.port, admin.user
        ))
    })
}

fn run(connection: &mut Connection, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    connection.query(sql).map_err(|err| {
        ActionError::failed(format!("PostgreSQL refused `{}`: {err}", first_words(sql)))
    })
}

/// The statement's first three words, for error messages (never a password literal).
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn check_identifier(what: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(ActionError::invalid_input(format!(
            "{what} '{name}' is not a plain PostgreSQL name: use up to 63 lower-case letters, digits and underscores, starting with a letter or underscore"
        )));
    }
    if matches!(
        name,
        "public" | "none" | "current_user" | "session_user" | "current_role"
    ) {
        return Err(ActionError::invalid_input(format!(
            "{what} '{name}' is a reserved name"
        )));
    }
    Ok(())
}

/// An IPv6 address in a URL needs brackets.
fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn random_bytes(n: u64) -> Vec<u8> {
    wasip2::random::random::get_random_bytes(n)
}

plugin!(CreateDatabase);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names() {
        assert!(check_identifier("database", "orders_db").is_ok());
        for bad in [
            "Orders",
            "1db",
            "a-b",
            "a\"b",
            "",
            "public",
            &"x".repeat(64),
        ] {
            assert!(check_identifier("database", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(escape_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(escape_literal("it's"), "'it''s'");
        // A backslash makes an E'' literal, right whatever standard_conforming_strings is.
        assert_eq!(escape_literal("a\\b"), " E'a\\\\b'");
        assert_eq!(
            first_words("ALTER ROLE \"x\" WITH PASSWORD 'SCRAM'"),
            "ALTER ROLE \"x\""
        );
    }
}
