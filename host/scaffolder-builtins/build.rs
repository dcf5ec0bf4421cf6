//! Compiles every plugin crate under `plugins/` (except the SDK) to a WebAssembly
//! component and embeds each in this crate, so the `scaffolder` binary carries its
//! built-in actions.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("wasm_build.rs");

fn main() {
    let mut out =
        String::from("/// Every built-in plugin.\npub const PLUGINS: &[EmbeddedPlugin] = &[\n");
    for (name, file) in build_components(&["plugins"]) {
        let digest = sha256_hex(&std::fs::read(&file).unwrap());
        out.push_str(&format!(
            "    EmbeddedPlugin {{ name: {name:?}, path: {path:?}, sha256: {digest:?}, bytes: include_bytes!({path:?}) }},\n",
            path = file.display().to_string()
        ));
    }
    out.push_str("];\n");
    let out_file = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugins.rs");
    std::fs::write(out_file, out).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
