//! Go's `encoding/json` form of a `float64`, for fields such as a policy's `order`: a whole
//! number is written without a fraction (`1000`, not Rust's `1000.0`), others in their shortest
//! form (`100.5`); Go switches to exponent form below 1e-6 and from 1e21, as `ryu` does.

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
}
