//! The protobuf wire format, read in place. Ingest validates and splits OTLP requests
//! with it and the sampler packs rows from them, neither decoding a message into owned
//! structs. It accepts a varint, a key and a length exactly where `prost` does, so a
//! message this reader walks without error is one `prost` decodes too.

/// One field of a protobuf message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Length-delimited: a string, bytes or an embedded message.
    Bytes(&'a [u8]),
}

/// A field's number, its value, and its bytes as they stand in the message (key, length
/// and value).
pub type RawField<'a> = (u32, Field<'a>, &'a [u8]);

/// Why bytes are not a protobuf message.
pub fn invalid(what: &str) -> String {
    format!("invalid protobuf: {what}")
}

/// The fields of one protobuf message, in order; groups (deprecated, never in OTLP) are
/// refused.
pub struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    pub fn of(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, at: 0 }
    }

    /// The next field with its bytes, or `None` at the end of the message.
    pub fn next_raw(&mut self) -> Result<Option<RawField<'a>>, String> {
        let start = self.at;
        Ok(self
            .next_field()?
            .map(|(number, field)| (number, field, &self.bytes[start..self.at])))
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for index in 0..10 {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| invalid("truncated"))?;
            self.at += 1;
            // The tenth byte holds one bit; anything more overflows 64 bits.
            if index == 9 && byte > 1 {
                return Err(invalid("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| invalid("truncated"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    /// The next field with its number, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Field<'a>)>, String> {
        if self.at >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| (1..1 << 29).contains(n) && key <= u64::from(u32::MAX))
            .ok_or_else(|| invalid("field number out of range"))?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8"))),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| invalid("length"))?;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4"))),
            _ => return Err(invalid("unsupported wire type")),
        };
        Ok(Some((number, field)))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_field().transpose()
    }
}

/// A string field's text.
pub fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| invalid("a string is not UTF-8"))
}

/// The embedded messages (or strings, or bytes) of field `number`.
pub fn each<'a>(
    message: &'a [u8],
    number: u32,
) -> impl Iterator<Item = Result<&'a [u8], String>> + 'a {
    Fields::of(message).filter_map(move |field| match field {
        Ok((n, Field::Bytes(bytes))) if n == number => Some(Ok(bytes)),
        Ok((n, _)) if n == number => Some(Err(invalid("wrong wire type"))),
        Ok(_) => None,
        Err(error) => Some(Err(error)),
    })
}

/// The bytes a varint of `value` takes.
pub fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `value` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_read_as_prost_reads_them() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = vec![0x08];
            put_varint(&mut bytes, value);
            assert_eq!(bytes.len(), 1 + varint_len(value));
            let mut fields = Fields::of(&bytes);
            assert_eq!(fields.next_field(), Ok(Some((1, Field::Varint(value)))));
            assert_eq!(fields.next_field(), Ok(None));
        }
        // Ten bytes whose last carries more than the 64th bit.
        let overflow = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert!(Fields::of(&overflow).next_field().is_err());
        let eleven = [
            0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        assert!(Fields::of(&eleven).next_field().is_err());
    }

    #[test]
    fn keys_and_lengths_outside_the_format_are_refused() {
        assert!(Fields::of(&[0x00, 0x01]).next_field().is_err(), "field 0");
        assert!(Fields::of(&[0x0b]).next_field().is_err(), "a group");
        assert!(
            Fields::of(&[0x0a, 0x05, 0x01]).next_field().is_err(),
            "short"
        );
        assert!(
            Fields::of(&[0x0d, 0x01]).next_field().is_err(),
            "short fixed32"
        );
        assert_eq!(
            Fields::of(&[0x15, 1, 0, 0, 0]).next_field(),
            Ok(Some((2, Field::Fixed32(1))))
        );
    }
}
