//! Go `time.Duration` as Kubernetes' `metav1.Duration` carries it in JSON: a string such as
//! `"90s"` or `"1m30s"`, parsed with Go's `ParseDuration` rules and written with Go's
//! `Duration.String()` (so `"90s"` reads back as `"1m30s"`, exactly as Calico stores it).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed duration in nanoseconds with Go's text form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub fn from_secs(s: i64) -> GoDuration {
        GoDuration(s.saturating_mul(1_000_000_000))
    }

    /// The duration as a std `Duration` (negative durations become zero).
    pub fn to_std(self) -> Duration {
        Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

impl FromStr for GoDuration {
    type Err = String;

    fn from_str(orig: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("time: invalid duration \"{orig}\"");
        let mut s = orig;
        let mut neg = false;
        if let Some(rest) = s.strip_prefix('-') {
            neg = true;
            s = rest;
        } else if let Some(rest) = s.strip_prefix('+') {
            s = rest;
        }
        if s == "0" {
            return Ok(GoDuration(0));
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total: u128 = 0;
        while !s.is_empty() {
            let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &s[..int_len];
            s = &s[int_len..];
            let mut frac_part = "";
            if let Some(rest) = s.strip_prefix('.') {
                let n = rest.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &rest[..n];
                s = &rest[n..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_len = s
                .char_indices()
                .find(|(_, c)| *c == '.' || c.is_ascii_digit())
                .map(|(i, _)| i)
                .unwrap_or(s.len());
            if unit_len == 0 {
                return Err(format!("time: missing unit in duration \"{orig}\""));
            }
            let unit = unit_nanos(&s[..unit_len])
                .ok_or_else(|| format!("time: unknown unit \"{}\" in duration \"{orig}\"", &s[..unit_len]))?;
            s = &s[unit_len..];
            let int: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| invalid())?
            };
            let mut v = int.checked_mul(unit).ok_or_else(invalid)?;
            if !frac_part.is_empty() {
                // Keep at most 18 fractional digits: beyond that nothing reaches a nanosecond.
                let digits = &frac_part[..frac_part.len().min(18)];
                let f: u128 = digits.parse().map_err(|_| invalid())?;
                v += f * unit / 10u128.pow(digits.len() as u32);
            }
            total = total.checked_add(v).ok_or_else(invalid)?;
        }
        let limit = if neg { 1u128 << 63 } else { (1u128 << 63) - 1 };
        if total > limit {
            return Err(invalid());
        }
        let n = total as i128;
        Ok(GoDuration(if neg { -n } else { n } as i64))
    }
}

/// Go's `fmtFrac`: the fraction of `v / 10^prec` without trailing zeros (and no dot if zero).
fn frac(v: u64, prec: u32) -> (String, u64) {
    let div = 10u64.pow(prec);
    let mut f = v % div;
    let mut digits = prec;
    while digits > 0 && f.is_multiple_of(10) {
        f /= 10;
        digits -= 1;
    }
    let s = if digits == 0 {
        String::new()
    } else {
        format!(".{:0width$}", f, width = digits as usize)
    };
    (s, v / div)
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u < 1_000_000_000 {
            let (prec, unit) = match u {
                0 => return f.write_str("0s"),
                1..=999 => (0, "ns"),
                1_000..=999_999 => (3, "µs"),
                _ => (6, "ms"),
            };
            let (fr, int) = frac(u, prec);
            return write!(f, "{sign}{int}{fr}{unit}");
        }
        let (fr, secs) = frac(u, 9);
        let (s, mins) = (secs % 60, secs / 60);
        if mins == 0 {
            return write!(f, "{sign}{s}{fr}s");
        }
        let (m, hours) = (mins % 60, mins / 60);
        if hours == 0 {
            return write!(f, "{sign}{m}m{s}{fr}s");
        }
        write!(f, "{sign}{hours}h{m}m{s}{fr}s")
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        s.parse::<GoDuration>().unwrap().to_string()
    }

    #[test]
    fn go_formatting() {
        assert_eq!(rt("90s"), "1m30s");
        assert_eq!(rt("0"), "0s");
        assert_eq!(rt("0s"), "0s");
        assert_eq!(rt("1h"), "1h0m0s");
        assert_eq!(rt("1.5h"), "1h30m0s");
        assert_eq!(rt("300ms"), "300ms");
        assert_eq!(rt("1500ms"), "1.5s");
        assert_eq!(rt("2us"), "2µs");
        assert_eq!(rt("1ns"), "1ns");
        assert_eq!(rt("-5s"), "-5s");
        assert_eq!(rt("1h2m3.25s"), "1h2m3.25s");
        assert_eq!(rt("120s"), "2m0s");
    }

    #[test]
    fn go_parse_errors() {
        assert!("".parse::<GoDuration>().is_err());
        assert!("5".parse::<GoDuration>().is_err());
        assert!("5x".parse::<GoDuration>().is_err());
        assert!(".s".parse::<GoDuration>().is_err());
        assert!("9999999999h".parse::<GoDuration>().is_err());
        assert_eq!(
            "5".parse::<GoDuration>().unwrap_err(),
            "time: missing unit in duration \"5\""
        );
    }

    #[test]
    fn json_form() {
        let d: GoDuration = serde_json::from_str("\"90s\"").unwrap();
        assert_eq!(d, GoDuration::from_secs(90));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m30s\"");
    }
}
