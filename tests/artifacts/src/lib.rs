//! Paths of the WebAssembly components built by `build.rs`: one constant per crate under
//! `tests/guests/` and `plugins/`, named after the crate (`HOSTILE_GUEST`, ...).

include!(concat!(env!("OUT_DIR"), "/components.rs"));
