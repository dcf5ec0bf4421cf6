//! Paths of the WebAssembly components built by `build.rs`: one constant per crate under
//! `tests/guests/` and `plugins/`, named after the crate (`HOSTILE_GUEST`, ...); and the
//! real Backstage backend the catalog tests run against ([`backstage::Backstage`]).

pub mod backstage;
pub mod git_server;
pub mod github_fake;
mod http1;
pub use http1::{Request, response, serve, serve_bytes};
pub mod registry;
pub mod s3_server;
pub mod scram;

include!(concat!(env!("OUT_DIR"), "/components.rs"));
