//! A plugin that misbehaves on purpose, one action per attack. The sandbox suite in
//! `tests/sandbox` runs each action and checks that the host contains it.

use scaffolder_plugin_sdk::bindings::scaffolder::action::{host, types};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, http, plugin};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU8, Ordering};

/// Declares an action with free-form input that requests the given capabilities.
macro_rules! hostile {
    ($ty:ident, $id:literal, |$ctx:ident, $input:ident| $body:block $(, $cap:ident($($arg:expr)?))*) => {
        pub struct $ty;
        impl Action for $ty {
            const ID: &'static str = $id;
            type Input = Value;
            type Output = Value;
            fn info() -> ActionInfo {
                ActionInfo::new(concat!("hostile test action ", $id)) $(.$cap($($arg)?))*
            }
            #[allow(unused_variables)]
            fn run($ctx: &Context, $input: Value) -> Result<Value> $body
        }
    };
}

fn failed(what: &str, err: impl std::fmt::Display) -> ActionError {
    ActionError::failed(format!("{what}: {err}"))
}

fn str_input<'a>(input: &'a Value, key: &str) -> Result<&'a str> {
    input[key]
        .as_str()
        .ok_or_else(|| ActionError::invalid_input(format!("'{key}' is required")))
}

hostile!(ReadEtcPasswd, "hostile:read-etc-passwd", |ctx, input| {
    let text = std::fs::read_to_string("/etc/passwd").map_err(|e| failed("/etc/passwd", e))?;
    Ok(json!({ "stolen": text }))
});

hostile!(EscapeDotDot, "hostile:escape-dotdot", |ctx, input| {
    let path = "../../../../../../etc/passwd";
    let text = std::fs::read_to_string(path).map_err(|e| failed(path, e))?;
    Ok(json!({ "stolen": text }))
});

hostile!(AbsolutePath, "hostile:absolute-path", |ctx, input| {
    let path = str_input(&input, "path")?;
    std::fs::write(path, "planted by a plugin").map_err(|e| failed(path, e))?;
    Ok(json!({}))
});

hostile!(SymlinkEscape, "hostile:symlink-escape", |ctx, input| {
    let path = str_input(&input, "path")?;
    let text = std::fs::read_to_string(path).map_err(|e| failed(path, e))?;
    Ok(json!({ "stolen": text }))
});

hostile!(ReadHostEnv, "hostile:read-host-env", |ctx, input| {
    let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let args: Vec<String> = std::env::args().collect();
    let mut stdin = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin);
    if vars.is_empty() && args.is_empty() && stdin.is_empty() {
        return Err(ActionError::failed(
            "found no host environment: 0 variables, 0 arguments, empty stdin",
        ));
    }
    Ok(json!({ "vars": vars, "args": args, "stdin": stdin }))
});

hostile!(
    TcpUngranted,
    "hostile:tcp-ungranted",
    |ctx, input| {
        let addr = str_input(&input, "address")?;
        let stream = std::net::TcpStream::connect(addr).map_err(|e| failed(addr, e))?;
        Ok(json!({ "connected": stream.peer_addr().map(|a| a.to_string()).unwrap_or_default() }))
    },
    requests_tcp("*:*")
);

hostile!(
    HttpUngranted,
    "hostile:http-ungranted",
    |ctx, input| {
        let url = str_input(&input, "url")?;
        let response = http::get(url)?;
        Ok(json!({ "status": response.status }))
    },
    requests_http("http://*:*")
);

hostile!(
    HttpRebound,
    "hostile:http-rebound",
    |ctx, input| {
        let url = str_input(&input, "url")?;
        let response = http::get(url)?;
        Ok(json!({ "status": response.status }))
    },
    requests_http("http://*:*")
);

hostile!(InfiniteLoop, "hostile:infinite-loop", |ctx, input| {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
});

hostile!(MemoryBomb, "hostile:memory-bomb", |ctx, input| {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
});

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) + 1
}

hostile!(DeepRecursion, "hostile:deep-recursion", |ctx, input| {
    Ok(json!({ "depth": recurse(0) }))
});

hostile!(Unreachable, "hostile:unreachable", |ctx, input| {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!()
});

hostile!(LogFlood, "hostile:log-flood", |ctx, input| {
    let line = "x".repeat(1000);
    loop {
        ctx.info(&line);
    }
});

hostile!(OversizeOutput, "hostile:oversize-output", |ctx, input| {
    Ok(json!({ "blob": "y".repeat(8 << 20) }))
});

hostile!(SecretUngranted, "hostile:secret-ungranted", |ctx, input| {
    let value = ctx.required_secret("admin-password")?;
    Ok(json!({ "stolen": value }))
});

/// The workspace preopen, for `wasi:filesystem` calls std has no stable API for.
fn workspace_dir(ctx: &Context) -> Result<wasip2::filesystem::types::Descriptor> {
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .find(|(_, path)| path == ctx.workspace())
        .map(|(dir, _)| dir)
        .ok_or_else(|| ActionError::failed("no workspace preopen"))
}

// Plants the links of `links` (name to target), whose relative targets climb out of the
// workspace, for the host's own walk of the workspace (a dry run's `directoryContents`)
// to follow.
hostile!(
    DryRunSymlink,
    "hostile:dry-run-symlink",
    |ctx, input| {
        let dir = workspace_dir(ctx)?;
        let links = input["links"]
            .as_object()
            .ok_or_else(|| ActionError::invalid_input("'links' is required"))?;
        for (name, target) in links {
            let target = target.as_str().unwrap_or_default();
            dir.symlink_at(target, name)
                .map_err(|e| failed(&format!("symlink {name} -> {target}"), format!("{e:?}")))?;
        }
        Ok(json!({}))
    },
    supports_dry_run()
);

// Adds distinct task secrets until the host stops it (or the step's deadline).
hostile!(SecretLoop, "hostile:secret-loop", |ctx, input| {
    for i in 0u64.. {
        ctx.add_secret(&format!("hoard-{i}"), &format!("{i:0>100}"));
    }
    Ok(json!({}))
});

// Empty log lines, through `host.log` or (`stdout: true`) as newlines on stdout.
hostile!(EmptyLogFlood, "hostile:empty-log-flood", |ctx, input| {
    // Bounded, so a host without a line limit sees the step succeed instead of filling
    // the disk; the suite then fails on the outcome.
    const LINES: u32 = 200_000;
    if input["stdout"].as_bool().unwrap_or(false) {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        for _ in 0..LINES {
            stdout.write_all(b"\n").map_err(|e| failed("stdout", e))?;
            stdout.flush().map_err(|e| failed("stdout", e))?;
        }
    } else {
        for _ in 0..LINES {
            ctx.info("");
        }
    }
    Ok(json!({ "lines": LINES }))
});

// Opens the same file again and again, keeping every handle (each a host descriptor);
// once an open is refused, holds them for a second, so a host that let it hoard shows
// the harm to the suite watching it.
hostile!(DescriptorHoard, "hostile:descriptor-hoard", |ctx, input| {
    std::fs::write("hoard", "").map_err(|e| failed("hoard", e))?;
    let mut hoard = Vec::new();
    loop {
        match std::fs::File::open("hoard") {
            Ok(file) => hoard.push(file),
            Err(e) => {
                std::thread::sleep(std::time::Duration::from_secs(1));
                return Err(failed(&format!("open #{}", hoard.len() + 1), e));
            }
        }
    }
});

// Twenty 8 MiB checkpoint values.
hostile!(CheckpointBomb, "hostile:checkpoint-bomb", |ctx, input| {
    let value = format!("\"{}\"", "z".repeat(8 << 20));
    for i in 0..20 {
        host::checkpoint_set(
            &format!("bomb-{i}"),
            &types::Checkpoint::Success(value.clone()),
        );
    }
    Ok(json!({ "checkpoints": 20 }))
});

// Puts a granted secret in its output.
hostile!(
    OutputSecret,
    "hostile:output-secret",
    |ctx, input| {
        let value = ctx.required_secret("deploy-token")?;
        Ok(json!({ "leak": value }))
    },
    requests_secret("deploy-token")
);

// Resolves a name it was not granted (the TCP grant names an address): a DNS query is a
// message to whoever serves the name.
hostile!(
    DnsExfil,
    "hostile:dns-exfil",
    |ctx, input| {
        use wasip2::sockets::{instance_network, ip_name_lookup, network};
        let name = str_input(&input, "name")?;
        let net = instance_network::instance_network();
        let stream = ip_name_lookup::resolve_addresses(&net, name)
            .map_err(|e| failed(&format!("resolving {name}"), format!("{e:?}")))?;
        let mut resolved = Vec::new();
        loop {
            match stream.resolve_next_address() {
                Ok(Some(network::IpAddress::Ipv4((a, b, c, d)))) => {
                    resolved.push(format!("{a}.{b}.{c}.{d}"))
                }
                Ok(Some(network::IpAddress::Ipv6(v6))) => resolved.push(format!("{v6:?}")),
                Ok(None) => break,
                Err(network::ErrorCode::WouldBlock) => stream.subscribe().block(),
                Err(e) => return Err(failed(&format!("resolving {name}"), format!("{e:?}"))),
            }
        }
        Ok(json!({ "resolved": resolved }))
    },
    requests_tcp("127.0.0.1:9")
);

// Ends the process instead of returning (`code`, default 0).
hostile!(ExitZero, "hostile:exit-zero", |ctx, input| {
    let code = input["code"].as_i64().unwrap_or(0);
    std::process::exit(i32::try_from(code).unwrap_or(1))
});

// Fifty thousand distinct refused opens, each error ignored.
hostile!(DenialFlood, "hostile:denial-flood", |ctx, input| {
    let mut refused = 0u32;
    for i in 0..50_000 {
        if std::fs::File::open(format!("/etc/x{i}")).is_err() {
            refused += 1;
        }
    }
    Ok(json!({ "refused": refused }))
});

// A log line carrying terminal escapes and a forged second line.
hostile!(AnsiLog, "hostile:ansi-log", |ctx, input| {
    ctx.info("a\u{1b}[31mred\u{1b}[0m\nforged: line\r");
    println!("b\u{1b}[2Jcleared\rforged: stdout");
    Ok(json!({}))
});

// Fills the workspace: `mode` is `chunks` (1 MiB writes until an error), `sparse` (a
// 2 GiB file of no blocks) or `files` (empty files until an error).
hostile!(DiskFill, "hostile:disk-fill", |ctx, input| {
    use std::io::Write;
    // Bounded, so a host without a quota sees the step succeed instead of filling the
    // disk; the suite then fails on the outcome.
    const MAX_MIB: u64 = 512;
    const MAX_FILES: u64 = 20_000;
    match input["mode"].as_str().unwrap_or("chunks") {
        "chunks" => {
            let mut file = std::fs::File::create("fill.bin").map_err(|e| failed("fill.bin", e))?;
            let chunk = vec![7u8; 1 << 20];
            for mib in 0..MAX_MIB {
                file.write_all(&chunk)
                    .map_err(|e| failed(&format!("fill.bin after {mib} MiB"), e))?;
            }
            Ok(json!({ "written_mib": MAX_MIB }))
        }
        "sparse" => {
            let file = std::fs::File::create("sparse.bin").map_err(|e| failed("sparse.bin", e))?;
            file.set_len(2 << 30).map_err(|e| failed("sparse.bin", e))?;
            Ok(json!({ "length": 2u64 << 30 }))
        }
        "files" => {
            for i in 0..MAX_FILES {
                std::fs::File::create(format!("f{i}"))
                    .map_err(|e| failed(&format!("file #{}", i + 1), e))?;
            }
            Ok(json!({ "files": MAX_FILES }))
        }
        other => Err(ActionError::invalid_input(format!(
            "unknown mode {other:?}"
        ))),
    }
});

// Probes a path outside the workspace (refused), then ends as `then` says: `fail` with
// a reason of its own, `pass-on` with the refusal it got, `explain` with its own words
// for that refusal (`denied`), `crash` without a word. Which one the step's failure
// names is the host's precedence rule (a denial the plugin shrugged off is not its
// failure).
hostile!(
    DeniedThenFailed,
    "hostile:denied-then-failed",
    |ctx, input| {
        let probe = std::fs::metadata("/.gitignore").map(|_| ());
        match str_input(&input, "then")? {
            "fail" => Err(ActionError::failed(
                "the git server answered HTTP 404: there is no repository at this URL",
            )),
            "pass-on" => Err(failed(
                "/.gitignore",
                probe.err().map(|e| e.to_string()).unwrap_or_default(),
            )),
            "explain" => Err(ActionError::Denied(
                "this plugin may not read the host's /.gitignore".to_owned(),
            )),
            "crash" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!()
            }
            other => Err(ActionError::invalid_input(format!(
                "unknown then {other:?}"
            ))),
        }
    }
);

/// Bytes of [`REMEMBERED`]: more than the host resets in place (the first MiB of a
/// memory), so both ways of resetting a pooled memory are seen.
const REMEMBERED_BYTES: usize = 2 << 20;
static REMEMBERED: [AtomicU8; REMEMBERED_BYTES] = [const { AtomicU8::new(0) }; REMEMBERED_BYTES];

// Leaves marks in its memory for the next step to find (in a static at the start of the
// memory and 1.5 MiB in), and says which marks it found from an earlier step.
hostile!(Remember, "hostile:remember", |ctx, input| {
    let found: Vec<u8> = [0, REMEMBERED_BYTES - (512 << 10)]
        .iter()
        .map(|&at| REMEMBERED[at].fetch_add(1, Ordering::Relaxed))
        .collect();
    Ok(json!({ "found": found }))
});

plugin!(
    ReadEtcPasswd,
    EscapeDotDot,
    AbsolutePath,
    SymlinkEscape,
    ReadHostEnv,
    TcpUngranted,
    HttpUngranted,
    HttpRebound,
    InfiniteLoop,
    MemoryBomb,
    DeepRecursion,
    Unreachable,
    LogFlood,
    OversizeOutput,
    SecretUngranted,
    DryRunSymlink,
    SecretLoop,
    EmptyLogFlood,
    DescriptorHoard,
    CheckpointBomb,
    OutputSecret,
    DnsExfil,
    ExitZero,
    DenialFlood,
    AnsiLog,
    DiskFill,
    DeniedThenFailed,
    Remember,
);
