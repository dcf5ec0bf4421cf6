//! Counts in messages: `1 step`, `2 steps`, `0 files`.

/// `count` and the noun that agrees with it: `one` for exactly 1, else `many`.
pub fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(plural(1, "step", "steps"), "1 step");
        assert_eq!(plural(0, "step", "steps"), "0 steps");
        assert_eq!(plural(2, "test case", "test cases"), "2 test cases");
    }
}
