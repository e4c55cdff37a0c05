//! Formatting helpers of the CLI: escaping text for a terminal, exact decimal prices, money,
//! numbers, rates, times, base64, and decoding stored events into readable fields.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::json::{quote, Json};
use evstore::aggregate::EventMetadata;
use evstore::codec::{self, Codec};
use evstore::repository::Repository;
use evstore::EventStorage;
use evstore::{RecordedEvent, Store};
use evstore_orders::{upcasters, Order, OrderEvent};

/// `text` made safe to print for a person: every control character and every other character
/// that does not print visibly (line and paragraph separators, bidi overrides and other format
/// characters, unassigned code points...) becomes a visible escape as Rust's `escape_debug`
/// writes it (`\n`, `\t`, `\0`, `\u{1b}`, `\u{202e}`), so a stream id, event type, payload,
/// path or error message taken from a file or the command line can neither break a line,
/// fake another one, nor drive the terminal. Everything else, backslashes and quotes included,
/// is kept as is, so text that is already escaped (a `{:?}`-quoted name in an error message, a
/// JSON-quoted field) passes unchanged: escaping twice is escaping once.
///
/// This is the one escaping rule of the CLI's text output: every line written for a person
/// goes through it (`cli::line`, and `cli::report` for stderr). `--json` output is not
/// escaped again (it is valid JSON already).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `escape` replaces `c`: ASCII control characters, and the non-ASCII characters that
/// Rust's `str::escape_debug` escapes inside a string (it leaves combining marks alone there,
/// which `char::escape_debug` on its own would escape).
fn needs_escape(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    let mut buf = [0u8; 8];
    buf[0] = b'a';
    let n = c.encode_utf8(&mut buf[1..]).len();
    match std::str::from_utf8(&buf[..=n]) {
        // After a first character, `str::escape_debug` yields `c` itself unless it escapes it.
        Ok(pair) => pair.escape_debug().nth(1) != Some(c),
        Err(_) => true,
    }
}

/// Parse a non-negative decimal price in major units ("12", "12.5", "12.50") into cents,
/// exactly (never through a float). More than two decimals are refused unless they are zeros
/// ("12.500" is 1250; "12.505" is an error).
pub fn parse_price_cents(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "invalid price {text:?}: expected a non-negative decimal amount like 12, 12.5 or 12.50"
        )
    };
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut cents: i64 = 0;
    let too_large = || format!("invalid price {text:?}: too large");
    for b in int_part.bytes() {
        cents = cents
            .checked_mul(10)
            .and_then(|c| c.checked_add(i64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    let frac = frac_part.unwrap_or("");
    if frac_part.is_some() && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    if frac.len() > 2 && frac.bytes().skip(2).any(|b| b != b'0') {
        return Err(format!(
            "invalid price {text:?}: prices are exact to the cent (at most 2 decimal places)"
        ));
    }
    let mut digits = frac.bytes().chain(std::iter::repeat(b'0')).take(2);
    for _ in 0..2 {
        let d = digits.next().unwrap_or(b'0');
        cents = cents
            .checked_mul(10)
            .and_then(|c| c.checked_add(i64::from(d - b'0')))
            .ok_or_else(too_large)?;
    }
    Ok(cents)
}

/// Cents as a decimal amount: `1250` → `12.50`, `-5` → `-0.05`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Events (or anything counted) per second over `elapsed`, rounded down; an elapsed time
/// of zero counts as one nanosecond.
pub fn per_second(count: u64, elapsed: Duration) -> u64 {
    let rate = u128::from(count) * 1_000_000_000 / elapsed.as_nanos().max(1);
    u64::try_from(rate).unwrap_or(u64::MAX)
}

/// Bytes in a human unit: `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A timestamp as RFC 3339 with microseconds, UTC (`2026-05-01T10:00:00.123456Z`).
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A payload that describes itself, as a JSON value: one whose metadata envelope names
/// JSON or MessagePack (the codec of events written through a repository), or, without an
/// envelope, one that is valid JSON. `None` for legacy bincode payloads and opaque bytes,
/// which are shown as base64.
fn generic_payload(e: &RecordedEvent) -> Option<serde_json::Value> {
    if e.data.is_empty() {
        return None;
    }
    if e.metadata.is_empty() {
        return serde_json::from_slice(&e.data).ok();
    }
    let (_, payload_codec) = EventMetadata::decode_with_codec(&e.metadata).ok()?;
    match payload_codec {
        Codec::Json | Codec::MessagePack => codec::decode_as(payload_codec, &e.data).ok(),
        _ => None,
    }
}

/// Decodes stored events of the Order domain (upcasting old schemas) into readable fields.
pub struct EventDecoder<'a, S: EventStorage = Store> {
    repo: Repository<Order, &'a S>,
}

impl<'a, S: EventStorage> EventDecoder<'a, S> {
    /// A decoder of the Order events of `store` (a log file's, or a `PgStore`).
    pub fn new(store: &'a S) -> EventDecoder<'a, S> {
        EventDecoder {
            repo: Repository::new(store).with_upcasters(Arc::new(upcasters())),
        }
    }

    /// The decoded Order event, or `None` for other or undecodable events.
    pub fn order_event(&self, e: &RecordedEvent) -> Option<(OrderEvent, EventMetadata)> {
        self.repo.decode_event(e).ok()
    }

    /// The event as a JSON object: position, stream, version, type, `tags` (an array of
    /// strings, in the order they were appended; empty for untagged events and every event
    /// of a format version 1 log), ids, time, and either `data` (decoded fields) or
    /// `data_base64`.
    pub fn json(&self, e: &RecordedEvent) -> Json {
        let mut pairs: Vec<(String, Json)> = vec![
            ("position".into(), e.position.into()),
            ("stream".into(), e.stream_id.as_str().into()),
            ("version".into(), e.version.into()),
            ("type".into(), e.event_type.as_str().into()),
            ("tags".into(), tags_json(e)),
            ("event_id".into(), e.event_id.to_string().into()),
            ("recorded_at".into(), time(e.recorded_at).into()),
        ];
        if let Some((event, meta)) = self.order_event(e) {
            pairs.push(("data".into(), order_event_fields(&event)));
            pairs.push((
                "metadata".into(),
                Json::obj([
                    ("schema_version", u64::from(meta.schema_version).into()),
                    (
                        "correlation_id",
                        Json::opt(meta.correlation_id.map(|u| u.to_string())),
                    ),
                    (
                        "causation_id",
                        Json::opt(meta.causation_id.map(|u| u.to_string())),
                    ),
                ]),
            ));
        } else if let Some(value) = generic_payload(e) {
            pairs.push(("data".into(), value.into()));
        } else {
            pairs.push(("data_base64".into(), base64(&e.data).into()));
            if !e.metadata.is_empty() {
                pairs.push(("metadata_base64".into(), base64(&e.metadata).into()));
            }
        }
        Json::Obj(pairs)
    }

    /// The event as one line of text: `#position time stream vVERSION Type`, then
    /// `tags=["a","b"]` when it carries tags (JSON strings, so a tag holding spaces, commas
    /// or quotes stays one readable item), then its payload fields.
    pub fn line(&self, e: &RecordedEvent) -> String {
        let fields = match self.order_event(e) {
            Some((event, _)) => fields_text(&order_event_fields(&event)),
            None if e.data.is_empty() => "(empty payload)".to_string(),
            None => match generic_payload(e) {
                Some(value) => format!("data={}", Json::from(value).render()),
                None => format!("data_base64={}", base64(&e.data)),
            },
        };
        let mut head = format!(
            "#{:<6} {}  {} v{}  {}",
            e.position,
            time(e.recorded_at),
            e.stream_id,
            e.version,
            e.event_type
        );
        if !e.tags.is_empty() {
            head.push_str("  tags=");
            head.push_str(&tags_json(e).render());
        }
        if fields.is_empty() {
            head
        } else {
            format!("{head}  {fields}")
        }
    }
}

/// An event's tags as a JSON array of strings, in the order they were appended.
fn tags_json(e: &RecordedEvent) -> Json {
    Json::Arr(e.tags.iter().map(|t| Json::Str(t.clone())).collect())
}

/// The payload fields of an Order event.
pub fn order_event_fields(event: &OrderEvent) -> Json {
    match event {
        OrderEvent::OrderCreated(e) => Json::obj([
            ("order_id", e.order_id.as_str().into()),
            ("user_id", e.user_id.as_str().into()),
            ("at", time(e.at).into()),
        ]),
        OrderEvent::ItemAddedToOrder(e) => Json::obj([
            ("product_id", e.product_id.as_str().into()),
            ("quantity", e.quantity.into()),
            ("price_cents", e.price_cents.into()),
            ("at", time(e.at).into()),
        ]),
        OrderEvent::OrderCancelled(e) => Json::obj([
            ("reason", e.reason.as_str().into()),
            ("at", time(e.at).into()),
        ]),
        OrderEvent::OrderConfirmed(e) => Json::obj([("at", time(e.at).into())]),
        OrderEvent::OrderShipped(e) => Json::obj([("at", time(e.at).into())]),
        OrderEvent::OrderDelivered(e) => Json::obj([("at", time(e.at).into())]),
    }
}

/// An object's fields as `key=value` pairs (strings quoted), skipping `at`.
pub fn fields_text(fields: &Json) -> String {
    let Json::Obj(pairs) = fields else {
        return fields.render();
    };
    pairs
        .iter()
        .filter(|(k, _)| k != "at")
        .map(|(k, v)| match v {
            Json::Str(s) => format!("{k}={}", quote(s)),
            other => format!("{k}={}", other.render()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        for (text, cents) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.01", 1),
            ("0", 0),
            ("12.500", 1250),
            ("007.10", 710),
        ] {
            assert_eq!(parse_price_cents(text), Ok(cents), "{text}");
        }
        for bad in [
            "12.505",
            "-1",
            "-0.5",
            "abc",
            "",
            ".5",
            "12.",
            "1e3",
            "+3",
            "1.2.3",
            " 1",
            "0x10",
            "99999999999999999999",
        ] {
            assert!(parse_price_cents(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escape_makes_every_non_printing_character_visible() {
        assert_eq!(escape("Order-1 ünïcode ✓ 注文"), "Order-1 ünïcode ✓ 注文");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("with\nnewline\tand\0nul\r\u{1b}[31m\u{7f}"),
            "with\\nnewline\\tand\\0nul\\r\\u{1b}[31m\\u{7f}"
        );
        assert_eq!(
            escape("a\u{2028}b\u{2029}c\u{202e}d\u{200b}e\u{feff}\u{85}"),
            "a\\u{2028}b\\u{2029}c\\u{202e}d\\u{200b}e\\u{feff}\\u{85}"
        );
        // Quotes, backslashes and combining marks inside text are kept.
        assert_eq!(
            escape("say \"hi\" \\ it's e\u{301}"),
            "say \"hi\" \\ it's e\u{301}"
        );
        // Idempotent: already escaped text is left alone.
        let once = escape("x\ny\u{202e}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn money_numbers_and_base64() {
        assert_eq!(money(1250), "12.50");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-105), "-1.05");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(12), "12");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }
}
