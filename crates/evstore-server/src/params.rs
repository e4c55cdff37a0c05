//! Request input: the seed's query parameters and JSON bodies, merged ([`Input`]), and the
//! validation of ids and sizes.
//!
//! The seed service takes its parameters in the query string (`POST /orders?user_id=u1`);
//! this server takes them there or in a JSON object body (`{"user_id": "u1"}`), a body field
//! winning over a query parameter of the same name. Anything malformed is a 422 problem.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::money::parse_cents;
use crate::problem::ApiError;

/// Longest id accepted in a path or field (order, user, product ids), in bytes. Stream ids are
/// `Order-{id}`, within the store's 255-byte limit.
pub const MAX_ID_BYTES: usize = 128;
/// Longest free text accepted (a cancel reason), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Most events returned by one read (`limit` is clamped to it).
pub const MAX_PAGE: usize = 1000;
/// Events returned by one read when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;

/// The merged query parameters and JSON body fields of one request.
#[derive(Debug, Default)]
pub struct Input {
    query: HashMap<String, String>,
    body: Map<String, Value>,
}

impl Input {
    /// Merge the query string and the body (empty, or a JSON object).
    ///
    /// # Errors
    /// 422 for a query string that does not decode or a body that is not a JSON object;
    /// 415 for a body of another media type.
    pub fn new(query: &RawQuery, headers: &HeaderMap, body: &Bytes) -> Result<Input, ApiError> {
        let query = parse_query(query.0.as_deref())?;
        let body = json_object(headers, body)?.unwrap_or_default();
        Ok(Input { query, body })
    }

    /// Only the query string (GET requests).
    ///
    /// # Errors
    /// 422 for a query string that does not decode.
    pub fn query_only(query: &RawQuery) -> Result<Input, ApiError> {
        Ok(Input {
            query: parse_query(query.0.as_deref())?,
            body: Map::new(),
        })
    }

    fn raw(&self, name: &str) -> Option<RawValue<'_>> {
        match self.body.get(name) {
            Some(Value::Null) | None => self.query.get(name).map(|s| RawValue::Text(s)),
            Some(Value::String(s)) => Some(RawValue::Text(s)),
            Some(v) => Some(RawValue::Json(v)),
        }
    }

    /// A text field, `None` if absent.
    ///
    /// # Errors
    /// 422 if it is not a string or is longer than `max` bytes.
    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(RawValue::Text(s)) => {
                if s.len() > max {
                    return Err(ApiError::invalid(format!(
                        "{name} is {} bytes long; at most {max}",
                        s.len()
                    )));
                }
                Ok(Some(s.to_string()))
            }
            Some(RawValue::Json(_)) => Err(ApiError::invalid(format!("{name} must be a string"))),
        }
    }

    /// A required id field (see [`validate_id`]).
    ///
    /// # Errors
    /// 422 if missing or invalid.
    pub fn id(&self, name: &str) -> Result<String, ApiError> {
        let v = self
            .text(name, MAX_ID_BYTES)?
            .ok_or_else(|| ApiError::invalid(format!("{name} is required")))?;
        validate_id(name, &v)?;
        Ok(v)
    }

    /// An unsigned integer field, `None` if absent.
    ///
    /// # Errors
    /// 422 if it is not a whole number in range.
    pub fn unsigned(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let bad = || ApiError::invalid(format!("{name} must be a whole number ≥ 0"));
        match self.raw(name) {
            None => Ok(None),
            Some(RawValue::Text(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
            Some(RawValue::Json(Value::Number(n))) => n.as_u64().map(Some).ok_or_else(bad),
            Some(RawValue::Json(_)) => Err(bad()),
        }
    }

    /// A signed integer field, `None` if absent.
    ///
    /// # Errors
    /// 422 if it is not a whole number in range.
    pub fn signed(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let bad = || ApiError::invalid(format!("{name} must be a whole number"));
        match self.raw(name) {
            None => Ok(None),
            Some(RawValue::Text(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad()),
            Some(RawValue::Json(Value::Number(n))) => n.as_i64().map(Some).ok_or_else(bad),
            Some(RawValue::Json(_)) => Err(bad()),
        }
    }

    /// A money field in major units (`"12.50"` or the JSON number `12.5`), in exact cents.
    ///
    /// # Errors
    /// 422 if it is not an exact decimal amount (see [`parse_cents`]).
    pub fn money(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let text = match self.raw(name) {
            None => return Ok(None),
            Some(RawValue::Text(s)) => s.to_string(),
            // serde_json prints a number back with the shortest digits that read as the same
            // value: the digits the client wrote for any amount of up to 15 digits.
            Some(RawValue::Json(Value::Number(n))) => n.to_string(),
            Some(RawValue::Json(_)) => {
                return Err(ApiError::invalid(format!(
                    "{name} must be a decimal amount such as \"12.50\""
                )))
            }
        };
        parse_cents(&text)
            .map(Some)
            .map_err(|m| ApiError::invalid(format!("{name}: {m}")))
    }

    /// A `limit` parameter: [`DEFAULT_PAGE`] if absent, at most [`MAX_PAGE`].
    ///
    /// # Errors
    /// 422 if it is not a whole number from 1 to [`MAX_PAGE`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.unsigned("limit")? {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE as u64).contains(&n) => Ok(n as usize),
            Some(n) => Err(ApiError::invalid(format!(
                "limit must be from 1 to {MAX_PAGE}, got {n}"
            ))),
        }
    }
}

/// Decode a query string (`application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte)
/// strictly: a name or value whose bytes are not UTF-8 is refused, never replaced with U+FFFD.
/// A repeated name keeps its last value.
///
/// # Errors
/// 422 for a malformed escape or bytes that are not UTF-8.
pub fn parse_query(raw: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode_component(name)?, decode_component(value)?);
    }
    Ok(out)
}

fn decode_component(s: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "bad query string: {s:?} is not percent-encoded UTF-8"
        ))
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

enum RawValue<'a> {
    Text(&'a str),
    Json(&'a Value),
}

/// The body as a JSON object; `None` for an empty body or `null`.
///
/// # Errors
/// 415 for a body whose content type is neither absent nor JSON; 422 for one that is not a
/// JSON object.
pub fn json_object(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<Map<String, Value>>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("bodies are JSON (application/json), not {essence:?}"),
            ));
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        // `null` (what some clients send for "no body") is no fields.
        Ok(Value::Null) => Ok(None),
        Ok(_) => Err(ApiError::invalid("the body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// An id (order, user, product): 1 to [`MAX_ID_BYTES`] bytes, no control characters, no
/// leading or trailing whitespace.
///
/// # Errors
/// 422 naming `what` and the rule broken.
pub fn validate_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ApiError::invalid(format!(
            "{what} is {} bytes long; at most {MAX_ID_BYTES}",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) || id.trim() != id {
        return Err(ApiError::invalid(format!(
            "{what} must not contain control characters or surrounding spaces"
        )));
    }
    Ok(())
}

/// A stream id or event type as the store takes them: 1 to 255 bytes, no control characters.
///
/// # Errors
/// 422 naming `what` and the rule broken.
pub fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::invalid(format!(
            "{what} must be 1 to 255 bytes long, got {}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_strictly() {
        let q = parse_query(Some("a=1&b=x+y&c=%41%42&a=2&flag&&d=")).unwrap();
        assert_eq!(q["a"], "2");
        assert_eq!(q["b"], "x y");
        assert_eq!(q["c"], "AB");
        assert_eq!(q["flag"], "");
        assert_eq!(q["d"], "");
        assert_eq!(parse_query(Some("u=%C3%A9")).unwrap()["u"], "é");
        assert!(parse_query(None).unwrap().is_empty());
        for bad in ["u=%FF", "u=%4", "u=%", "u=%ZZ", "%FF=1", "u=%C3"] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
