//! Kubernetes resource quantities (`500m`, `0.5`, `64Mi`, `1G`, `1e3`) parsed into exact integers
//! the way k8s.io/apimachinery/pkg/api/resource parses them: fixed point, no floats, non-zero values
//! rounded up (away from zero) to the nearest 10^-9, magnitudes capped at 2^63-1.
//!
//! This module owns the number format only; it does not know which resource a quantity is for and
//! must not decide what is a valid request or limit.

/// The message the API server gives for a string that is not a quantity.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const NANOS_PER_UNIT: u128 = 1_000_000_000;
/// Quantities hold at most 2^63-1 whole units; larger values are capped, as Kubernetes does.
const MAX_NANOS: u128 = (i64::MAX as u128) * NANOS_PER_UNIT;
/// Digits kept below the nano position before scaling by a binary suffix (2^60 < 10^19); anything
/// further down only decides whether the value rounds up.
const GUARD_DIGITS: i128 = 40;

/// A parsed quantity, exact to 10^-9.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParsedQuantity {
    nanos: i128,
}

impl ParsedQuantity {
    /// The value in units of 10^-9.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// The value in thousandths (millicores for `cpu`), rounded away from zero like `MilliValue()`.
    pub fn milli_value(self) -> i128 {
        div_away_from_zero(self.nanos, 1_000_000)
    }

    /// The value in whole units (bytes for `memory`), rounded away from zero like `Value()`.
    pub fn value(self) -> i128 {
        div_away_from_zero(self.nanos, 1_000_000_000)
    }

    /// True for values below zero.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// True for zero.
    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }
}

fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else {
        q + n.signum()
    }
}

/// Parses a quantity; `None` when the string is not one. Surrounding whitespace is ignored, as the
/// API server's JSON decoding ignores it.
pub fn parse_quantity(text: &str) -> Option<ParsedQuantity> {
    let parts = split(text.trim())?;
    let (decimal_exp, binary_exp) = interpret_suffix(parts.suffix)?;
    let magnitude = magnitude_nanos(&parts, decimal_exp, binary_exp);
    let nanos = i128::try_from(magnitude).ok()?;
    Some(ParsedQuantity {
        nanos: if parts.negative { -nanos } else { nanos },
    })
}

/// The pieces of `[sign]digits[.digits][suffix]`.
struct Parts<'a> {
    negative: bool,
    int_digits: &'a str,
    frac_digits: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Option<Parts<'_>> {
    if s.is_empty() {
        return None;
    }
    let (negative, rest) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => (false, s),
    };
    let int_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (int_digits, rest) = rest.split_at(int_end);
    let (frac_digits, suffix) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            after_dot.split_at(end)
        }
        None => ("", rest),
    };
    if !is_suffix_shaped(suffix) {
        return None;
    }
    Some(Parts {
        negative,
        int_digits,
        frac_digits,
        suffix,
    })
}

/// `[eEinumkKMGTP]*[-+]?[0-9]*`, the shape the regular expression in the error message allows.
fn is_suffix_shaped(suffix: &str) -> bool {
    let letters_end = suffix
        .find(|c: char| !"eEinumkKMGTP".contains(c))
        .unwrap_or(suffix.len());
    let rest = &suffix[letters_end..];
    let rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    rest.bytes().all(|b| b.is_ascii_digit())
}

/// The suffix as (power of ten, power of two).
fn interpret_suffix(suffix: &str) -> Option<(i128, u32)> {
    let decimal = |e: i128| Some((e, 0));
    let binary = |b: u32| Some((0, b));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            decimal(i128::from(exponent.parse::<i64>().ok()?))
        }
    }
}

/// |value| in nanos, rounded up and capped.
fn magnitude_nanos(parts: &Parts<'_>, decimal_exp: i128, binary_exp: u32) -> u128 {
    let all = format!("{}{}", parts.int_digits, parts.frac_digits);
    let mut digits: Vec<u8> = all.trim_start_matches('0').bytes().map(|b| b - b'0').collect();
    if digits.is_empty() {
        return 0;
    }
    // value = digits * 10^nano_exp nanos
    let frac_len = i128::try_from(parts.frac_digits.len()).unwrap_or(i128::MAX);
    let nano_exp = decimal_exp.saturating_sub(frac_len).saturating_add(9);
    let len = i128::try_from(digits.len()).unwrap_or(i128::MAX);
    if len.saturating_add(nano_exp) > 40 {
        return MAX_NANOS;
    }
    let mut inexact = false;
    let keep = len.saturating_add(nano_exp).saturating_add(GUARD_DIGITS).max(0);
    if keep < len {
        let keep = usize::try_from(keep).unwrap_or(0);
        inexact = digits
            .get(keep..)
            .is_some_and(|tail| tail.iter().any(|&d| d != 0));
        digits.truncate(keep);
    }
    let nano_exp = nano_exp.saturating_add(len - i128::try_from(digits.len()).unwrap_or(0));
    for _ in 0..binary_exp {
        double(&mut digits);
    }
    integer_part_rounded_up(&digits, nano_exp, inexact)
}

/// Multiplies a big-endian decimal digit string by two.
fn double(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

/// ceil(digits * 10^exp), capped at the maximum quantity.
fn integer_part_rounded_up(digits: &[u8], exp: i128, inexact: bool) -> u128 {
    let len = i128::try_from(digits.len()).unwrap_or(i128::MAX);
    let int_len = len.saturating_add(exp);
    if int_len > 30 {
        return MAX_NANOS;
    }
    let int_len = usize::try_from(int_len.max(0)).unwrap_or(0);
    let split = int_len.min(digits.len());
    let (int_part, frac_part) = digits.split_at(split);
    let trailing_zeros = u32::try_from(int_len - split).unwrap_or(0);
    let mut value = int_part.iter().fold(0u128, |acc, &d| acc * 10 + u128::from(d));
    value *= 10u128.pow(trailing_zeros);
    if inexact || frac_part.iter().any(|&d| d != 0) {
        value += 1;
    }
    value.min(MAX_NANOS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> Option<i128> {
        parse_quantity(s).map(ParsedQuantity::nanos)
    }

    #[test]
    fn parses_cpu_quantities_to_millis() {
        for (text, millis) in [
            ("500m", 500),
            ("2", 2000),
            ("0.5", 500),
            ("1.5", 1500),
            ("0.1m", 1),
            ("100u", 1),
            ("1000m", 1000),
            ("+3", 3000),
            (".5", 500),
            ("5.", 5000),
            ("0", 0),
            ("-0.5", -500),
            ("  250m ", 250),
        ] {
            assert_eq!(
                parse_quantity(text).map(ParsedQuantity::milli_value),
                Some(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn parses_memory_quantities_to_bytes() {
        for (text, bytes) in [
            ("64Mi", 64 << 20),
            ("1G", 1_000_000_000),
            ("1e3", 1000),
            ("1E3", 1000),
            ("1.5Gi", 3 << 29),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("123Ki", 125_952),
            ("1k", 1000),
            ("1Ki", 1024),
            ("1Ei", 1 << 60),
            ("1E", 1_000_000_000_000_000_000),
            ("0.5Ki", 512),
            ("1e-3", 1),
            ("12e+2", 1200),
            ("1.1", 2),
        ] {
            assert_eq!(
                parse_quantity(text).map(ParsedQuantity::value),
                Some(bytes),
                "{text}"
            );
        }
    }

    #[test]
    fn rounds_up_to_nanos() {
        assert_eq!(nanos("1n"), Some(1));
        assert_eq!(nanos("0.1n"), Some(1));
        assert_eq!(nanos("-0.1n"), Some(-1));
        assert_eq!(nanos("0.000000000000000000000000000001"), Some(1));
        assert_eq!(nanos("1.0000000001"), Some(1_000_000_001));
        assert_eq!(nanos("0.3Ki"), Some(307_200_000_000));
        assert_eq!(
            nanos("0.0000000000000000000000000000000000000000000000001Ei"),
            Some(1)
        );
    }

    #[test]
    fn caps_at_the_largest_quantity() {
        let max = i128::from(i64::MAX);
        for text in [
            "9223372036854775808",
            "100Ei",
            "1e40",
            "1e999999",
            &"9".repeat(400),
        ] {
            assert_eq!(
                parse_quantity(text).map(ParsedQuantity::value),
                Some(max),
                "{text}"
            );
        }
        assert_eq!(nanos("1e-999999"), Some(1));
        assert_eq!(nanos("0e999999"), Some(0));
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for text in [
            "",
            " ",
            "abc",
            "1KiB",
            "1mi",
            "1e",
            "1e+",
            "1.2.3",
            "--1",
            "1 Gi",
            "0x10",
            "1ee3",
            "٣",
            "1e99999999999999999999",
        ] {
            assert_eq!(parse_quantity(text), None, "{text:?}");
        }
    }

    #[test]
    fn accepts_the_odd_forms_kubernetes_accepts() {
        // parseQuantityString reads a missing number as zero ("-", ".", "Mi") and allows "1.", ".5".
        for (text, value) in [
            ("-", 0),
            ("+", 0),
            (".", 0),
            ("Mi", 0),
            ("m", 0),
            ("0Mi", 0),
            ("00012", 12),
        ] {
            assert_eq!(
                parse_quantity(text).map(ParsedQuantity::value),
                Some(value),
                "{text}"
            );
        }
    }

    #[test]
    fn orders_by_value() {
        let a = parse_quantity("1").unwrap_or_default();
        let b = parse_quantity("1001m").unwrap_or_default();
        assert!(a < b);
        assert!(parse_quantity("-1").is_some_and(ParsedQuantity::is_negative));
        assert!(parse_quantity("0m").is_some_and(ParsedQuantity::is_zero));
    }
}
