// Shared by the build scripts that compile WebAssembly components
// (`host/scaffolder-builtins/build.rs`, `tests/artifacts/build.rs`); included with
// `include!`, so it is plain items without a module.

/// Compiles the crates in `dirs` (relative to the repository root) for `wasm32-wasip2`
/// in release mode, in one cargo run, into `<root>/target/wasm/`, and returns
/// `(package name, component path)` of each.
fn build_components(dirs: &[&str]) -> Vec<(String, PathBuf)> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let crates: Vec<(String, PathBuf)> = dirs
        .iter()
        .flat_map(|dir| crate_dirs(&root.join(dir)))
        .filter(|(name, _)| name != "scaffolder-plugin-sdk")
        .collect();
    // Each crate's directory, not `dirs` as a whole: cargo scans a watched directory
    // recursively, and `plugins/` also holds the TypeScript SDK, whose `node_modules` is
    // large and none of this build's business. A crate added to `dirs` joins the workspace
    // and so changes Cargo.lock.
    let watched = crates.iter().map(|(_, path)| path.clone()).chain(
        ["plugins/sdk", "wit", "host/scaffolder-template", "Cargo.lock"]
            .iter()
            .map(|path| root.join(path)),
    );
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    if crates.is_empty() {
        return Vec::new();
    }
    ensure_target_installed();
    let target_dir = root.join("target/wasm");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    for (name, _) in &crates {
        cmd.args(["-p", name]);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the wasm components");
    assert!(status.success(), "building the wasm components failed (see above)");

    crates
        .into_iter()
        .map(|(name, _)| {
            let file = target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", name.replace('-', "_")));
            assert!(file.exists(), "{} was not produced", file.display());
            (name, file)
        })
        .collect()
}

const TARGET: &str = "wasm32-wasip2";

/// `(package name, directory)` of each crate directly under `dir`.
fn crate_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut crates: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter_map(|path| {
            let manifest = std::fs::read_to_string(path.join("Cargo.toml")).ok()?;
            let name = manifest
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))?
                .trim_matches('"')
                .to_owned();
            Some((name, path))
        })
        .collect();
    crates.sort();
    crates
}

/// Installs the wasm target with rustup when the active toolchain lacks it. Two build
/// scripts (built-ins and test guests) may do this at the same moment on a fresh machine,
/// and concurrent rustup downloads of one component collide; so a failed install is
/// retried after looking whether the other one finished it.
fn ensure_target_installed() {
    for attempt in 1..=3 {
        if target_installed() {
            return;
        }
        println!("cargo:warning=installing the {TARGET} target with rustup (attempt {attempt})");
        let status = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status();
        if matches!(status, Ok(s) if s.success()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(10 * attempt));
    }
    if !target_installed() {
        panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed: install it and build again"
        );
    }
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    sysroot.is_some_and(|sysroot| {
        Path::new(&sysroot)
            .join("lib/rustlib")
            .join(TARGET)
            .exists()
    })
}
