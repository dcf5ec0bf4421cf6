//! `foldFlowLines`: breaking a scalar's text into lines that stay within the width, as the
//! package folds plain, quoted and folded block scalars.

use super::{BACKSLASH, LINE_WIDTH, MIN_CONTENT_WIDTH, NL, SPACE, TAB, push_spaces, utf16};

/// How `fold_lines` may break a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fold {
    /// Plain and single-quoted scalars: at a single space between non-blanks.
    Flow,
    /// Folded block scalars: the same, never inside more-indented lines.
    Block,
    /// Double-quoted scalars: also anywhere else, with an escaped line break.
    Quoted,
}

/// `foldFlowLines`: breaks `text` so lines stay within the width where possible. Returns
/// the text and whether some line could not be brought under the width (`onOverflow`).
pub(super) fn fold_lines(
    text: &[u16],
    indent: usize,
    mode: Fold,
    indent_at_start: Option<usize>,
) -> (Vec<u16>, bool) {
    let len = text.len() as isize;
    let indent_len = indent as isize;
    let end_step = (1 + MIN_CONTENT_WIDTH).max(1 + LINE_WIDTH - indent_len);
    if len <= end_step {
        return (text.to_vec(), false);
    }
    let at = |k: isize| usize::try_from(k).ok().and_then(|k| text.get(k).copied());
    let mut folds: Vec<isize> = Vec::new();
    let mut escaped_folds: Vec<isize> = Vec::new();
    let mut end = LINE_WIDTH - indent_len;
    if let Some(start) = indent_at_start {
        let start = start as isize;
        if start > LINE_WIDTH - MIN_CONTENT_WIDTH.max(2) {
            folds.push(0);
        } else {
            end = LINE_WIDTH - start;
        }
    }
    let mut split: Option<isize> = None;
    let mut prev: Option<u16> = None;
    let mut overflow = false;
    let mut i: isize = -1;
    let mut escape_start: isize = -1;
    let mut escape_end: isize = -1;
    if mode == Fold::Block {
        i = consume_more_indented_lines(text, i, indent_len);
        if i != -1 {
            end = i + end_step;
        }
    }
    loop {
        i += 1;
        let Some(first) = at(i) else { break };
        let mut c = Some(first);
        if mode == Fold::Quoted && first == BACKSLASH {
            escape_start = i;
            i += match at(i + 1).and_then(|c| u8::try_from(c).ok()) {
                Some(b'x') => 3,
                Some(b'u') => 5,
                Some(b'U') => 9,
                _ => 1,
            };
            escape_end = i;
        }
        if c == Some(NL) {
            if mode == Fold::Block {
                i = consume_more_indented_lines(text, i, indent_len);
            }
            end = i + indent_len + end_step;
            split = None;
        } else {
            let not_blank = |c: Option<u16>| c.is_some_and(|c| !matches!(c, SPACE | NL | TAB));
            if c == Some(SPACE) && not_blank(prev) && not_blank(at(i + 1)) {
                // A space between non-blanks can become a line break and indentation.
                split = Some(i);
            }
            if i >= end {
                if let Some(at_split) = split.take() {
                    folds.push(at_split);
                    end = at_split + end_step;
                } else if mode == Fold::Quoted {
                    // Blanks collected at the end may stretch past the width.
                    while matches!(prev, Some(SPACE) | Some(TAB)) {
                        prev = c;
                        i += 1;
                        c = at(i);
                        overflow = true;
                    }
                    // Break before the last character, but not inside an escape.
                    let j = if i > escape_end + 1 {
                        i - 2
                    } else {
                        escape_start - 1
                    };
                    if escaped_folds.contains(&j) {
                        return (text.to_vec(), false);
                    }
                    folds.push(j);
                    escaped_folds.push(j);
                    end = j + end_step;
                } else {
                    overflow = true;
                }
            }
        }
        prev = c;
    }
    if folds.is_empty() {
        return (text.to_vec(), overflow);
    }
    let mut out = js_slice(text, 0, folds[0]);
    for (index, &fold) in folds.iter().enumerate() {
        let next = folds
            .get(index + 1)
            .copied()
            .filter(|&f| f != 0)
            .unwrap_or(len);
        if fold == 0 {
            out = vec![NL];
            push_spaces(&mut out, indent);
            out.extend(js_slice(text, 0, next));
        } else {
            if mode == Fold::Quoted && escaped_folds.contains(&fold) {
                match at(fold) {
                    Some(c) => out.push(c),
                    None => out.extend(utf16("undefined")),
                }
                out.push(BACKSLASH);
            }
            out.push(NL);
            push_spaces(&mut out, indent);
            out.extend(js_slice(text, fold + 1, next));
        }
    }
    (out, overflow)
}

/// `consumeMoreIndentedLines`: from the line after `i`, skips lines indented deeper than
/// `indent`; returns the position of the last line break skipped, or `i`.
pub(super) fn consume_more_indented_lines(text: &[u16], mut i: isize, indent: isize) -> isize {
    let at = |k: isize| usize::try_from(k).ok().and_then(|k| text.get(k).copied());
    let mut end = i;
    let mut start = i + 1;
    let mut c = at(start);
    while matches!(c, Some(SPACE) | Some(TAB)) {
        if i < start + indent {
            i += 1;
            c = at(i);
        } else {
            loop {
                i += 1;
                c = at(i);
                if c.is_none() || c == Some(NL) {
                    break;
                }
            }
            end = i;
            start = i + 1;
            c = at(start);
        }
    }
    end
}

/// `String.prototype.slice(start, end)`: negative positions count from the end.
pub(super) fn js_slice(text: &[u16], start: isize, end: isize) -> Vec<u16> {
    let len = text.len() as isize;
    let clamp = |k: isize| if k < 0 { (len + k).max(0) } else { k.min(len) } as usize;
    let (start, end) = (clamp(start), clamp(end));
    if start < end {
        text[start..end].to_vec()
    } else {
        Vec::new()
    }
}
