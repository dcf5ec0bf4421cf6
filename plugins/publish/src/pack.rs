//! Pack files (version 2), the format a push carries its objects in: a header, each
//! object zlib-compressed behind a type-and-size header, and a SHA-1 trailer.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha1::{Digest, Sha1};

use crate::objects::Object;

/// Encodes `objects` as one pack, undeltified.
pub fn encode(objects: &[Object]) -> Vec<u8> {
    let mut pack = Vec::new();
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    let count = u32::try_from(objects.len()).expect("fewer than 2^32 objects");
    pack.extend_from_slice(&count.to_be_bytes());
    for object in objects {
        entry_header(&mut pack, object.kind.pack_type(), object.data.len());
        let mut encoder = ZlibEncoder::new(&mut pack, Compression::default());
        encoder
            .write_all(&object.data)
            .expect("writing to memory cannot fail");
        encoder.finish().expect("writing to memory cannot fail");
    }
    let trailer: [u8; 20] = Sha1::digest(&pack).into();
    pack.extend_from_slice(&trailer);
    pack
}

/// The type in bits 4-6 of the first byte, the size in its low 4 bits and then 7 bits a
/// byte, least significant first; a set high bit means another byte follows.
fn entry_header(out: &mut Vec<u8>, pack_type: u8, size: usize) {
    let mut byte = (pack_type << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Kind;

    #[test]
    fn sizes_continue_in_seven_bit_groups() {
        let mut out = Vec::new();
        entry_header(&mut out, 3, 15);
        assert_eq!(out, [0x3f]);
        out.clear();
        entry_header(&mut out, 3, 16);
        assert_eq!(out, [0xb0, 0x01]);
        out.clear();
        entry_header(&mut out, 1, 300);
        // 300 = 0b1_0010_1100: low nibble 0xc, then 300 >> 4 = 18.
        assert_eq!(out, [0x9c, 18]);
    }

    #[test]
    fn a_pack_has_header_count_and_a_checksum_of_what_precedes_it() {
        let pack = encode(&[Object::new(Kind::Blob, b"hello\n".to_vec())]);
        assert_eq!(&pack[..12], b"PACK\0\0\0\x02\0\0\0\x01");
        let (body, trailer) = pack.split_at(pack.len() - 20);
        assert_eq!(trailer, Sha1::digest(body).as_slice());
    }
}
