//! Embeds `examples/wasm-plugin/` and `examples/typescript-plugin/` (the templates
//! `scaffolder plugin new` runs) in the binary, so the command works wherever the binary
//! is; and on Linux with glibc, links the binary with packed relative relocations (see
//! `link_args`).

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut out = String::new();
    for (constant, example) in [
        ("RUST_PLUGIN_TEMPLATE", "wasm-plugin"),
        ("TYPESCRIPT_PLUGIN_TEMPLATE", "typescript-plugin"),
    ] {
        let template_dir = manifest_dir.join("../../examples").join(example);
        println!("cargo:rerun-if-changed={}", template_dir.display());
        let mut files = Vec::new();
        collect(&template_dir, &template_dir, &mut files);
        files.sort();
        out.push_str(&format!(
            "/// The files of `examples/{example}/`: relative path, contents.\npub const {constant}: &[(&str, &[u8])] = &[\n"
        ));
        for (relative, absolute) in files {
            out.push_str(&format!(
                "    ({relative:?}, include_bytes!({absolute:?})),\n"
            ));
        }
        out.push_str("];\n");
    }
    let out_file = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugin_template.rs");
    std::fs::write(out_file, out).unwrap();
    link_args(&manifest_dir);
}

/// The binary is position-independent, and its relocation table (one entry per pointer
/// in its constant data, 1.6 MiB) is read at every start and stays resident. Packed
/// relative relocations (`DT_RELR`: glibc 2.36, binutils 2.38) encode the same in a few
/// KiB, which is a tenth of the server's idle memory.
///
/// A release build on x86_64 Linux, linked by rust-lld (Rust's default there since 1.90),
/// also lays out first the functions a server runs, listed by `link/order-symbols` in
/// `link/symbol-order.txt`: the kernel maps code 64 KiB around each page a process
/// touches, so the code a server runs, spread over the whole binary, kept most of it
/// resident (README, "Performance, round 2"). Names missing from the list (code changed
/// since it was made) are laid out after it, as without it.
fn link_args(manifest_dir: &Path) {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if linux_gnu && var("CARGO_CFG_TARGET_ARCH") == "x86_64" && var("PROFILE") == "release" {
        let order = manifest_dir.join("link/symbol-order.txt");
        println!("cargo:rerun-if-changed={}", order.display());
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        // Directories are watched as a whole only one level deep; name each one.
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, out);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((relative, path.display().to_string()));
        }
    }
}
