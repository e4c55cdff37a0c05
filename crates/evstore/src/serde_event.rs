//! [`SerdeEvent`]: a serde enum is a domain event, with no hand-written `DomainEvent`.
//!
//! The blanket `impl<E: SerdeEvent> DomainEvent for E` takes the stored event type from the
//! variant's serde name (`#[serde(rename = ..)]` applies), stores the variant's data alone as
//! the payload (a struct variant's fields, a newtype variant's value; nothing for a unit
//! variant), and reads it back by variant name. The schema version of each variant is 1 unless
//! listed in [`SerdeEvent::SCHEMA_VERSIONS`]; [`SerdeEvent::FORMAT`] picks the payload encoding
//! per event type (MessagePack or JSON), which the metadata envelope records.
//!
//! ```
//! use evstore::aggregate::{DomainEvent, SerdeEvent};
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! enum AccountEvent {
//!     Opened { owner: String },
//!     Deposited { amount_cents: i64 },
//!     Closed,
//! }
//! impl SerdeEvent for AccountEvent {
//!     const SCHEMA_VERSIONS: &'static [(&'static str, u16)] = &[("Deposited", 2)];
//! }
//! let e = AccountEvent::Deposited { amount_cents: 1250 };
//! assert_eq!(e.event_type(), "Deposited");
//! assert_eq!(AccountEvent::schema_version("Deposited"), Some(2));
//! assert_eq!(AccountEvent::schema_version("Opened"), Some(1));
//! assert_eq!(AccountEvent::schema_version("Withdrawn"), None);
//! let back = AccountEvent::decode("Deposited", &e.encode()?)?;
//! assert_eq!(back, e);
//! assert_eq!(AccountEvent::decode("Closed", &AccountEvent::Closed.encode()?)?, AccountEvent::Closed);
//! # Ok::<(), evstore::codec::CodecError>(())
//! ```

use std::fmt::Debug;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Impossible, Serialize};

use crate::aggregate::DomainEvent;
use crate::codec::{self, Codec, CodecError};

/// The payload encoding of a [`SerdeEvent`] type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PayloadFormat {
    /// The store's binary codec ([`Codec::CURRENT`], MessagePack with field names).
    #[default]
    Binary,
    /// JSON (`serde_json`): readable in `evstore dump` and by other languages, larger.
    Json,
}

impl PayloadFormat {
    /// The codec this format writes with.
    pub fn codec(self) -> Codec {
        match self {
            PayloadFormat::Binary => Codec::CURRENT,
            PayloadFormat::Json => Codec::Json,
        }
    }
}

/// A serde enum whose variants are the events of an aggregate. See the module docs.
///
/// Requirements: the enum is externally tagged (serde's default: no `#[serde(tag = ..)]` or
/// `untagged`), and every variant name is at most 255 bytes (the store's event type limit).
pub trait SerdeEvent: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// Schema versions of the variants above 1, by variant name (bump one when a variant's
    /// shape changes and register an upcaster from the previous version).
    const SCHEMA_VERSIONS: &'static [(&'static str, u16)] = &[];
    /// How payloads are encoded. Records carry their encoding, so changing this later keeps
    /// older events readable.
    const FORMAT: PayloadFormat = PayloadFormat::Binary;
}

impl<E: SerdeEvent> DomainEvent for E {
    fn event_type(&self) -> &'static str {
        // Only a non-enum or a non-externally-tagged type can fail here: a programming error
        // that `encode` reports (it never returns an empty name otherwise).
        self.serialize(VariantName).unwrap_or("")
    }

    fn schema_version(event_type: &str) -> Option<u16> {
        if !variant_names::<E>().contains(&event_type) {
            return None;
        }
        let listed = E::SCHEMA_VERSIONS
            .iter()
            .find(|(name, _)| *name == event_type);
        Some(listed.map_or(1, |(_, v)| *v))
    }

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let name = self.serialize(VariantName).map_err(|e| {
            CodecError::Encode(format!(
                "a SerdeEvent must be an externally tagged enum: {e}"
            ))
        })?;
        match E::FORMAT {
            PayloadFormat::Json => encode_json(self, name),
            PayloadFormat::Binary => encode_binary(self, name),
        }
    }

    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError> {
        if codec::scope() == Codec::Json {
            return decode_json(event_type, payload);
        }
        // MessagePack or legacy bincode, both through the codec: rebuild `{name: data}` (or
        // the bare name of a unit variant) in the codec in scope and decode the enum.
        let whole = codec::enum_envelope(event_type, payload)?;
        codec::decode(&whole)
    }

    fn payload_codec(&self) -> Codec {
        E::FORMAT.codec()
    }
}

/// The variant's data, MessagePack: the whole enum is `{name: data}` (or the bare name of a
/// unit variant, whose payload is then empty).
fn encode_binary<E: Serialize>(value: &E, name: &str) -> Result<Vec<u8>, CodecError> {
    let whole = codec::encode_as(Codec::MessagePack, value)?;
    codec::enum_payload(&whole, name)
}

fn encode_json<E: Serialize>(value: &E, name: &str) -> Result<Vec<u8>, CodecError> {
    let whole = serde_json::to_value(value).map_err(|e| CodecError::Encode(e.to_string()))?;
    match whole {
        serde_json::Value::String(_) => Ok(Vec::new()),
        serde_json::Value::Object(mut map) if map.len() == 1 => {
            let data = map.remove(name).ok_or_else(|| {
                CodecError::Encode(format!("variant {name:?} not in its encoding"))
            })?;
            serde_json::to_vec(&data).map_err(|e| CodecError::Encode(e.to_string()))
        }
        _ => Err(CodecError::Encode(
            "a SerdeEvent must be an externally tagged enum".into(),
        )),
    }
}

fn decode_json<E: DeserializeOwned>(event_type: &str, payload: &[u8]) -> Result<E, CodecError> {
    let whole = if payload.is_empty() {
        serde_json::Value::String(event_type.to_string())
    } else {
        let data: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| CodecError::Decode(e.to_string()))?;
        let mut map = serde_json::Map::new();
        map.insert(event_type.to_string(), data);
        serde_json::Value::Object(map)
    };
    serde_json::from_value(whole).map_err(|e| CodecError::Decode(e.to_string()))
}

/// The variant names of enum `E`, as its `Deserialize` declares them.
fn variant_names<E: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The probe deserializer always fails after it has seen the names.
    let _ = E::deserialize(VariantList(&mut names));
    names
}

/// A deserializer that records the variant list `deserialize_enum` is called with.
struct VariantList<'a>(&'a mut &'static [&'static str]);

/// A unit error type for one of the probes below: `Display` says `$what`; it implements
/// serde's error trait `$serde_error` (`custom` messages are dropped: the probe only needs to
/// stop).
macro_rules! probe_error {
    ($name:ident, $what:literal, $serde_error:path) => {
        #[derive(Debug)]
        struct $name;

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($what)
            }
        }

        impl std::error::Error for $name {}

        impl $serde_error for $name {
            fn custom<T: std::fmt::Display>(_msg: T) -> Self {
                $name
            }
        }
    };
}

probe_error!(ProbeDone, "variant names probed", de::Error);

impl<'de> de::Deserializer<'de> for VariantList<'_> {
    type Error = ProbeDone;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeDone> {
        Err(ProbeDone)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeDone> {
        *self.0 = variants;
        Err(ProbeDone)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// A serializer that yields the variant name of an enum value and serializes nothing else.
struct VariantName;

probe_error!(
    NotAnEnum,
    "not an externally tagged enum variant",
    ser::Error
);

/// The name captured from a tuple or struct variant (its fields are not visited).
struct Named(&'static str);

impl ser::SerializeTupleVariant for Named {
    type Ok = &'static str;
    type Error = NotAnEnum;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _value: &T) -> Result<(), NotAnEnum> {
        Ok(())
    }
    fn end(self) -> Result<&'static str, NotAnEnum> {
        Ok(self.0)
    }
}

impl ser::SerializeStructVariant for Named {
    type Ok = &'static str;
    type Error = NotAnEnum;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        _value: &T,
    ) -> Result<(), NotAnEnum> {
        Ok(())
    }
    fn end(self) -> Result<&'static str, NotAnEnum> {
        Ok(self.0)
    }
}

/// Every non-variant method of [`VariantName`] refuses.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*);)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<&'static str, NotAnEnum> {
            Err(NotAnEnum)
        }
    )*};
}

impl ser::Serializer for VariantName {
    type Ok = &'static str;
    type Error = NotAnEnum;
    type SerializeSeq = Impossible<&'static str, NotAnEnum>;
    type SerializeTuple = Impossible<&'static str, NotAnEnum>;
    type SerializeTupleStruct = Impossible<&'static str, NotAnEnum>;
    type SerializeTupleVariant = Named;
    type SerializeMap = Impossible<&'static str, NotAnEnum>;
    type SerializeStruct = Impossible<&'static str, NotAnEnum>;
    type SerializeStructVariant = Named;

    refuse! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<&'static str, NotAnEnum> {
        Err(NotAnEnum)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotAnEnum> {
        Ok(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<&'static str, NotAnEnum> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<&'static str, NotAnEnum> {
        Ok(variant)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAnEnum> {
        Err(NotAnEnum)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAnEnum> {
        Err(NotAnEnum)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAnEnum> {
        Err(NotAnEnum)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Named, NotAnEnum> {
        Ok(Named(variant))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAnEnum> {
        Err(NotAnEnum)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotAnEnum> {
        Err(NotAnEnum)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Named, NotAnEnum> {
        Ok(Named(variant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Ev {
        Opened {
            owner: String,
            #[serde(skip_serializing_if = "Option::is_none", default)]
            note: Option<String>,
        },
        Deposited(i64),
        Pair(u8, u8),
        #[serde(rename = "account-closed")]
        Closed,
    }

    impl SerdeEvent for Ev {
        const SCHEMA_VERSIONS: &'static [(&'static str, u16)] = &[("Deposited", 3)];
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum JsonEv {
        Named { n: u32 },
        Unit,
    }

    impl SerdeEvent for JsonEv {
        const FORMAT: PayloadFormat = PayloadFormat::Json;
    }

    fn samples() -> Vec<Ev> {
        vec![
            Ev::Opened {
                owner: "alice".into(),
                note: None,
            },
            Ev::Opened {
                owner: "bob".into(),
                note: Some("vip".into()),
            },
            Ev::Deposited(-5),
            Ev::Pair(1, 2),
            Ev::Closed,
        ]
    }

    #[test]
    fn every_variant_round_trips_by_its_serde_name() {
        let names: Vec<&str> = samples().iter().map(DomainEvent::event_type).collect();
        assert_eq!(
            names,
            ["Opened", "Opened", "Deposited", "Pair", "account-closed"]
        );
        for e in samples() {
            let payload = e.encode().unwrap();
            assert_eq!(Ev::decode(e.event_type(), &payload).unwrap(), e);
        }
        assert!(
            Ev::Closed.encode().unwrap().is_empty(),
            "a unit variant has no payload"
        );
    }

    #[test]
    fn schema_versions_default_to_one_and_unknown_types_have_none() {
        assert_eq!(Ev::schema_version("Deposited"), Some(3));
        assert_eq!(Ev::schema_version("Opened"), Some(1));
        assert_eq!(Ev::schema_version("account-closed"), Some(1));
        assert_eq!(Ev::schema_version("Closed"), None, "the serde name counts");
        assert_eq!(Ev::schema_version("Nope"), None);
    }

    #[test]
    fn the_payload_is_the_variant_data_alone() {
        // A struct variant's payload decodes as a struct with the same fields.
        #[derive(Debug, PartialEq, Deserialize)]
        struct OpenedPayload {
            owner: String,
        }
        let e = Ev::Opened {
            owner: "alice".into(),
            note: None,
        };
        let p: OpenedPayload = codec::decode(&e.encode().unwrap()).unwrap();
        assert_eq!(p.owner, "alice");
    }

    #[test]
    fn json_payloads_are_json_and_round_trip() {
        let e = JsonEv::Named { n: 7 };
        let payload = e.encode().unwrap();
        assert_eq!(payload, br#"{"n":7}"#);
        assert_eq!(e.payload_codec(), Codec::Json);
        let back = codec::with_codec(Codec::Json, || JsonEv::decode("Named", &payload));
        assert_eq!(back.unwrap(), e);
        let unit = codec::with_codec(Codec::Json, || JsonEv::decode("Unit", &[]));
        assert_eq!(unit.unwrap(), JsonEv::Unit);
    }

    #[test]
    fn hostile_payloads_are_errors() {
        for bad in [&b"\xc1"[..], b"\xff\xff", b"\x81\xa1x\x01"] {
            assert!(Ev::decode("Opened", bad).is_err());
            assert!(Ev::decode("Deposited", bad).is_err());
        }
        assert!(Ev::decode("Unknown", &[]).is_err());
    }
}
