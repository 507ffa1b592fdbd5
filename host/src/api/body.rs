//! Request bodies: an optional JSON body (empty means the defaults), and
//! fields that may be left out but, when given, must have their type (null
//! included: a null is refused, as the OpenAPI document says).

use serde::{Deserialize, Deserializer};

use super::problem::ApiError;

/// An optional JSON body: empty (or blank) means the defaults; otherwise
/// an object (serde would also take a struct from an array).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let malformed = |detail: String| ApiError::bad_request("malformed-json", detail);
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(malformed("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
}

/// For `#[serde(default, deserialize_with = "given")]`: a field left out is
/// `None`; one given must be a `T` (not null).
pub fn given<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}
