//! Compiles every crate under `tests/guests/` for `wasm32-wasip2` in one cargo invocation
//! and emits a path constant per component. (The built-in plugins under `plugins/` are
//! built by `host/scaffolder-builtins`.)
//!
//! The guests land in `target/wasm/`, shared by all test binaries and rebuilt only when a
//! guest, the SDK or the WIT package changes. The target is installed with rustup when
//! missing, so a fresh clone needs nothing but `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("../../host/scaffolder-builtins/wasm_build.rs");

fn main() {
    let mut out = String::new();
    for (name, file) in build_components(&["tests/guests"]) {
        let constant = name.replace('-', "_").to_uppercase();
        out.push_str(&format!(
            "/// The `{name}` component.\npub const {constant}: &str = {:?};\n",
            file.display().to_string()
        ));
    }
    let out_file = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("components.rs");
    std::fs::write(out_file, out).unwrap();
}
