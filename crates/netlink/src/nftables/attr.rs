//! Netlink attributes (`struct nlattr`: 16-bit length, 16-bit type, value padded to 4 bytes):
//! a writer for requests and a bounds-checked reader for what the kernel sends back. The reader
//! is the first thing outside input meets, so it never indexes past a slice and reports a
//! malformed attribute as a [`DecodeError`] instead of panicking (fuzzed in `fuzz/`).

use super::sys::{NLA_F_NESTED, NLA_TYPE_MASK};

/// A reply (or notification) that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type DResult<T> = Result<T, DecodeError>;

pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends attributes to a message buffer.
pub struct AttrWriter<'a> {
    pub buf: &'a mut Vec<u8>,
}

impl<'a> AttrWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> AttrWriter<'a> {
        AttrWriter { buf }
    }

    /// One attribute with a raw value.
    pub fn put(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    pub fn put_u32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_be_bytes());
    }

    pub fn put_u64(&mut self, ty: u16, v: u64) {
        self.put(ty, &v.to_be_bytes());
    }

    /// A NUL-terminated string (`NLA_STRING` as the kernel's policies expect it).
    pub fn put_str(&mut self, ty: u16, s: &str) {
        let len = 4 + s.len() + 1;
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// A nested attribute whose content `f` writes.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut AttrWriter<'_>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(&mut AttrWriter { buf: self.buf });
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        let n = align4(self.buf.len()) - self.buf.len();
        self.buf.extend(std::iter::repeat_n(0u8, n));
    }
}

/// One attribute read from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub ty: u16,
    pub value: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn u8(&self) -> DResult<u8> {
        self.value.first().copied().ok_or_else(|| self.bad("a u8"))
    }

    pub fn u16(&self) -> DResult<u16> {
        match self.value {
            [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(self.bad("a u16")),
        }
    }

    pub fn u32(&self) -> DResult<u32> {
        match self.value {
            [a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => Err(self.bad("a u32")),
        }
    }

    pub fn i32(&self) -> DResult<i32> {
        self.u32().map(|v| v as i32)
    }

    pub fn u64(&self) -> DResult<u64> {
        match self.value.get(..8) {
            Some(b) => Ok(u64::from_be_bytes(b.try_into().expect("8 bytes"))),
            None => Err(self.bad("a u64")),
        }
    }

    /// A string, without its NUL terminator (lossy on bad UTF-8: names are shown, not trusted).
    pub fn string(&self) -> String {
        let s = self.value.split(|c| *c == 0).next().unwrap_or_default();
        String::from_utf8_lossy(s).into_owned()
    }

    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value)
    }

    fn bad(&self, what: &str) -> DecodeError {
        DecodeError(format!(
            "attribute {} has {} bytes, not {what}",
            self.ty,
            self.value.len()
        ))
    }
}

/// Iterates over the attributes of a buffer; a malformed one ends it with an error.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Attrs<'a> {
        Attrs {
            rest: buf,
            failed: false,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = DResult<Attr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.len() < 4 {
            // Trailing bytes shorter than a header are padding.
            return None;
        }
        let len = u16::from_ne_bytes([self.rest[0], self.rest[1]]) as usize;
        let ty = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.failed = true;
            return Some(Err(DecodeError(format!(
                "attribute {ty} claims {len} bytes, {} left",
                self.rest.len()
            ))));
        }
        let value = &self.rest[4..len];
        self.rest = &self.rest[align4(len).min(self.rest.len())..];
        Some(Ok(Attr { ty, value }))
    }
}

/// `NFTA_DATA_VALUE` / `NFTA_DATA_VERDICT` content, nested in expressions and set elements.
pub fn put_data_value(w: &mut AttrWriter<'_>, ty: u16, value: &[u8]) {
    w.nest(ty, |w| w.put(super::sys::NFTA_DATA_VALUE, value));
}

/// Reads the value of a nested `NFTA_DATA_VALUE`.
pub fn data_value(a: &Attr<'_>) -> DResult<Vec<u8>> {
    for inner in a.nested() {
        let inner = inner?;
        if inner.ty == super::sys::NFTA_DATA_VALUE {
            return Ok(inner.value.to_vec());
        }
    }
    Err(DecodeError(format!("attribute {} holds no data value", a.ty)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_nested_attributes() {
        let mut buf = Vec::new();
        let mut w = AttrWriter::new(&mut buf);
        w.put_str(1, "brindle");
        w.nest(2, |w| {
            w.put_u32(1, 0xdead_beef);
            w.put_u64(2, 7);
        });
        w.put(3, &[9]);
        assert_eq!(buf.len() % 4, 0);
        let attrs: Vec<_> = Attrs::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0].string(), "brindle");
        let inner: Vec<_> = attrs[1].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].u32().unwrap(), 0xdead_beef);
        assert_eq!(inner[1].u64().unwrap(), 7);
        assert_eq!(attrs[2].u8().unwrap(), 9);
        assert!(attrs[2].u32().is_err());
    }

    #[test]
    fn malformed_lengths_are_errors_not_panics() {
        for buf in [
            vec![2, 0, 1, 0],
            vec![200, 0, 1, 0, 1, 2],
            vec![8, 0, 1, 0, 1, 2, 3],
        ] {
            let r: Vec<_> = Attrs::new(&buf).collect();
            assert!(r.iter().any(|a| a.is_err()), "{buf:?}");
        }
        assert_eq!(Attrs::new(&[1, 2]).count(), 0, "short tail is padding");
    }
}
