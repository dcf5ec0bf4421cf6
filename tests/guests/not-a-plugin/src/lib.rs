//! A valid component that is not a plugin: it exports something else entirely.

#![allow(unsafe_code, reason = "wit-bindgen generates the unsafe ABI glue")]

wit_bindgen::generate!({
    inline: "
        package example:greeter@1.0.0;

        interface greet {
            hello: func() -> string;
        }

        world greeter {
            export greet;
        }
    ",
});

struct Greeter;

impl exports::example::greeter::greet::Guest for Greeter {
    fn hello() -> String {
        "hello".into()
    }
}

export!(Greeter);
