//! Exact money: decimal strings (`"12.50"`, `"3"`, `"1e2"`) to integer cents and back.
//! Never through floating point; amounts with a non-zero part below one cent are refused.

/// Parse a decimal amount in major units into cents, exactly.
///
/// Accepts an optional sign, digits with at most one `.`, and an optional exponent
/// (`e`/`E`, as JSON numbers may be written). Digits beyond the cent must be zeros
/// (`"12.500"` is 1250 cents, `"12.505"` is refused).
///
/// ```
/// use evstore_server::money::{format_cents, parse_cents};
/// assert_eq!(parse_cents("12.50"), Ok(1250));
/// assert_eq!(parse_cents("0.1"), Ok(10));
/// assert_eq!(parse_cents("1e2"), Ok(10_000));
/// assert!(parse_cents("0.125").is_err());
/// assert_eq!(format_cents(-5), "-0.05");
/// ```
///
/// # Errors
/// A message for people: not a number, a sub-cent amount, or more than `i64` cents.
pub fn parse_cents(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a decimal amount (e.g. \"12.50\")");
    let s = text.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // All digits, and where the decimal point sits after applying the exponent, plus two
    // places for cents.
    let digits: String = format!("{int_part}{frac_part}");
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| bad())?;
    let point = i64::from(exponent) - frac_len + 2; // cents = digits × 10^point
    let digits = digits.trim_start_matches('0');
    let too_big = || format!("{text:?} is too large (at most {} cents)", i64::MAX);
    let cents: i64 = if digits.is_empty() {
        0
    } else if point >= 0 {
        if point > 19 {
            return Err(too_big());
        }
        let base: i64 = digits.parse().map_err(|_| too_big())?;
        let point = u32::try_from(point).map_err(|_| too_big())?;
        base.checked_mul(10_i64.pow(point)).ok_or_else(too_big)?
    } else {
        let cut = usize::try_from(-point).map_err(|_| bad())?;
        let (keep, dropped) = if cut >= digits.len() {
            ("", digits)
        } else {
            digits.split_at(digits.len() - cut)
        };
        if dropped.bytes().any(|b| b != b'0') {
            return Err(format!(
                "{text:?} has a fraction of a cent; amounts are exact to the cent"
            ));
        }
        if keep.is_empty() {
            0
        } else {
            keep.parse().map_err(|_| too_big())?
        }
    };
    Ok(if negative { -cents } else { cents })
}

/// Cents as a decimal string in major units with two places: `1250` → `"12.50"`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_are_exact() {
        assert_eq!(parse_cents("12.5"), Ok(1250));
        assert_eq!(parse_cents("12.500"), Ok(1250));
        assert_eq!(parse_cents(".5"), Ok(50));
        assert_eq!(parse_cents("7."), Ok(700));
        assert_eq!(parse_cents("-0.01"), Ok(-1));
        assert_eq!(parse_cents("0"), Ok(0));
        assert_eq!(parse_cents("1.5e1"), Ok(1500));
        assert_eq!(parse_cents("125E-2"), Ok(125));
        assert_eq!(parse_cents("92233720368547758.07"), Ok(i64::MAX));
        for bad in [
            "",
            ".",
            "-",
            "1.2.3",
            "abc",
            "1,5",
            "0x10",
            "1e",
            "12.345",
            "1e-3",
            "92233720368547758.08",
            "1e30",
            "NaN",
            "inf",
        ] {
            assert!(parse_cents(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for c in [0, 1, 99, 100, 1250, -1, -250, i64::MAX, i64::MIN + 1] {
            assert_eq!(parse_cents(&format_cents(c)), Ok(c));
        }
        assert_eq!(format_cents(1250), "12.50");
    }
}
