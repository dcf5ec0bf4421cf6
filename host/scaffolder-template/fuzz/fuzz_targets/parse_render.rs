//! Parses arbitrary bytes as a template and renders everything in it: step inputs, `if`
//! and `each`, the output, and the source itself as a text template and a skeleton path.
//! Nothing may panic or hang. Run: `cargo +nightly fuzz run parse_render` in this folder's
//! parent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scaffolder_template::{
    EntryKind, Renderer, RendererOptions, SkeletonEntry, SkeletonOptions, Template, render_skeleton,
};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let renderer = Renderer::new(RendererOptions::default());
    let context = json!({
        "parameters": { "name": "x", "list": [1, 2, { "a": "b" }], "n": 3 },
        "steps": { "s": { "output": { "o": "v" } } },
        "user": { "ref": "user:default/u" },
    });
    let mut warnings = Vec::new();

    if let Ok(templates) = Template::all_from_yaml(source, Some("fuzz.yaml")) {
        for template in templates.into_iter().flatten() {
            for step in &template.spec.steps {
                let input = serde_json::Value::Object(step.input.clone());
                let _ = renderer.render_value(&input, &context, &mut warnings);
                if let Some(condition) = &step.condition {
                    let _ = renderer.render_condition(condition, &context, true, &mut warnings);
                }
                if let Some(each) = &step.each {
                    let _ = renderer.render_value(each, &context, &mut warnings);
                }
            }
            let output = serde_json::Value::Object(template.spec.output.clone());
            let _ = renderer.render_value(&output, &context, &mut warnings);
            let _ = scaffolder_template::validate_values(&template.spec.parameters, &context["parameters"]);
        }
    }

    let _ = renderer.render_value(&json!(source), &context, &mut warnings);
    let entries = [SkeletonEntry {
        path: source.chars().take(200).collect(),
        kind: EntryKind::File { contents: data.to_vec(), mode: 0o644 },
    }];
    let _ = render_skeleton(&entries, &SkeletonOptions::default());
});
