//! I/O errors in words. In a `wasm32-wasip2` guest, std prints an OS error with WASI's
//! number for it: `No such file or directory (os error 44)`. On the host, where the
//! message is read, 44 is another error (ECHRNG on Linux), so the number only misleads;
//! the words before it already say what happened. Messages leaving the plugin (every
//! action error, through [`crate::execute`]) lose the number; [`io_error_message`] is the
//! same for messages a plugin builds itself, such as log lines.

/// `err`'s message without the WASI error number: `No such file or directory`.
pub fn io_error_message(err: &std::io::Error) -> String {
    without_os_error_numbers(&err.to_string())
}

/// `text` with every ` (os error N)` that std appends to an OS error's words removed.
pub(crate) fn without_os_error_numbers(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARK) {
        let after = &rest[start + MARK.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..start]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..start + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_numbers_are_dropped_and_the_words_kept() {
        assert_eq!(
            without_os_error_numbers(
                "cannot write a/b.txt: No such file or directory (os error 44)"
            ),
            "cannot write a/b.txt: No such file or directory"
        );
        assert_eq!(
            without_os_error_numbers("a (os error 2) and b (os error 63), c"),
            "a and b, c"
        );
        for unchanged in ["(os error x)", "plain", " (os error 12", "x (os error )"] {
            assert_eq!(without_os_error_numbers(unchanged), unchanged);
        }
        let err = std::io::Error::from_raw_os_error(2);
        let message = io_error_message(&err);
        assert!(!message.contains("os error"), "{message}");
        assert!(!message.is_empty());
    }
}
