//! Rules of the old API's answers that this service keeps, each as the old code computed it:
//! JavaScript's truthiness and number writing, `hideNullValues`, a recipe's names merged with
//! their comments, and `basic.dateReadable`.

use serde::Serialize;
use serde_json::{Map, Value};

/// A `Value` written without its null members and null array elements (`hideNullValues=true`),
/// at any depth, without copying it.
pub(super) struct NoNulls<'v>(pub(super) &'v Value);

impl Serialize for NoNulls<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m.iter().filter(|(_, v)| !v.is_null()) {
                    map.serialize_entry(k, &NoNulls(v))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(None)?;
                for v in items.iter().filter(|v| !v.is_null()) {
                    seq.serialize_element(&NoNulls(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// JavaScript's truthiness, which the old API's `||` defaults went by.
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// An ingredient's name with its comment, as the old names-only answers merged them: "ground"
/// and meat cuts go before the name, "extra virgin" before an oil (the rest of the comment
/// after it), anything else after a comma. `None`: no comment, the name stays.
pub(super) fn merged_ingredient(ingredient: &str, comment: &str) -> Option<String> {
    if comment.trim().is_empty() {
        return None;
    }
    Some(
        if comment.contains("ground") && !ingredient.contains("ground") {
            format!("{comment} {ingredient}")
        } else if comment.contains("virgin") && ingredient.contains("oil") {
            let (virgin, other): (Vec<&str>, Vec<&str>) = comment
                .split(' ')
                .partition(|w| w.contains("virgin") || w.contains("extra"));
            match other.is_empty() {
                true => format!("{} {ingredient}", virgin.join(" ")),
                false => format!("{} {ingredient}, {}", virgin.join(" "), other.join(" ")),
            }
        } else if comment.contains("boneless") || comment.contains("skinless") {
            format!("{comment} {ingredient}")
        } else {
            format!("{ingredient}, {comment}")
        },
    )
}

/// `basic.dateReadable` as the old API wrote it on listed records: `basic.date` taken as
/// seconds, as JavaScript's `new Date(date * 1000).toDateString()` gives it in UTC. A date that
/// is not there or falsy gives none.
pub(super) fn date_readable(data: &Map<String, Value>) -> Option<String> {
    let date = data.get("basic")?.get("date")?;
    if !truthy(date) {
        return None;
    }
    let secs = match date {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => number_of(s),
        Value::Bool(_) => 1.0,
        _ => f64::NAN,
    };
    Some(date_string((secs * 1000.0).trunc()))
}

/// JavaScript's `Number(text)` for the decimal forms a date is written in.
fn number_of(text: &str) -> f64 {
    let t = text.trim();
    match t {
        "" => 0.0,
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b)) =>
        {
            t.parse().unwrap_or(f64::NAN)
        }
        _ => f64::NAN,
    }
}

/// `Date.prototype.toDateString` in UTC for `ms` since the epoch ("Tue Nov 14 2023").
fn date_string(ms: f64) -> String {
    const MAX_MS: f64 = 8.64e15;
    if !ms.is_finite() || ms.abs() > MAX_MS {
        return "Invalid Date".into();
    }
    let days = (ms / 86_400_000.0).floor() as i64;
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = match year {
        y if y < 0 => format!("-{:04}", -y),
        y => format!("{y:04}"),
    };
    format!("{weekday} {} {day:02} {year}", MONTHS[month as usize - 1])
}

/// A number as JavaScript writes it: a whole number without a fraction.
pub(super) fn js_number(n: f64) -> Value {
    match n.fract() == 0.0 && n.abs() < 9.0e15 {
        true => (n as i64).into(),
        false => n.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn date_readable_is_what_the_old_api_wrote() {
        let readable =
            |date: Value| date_readable(json!({"basic": {"date": date}}).as_object().unwrap());
        let cases = [
            (json!(1700000000), Some("Tue Nov 14 2023")),
            (json!("1700000000"), Some("Tue Nov 14 2023")),
            (json!(1736035200), Some("Sun Jan 05 2025")),
            (json!(0), None),
            (json!(""), None),
            (json!("0"), Some("Thu Jan 01 1970")),
            (json!(1700000000000u64), Some("Sun Nov 08 55840")),
            (json!(17000000000000u64), Some("Invalid Date")),
            (json!("abc"), Some("Invalid Date")),
            (json!("2024-01-01"), Some("Invalid Date")),
            (json!(-1), Some("Wed Dec 31 1969")),
            (json!(-62198755200i64), Some("Fri Jan 01 -0001")),
            (json!(951782400), Some("Tue Feb 29 2000")),
        ];
        for (date, expected) in cases {
            assert_eq!(readable(date.clone()).as_deref(), expected, "{date}");
        }
        assert_eq!(
            date_readable(json!({"basic": {}}).as_object().unwrap()),
            None
        );
    }

    #[test]
    fn ingredient_comments_merge_as_the_old_names_only_answers() {
        let cases = [
            ("garlic", "minced", Some("garlic, minced")),
            (
                "black pepper",
                "freshly ground",
                Some("freshly ground black pepper"),
            ),
            ("ground beef", "ground", Some("ground beef, ground")),
            ("olive oil", "extra virgin", Some("extra virgin olive oil")),
            (
                "olive oil",
                "extra virgin, divided",
                Some("extra virgin, olive oil, divided"),
            ),
            ("Olive Oil", "extra virgin", Some("Olive Oil, extra virgin")),
            (
                "chicken breast",
                "boneless skinless",
                Some("boneless skinless chicken breast"),
            ),
            ("garlic", " minced ", Some("garlic,  minced ")),
            ("sea salt", "", None),
            ("sea salt", "   ", None),
        ];
        for (ingredient, comment, expected) in cases {
            assert_eq!(merged_ingredient(ingredient, comment).as_deref(), expected);
        }
    }

    #[test]
    fn nulls_are_left_out_at_any_depth_and_nothing_else() {
        let v = json!({"a": null, "b": [1, null, {"c": null, "e": []}], "f": {}, "g": 0, "h": "", "i": false});
        assert_eq!(
            serde_json::to_value(NoNulls(&v)).unwrap(),
            json!({"b": [1, {"e": []}], "f": {}, "g": 0, "h": "", "i": false})
        );
    }
}
