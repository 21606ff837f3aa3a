//! Calico's "number or string" scalar types (`numorstring` in Calico's API): AS numbers, ports,
//! protocols and DSCP values. Each accepts the JSON forms Calico accepts and writes the form
//! Calico writes, so stored values are byte-compatible.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A BGP AS number (uint32). Reads a JSON number, or a string in asplain (`"64512"`) or asdot
/// (`"1.10"` = 1·65536 + 10) form; always writes a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// Calico's default AS when neither the node nor the global BGPConfiguration sets one.
    pub const DEFAULT: AsNumber = AsNumber(64512);
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for AsNumber {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = s.parse::<u32>() {
            return Ok(AsNumber(n));
        }
        let bad = || format!("invalid AS Number format ({s})");
        let (hi, lo) = s.split_once('.').ok_or_else(bad)?;
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        Ok(AsNumber((u32::from(hi) << 16) + u32::from(lo)))
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AsNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number (0-4294967295, or \"<high>.<low>\" asdot)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsNumber, E> {
                u32::try_from(v)
                    .map(AsNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsNumber, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A port, a port range or a named port (Calico `numorstring.Port`). Writes a number for a single
/// port, `"min:max"` for a range and the name for a named port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Port {
    Range { min: u16, max: u16 },
    Named(String),
}

impl Port {
    pub fn single(p: u16) -> Port {
        Port::Range { min: p, max: p }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Range { min, max } if min == max => write!(f, "{min}"),
            Port::Range { min, max } => write!(f, "{min}:{max}"),
            Port::Named(n) => f.write_str(n),
        }
    }
}

impl FromStr for Port {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Port::single)
                .map_err(|_| format!("invalid port format ({s})"));
        }
        if let Some((a, b)) = s.split_once(':')
            && !a.is_empty()
            && !b.is_empty()
            && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        {
            let min: u16 = a
                .parse()
                .map_err(|_| format!("invalid minimum port number in range ({s})"))?;
            let max: u16 = b
                .parse()
                .map_err(|_| format!("invalid maximum port number in range ({s})"))?;
            if min > max {
                return Err(format!(
                    "minimum port number ({min}) is greater than maximum port number ({max}) in port range"
                ));
            }
            return Ok(Port::Range { min, max });
        }
        let name_ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if name_ok {
            Ok(Port::Named(s.to_string()))
        } else {
            Err(format!("invalid name for named port ({s})"))
        }
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Range { min, max } if min == max => s.serialize_u16(*min),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number, a \"min:max\" range or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::single)
                    .map_err(|_| E::custom(format!("port {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::single)
                    .map_err(|_| E::custom(format!("port {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A uint8 or a string (Calico `numorstring.Uint8OrString`), used for protocols (`TCP` or 6)
/// and DSCP values. A string holding a number (`"6"`) reads as that number, as in Go; otherwise
/// written back in the form it was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Uint8OrString {
    Num(u8),
    Str(String),
}

/// A rule protocol: `TCP`, `UDP`, `ICMP`, `ICMPv6`, `SCTP`, `UDPLite` or a number.
pub type Protocol = Uint8OrString;
/// A DSCP value: a number 0-63 or a name such as `AF11`.
pub type Dscp = Uint8OrString;

/// Calico's protocol names and their IP protocol numbers.
pub const PROTOCOL_NAMES: [(&str, u8); 6] = [
    ("TCP", 6),
    ("UDP", 17),
    ("ICMP", 1),
    ("ICMPv6", 58),
    ("SCTP", 132),
    ("UDPLite", 136),
];

impl Uint8OrString {
    /// A protocol by Calico name (`TCP`).
    pub fn name(s: &str) -> Protocol {
        Uint8OrString::Str(s.to_string())
    }

    /// The IP protocol number of a protocol: the number itself, or that of a Calico name
    /// (`TCP` → 6, `ICMPv6` → 58). `None` for an unknown name.
    pub fn protocol_number(&self) -> Option<u8> {
        match self {
            Uint8OrString::Num(n) => Some(*n),
            Uint8OrString::Str(s) => PROTOCOL_NAMES
                .iter()
                .find(|(name, _)| *name == s)
                .map(|(_, n)| *n),
        }
    }

    /// Whether ports may be given with this protocol: TCP, UDP, SCTP (6, 17, 132), as
    /// Calico's `SupportsPorts` (which also takes the lower-case v1 names).
    pub fn supports_ports(&self) -> bool {
        match self {
            Uint8OrString::Num(n) => matches!(n, 6 | 17 | 132),
            Uint8OrString::Str(s) => matches!(s.as_str(), "TCP" | "UDP" | "SCTP" | "tcp" | "udp" | "sctp"),
        }
    }
}

impl fmt::Display for Uint8OrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uint8OrString::Num(n) => write!(f, "{n}"),
            Uint8OrString::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for Uint8OrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Uint8OrString::Num(n) => s.serialize_u8(*n),
            Uint8OrString::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Uint8OrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Uint8OrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number 0-255 or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Uint8OrString, E> {
                u8::try_from(v)
                    .map(Uint8OrString::Num)
                    .map_err(|_| E::custom(format!("{v} is out of range 0-255")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Uint8OrString, E> {
                u8::try_from(v)
                    .map(Uint8OrString::Num)
                    .map_err(|_| E::custom(format!("{v} is out of range 0-255")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Uint8OrString, E> {
                Ok(match v.parse::<u8>() {
                    Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Uint8OrString::Num(n),
                    _ => Uint8OrString::Str(v.to_string()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_number_forms() {
        let n: AsNumber = serde_json::from_str("64512").unwrap();
        assert_eq!(n, AsNumber(64512));
        let n: AsNumber = serde_json::from_str("\"64513\"").unwrap();
        assert_eq!(n, AsNumber(64513));
        let n: AsNumber = serde_json::from_str("\"1.10\"").unwrap();
        assert_eq!(n, AsNumber(65536 + 10));
        assert_eq!(serde_json::to_string(&n).unwrap(), "65546");
        assert!(serde_json::from_str::<AsNumber>("\"1.70000\"").is_err());
        assert!(serde_json::from_str::<AsNumber>("4294967296").is_err());
        assert!(serde_json::from_str::<AsNumber>("-1").is_err());
        let e = "x.y".parse::<AsNumber>().unwrap_err();
        assert_eq!(e, "invalid AS Number format (x.y)");
    }

    #[test]
    fn port_forms() {
        let p: Port = serde_json::from_str("179").unwrap();
        assert_eq!(p, Port::single(179));
        assert_eq!(serde_json::to_string(&p).unwrap(), "179");
        let p: Port = serde_json::from_str("\"32768:65535\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"32768:65535\"");
        let p: Port = serde_json::from_str("\"80\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "80");
        let p: Port = serde_json::from_str("\"http\"").unwrap();
        assert_eq!(p, Port::Named("http".into()));
        assert!(serde_json::from_str::<Port>("\"9:1\"").is_err());
        assert!(serde_json::from_str::<Port>("70000").is_err());
        assert!(serde_json::from_str::<Port>("\"a b\"").is_err());
    }

    #[test]
    fn uint8_or_string_keeps_form() {
        let p: Protocol = serde_json::from_str("6").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "6");
        let p: Protocol = serde_json::from_str("\"TCP\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"TCP\"");
        // Go reads a numeric string as the number and writes it back as one.
        let p: Protocol = serde_json::from_str("\"17\"").unwrap();
        assert_eq!(p, Uint8OrString::Num(17));
        assert_eq!(serde_json::to_string(&p).unwrap(), "17");
        assert_eq!(Protocol::name("ICMPv6").protocol_number(), Some(58));
        assert_eq!(Protocol::name("tcp").protocol_number(), None);
        assert!(Protocol::name("SCTP").supports_ports());
        assert!(!Protocol::Num(1).supports_ports());
        assert!(serde_json::from_str::<Protocol>("300").is_err());
    }
}
