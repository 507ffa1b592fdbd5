//! Checked access to an executor's JSON input, so each executor states its fields once and gets precise `invalid_input` errors.

use core::ops::RangeInclusive;

use serde_json::{Map, Value as Json};

use crate::errors::invalid_input;
use crate::time;

/// The input object of one invocation. The host may or may not have checked
/// it against the executor's schema, so executors check it again here.
pub struct Input {
    members: Map<String, Json>,
}

impl Input {
    /// Accepts a JSON object whose members are all in `allowed` (the schema's
    /// `additionalProperties: false`).
    pub fn new(json: Json, allowed: &[&str]) -> Result<Input, Json> {
        let Json::Object(members) = json else {
            return Err(invalid_input("the input must be a JSON object"));
        };
        if let Some(unknown) = members.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(invalid_input(format!(
                "unknown field {unknown:?}; allowed fields: {}",
                allowed.join(", ")
            )));
        }
        Ok(Input { members })
    }

    /// The member as sent, or `None` if absent.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.members.get(key)
    }

    /// A member that must be present and not null.
    pub fn required(&self, key: &str) -> Result<&Json, Json> {
        match self.members.get(key) {
            None | Some(Json::Null) => Err(invalid_input(format!("{key:?} is required"))),
            Some(v) => Ok(v),
        }
    }

    /// A required string of `chars` characters (Unicode scalar values, as
    /// JSON Schema's `minLength`/`maxLength` and PostgreSQL's `length` count).
    pub fn str(&self, key: &str, chars: RangeInclusive<usize>) -> Result<&str, Json> {
        let Json::String(s) = self.required(key)? else {
            return Err(invalid_input(format!("{key:?} must be a string")));
        };
        let n = s.chars().count();
        if !chars.contains(&n) {
            return Err(invalid_input(format!(
                "{key:?} must have {} to {} characters, it has {n}",
                chars.start(),
                chars.end()
            )));
        }
        Ok(s)
    }

    /// A required integer within `range`. `30.0` counts as an integer, as in
    /// JSON Schema.
    pub fn int(&self, key: &str, range: RangeInclusive<i64>) -> Result<i64, Json> {
        let v = self.required(key)?;
        let n = v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| invalid_input(format!("{key:?} must be an integer")))?;
        if !range.contains(&n) {
            return Err(invalid_input(format!(
                "{key:?} must be between {} and {}, it is {n}",
                range.start(),
                range.end()
            )));
        }
        Ok(n)
    }

    /// A required UUID, returned in canonical lower-case hyphenated form.
    pub fn uuid(&self, key: &str) -> Result<String, Json> {
        let s = self.str(key, 0..=usize::MAX)?;
        canonical_uuid(s).ok_or_else(|| {
            invalid_input(format!(
                "{key:?} must be a UUID like 123e4567-e89b-12d3-a456-426614174000, got {s:?}"
            ))
        })
    }

    /// A required RFC 3339 timestamp, as microseconds since the Unix epoch.
    pub fn time(&self, key: &str) -> Result<i64, Json> {
        let s = self.str(key, 0..=usize::MAX)?;
        time::parse_rfc3339(s).map_err(|e| invalid_input(format!("{key:?}: {e}")))
    }

    /// An optional RFC 3339 timestamp; absent and null both mean "none".
    pub fn opt_time(&self, key: &str) -> Result<Option<i64>, Json> {
        match self.members.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(_) => self.time(key).map(Some),
        }
    }

    /// An optional UUID; absent and null both mean "none".
    pub fn opt_uuid(&self, key: &str) -> Result<Option<String>, Json> {
        match self.members.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(_) => self.uuid(key).map(Some),
        }
    }

    /// An optional integer within `range`; absent and null both mean "none".
    pub fn opt_int(&self, key: &str, range: RangeInclusive<i64>) -> Result<Option<i64>, Json> {
        match self.members.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(_) => self.int(key, range).map(Some),
        }
    }

    /// An optional boolean; absent and null both mean "none".
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, Json> {
        match self.members.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid_input(format!("{key:?} must be true or false"))),
        }
    }

    /// A required JSON object.
    pub fn object(&self, key: &str) -> Result<&Map<String, Json>, Json> {
        match self.required(key)? {
            Json::Object(o) => Ok(o),
            _ => Err(invalid_input(format!("{key:?} must be an object"))),
        }
    }
}

/// `Some(lower-case form)` if `s` is a hyphenated UUID. Checked here rather
/// than left to the host so the caller learns which field was wrong.
fn canonical_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_fields() {
        let input = Input::new(
            json!({"id": "123E4567-e89b-12d3-a456-426614174000", "n": 30.0, "s": "é"}),
            &["id", "n", "s"],
        )
        .unwrap();
        assert_eq!(
            input.uuid("id").unwrap(),
            "123e4567-e89b-12d3-a456-426614174000"
        );
        assert_eq!(input.int("n", 1..=1440).unwrap(), 30);
        assert_eq!(input.str("s", 1..=1).unwrap(), "é");
        assert!(input.int("n", 31..=40).is_err());
        assert!(input.str("missing", 1..=2).is_err());
        assert!(Input::new(json!({"x": 1}), &["id"]).is_err());
        assert!(Input::new(json!([1]), &["id"]).is_err());
    }
}
