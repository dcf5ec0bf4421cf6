use super::sort::js_sort;
use super::*;

fn env() -> Environment<'static> {
    let mut env = Environment::empty();
    register(&mut env, Syntax::Backstage);
    env
}

/// Evaluates an expression with `x` bound to `input`, as JSON.
fn eval(expr: &str) -> serde_json::Value {
    let env = env();
    let value = env
        .compile_expression(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .eval(minijinja::context! {})
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    serde_json::to_value(&value).unwrap()
}

fn eval_err(expr: &str) -> String {
    let env = env();
    env.compile_expression(expr)
        .unwrap()
        .eval(minijinja::context! {})
        .expect_err(expr)
        .to_string()
}

#[test]
fn numbers_print_as_javascript_prints_them() {
    for (n, text) in [
        (1.0, "1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (123456789012345680000.0, "123456789012345680000"),
        (-0.000001, "-0.000001"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(js_number_to_string(n), text);
    }
}

#[test]
fn strings_become_numbers_as_in_javascript() {
    assert_eq!(string_to_number("  12 "), 12.0);
    assert_eq!(string_to_number(""), 0.0);
    assert_eq!(string_to_number("0x1A"), 26.0);
    assert!(string_to_number("12px").is_nan());
    assert!(string_to_number("inf").is_nan());
    assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
    assert_eq!(parse_float("3.5x"), 3.5);
    assert_eq!(parse_float(".5e1z"), 5.0);
    assert!(parse_float("x").is_nan());
    assert_eq!(parse_int("0x1A", 16.0), 26.0);
    assert_eq!(parse_int("-3.9", 10.0), -3.0);
    assert!(parse_int("true", 10.0).is_nan());
}

#[test]
fn default_replaces_only_undefined_unless_asked_and_keywords_count_as_true() {
    assert_eq!(eval("none | default('d')"), serde_json::Value::Null);
    assert_eq!(eval("'' | default('d', true)"), "d");
    assert_eq!(eval("x | default('d')"), "d");
    // Keyword arguments arrive as a trailing record, which is truthy.
    assert_eq!(eval("'' | default('d', boolean=false)"), "d");
}

#[test]
fn round_rounds_halves_up_with_precision_and_methods() {
    assert_eq!(eval("2.5 | round"), 3);
    assert_eq!(eval("-2.5 | round"), -2);
    assert_eq!(eval("1.25 | round(1)"), 1.3);
    assert_eq!(eval("2.567 | round(1, 'floor')"), 2.5);
    assert_eq!(eval("1234 | round(-2)"), 1200);
}

#[test]
fn int_and_float_parse_prefixes_and_fall_back_to_the_default() {
    assert_eq!(eval("'42abc' | int"), 42);
    assert_eq!(eval("'x' | int(7)"), 7);
    assert_eq!(eval("'ff' | int(0, 16)"), 255);
    assert_eq!(eval("'x' | int(default=5)"), 5);
    assert_eq!(eval("'3.5x' | float"), 3.5);
    assert_eq!(eval("('x' | float) is undefined"), true);
}

#[test]
fn sort_is_case_insensitive_with_reverse_and_attributes() {
    assert_eq!(
        eval("['b', 'C', 'a', 'B'] | sort"),
        serde_json::json!(["a", "b", "B", "C"])
    );
    assert_eq!(
        eval("['b', 'C', 'a'] | sort(true)"),
        serde_json::json!(["C", "b", "a"])
    );
    assert_eq!(
        eval("[10, '9', 100, '1'] | sort"),
        serde_json::json!(["1", "9", 10, 100])
    );
    assert_eq!(
        eval("[{'n': 2}, {'x': 1}, {'n': 1}] | sort(attribute='n')"),
        serde_json::json!([{"n": 2}, {"x": 1}, {"n": 1}])
    );
}

#[test]
fn dictsort_sorts_pairs_by_key_or_value() {
    assert_eq!(
        eval("{'b': 1, 'a': 2, 'C': 0} | dictsort"),
        serde_json::json!([["a", 2], ["b", 1], ["C", 0]])
    );
    assert_eq!(
        eval("{'b': 1, 'a': 2, 'c': 0} | dictsort(false, 'value')"),
        serde_json::json!([["c", 0], ["b", 1], ["a", 2]])
    );
    assert!(eval_err("[1] | dictsort").contains("dictsort requires a record"));
}

#[test]
fn join_and_sum_follow_javascript_addition_and_attributes() {
    assert_eq!(eval("[1, 2] | join(0)"), "12");
    assert_eq!(eval("['a', none, x, 'b'] | join('|')"), "a|||b");
    assert_eq!(eval("['1', 2, 3] | sum"), "00123");
    assert_eq!(eval("[{'v': 1}, {'v': 2}] | sum('v', 5)"), 8);
    assert!(eval_err("'abc' | join").contains("join requires an array"));
}

#[test]
fn batch_slice_and_groupby_shape_lists() {
    assert_eq!(
        eval("[1, 2, 3] | batch(2, 0)"),
        serde_json::json!([[1, 2], [3]])
    );
    assert_eq!(
        eval("[1, 2, 3, 4, 5] | slice(3, 'x')"),
        serde_json::json!([[1, 2], [3, 4], [5, "x"]])
    );
    assert_eq!(eval("'abcde' | slice(2)"), serde_json::json!(["abc", "de"]));
    assert_eq!(
        eval("[{'v': 1}, {'w': 2}] | groupby('v')"),
        serde_json::json!({"1": [{"v": 1}], "undefined": [{"w": 2}]})
    );
    assert!(eval_err("[1] | batch(0)").contains("Batch size must be a positive integer"));
}

#[test]
fn select_takes_tests_with_arguments_and_selectattr_ignores_them() {
    assert_eq!(
        eval("[3, 4, 6, 9] | select('divisibleby', 3)"),
        serde_json::json!([3, 6, 9])
    );
    assert_eq!(
        eval("[0, 1, '', 'a', none, false, []] | select"),
        serde_json::json!([1, "a", []])
    );
    assert_eq!(
        eval("[{'n': 1}, {'n': 2}, {'n': 0}] | selectattr('n', 'equalto', 2)"),
        serde_json::json!([{"n": 1}, {"n": 2}])
    );
    assert!(eval_err("[1] | select('nope')").contains("Unknown template test nope"));
}

#[test]
fn replace_counts_and_empty_search_strings() {
    assert_eq!(eval("'aaa' | replace('a', 'b', 2)"), "bba");
    assert_eq!(eval("'abc' | replace('', '-')"), "-a-b-c-");
    assert_eq!(eval("'abc' | replace('')"), "undefineda,b,cundefined");
    assert_eq!(eval("1231 | replace(1, 'one')"), "one23one");
    assert_eq!(
        eval("[1, 2] | replace('1', 'x')"),
        serde_json::json!([1, 2])
    );
}

#[test]
fn indent_truncate_and_center_pad_as_nunjucks() {
    assert_eq!(eval("'a\nb' | indent(0)"), "a\n    b");
    assert_eq!(eval("'a\n' | indent(2, true)"), "  a\n  ");
    assert_eq!(eval("'hello world foo' | truncate(8)"), "hello...");
    assert_eq!(
        eval("'hello world foo' | truncate(8, true, '')"),
        "hello wo"
    );
    assert_eq!(eval("'abcd efgh' | truncate(4)"), "abcd...");
    assert_eq!(eval("'abc' | center(6)"), " abc  ");
}

#[test]
fn dump_writes_json_stringify_output() {
    assert_eq!(
        eval("{'b': 1, 'a': [1, none]} | dump"),
        "{\"b\":1,\"a\":[1,null]}"
    );
    assert_eq!(eval("{'a': 1} | dump(12)"), "{\n          \"a\": 1\n}");
    assert_eq!(eval("{'a': 1} | dump('2')"), "{\n2\"a\": 1\n}");
    assert_eq!(
        eval("{'a': [], 'b': {}} | dump(2)"),
        "{\n  \"a\": [],\n  \"b\": {}\n}"
    );
    assert_eq!(eval("{'a': x, 'b': [x]} | dump"), "{\"b\":[null]}");
    assert_eq!(eval("'é<' | dump"), "\"é<\"");
}

#[test]
fn escape_marks_safe_and_forceescape_escapes_again() {
    assert_eq!(
        eval("'a&b<c>\"d\\'e\\\\' | escape"),
        "a&amp;b&lt;c&gt;&quot;d&#39;e&#92;"
    );
    assert_eq!(eval("'<' | escape | escape"), "&lt;");
    assert_eq!(eval("'<' | escape | forceescape"), "&amp;lt;");
    assert_eq!(eval("'<' | escape is escaped"), true);
    assert_eq!(eval("'x' | safe is string"), false);
}

#[test]
fn text_filters_strip_count_link_and_encode() {
    assert_eq!(eval("'a<!-- c -->b<br/>c' | striptags"), "abc");
    assert_eq!(
        eval("'<p>one</p>\n\n\n\n<p>two  three</p>\r\n x ' | striptags(true)"),
        "one\n\ntwo three\nx"
    );
    assert_eq!(eval("\"it's a dog-eat-dog world\" | wordcount"), 7);
    assert_eq!(eval("'!!!' | wordcount"), serde_json::Value::Null);
    assert_eq!(
        eval("'go to example.com, then' | urlize"),
        "go to <a href=\"http://example.com\">example.com</a> then"
    );
    assert_eq!(
        eval("'http://example.com' | urlize(none, true)"),
        "<a href=\"http://example.com\" rel=\"nofollow\"></a>"
    );
    assert_eq!(
        eval("'a b&c=d/é?' | urlencode"),
        "a%20b%26c%3Dd%2F%C3%A9%3F"
    );
    assert_eq!(eval("['ab', 'cd'] | urlencode"), "a=b&c=d");
}

#[test]
fn sequence_filters_on_strings_arrays_and_records() {
    assert_eq!(eval("{'0': 'zero'} | first"), "zero");
    assert_eq!(eval("{'a': 1} | reverse"), serde_json::json!([]));
    assert_eq!(eval("{'a': 1, 'b': 2} | length"), 2);
    assert_eq!(eval("(123 | length) is undefined"), true);
    assert_eq!(eval("false | length"), 0);
    assert_eq!(
        eval("{'a': 1} | list"),
        serde_json::json!([{"key": "a", "value": 1}])
    );
    assert_eq!(eval("['only'] | random"), "only");
    assert!(
        eval_err("none | first")
            .contains("Filter \"first\" failed for null input: first requires a sequence")
    );
}

#[test]
fn string_filters_coerce_falsy_inputs_and_reject_numbers() {
    assert_eq!(eval("none | capitalize"), "");
    assert_eq!(eval("'my new-service' | title"), "My New-service");
    assert!(eval_err("12 | capitalize").contains("Filter input must be a string"));
    assert_eq!(eval("[1, 'a', none] | string"), "1,a,");
    assert!(eval_err("none | string").contains("string requires a value"));
}

#[test]
fn tests_compare_as_javascript_does() {
    assert_eq!(eval("1 is eq('1')"), false);
    assert_eq!(eval("[1] is sameas([1])"), false);
    assert_eq!(eval("'10' is gt('9')"), false);
    assert_eq!(eval("'10' is gt(9)"), true);
    assert_eq!(eval("-3 is odd"), false);
    assert_eq!(eval("none is even"), true);
    assert_eq!(eval("{} is truthy"), true);
    assert_eq!(eval("'123' is upper"), true);
    assert!(eval_err("4 is divisibleby").contains("requires 1 positional argument"));
    assert!(eval_err("none is iterable").contains("iterable test requires a value"));
}

#[test]
fn minijinja_only_filters_and_tests_are_unknown() {
    let env = env();
    for expr in [
        "'a' | tojson",
        "[1] | map('upper')",
        "1 is boolean",
        "none is none",
    ] {
        let result = env
            .compile_expression(expr)
            .and_then(|e| e.eval(minijinja::context! {}));
        assert!(result.is_err(), "{expr} should fail");
    }
}

#[test]
fn filters_refuse_to_multiply_a_template_past_the_output_bound() {
    for expr in [
        "('a\n' * 100) | indent(16000000)",
        "[1] | batch(100000000, 'x')",
        "'abcdefghij' | replace('', 'x' * 1000000)",
        "('aaaaaaaaaa' * 1000) | replace('a', 'b' * 10000)",
    ] {
        assert!(
            eval_err(expr).contains("exceeds the supported bound"),
            "{expr}"
        );
    }
}

#[test]
fn sorting_never_panics_on_inconsistent_comparisons() {
    let mut items: Vec<i32> = (0..200).map(|i| (i * 7919) % 101).collect();
    js_sort(&mut items, |_, _| f64::NAN);
    js_sort(&mut items, |a, b| if (a + b) % 3 == 0 { -1.0 } else { 1.0 });
    let mut small = vec![3, 1, 2];
    js_sort(&mut small, |a, b| f64::from(a - b));
    assert_eq!(small, vec![1, 2, 3]);
}
