//! Paths of the WebAssembly components built by `build.rs`: one constant per crate under
//! `tests/guests/` and `plugins/`, named after the crate (`HOSTILE_GUEST`, ...); and the
//! real Backstage backend the catalog tests run against ([`backstage::Backstage`]).

pub mod backstage;

include!(concat!(env!("OUT_DIR"), "/components.rs"));
