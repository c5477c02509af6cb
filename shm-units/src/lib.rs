//! Sizes, durations and modes the way people write them (`4KiB`, `800ms`, `0640`): parsed into
//! real units and printed back, for the `shm` command's arguments and tables.
//!
//! Start here: [`parse_size`] (and [`format_size`], its way back).

use std::time::Duration;

/// Why a size, offset, duration or mode was refused: the one line to show the user, which
/// names the input and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

impl From<String> for UnitError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// Parses a size: `4096`, `4k`, `4KiB`, `1MiB`, `2M`, `2G`, `1.5GiB`. K, M, G, T are powers
/// of 1024 with or without `iB`; `KB`, `MB`, ... are powers of 1000.
pub fn parse_size(s: &str) -> Result<usize, UnitError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(UnitError(format!(
            "invalid size {s:?}: expected a number with an optional unit, e.g. 4096, 4KiB, 1MiB, 2G"
        )));
    }
    let mult: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(UnitError(format!(
                "invalid size {s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)"
            )));
        }
    };
    let bytes: u128 = if let Some((int, frac)) = num.split_once('.') {
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| format!("invalid size {s:?}"))?
        };
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UnitError(format!("invalid size {s:?}")));
        }
        let scale = 10u128.pow(frac.len() as u32);
        let frac: u128 = frac.parse().map_err(|_| format!("invalid size {s:?}"))?;
        // A fraction of a byte is never a size: 1.5 (bytes) is refused, not rounded to 1. With
        // a larger unit the fraction is of that unit (1.5KiB = 1536), rounded down to a byte.
        if mult == 1 {
            return Err(UnitError(format!(
                "invalid size {s:?}: not a whole number of bytes (1.5KiB is fine, 1.5 is not)"
            )));
        }
        let total = int
            .checked_mul(mult)
            .and_then(|i| i.checked_add(frac * mult / scale));
        total.ok_or_else(|| format!("size {s:?} is too large"))?
    } else {
        let n: u128 = num
            .parse()
            .map_err(|_| format!("size {s:?} is too large"))?;
        n.checked_mul(mult)
            .ok_or_else(|| format!("size {s:?} is too large"))?
    };
    if bytes == 0 {
        return Err(UnitError(format!(
            "invalid size {s:?}: a segment needs at least one byte"
        )));
    }
    usize::try_from(bytes)
        .map_err(|_| UnitError(format!("size {s:?} is too large for this machine")))
}

/// Parses a byte offset or length: like [`parse_size`], but 0 is allowed.
pub fn parse_offset(s: &str) -> Result<usize, UnitError> {
    if s.trim().chars().all(|c| c == '0') && !s.trim().is_empty() {
        return Ok(0);
    }
    parse_size(s).map_err(|e| UnitError(e.0.replace("size", "offset or length")))
}

/// Formats a size with a binary unit: `4.0 KiB`, `12 B`, `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Parses a duration: `800ms`, `1s`, `1.5s`, `2m`, `250us`; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 800ms, 1s, 1.5s, 2m"))?;
    let secs = match unit.trim() {
        "" | "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(UnitError(format!(
                "invalid duration {s:?}: unknown unit {other:?} (use ns, us, ms, s, m, h)"
            )));
        }
    };
    if !secs.is_finite() || secs > 1e9 {
        return Err(UnitError(format!("duration {s:?} is too long")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a permission mode in octal: `0640`, `640`, `0o640`.
pub fn parse_mode(s: &str) -> Result<u32, UnitError> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 && !digits.is_empty() => Ok(m),
        _ => Err(UnitError(format!(
            "invalid mode {s:?}: expected octal permission bits such as 0600 or 0644"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("1KB"), Ok(1000));
        for bad in [
            "",
            "0",
            "-1",
            "abc",
            "4XB",
            "1.",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_offset("0"), Ok(0));
        assert_eq!(format_size(4096), "4.0 KiB");
        assert_eq!(format_size(100), "100 B");
    }

    #[test]
    fn durations_and_modes() {
        assert_eq!(parse_duration("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("01777").is_err());
    }

    /// Properties of the parsers over arbitrary input: they never panic, what they accept is
    /// what was written, and what they refuse says why.
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const UNITS: [(&str, u128); 13] = [
            ("", 1),
            ("B", 1),
            ("k", 1 << 10),
            ("K", 1 << 10),
            ("KiB", 1 << 10),
            ("M", 1 << 20),
            ("MiB", 1 << 20),
            ("GiB", 1 << 30),
            ("TiB", 1 << 40),
            ("KB", 1_000),
            ("MB", 1_000_000),
            ("GB", 1_000_000_000),
            ("TB", 1_000_000_000_000),
        ];

        proptest! {
            #[test]
            fn any_text_is_a_size_or_a_reason(s in "\\PC{0,24}") {
                match parse_size(&s) {
                    Ok(n) => prop_assert!(n > 0, "{s:?} gave 0"),
                    Err(e) => prop_assert!(e.to_string().contains("size") && !e.to_string().contains('\n'), "{e}"),
                }
                let _ = parse_offset(&s);
                let _ = parse_duration(&s);
                let _ = parse_mode(&s);
            }

            #[test]
            fn number_with_unit_is_exact(n in 0u64..=u64::from(u32::MAX), u in 0..UNITS.len(), pad in "[ ]{0,2}") {
                let (unit, mult) = UNITS[u];
                let text = format!("{pad}{n}{pad}{unit}{pad}");
                let bytes = u128::from(n) * mult;
                match parse_size(&text) {
                    Ok(got) => prop_assert_eq!(got as u128, bytes, "{:?}", text),
                    Err(e) => prop_assert!(
                        bytes == 0 || usize::try_from(bytes).is_err(),
                        "{:?} refused: {}", text, e
                    ),
                }
            }

            #[test]
            fn negative_or_zero_is_refused(n in 0u64.., u in 0..UNITS.len()) {
                let unit = UNITS[u].0;
                let negative = format!("-{n}{unit}");
                prop_assert!(parse_size(&negative).is_err(), "{negative:?}");
                let zero = format!("0{unit}");
                prop_assert!(parse_size(&zero).is_err(), "{zero:?}");
            }

            #[test]
            fn printed_sizes_parse_back_within_rounding(n in 1u64..(1 << 50)) {
                let text = format_size(n);
                let back = parse_size(&text).map_err(|e| TestCaseError::fail(e.to_string()))? as u64;
                // One decimal of the unit: off by at most a twentieth of it.
                let unit = if n < 1024 { 1 } else { 1u64 << (10 * ((63 - n.leading_zeros()) / 10)) };
                prop_assert!(back.abs_diff(n) <= unit / 20 + 1, "{n} -> {text} -> {back}");
            }

            #[test]
            fn offsets_accept_zero_and_match_sizes(n in 0u64..=u64::from(u32::MAX)) {
                let text = n.to_string();
                prop_assert_eq!(parse_offset(&text), Ok(n as usize));
            }

            #[test]
            fn modes_are_octal_permission_bits(m in 0u32..0o10000) {
                let text = format!("{m:o}");
                let parsed = parse_mode(&text);
                if m <= 0o777 {
                    prop_assert_eq!(parsed.clone(), Ok(m));
                    prop_assert_eq!(parse_mode(&format!("0{text}")), Ok(m));
                    prop_assert_eq!(parse_mode(&format!("0o{text}")), Ok(m));
                } else {
                    prop_assert!(parsed.is_err(), "{text} accepted");
                }
            }

            #[test]
            fn durations_in_milliseconds_are_exact(ms in 0u64..1_000_000_000) {
                prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
                prop_assert_eq!(parse_duration(&ms.to_string()), Ok(Duration::from_millis(ms)));
                let negative = format!("-{ms}ms");
                prop_assert!(parse_duration(&negative).is_err(), "{negative:?} accepted");
            }
        }
    }
}
