//! Go's `fmt` number verbs that `calicoctl ipam show` uses: `%.5g` for address counts and
//! `%.f` for percentages. Both round the exact binary value half to even, as Rust's
//! formatting does, so only the layout needs reproducing.

/// `fmt.Sprintf("%.5g", x)`: 5 significant digits, trailing zeros dropped, exponent form
/// (`2.6214e+05`) when the exponent is < -4 or ≥ 5.
pub fn g5(x: f64) -> String {
    g(x, 5)
}

/// `fmt.Sprintf("%.<prec>g", x)`.
pub fn g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    let e_form = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = e_form.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `fmt.Sprintf("%.f", x)`: no decimals, ties to even.
pub fn f0(x: f64) -> String {
    format!("{x:.0}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g5_matches_go() {
        assert_eq!(g5(16384.0), "16384");
        assert_eq!(g5(65536.0), "65536");
        assert_eq!(g5(262144.0), "2.6214e+05");
        assert_eq!(g5(2f64.powi(80)), "1.2089e+24");
        assert_eq!(g5(100000.0), "1e+05");
        assert_eq!(g5(99999.0), "99999");
        assert_eq!(g5(999995.0), "1e+06");
        assert_eq!(g5(256.0), "256");
        assert_eq!(g5(5.0), "5");
        assert_eq!(g5(0.0), "0");
        assert_eq!(g5(0.5), "0.5");
        assert_eq!(g5(0.00001), "1e-05");
    }

    #[test]
    fn percent_f_rounds_half_to_even_like_go() {
        assert_eq!(f0(0.5), "0");
        assert_eq!(f0(1.5), "2");
        assert_eq!(f0(2.5), "2");
        assert_eq!(f0(93.75), "94");
        assert_eq!(f0(12.5), "12");
        assert_eq!(f0(100.0 * 5.0 / 65536.0), "0");
        assert_eq!(f0(100.0 * 15381.0 / 16384.0), "94");
        assert_eq!(f0(100.0 * 1003.0 / 16384.0), "6");
    }
}
