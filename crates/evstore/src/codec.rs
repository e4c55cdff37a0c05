//! The one place that knows how domain payloads become bytes.
//!
//! Event payloads, event metadata, snapshots and projection state are encoded with
//! **MessagePack** (the [`rmp-serde`](https://docs.rs/rmp-serde) crate, 1.3), structs as maps
//! with their field names (`to_vec_named`). A named, self-describing encoding is what makes the
//! serde attributes applications write work: `#[serde(skip_serializing_if = ..)]`,
//! `#[serde(default)]`, renames and added optional fields all round-trip, where a positional
//! format (bincode, postcard) silently misreads them. docs/PERFORMANCE.md has the measured
//! speed and size against the alternatives.
//!
//! Data written before MessagePack became the codec used **bincode 2.0.1** (serde mode,
//! standard configuration: little-endian, variable-length integers). bincode is unmaintained
//! (RUSTSEC-2025-0141); it is kept, pinned `=2.0.1`, only to *decode* such data, and this module
//! is the only place that names it. Every record says which codec wrote it, outside the
//! payload (the payload itself is not self-identifying): event metadata by its envelope tag
//! (see [`crate::aggregate::EventMetadata`]), snapshots by their envelope, projection
//! checkpoints by their format version. The code that reads a record picks the codec from that
//! and decodes with [`decode_as`], or runs a domain decoder inside [`with_codec`] so that the
//! plain [`decode`] calls in an application's `DomainEvent::decode` read old records right.
//!
//! Decoding treats the bytes as hostile: lengths never allocate more than the input holds (or
//! [`MAX_DECODE_BYTES`] for bincode), nesting is limited to 1,024 levels, and trailing bytes
//! are an error.
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Item {
//!     sku: String,
//!     #[serde(skip_serializing_if = "Option::is_none", default)]
//!     note: Option<String>,
//! }
//! let bytes = evstore::codec::encode(&Item { sku: "A".into(), note: None })?;
//! let back: Item = evstore::codec::decode(&bytes)?;
//! assert_eq!(back, Item { sku: "A".into(), note: None });
//! # Ok::<(), evstore::codec::CodecError>(())
//! ```

use std::cell::Cell;
use std::io::Cursor;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most a single bincode decode may allocate (64 MiB, the default segment size).
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

/// Encoding or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value cannot be encoded (e.g. a map with non-string keys where names are needed,
    /// or a serializer error from a hand-written `Serialize`).
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode bytes: {0}")]
    Decode(String),
    /// The value decoded, but did not use all of the bytes.
    #[error("{trailing} unexpected bytes after the decoded value")]
    TrailingBytes {
        /// How many bytes were left over.
        trailing: usize,
    },
}

/// A payload encoding. Records name theirs by [`Codec::tag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// bincode 2.0.1, serde mode, standard configuration. Legacy: decoded, never written.
    Bincode2,
    /// MessagePack, structs as maps with field names (rmp-serde 1.3 `to_vec_named`). Written
    /// by this build.
    MessagePack,
    /// JSON (`serde_json` 1): event payloads of aggregates that choose it
    /// ([`crate::aggregate::PayloadFormat::Json`]).
    Json,
}

impl Codec {
    /// The codec this build writes.
    pub const CURRENT: Codec = Codec::MessagePack;

    /// The byte records use to name this codec (documented in docs/FORMAT.md).
    pub fn tag(self) -> u8 {
        match self {
            Codec::Bincode2 => 1,
            Codec::MessagePack => 2,
            Codec::Json => 3,
        }
    }

    /// The codec a record's tag names; `None` for a tag this build does not know.
    pub fn from_tag(tag: u8) -> Option<Codec> {
        match tag {
            1 => Some(Codec::Bincode2),
            2 => Some(Codec::MessagePack),
            3 => Some(Codec::Json),
            _ => None,
        }
    }
}

thread_local! {
    /// The codec [`encode`] and [`decode`] use on this thread (set by [`with_codec`]).
    static SCOPE: Cell<Codec> = const { Cell::new(Codec::CURRENT) };
}

/// Run `f` with [`encode`] and [`decode`] on this thread using `codec`: how the repository,
/// projections and sagas read a record written with an older codec through an application's
/// `DomainEvent::decode` and upcasters, which call [`decode`] and [`encode`]. Inside the scope
/// an upcaster's output stays in the record's codec, so the chain and the final decode agree;
/// nothing encoded in such a scope is ever written (the scopes wrap decoding only). The
/// previous codec is restored afterwards, also if `f` panics.
pub fn with_codec<R>(codec: Codec, f: impl FnOnce() -> R) -> R {
    struct Restore(Codec);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPE.with(|s| s.replace(codec)));
    f()
}

/// Encode `value` with the codec in scope on this thread: [`Codec::CURRENT`], except inside
/// [`with_codec`].
///
/// # Errors
/// [`CodecError::Encode`] when the value's `Serialize` fails.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_as(SCOPE.with(Cell::get), value)
}

/// Encode `value` with `codec`. Only [`Codec::CURRENT`] is ever written to a store; the
/// legacy codec is encoded only inside [`with_codec`] scopes (upcasting old records).
///
/// # Errors
/// As [`encode`].
pub(crate) fn encode_as<T: Serialize + ?Sized>(
    codec: Codec,
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    match codec {
        Codec::MessagePack => {
            rmp_serde::to_vec_named(value).map_err(|e| CodecError::Encode(e.to_string()))
        }
        Codec::Bincode2 => encode_bincode(value),
        Codec::Json => serde_json::to_vec(value).map_err(|e| CodecError::Encode(e.to_string())),
    }
}

/// The codec [`encode`] and [`decode`] use on this thread now.
pub(crate) fn scope() -> Codec {
    SCOPE.with(Cell::get)
}

/// Decode a `T` that must fill `bytes` exactly, with the codec in scope on this thread (see
/// [`with_codec`]; [`Codec::CURRENT`] outside one).
///
/// # Errors
/// [`CodecError::Decode`] for bytes that are not a `T`; [`CodecError::TrailingBytes`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_as(SCOPE.with(Cell::get), bytes)
}

/// Decode a `T` that must fill `bytes` exactly, written with `codec`.
///
/// # Errors
/// As [`decode`].
pub fn decode_as<T: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<T, CodecError> {
    match codec {
        Codec::MessagePack => decode_msgpack(bytes),
        Codec::Bincode2 => decode_bincode(bytes),
        Codec::Json => serde_json::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string())),
    }
}

/// The MessagePack encoding of an externally tagged enum value whose variant is `name` and
/// whose data is `payload` (MessagePack; empty for a unit variant): `{name: data}`, or the bare
/// name. The inverse of [`enum_payload`]. Only MessagePack is supported: enum payloads are
/// never written in the legacy codec.
pub(crate) fn enum_envelope(name: &str, payload: &[u8]) -> Result<Vec<u8>, CodecError> {
    if scope() != Codec::MessagePack {
        return Err(CodecError::Decode(format!(
            "enum payloads are MessagePack or JSON, not {:?}",
            scope()
        )));
    }
    let mut out = Vec::with_capacity(payload.len() + name.len() + 6);
    if !payload.is_empty() {
        out.push(0x81); // a map of one entry
    }
    rmp::encode::write_str(&mut out, name).map_err(|e| CodecError::Encode(e.to_string()))?;
    out.extend_from_slice(payload);
    Ok(out)
}

/// The data of the enum variant `name` in `whole`, the MessagePack encoding of an externally
/// tagged enum value: the bytes after `{name:` (empty for a unit variant, encoded as the bare
/// name).
pub(crate) fn enum_payload(whole: &[u8], name: &str) -> Result<Vec<u8>, CodecError> {
    let bad = || CodecError::Encode(format!("variant {name:?} is not an externally tagged enum"));
    let (rest, is_map) = match whole.split_first() {
        Some((0x81, rest)) => (rest, true),
        Some(_) => (whole, false),
        None => return Err(bad()),
    };
    let (key, data) = split_msgpack_str(rest).ok_or_else(bad)?;
    if key != name.as_bytes() || (!is_map && !data.is_empty()) {
        return Err(bad());
    }
    Ok(data.to_vec())
}

/// A MessagePack string at the start of `bytes`: its bytes and what follows it.
fn split_msgpack_str(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&marker, rest) = bytes.split_first()?;
    let (len, rest) = match marker {
        0xa0..=0xbf => (usize::from(marker & 0x1f), rest),
        0xd9 => (usize::from(*rest.first()?), rest.get(1..)?),
        0xda => {
            let (n, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*n)), rest)
        }
        0xdb => {
            let (n, rest) = rest.split_first_chunk::<4>()?;
            (usize::try_from(u32::from_be_bytes(*n)).ok()?, rest)
        }
        _ => return None,
    };
    Some((rest.get(..len)?, rest.get(len..)?))
}

fn decode_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::new(Cursor::new(bytes));
    let value = T::deserialize(&mut de).map_err(|e| CodecError::Decode(e.to_string()))?;
    let used = usize::try_from(de.position()).unwrap_or(usize::MAX);
    match bytes.len().checked_sub(used) {
        Some(0) => Ok(value),
        Some(trailing) => Err(CodecError::TrailingBytes { trailing }),
        None => Err(CodecError::Decode("read past the end of the input".into())),
    }
}

/// The legacy codec, bincode 2.0.1, behind the default feature `legacy-bincode`: without it
/// (for applications whose stores hold no data written before the MessagePack codec, and that
/// want no unmaintained crate in their tree) legacy records fail to decode with a clear error.
#[cfg(feature = "legacy-bincode")]
mod legacy {
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::{CodecError, MAX_DECODE_BYTES};

    fn config() -> impl bincode::config::Config {
        bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
    }

    pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
        let (value, used) = bincode::serde::decode_from_slice(bytes, config())
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        if used != bytes.len() {
            return Err(CodecError::TrailingBytes {
                trailing: bytes.len() - used,
            });
        }
        Ok(value)
    }

    pub(super) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, config())
            .map_err(|e| CodecError::Encode(e.to_string()))
    }
}

#[cfg(not(feature = "legacy-bincode"))]
mod legacy {
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::CodecError;

    const DISABLED: &str = "this record is in the legacy bincode codec, and evstore was built \
                            without its `legacy-bincode` feature";

    pub(super) fn decode<T: DeserializeOwned>(_bytes: &[u8]) -> Result<T, CodecError> {
        Err(CodecError::Decode(DISABLED.into()))
    }

    pub(super) fn encode<T: Serialize + ?Sized>(_value: &T) -> Result<Vec<u8>, CodecError> {
        Err(CodecError::Encode(DISABLED.into()))
    }
}

fn decode_bincode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    legacy::decode(bytes)
}

/// Encode with the legacy codec, bincode 2.0.1: inside [`with_codec`] scopes (upcasting old
/// records in memory), and for tests that write data as an older build did.
pub(crate) fn encode_bincode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    legacy::encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct State {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        note: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn hostile_length_prefix_does_not_allocate() {
        // A Vec<u8> whose varint length claims u64::MAX elements (bincode), and a MessagePack
        // array header claiming 2^32 - 1 elements with nothing after it.
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(decode_as::<Vec<u8>>(Codec::Bincode2, &bytes).is_err());
        let bytes = [0xDDu8, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(decode_as::<Vec<u64>>(Codec::MessagePack, &bytes).is_err());
        let bytes = [0xDBu8, 0xFF, 0xFF, 0xFF, 0xFF]; // str32 of 4 GiB
        assert!(decode_as::<String>(Codec::MessagePack, &bytes).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let bytes = vec![0x91u8; 100_000]; // fixarray of 1, nested 100,000 times
        assert!(decode_as::<serde::de::IgnoredAny>(Codec::MessagePack, &bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut b = encode(&7u32).unwrap();
        b.push(0);
        assert_eq!(
            decode::<u32>(&b),
            Err(CodecError::TrailingBytes { trailing: 1 })
        );
        let mut b = encode_bincode(&7u32).unwrap();
        b.push(0);
        assert_eq!(
            decode_as::<u32>(Codec::Bincode2, &b),
            Err(CodecError::TrailingBytes { trailing: 1 })
        );
    }

    #[test]
    fn serde_attributes_round_trip() {
        for v in [
            State {
                id: 1,
                note: None,
                tags: vec![],
            },
            State {
                id: 2,
                note: Some("n".into()),
                tags: vec!["a".into()],
            },
        ] {
            assert_eq!(decode::<State>(&encode(&v).unwrap()).unwrap(), v);
        }
        // What bincode does with the same attribute: it cannot read what it wrote.
        let v = State {
            id: 1,
            note: None,
            tags: vec![],
        };
        assert!(decode_as::<State>(Codec::Bincode2, &encode_bincode(&v).unwrap()).is_err());
    }

    #[test]
    fn with_codec_scopes_encode_and_decode_and_restores_it() {
        let old = encode_bincode(&(5u32, String::from("x"))).unwrap();
        assert!(decode::<(u32, String)>(&old).is_err());
        let back = with_codec(Codec::Bincode2, || decode::<(u32, String)>(&old));
        assert_eq!(back.unwrap(), (5, "x".to_string()));
        let again = with_codec(Codec::Bincode2, || encode(&(5u32, String::from("x"))));
        assert_eq!(again.unwrap(), old);
        assert_eq!(SCOPE.with(Cell::get), Codec::CURRENT);
        let caught = std::panic::catch_unwind(|| with_codec(Codec::Bincode2, || panic!("x")));
        assert!(caught.is_err());
        assert_eq!(SCOPE.with(Cell::get), Codec::CURRENT);
    }

    #[test]
    fn tags_name_each_codec_once() {
        for c in [Codec::Bincode2, Codec::MessagePack] {
            assert_eq!(Codec::from_tag(c.tag()), Some(c));
        }
        assert_eq!(Codec::from_tag(0), None);
    }
}
