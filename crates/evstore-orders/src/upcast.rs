//! Schema evolution of the Order events.
//!
//! `ItemAddedToOrder` v1 stored the unit price as `price: f64` in major units (`12.5` meant
//! 12.50). v2 stores `price_cents: i64`. The v1 → v2 upcaster converts exactly once, at read
//! time; nothing else in evstore ever sees a float price.
//!
//! `OrderCancelled` v1 had no `released` list (stock reservations came with v2); the v1 → v2
//! upcaster reads it with an empty list: the items of an order cancelled before v2 were never
//! tagged as reservations, so there is nothing to give back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::{ItemAddedToOrder, OrderCancelled, OrderEvent};
use evstore::codec;
use evstore::upcast::Upcasters;

/// The legacy payload of `ItemAddedToOrder` at schema version 1 (fields in stored order).
/// Kept for the upcaster and for writing test fixtures; never written by this build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemAddedToOrderV1 {
    /// The product.
    pub product_id: String,
    /// Units ordered.
    pub quantity: u32,
    /// Unit price in major units (e.g. `12.5` = 12.50).
    pub price: f64,
    /// When the item was added.
    pub at: DateTime<Utc>,
}

/// Revision label of the `ItemAddedToOrder` v1 → v2 upcaster ([`Upcasters::register_named`]).
pub const ITEM_ADDED_V1_REVISION: &str = "1";

/// The legacy payload of `OrderCancelled` at schema version 1 (fields in stored order).
/// Kept for the upcaster and for writing test fixtures; never written by this build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelledV1 {
    /// Why the order was cancelled.
    pub reason: String,
    /// When the order was cancelled.
    pub at: DateTime<Utc>,
}

/// Revision label of the `OrderCancelled` v1 → v2 upcaster ([`Upcasters::register_named`]).
pub const ORDER_CANCELLED_V1_REVISION: &str = "1";

/// The upcasters of the Order events: `ItemAddedToOrder` v1 → v2 (see [`price_to_cents`])
/// and `OrderCancelled` v1 → v2 ([`upcast_order_cancelled_v1`]).
///
/// ```
/// use evstore_orders::{upcasters, ItemAddedToOrder, ItemAddedToOrderV1};
/// let v1 = ItemAddedToOrderV1 { product_id: "p".into(), quantity: 2, price: 12.5, at: chrono::Utc::now() };
/// let (bytes, version) = upcasters()
///     .upcast("ItemAddedToOrder", 1, 2, evstore::codec::encode(&v1).unwrap())
///     .unwrap();
/// let v2: ItemAddedToOrder = evstore::codec::decode(&bytes).unwrap();
/// assert_eq!((v2.price_cents, v2.quantity, version), (1250, 2, 2));
/// ```
///
/// Each upcaster has a revision label: change it whenever the upcaster's behaviour changes, so
/// Order snapshots built under the old one are ignored (replayed) instead of trusted.
pub fn upcasters() -> Upcasters {
    let mut up = Upcasters::new();
    up.register_named(
        OrderEvent::ITEM_ADDED_TO_ORDER,
        1,
        ITEM_ADDED_V1_REVISION,
        upcast_item_added_v1,
    );
    up.register_named(
        OrderEvent::ORDER_CANCELLED,
        1,
        ORDER_CANCELLED_V1_REVISION,
        upcast_order_cancelled_v1,
    );
    up
}

/// `OrderCancelled` v1 payload bytes → v2 payload bytes (with nothing released).
///
/// ```
/// use evstore_orders::{upcast_order_cancelled_v1, OrderCancelled, OrderCancelledV1};
/// let v1 = OrderCancelledV1 { reason: "changed my mind".into(), at: chrono::Utc::now() };
/// let v2: OrderCancelled = evstore::codec::decode(
///     &upcast_order_cancelled_v1(&evstore::codec::encode(&v1).unwrap()).unwrap(),
/// ).unwrap();
/// assert_eq!((v2.reason.as_str(), v2.released.len()), ("changed my mind", 0));
/// ```
///
/// # Errors
/// A message when the bytes are not a v1 payload or the v2 payload cannot be encoded.
pub fn upcast_order_cancelled_v1(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let v1: OrderCancelledV1 =
        codec::decode(bytes).map_err(|e| format!("bad OrderCancelled v1 payload: {e}"))?;
    let v2 = OrderCancelled {
        reason: v1.reason,
        at: v1.at,
        released: Vec::new(),
    };
    codec::encode(&v2).map_err(|e| e.to_string())
}

/// `ItemAddedToOrder` v1 payload bytes → v2 payload bytes (the price converted by
/// [`price_to_cents`]).
///
/// # Errors
/// A message when the bytes are not a v1 payload, when the price cannot be converted (see
/// [`price_to_cents`]) or when the v2 payload cannot be encoded.
pub fn upcast_item_added_v1(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let v1: ItemAddedToOrderV1 =
        codec::decode(bytes).map_err(|e| format!("bad ItemAddedToOrder v1 payload: {e}"))?;
    let v2 = ItemAddedToOrder {
        price_cents: price_to_cents(v1.price)?,
        product_id: v1.product_id,
        quantity: v1.quantity,
        at: v1.at,
    };
    codec::encode(&v2).map_err(|e| e.to_string())
}

/// Convert a price in major units to cents, rounding half away from zero.
///
/// Rounding is decimal, on the shortest decimal form of the float (the digits the legacy
/// writer meant): `1.005` → 101 cents, although the binary value is slightly below 1.005.
/// NaN, infinities and prices whose cents do not fit in an `i64` are errors.
///
/// # Errors
/// A message naming the price when it is NaN or infinite, or when its cents do not fit in
/// an `i64` (more than 1e17 in magnitude is refused without converting).
///
/// ```
/// use evstore_orders::price_to_cents;
/// assert_eq!(price_to_cents(12.5), Ok(1250));
/// assert_eq!(price_to_cents(0.125), Ok(13));
/// assert_eq!(price_to_cents(-0.125), Ok(-13));
/// assert_eq!(price_to_cents(1.005), Ok(101));
/// assert!(price_to_cents(f64::NAN).is_err());
/// ```
pub fn price_to_cents(price: f64) -> Result<i64, String> {
    if !price.is_finite() {
        return Err(format!("price {price} is not a finite number"));
    }
    let out_of_range = || format!("price {price} does not fit in i64 cents");
    // Cheap bound first, so a huge value never formats into hundreds of digits.
    if price.abs() > 1e17 {
        return Err(out_of_range());
    }
    // `Display` of an f64 is the shortest string that round-trips, never in exponent form.
    let text = format!("{price}");
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int_part, frac_part) = magnitude.split_once('.').unwrap_or((magnitude, ""));
    let digit = |c: u8| -> Result<i64, String> {
        if c.is_ascii_digit() {
            Ok(i64::from(c - b'0'))
        } else {
            Err(format!("unexpected character in price {text:?}"))
        }
    };
    let mut cents: i64 = 0;
    for &c in int_part.as_bytes() {
        cents = cents
            .checked_mul(10)
            .and_then(|v| v.checked_add(digit(c).ok()?))
            .ok_or_else(out_of_range)?;
    }
    let frac = frac_part.as_bytes();
    for i in 0..2 {
        let d = match frac.get(i) {
            Some(&c) => digit(c)?,
            None => 0,
        };
        cents = cents
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or_else(out_of_range)?;
    }
    // Half away from zero: the magnitude rounds up when the rest is ≥ 0.005.
    if let Some(&c) = frac.get(2) {
        if digit(c)? >= 5 {
            cents = cents.checked_add(1).ok_or_else(out_of_range)?;
        }
    }
    Ok(if negative { -cents } else { cents })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_round_half_away_from_zero_to_exact_cents() {
        let cases = [
            (12.5, 1250),
            (19.99, 1999),
            (0.1 + 0.2, 30),
            (0.125, 13),
            (0.124, 12),
            (0.0049, 0),
            (0.005, 1),
            (1.005, 101),
            (2.675, 268),
            (-0.125, -13),
            (-0.005, -1),
            (-0.0, 0),
            (0.0, 0),
            (1e-7, 0),
            (123_456_789.99, 12_345_678_999),
            (1e15, 100_000_000_000_000_000),
        ];
        for (price, cents) in cases {
            assert_eq!(price_to_cents(price), Ok(cents), "{price}");
        }
    }

    #[test]
    fn non_finite_and_out_of_range_prices_are_refused() {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            f64::MAX,
            1e17,
            92_233_720_368_547_758.07,
        ] {
            assert!(price_to_cents(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v1_payload_upcasts_and_garbage_is_refused() {
        let at = Utc::now();
        let v1 = ItemAddedToOrderV1 {
            product_id: "sku-1".into(),
            quantity: 3,
            price: 9.99,
            at,
        };
        let bytes = upcast_item_added_v1(&codec::encode(&v1).unwrap()).unwrap();
        let v2: ItemAddedToOrder = codec::decode(&bytes).unwrap();
        assert_eq!(
            v2,
            ItemAddedToOrder {
                product_id: "sku-1".into(),
                quantity: 3,
                price_cents: 999,
                at
            }
        );
        assert!(upcast_item_added_v1(b"\x01").is_err());
        let nan = ItemAddedToOrderV1 {
            price: f64::NAN,
            ..v1
        };
        let err = upcast_item_added_v1(&codec::encode(&nan).unwrap()).unwrap_err();
        assert!(err.contains("finite"), "{err}");
    }
}
