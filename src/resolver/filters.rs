//! The old API's filters that ran after its `resolveRecords` (`exerciseNames`, `exerciseDIDs`,
//! `ingredientNames`, `hasAudio`): they read what resolution put in place of DIDs, names or
//! records, so a query by DID applies them to the records resolved here, and a listing naming
//! one is answered whole by the indexer, which filters its own. Their rules are the old ones:
//! names compared lower-cased and whole, a score of matches plus a bonus for their order, the
//! matches sorted best first.

use serde_json::{Map, Value};

use super::old_rules::{js_number, truthy};

/// The filters a query asks for; empty when it asks for none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AfterResolution {
    /// `exerciseNames` with `recordType=workout`: the names asked for, lower-cased.
    exercise_names: Option<Vec<String>>,
    /// `exerciseDIDs` with `recordType=workout`.
    exercise_dids: Option<Vec<String>>,
    /// `ingredientNames` with `recordType=recipe`: the names asked for, lower-cased.
    ingredient_names: Option<Vec<String>>,
    /// `hasAudio`, as given.
    has_audio: Option<String>,
}

/// What the query's parameters say, by their old names.
pub struct Asked<'q> {
    pub record_type: Option<&'q str>,
    pub exercise_names: Option<&'q str>,
    pub exercise_dids: Option<&'q str>,
    pub ingredient_names: Option<&'q str>,
    pub has_audio: Option<&'q str>,
}

impl AfterResolution {
    pub fn from_query(q: Asked) -> Self {
        let list = |v: Option<&str>, of: &str, lower: bool| {
            v.filter(|v| !v.is_empty() && q.record_type == Some(of))
                .map(|v| {
                    v.split(',')
                        .map(|n| match lower {
                            true => n.trim().to_lowercase(),
                            false => n.trim().to_string(),
                        })
                        .collect()
                })
        };
        Self {
            exercise_names: list(q.exercise_names, "workout", true),
            exercise_dids: list(q.exercise_dids, "workout", false),
            ingredient_names: list(q.ingredient_names, "recipe", true),
            has_audio: q.has_audio.filter(|v| !v.is_empty()).map(String::from),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Leaves out what the old query itself left out before resolving: with `hasAudio` other
    /// than `true`, records whose `post` or `basic` holds `audioItems`.
    pub fn listed(&self, record: &Value) -> bool {
        let Some(wanted) = &self.has_audio else {
            return true;
        };
        let holds = |category: &str| {
            record["data"][category]
                .get("audioItems")
                .is_some_and(|a| !a.is_null() && a.as_array().is_none_or(|a| !a.is_empty()))
        };
        wanted == "true" || !(holds("post") || holds("basic"))
    }

    /// The records the filters keep, scored and sorted as the old API did.
    pub fn apply(&self, mut records: Vec<Value>) -> Vec<Value> {
        let workout = |r: &Value| r["oip"]["recordType"] == "workout";
        let recipe = |r: &Value| r["oip"]["recordType"] == "recipe";
        if let Some(asked) = &self.exercise_names {
            records = scored(
                records,
                workout,
                ("workout", "exercise"),
                asked,
                name,
                "exercise",
            );
        }
        if let Some(asked) = &self.exercise_dids {
            records = scored(
                records,
                workout,
                ("workout", "exercise"),
                asked,
                did,
                "exercise",
            );
        }
        if let Some(asked) = &self.ingredient_names {
            records = scored(
                records,
                recipe,
                ("recipe", "ingredient"),
                asked,
                name,
                "ingredient",
            );
        }
        if let Some(value) = &self.has_audio {
            let inverted = value == "false";
            records.retain(|r| has_audio(r) != inverted);
        }
        records
    }
}

/// An element's name, lower-cased: the string itself, or a resolved record's `basic.name`.
fn name(element: &Value) -> Option<String> {
    let text = match element {
        Value::String(s) => Some(s.as_str()),
        Value::Object(_) => element["data"]["basic"]["name"]
            .as_str()
            .or(element["name"].as_str()),
        _ => None,
    };
    text.filter(|t| !t.is_empty()).map(str::to_lowercase)
}

/// An element's DID: the string itself, or a resolved record's `oip.didTx` (else `did`).
fn did(element: &Value) -> Option<String> {
    let text = match element {
        Value::String(s) if s.starts_with("did:arweave:") || s.starts_with("did:gun:") => {
            Some(s.as_str())
        }
        Value::Object(_) => element["oip"]["didTx"].as_str().or(element["did"].as_str()),
        _ => None,
    };
    text.filter(|t| !t.is_empty()).map(String::from)
}

/// The records of `kind` whose `field` holds at least one of `asked`, each given
/// `<prefix>Score` (the share matched, plus 0.1 per match found after the previous one, over
/// the number asked) and `<prefix>MatchedCount`, best first.
fn scored(
    records: Vec<Value>,
    kind: impl Fn(&Value) -> bool,
    (category, key): (&str, &str),
    asked: &[String],
    read: fn(&Value) -> Option<String>,
    prefix: &str,
) -> Vec<Value> {
    let mut kept: Vec<(f64, usize, Value)> = records
        .into_iter()
        .filter(|r| kind(r))
        .filter_map(|mut record| {
            let held: Vec<String> = record["data"][category][key]
                .as_array()?
                .iter()
                .filter_map(read)
                .collect();
            let matched = asked.iter().filter(|a| held.contains(a)).count();
            if matched == 0 {
                return None;
            }
            let (mut bonus, mut last) = (0.0, -1i64);
            for a in asked {
                let found = held.iter().position(|h| h == a).map_or(-1, |i| i as i64);
                if found > last {
                    bonus += 0.1;
                    last = found;
                }
            }
            let n = asked.len() as f64;
            let score = matched as f64 / n + bonus / n;
            let fields = record.as_object_mut()?;
            fields.insert(format!("{prefix}Score"), js_number(score));
            fields.insert(format!("{prefix}MatchedCount"), matched.into());
            Some((score, matched, record))
        })
        .collect();
    kept.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    kept.into_iter().map(|(_, _, r)| r).collect()
}

/// Whether one of a record's categories holds audio: `audioItems` (or `post.audioItems`) with
/// a resolved item that has a URL, or a `webUrl` on the web.
fn has_audio(record: &Value) -> bool {
    let Some(categories) = record["data"].as_object() else {
        return false;
    };
    let with_url = |items: &Value| {
        items.as_array().is_some_and(|items| {
            items.iter().any(|i| {
                truthy(&i["data"]["audio"]["webUrl"])
                    || truthy(&i["data"]["associatedURLOnWeb"]["url"])
            })
        })
    };
    categories.values().any(|item| {
        let Value::Object(fields) = item else {
            return false;
        };
        if let Some(items) = fields.get("audioItems").filter(|v| truthy(v)) {
            return with_url(items);
        }
        if let Some(items) = item["post"].get("audioItems").filter(|v| truthy(v)) {
            return with_url(items);
        }
        web_url(fields)
    })
}

fn web_url(fields: &Map<String, Value>) -> bool {
    match fields.get("webUrl") {
        Some(Value::String(url)) => url.contains("http"),
        Some(Value::Array(items)) => items.iter().any(|i| i == "http"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn asked<'q>(record_type: &'q str) -> Asked<'q> {
        Asked {
            record_type: Some(record_type),
            exercise_names: None,
            exercise_dids: None,
            ingredient_names: None,
            has_audio: None,
        }
    }

    fn workout(name: &str, exercises: Value) -> Value {
        json!({"data": {"basic": {"name": name}, "workout": {"exercise": exercises}},
               "oip": {"recordType": "workout"}})
    }

    #[test]
    fn exercise_names_score_matches_and_their_order_best_first() {
        let f = AfterResolution::from_query(Asked {
            exercise_names: Some("Pull-up, Push-up"),
            ..asked("workout")
        });
        let push = json!({"data": {"basic": {"name": "Push-up"}}, "oip": {}});
        let records = vec![
            workout("a", json!([push, "Row", "pull-up"])),
            workout("b", json!(["did:gun:x:1", "Squat"])),
            workout("c", json!(["Pull-up", {"name": "Push-Up"}])),
        ];
        let kept = f.apply(records);
        let names: Vec<&str> = kept
            .iter()
            .map(|r| r["data"]["basic"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["c", "a"],
            "in order beats out of order; no match is left out"
        );
        assert_eq!(kept[0]["exerciseScore"], json!(1.1));
        assert_eq!(kept[1]["exerciseScore"], json!(1.05));
        assert_eq!(kept[1]["exerciseMatchedCount"], json!(2));
        let one = AfterResolution::from_query(Asked {
            exercise_names: Some("Row"),
            ..asked("workout")
        });
        assert_eq!(
            one.apply(vec![workout("r", json!(["Row"]))])[0]["exerciseScore"],
            json!(1.1)
        );
        // Written as JavaScript writes numbers: a whole score has no fraction.
        assert_eq!(js_number(2.0).to_string(), "2");
        assert_eq!(js_number(1.05).to_string(), "1.05");
    }

    #[test]
    fn filters_apply_only_with_their_record_type() {
        let f = AfterResolution::from_query(Asked {
            exercise_names: Some("Row"),
            ..asked("recipe")
        });
        assert!(
            f.is_empty(),
            "exerciseNames needs recordType=workout, as before"
        );
        let f = AfterResolution::from_query(Asked {
            ingredient_names: Some("garlic"),
            ..asked("recipe")
        });
        let recipe = |i: Value| json!({"data": {"recipe": {"ingredient": i}}, "oip": {"recordType": "recipe"}});
        assert_eq!(
            f.apply(vec![recipe(json!(["garlic, minced"]))]).len(),
            0,
            "names compare whole"
        );
        assert_eq!(f.apply(vec![recipe(json!(["Garlic"]))]).len(), 1);
    }

    #[test]
    fn exercise_dids_match_strings_and_resolved_records() {
        let f = AfterResolution::from_query(Asked {
            exercise_dids: Some("did:gun:x:1"),
            ..asked("workout")
        });
        let resolved = json!({"oip": {"didTx": "did:gun:x:1"}, "data": {}});
        assert_eq!(f.apply(vec![workout("a", json!([resolved]))]).len(), 1);
        assert_eq!(f.apply(vec![workout("b", json!(["did:gun:x:1"]))]).len(), 1);
        assert_eq!(f.apply(vec![workout("c", json!(["did:gun:x:2"]))]).len(), 0);
    }

    #[test]
    fn has_audio_reads_resolved_items_and_web_urls_and_false_inverts() {
        let with = |v: &str| {
            AfterResolution::from_query(Asked {
                has_audio: Some(v),
                ..asked("")
            })
        };
        let audio = json!({"data": {"post": {"audioItems": [{"data": {"audio": {"webUrl": "https://a"}}}]}}});
        let unresolved = json!({"data": {"post": {"audioItems": ["did:gun:x:a"]}}});
        let video = json!({"data": {"video": {"webUrl": "https://v.mp4"}}});
        let plain = json!({"data": {"basic": {"name": "n"}, "notes": null}});
        let kept = with("true").apply(vec![
            audio.clone(),
            unresolved.clone(),
            video.clone(),
            plain.clone(),
        ]);
        assert_eq!(kept, [audio.clone(), video.clone()]);
        let without = with("false").apply(vec![audio.clone(), plain.clone()]);
        assert_eq!(without.len(), 1);
        assert_eq!(without[0], plain);
        assert!(
            !with("false").listed(&audio),
            "the old query left these out before resolving"
        );
        assert!(with("true").listed(&audio));
        assert!(with("false").listed(&plain));
    }
}
