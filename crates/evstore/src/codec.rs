//! The one place that knows how domain payloads become bytes.
//!
//! Event payloads, snapshots, metadata and projection state are encoded with bincode 2 (serde
//! mode, standard configuration: little-endian, variable-length integers). Everything outside
//! this module calls [`encode`] / [`decode`], so the serializer can be swapped without touching
//! the domain code. (bincode is pinned to `=2.0.1`: the crate is unmaintained and 3.0.0 on the
//! registry is a `compile_error!` tombstone.)
//!
//! Decoding treats the bytes as hostile: a length prefix can never make it allocate more than
//! [`MAX_DECODE_BYTES`], and trailing bytes are an error.
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Item { sku: String, qty: u32 }
//! let bytes = evstore::codec::encode(&Item { sku: "A".into(), qty: 2 }).unwrap();
//! let back: Item = evstore::codec::decode(&bytes).unwrap();
//! assert_eq!(back, Item { sku: "A".into(), qty: 2 });
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most a single decode may allocate (64 MiB, the default segment size).
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

/// Encoding or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode value: {0}")]
    Encode(String),
    #[error("cannot decode bytes: {0}")]
    Decode(String),
    #[error("{trailing} unexpected bytes after the decoded value")]
    TrailingBytes { trailing: usize },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// Encode `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decode a `T` that must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_length_prefix_does_not_allocate() {
        // A Vec<u8> whose varint length claims u64::MAX elements.
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut b = encode(&7u32).unwrap();
        b.push(0);
        assert_eq!(
            decode::<u32>(&b),
            Err(CodecError::TrailingBytes { trailing: 1 })
        );
    }
}
