//! Git's pkt-line framing: four hex digits of length (including themselves), then the
//! payload; `0000` is a flush.

/// Appends `payload` as one pkt-line.
pub fn write(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(format!("{:04x}", payload.len() + 4).as_bytes());
    out.extend_from_slice(payload);
}

pub fn flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

/// A received line: a payload or a flush (`0000`).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Data(&'a [u8]),
    Flush,
}

/// Splits a whole response into lines; `Err` says where the framing broke.
pub fn parse(mut input: &[u8]) -> Result<Vec<Line<'_>>, String> {
    let mut lines = Vec::new();
    while !input.is_empty() {
        let length = input
            .get(..4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                format!(
                    "bad pkt-line length {:?}",
                    String::from_utf8_lossy(&input[..input.len().min(4)])
                )
            })?;
        match length {
            0 => {
                lines.push(Line::Flush);
                input = &input[4..];
            }
            // 0001 (delimiter) and 0002 (response end) are protocol v2 only.
            1..=3 => return Err(format!("unexpected pkt-line length {length}")),
            _ => {
                let payload = input
                    .get(4..length)
                    .ok_or_else(|| format!("pkt-line of {length} bytes cut short"))?;
                lines.push(Line::Data(payload));
                input = &input[length..];
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut out = Vec::new();
        write(&mut out, b"unpack ok\n");
        flush(&mut out);
        assert_eq!(out, b"000eunpack ok\n0000");
        assert_eq!(
            parse(&out).unwrap(),
            [Line::Data(b"unpack ok\n"), Line::Flush]
        );
    }

    #[test]
    fn reports_truncation() {
        assert!(parse(b"0010short").unwrap_err().contains("cut short"));
        assert!(parse(b"zz").is_err());
    }
}
