//! A plugin that misbehaves on purpose, one action per attack. The sandbox suite in
//! `tests/sandbox` runs each action and checks that the host contains it.

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, http, plugin};
use serde_json::{Value, json};

/// Declares an action with free-form input that requests the given capabilities.
macro_rules! hostile {
    ($ty:ident, $id:literal, |$ctx:ident, $input:ident| $body:block $(, $cap:ident($arg:expr))*) => {
        pub struct $ty;
        impl Action for $ty {
            const ID: &'static str = $id;
            type Input = Value;
            type Output = Value;
            fn info() -> ActionInfo {
                ActionInfo::new(concat!("hostile test action ", $id)) $(.$cap($arg))*
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
);
