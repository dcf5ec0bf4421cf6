//! The local PostgreSQL (127.0.0.1:5432, trust) as the tests that create databases
//! through `postgres:database:create` check and clean it.

use sqlx::{Connection, PgConnection};

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Runs `work` on an admin connection.
pub fn postgres<T>(work: impl AsyncFnOnce(&mut PgConnection) -> T) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut admin = PgConnection::connect(ADMIN_URL).await.unwrap();
        work(&mut admin).await
    })
}

pub fn database_exists(name: &str) -> bool {
    postgres(async |admin| {
        sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(admin)
            .await
            .unwrap()
            .is_some()
    })
}

/// Drops the database and the role of that name, if they exist.
pub fn drop_database(name: &str) {
    postgres(async |admin| {
        for statement in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("DROP ROLE IF EXISTS \"{name}\""),
        ] {
            sqlx::query(&statement).execute(&mut *admin).await.unwrap();
        }
    });
}
