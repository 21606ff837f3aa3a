//! AS_PATH (RFC 4271 §4.3, §5.1.2), 2- and 4-octet forms and the AS4_PATH merge (RFC 6793 §4).

use crate::open::AS_TRANS;

pub const AS_SET: u8 = 1;
pub const AS_SEQUENCE: u8 = 2;
pub const AS_CONFED_SEQUENCE: u8 = 3;
pub const AS_CONFED_SET: u8 = 4;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: u8,
    pub asns: Vec<u32>,
}

/// An AS path, always held with 4-octet AS numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: AS_SEQUENCE,
                asns,
            }],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): a set counts as one,
    /// confederation segments count zero (RFC 5065 §5.3).
    pub fn route_len(&self) -> u32 {
        self.segments
            .iter()
            .map(|s| match s.kind {
                AS_SEQUENCE => s.asns.len() as u32,
                AS_SET => 1,
                _ => 0,
            })
            .sum()
    }

    /// The neighbouring AS (first AS of the first sequence), for MED comparison (§9.1.2.2 c).
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(s) if s.kind == AS_SEQUENCE => s.asns.first().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// How many times `asn` appears (BIRD's `allow local as N` loop check counts them).
    pub fn count(&self, asn: u32) -> usize {
        self.segments
            .iter()
            .map(|s| s.asns.iter().filter(|&&a| a == asn).count())
            .sum()
    }

    /// Returns a copy with `asn` prepended (eBGP export, RFC 4271 §5.1.2).
    pub fn prepend(&self, asn: u32) -> AsPath {
        let mut p = self.clone();
        match p.segments.first_mut() {
            Some(s) if s.kind == AS_SEQUENCE && s.asns.len() < 255 => s.asns.insert(0, asn),
            _ => p.segments.insert(
                0,
                AsSegment {
                    kind: AS_SEQUENCE,
                    asns: vec![asn],
                },
            ),
        }
        p
    }

    /// Decodes AS_PATH or AS4_PATH; `None` means malformed (RFC 7606 §7.2: bad segment type,
    /// zero-length segment, overrun).
    pub fn decode(mut v: &[u8], four_octet: bool) -> Option<AsPath> {
        let w = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !v.is_empty() {
            if v.len() < 2 {
                return None;
            }
            let (kind, count) = (v[0], v[1] as usize);
            if !(AS_SET..=AS_CONFED_SET).contains(&kind) || count == 0 || v.len() < 2 + count * w {
                return None;
            }
            let asns = v[2..2 + count * w]
                .chunks_exact(w)
                .map(|c| {
                    if four_octet {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u32::from(u16::from_be_bytes([c[0], c[1]]))
                    }
                })
                .collect();
            segments.push(AsSegment { kind, asns });
            v = &v[2 + count * w..];
        }
        Some(AsPath { segments })
    }

    /// Encodes with 4-octet numbers, or 2-octet ones with AS_TRANS standing in for large ASNs.
    pub fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for s in &self.segments {
            for chunk in s.asns.chunks(255) {
                out.push(s.kind);
                out.push(chunk.len() as u8);
                for &a in chunk {
                    if four_octet {
                        out.extend_from_slice(&a.to_be_bytes());
                    } else {
                        let a = u16::try_from(a).unwrap_or(AS_TRANS);
                        out.extend_from_slice(&a.to_be_bytes());
                    }
                }
            }
        }
    }

    /// True if some AS number does not fit 2 octets (an AS4_PATH is then needed towards an
    /// old speaker).
    pub fn needs_as4(&self) -> bool {
        self.segments.iter().any(|s| s.asns.iter().any(|&a| a > 0xffff))
    }

    /// Reconstructs the real path from a 2-octet AS_PATH and an AS4_PATH (RFC 6793 §4.2.3): if
    /// AS_PATH has fewer ASNs than AS4_PATH the AS4_PATH is ignored; otherwise the leading
    /// AS_PATH numbers are kept and the rest replaced by AS4_PATH.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let count = |p: &AsPath| -> usize {
            p.segments
                .iter()
                .map(|s| match s.kind {
                    AS_SET | AS_CONFED_SET => 1,
                    _ => s.asns.len(),
                })
                .sum()
        };
        let (n2, n4) = (count(self), count(as4));
        if n2 < n4 {
            return self.clone();
        }
        let mut keep = n2 - n4;
        let mut out = AsPath::default();
        for s in &self.segments {
            if keep == 0 {
                break;
            }
            let w = if matches!(s.kind, AS_SET | AS_CONFED_SET) {
                1
            } else {
                s.asns.len()
            };
            if w <= keep {
                out.segments.push(s.clone());
                keep -= w;
            } else {
                out.segments.push(AsSegment {
                    kind: s.kind,
                    asns: s.asns[..keep].to_vec(),
                });
                keep = 0;
            }
        }
        out.segments.extend(as4.segments.iter().cloned());
        out
    }
}
