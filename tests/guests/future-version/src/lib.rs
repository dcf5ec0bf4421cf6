//! A component built against a scaffolder:action version this host does not implement.
//! `scaffolder plugin inspect` and the loader must refuse it, naming both versions.

#![allow(unsafe_code, reason = "wit-bindgen generates the unsafe ABI glue")]

wit_bindgen::generate!({
    inline: "
        package scaffolder:action@0.2.0;

        interface plugin {
            describe: func() -> string;
        }

        world action {
            export plugin;
        }
    ",
});

struct Future;

impl exports::scaffolder::action::plugin::Guest for Future {
    fn describe() -> String {
        String::new()
    }
}

export!(Future);
