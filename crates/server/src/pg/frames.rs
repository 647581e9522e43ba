//! The layout of each frontend message, checked on the complete frame before pgwire decodes it.
//! pgwire reads a message's fields with panicking getters and does not stop at the frame's end
//! (a truncated Parse or Bind, an Execute without its row count, a length past the message):
//! found by fuzzing (`fuzz/fuzz_targets/pg_connection.rs`). A frame that does not fit its
//! message's layout is a protocol violation, FATAL 08P01, as in PostgreSQL.

use pgwire::error::PgWireError;

use super::errors::fatal_with;

/// Checks the body (after the tag and length) of a frame with tag `tag`. Message types pgwire
/// does not know, and the password family (checked where its meaning is known), pass.
pub fn check(tag: u8, body: &[u8]) -> Result<(), PgWireError> {
    let mut r = Reader(body);
    let fits = match tag {
        b'Q' => r.cstring().and_then(|_| r.end()),
        b'P' => (|| {
            r.cstring()?;
            r.cstring()?;
            let n = r.u16()?;
            r.skip(usize::from(n) * 4)?;
            r.end()
        })(),
        b'B' => (|| {
            r.cstring()?;
            r.cstring()?;
            let formats = r.u16()?;
            r.skip(usize::from(formats) * 2)?;
            for _ in 0..r.u16()? {
                let len = r.i32()?;
                if len != -1 {
                    r.skip(usize::try_from(len).ok()?)?;
                }
            }
            let results = r.u16()?;
            r.skip(usize::from(results) * 2)?;
            r.end()
        })(),
        b'D' | b'C' => r.skip(1).and_then(|_| r.cstring()).and_then(|_| r.end()),
        b'E' => r.cstring().and_then(|_| r.i32()).and_then(|_| r.end()),
        b'S' | b'H' | b'X' | b'c' => r.end(),
        b'f' => r.cstring().and_then(|_| r.end()),
        _ => Some(()),
    };
    fits.ok_or_else(|| {
        fatal_with(
            "08P01",
            format!(
                "invalid message format: a {:?} message does not fit its layout",
                char::from(tag)
            ),
        )
    })
}

/// Reads a message body front to back; `None` when a field runs past the end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }

    fn cstring(&mut self) -> Option<()> {
        let nul = self.0.iter().position(|b| *b == 0)?;
        self.skip(nul + 1)
    }

    fn u16(&mut self) -> Option<u16> {
        let v = u16::from_be_bytes(self.0.get(..2)?.try_into().ok()?);
        self.skip(2)?;
        Some(v)
    }

    fn i32(&mut self) -> Option<i32> {
        let v = i32::from_be_bytes(self.0.get(..4)?.try_into().ok()?);
        self.skip(4)?;
        Some(v)
    }

    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(params: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = b"portal\0stmt\0".to_vec();
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(params.len() as u16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b.extend_from_slice(&0u16.to_be_bytes());
        b
    }

    #[test]
    fn well_formed_messages_pass() {
        let mut parse = b"s1\0SELECT $1\0".to_vec();
        parse.extend_from_slice(&1u16.to_be_bytes());
        parse.extend_from_slice(&23u32.to_be_bytes());
        let mut execute = b"\0".to_vec();
        execute.extend_from_slice(&0i32.to_be_bytes());
        let cases: Vec<(u8, Vec<u8>)> = vec![
            (b'Q', b"SELECT 1\0".to_vec()),
            (b'P', parse),
            (b'B', bind(&[Some(b"42"), None])),
            (b'D', b"Sstmt\0".to_vec()),
            (b'C', b"P\0".to_vec()),
            (b'E', execute),
            (b'S', vec![]),
            (b'H', vec![]),
            (b'X', vec![]),
            (b'd', b"anything".to_vec()),
            (b'c', vec![]),
            (b'f', b"stop\0".to_vec()),
            (b'p', b"whatever".to_vec()),
        ];
        for (tag, body) in cases {
            assert!(check(tag, &body).is_ok(), "{}", char::from(tag));
        }
    }

    #[test]
    fn truncated_and_overlong_messages_are_refused() {
        let mut truncated_bind = bind(&[Some(b"42")]);
        truncated_bind.truncate(truncated_bind.len() - 3);
        let mut long_param = b"\0\0".to_vec();
        long_param.extend_from_slice(&0u16.to_be_bytes());
        long_param.extend_from_slice(&1u16.to_be_bytes());
        long_param.extend_from_slice(&100i32.to_be_bytes());
        long_param.extend_from_slice(b"short");
        let mut negative = b"\0\0".to_vec();
        negative.extend_from_slice(&0u16.to_be_bytes());
        negative.extend_from_slice(&1u16.to_be_bytes());
        negative.extend_from_slice(&(-7i32).to_be_bytes());
        let cases: Vec<(u8, Vec<u8>)> = vec![
            (b'Q', b"SELECT 1".to_vec()),
            (b'Q', b"SELECT 1\0trailing".to_vec()),
            (b'P', b"s1\0SELECT 1\0\0".to_vec()),
            (b'P', b"s1\0SELECT 1\0\0\x02\0\0\0\x17".to_vec()),
            (b'B', truncated_bind),
            (b'B', long_param),
            (b'B', negative),
            (b'D', vec![]),
            (b'E', b"\0\0\0".to_vec()),
            (b'S', b"x".to_vec()),
            (b'f', vec![]),
        ];
        for (tag, body) in cases {
            let e = check(tag, &body).unwrap_err();
            assert!(
                e.to_string().contains("does not fit"),
                "{}: {e}",
                char::from(tag)
            );
        }
    }
}
