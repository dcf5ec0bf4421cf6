//! Host bindings of `scaffolder:action@0.1.1`, generated once. Every import is async (it
//! may wait on the task store) and trappable (a guest that floods the log is stopped).

wasmtime::component::bindgen!({
    path: "../../wit/action@0.1.1",
    world: "action",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub(crate) use scaffolder::action::types as wit;
