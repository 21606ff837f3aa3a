//! Go's text forms of a `float64`, for fields such as a policy's `order`:
//! - [`serialize_f64`]: `encoding/json`'s: a whole number without a fraction (`1000`, not Rust's
//!   `1000.0`), others in their shortest form (`100.5`);
//! - [`format_g`]: `strconv.FormatFloat(f, 'g', -1, 64)`, which is also `fmt`'s `%v` and what
//!   go-yaml and calicoctl's tables print (`1000`, `1e+06`, `100.5`).

use serde::Serializer;

/// Largest magnitude Go writes without an exponent.
const GO_EXPONENT_FROM: f64 = 1e21;

/// Writes `v` as Go's JSON encoder would.
pub fn serialize_f64<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < GO_EXPONENT_FROM && v.abs() <= i64::MAX as f64 {
        // Exact: |v| < 2^63 and whole.
        s.serialize_i64(v as i64)
    } else {
        s.serialize_f64(v)
    }
}

/// [`serialize_f64`] for an optional value (used with `skip_serializing_if = "Option::is_none"`).
pub fn serialize_opt_f64<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => serialize_f64(*v, s),
        None => s.serialize_none(),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form (`1e+06`) when
/// the exponent is below -4 or at least 6.
pub fn format_g(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let e = format!("{f:e}"); // shortest digits, e.g. "1.5e6"
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    #[derive(Serialize)]
    struct O(#[serde(serialize_with = "super::serialize_opt_f64")] Option<f64>);

    fn go(v: f64) -> String {
        serde_json::to_string(&O(Some(v))).unwrap()
    }

    #[test]
    fn go_forms() {
        assert_eq!(go(1000.0), "1000");
        assert_eq!(go(1_000_000.0), "1000000");
        assert_eq!(go(-5.0), "-5");
        assert_eq!(go(100.5), "100.5");
        assert_eq!(go(0.25), "0.25");
        assert_eq!(serde_json::to_string(&O(None)).unwrap(), "null");
    }

    #[test]
    fn percent_v_forms() {
        use super::format_g;
        assert_eq!(format_g(1000.0), "1000");
        assert_eq!(format_g(100000.0), "100000");
        assert_eq!(format_g(1_000_000.0), "1e+06");
        assert_eq!(format_g(10_000_000.0), "1e+07");
        assert_eq!(format_g(100.5), "100.5");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(123456789.0), "1.23456789e+08");
    }
}
