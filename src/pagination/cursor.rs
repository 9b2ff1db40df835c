//! Cursors: where a cursor page starts, and the signed tokens that carry it in `next` and
//! `previous` links.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// Where a cursor page starts, for a list whose rows are placed by keys of type `K`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor<K> {
    /// The beginning of the order: `?cursor=` with no token.
    Start,
    /// Just after the row with this key: the rows after it (a `next` link).
    After(K),
    /// Just before the row with this key: the rows before it (a `previous` link).
    Before(K),
    /// Backwards from the end of the order: the last page.
    End,
}

/// A cursor that was not made by this service for this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

/// Which way a token walks from its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Direction {
    /// The rows after it.
    #[serde(rename = "n")]
    After,
    /// The rows before it.
    #[serde(rename = "p")]
    Before,
}

/// What a token says, as it is signed: the order it was made for (`o`), the direction (`d`) and
/// the boundary row's key (`k`), which is `[]` for the end of the order.
#[derive(Serialize)]
struct Payload<'a, K> {
    o: &'a str,
    d: Direction,
    k: PayloadKey<'a, K>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PayloadKey<'a, K> {
    Row(&'a K),
    End([u8; 0]),
}

/// A token's payload, read back; the key is checked against the order before it is typed.
#[derive(Deserialize)]
struct ReadPayload {
    o: String,
    d: Direction,
    k: Value,
}

/// Makes and checks cursor tokens: base64url of a small JSON payload and an HMAC-SHA256 tag
/// (16 bytes) over it. Opaque to clients, and any change to it is detected.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorCodec { .. }")
    }
}

const TAG_BYTES: usize = 16;

impl CursorCodec {
    /// A codec keyed by `key`; every instance of the service must share it.
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG_BYTES] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    /// The token for `cursor` in the order named `order`; empty for the start of the order.
    pub fn encode<K: Serialize>(&self, order: &str, cursor: &Cursor<K>) -> String {
        use base64::Engine as _;

        let (d, k) = match cursor {
            Cursor::Start => return String::new(),
            Cursor::After(key) => (Direction::After, PayloadKey::Row(key)),
            Cursor::Before(key) => (Direction::Before, PayloadKey::Row(key)),
            Cursor::End => (Direction::Before, PayloadKey::End([])),
        };
        // Serializing plain data to a Vec cannot fail.
        let mut bytes = serde_json::to_vec(&Payload { o: order, d, k }).unwrap_or_default();
        let tag = self.tag(&bytes);
        bytes.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor in `token`, if this codec made it for the order named `order` and its key
    /// `fits` that order. Never [`Cursor::Start`], which has no token.
    pub fn decode<K: DeserializeOwned>(
        &self,
        token: &str,
        order: &str,
        fits: impl FnOnce(&K) -> bool,
    ) -> Result<Cursor<K>, InvalidCursor> {
        use base64::Engine as _;

        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| InvalidCursor)?;
        if bytes.len() <= TAG_BYTES {
            return Err(InvalidCursor);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).map_err(|_| InvalidCursor)?;
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| InvalidCursor)?;
        let payload: ReadPayload = serde_json::from_slice(payload).map_err(|_| InvalidCursor)?;
        if payload.o != order {
            return Err(InvalidCursor);
        }
        if payload.d == Direction::Before && payload.k.as_array().is_some_and(Vec::is_empty) {
            return Ok(Cursor::End);
        }
        let key: K = serde_json::from_value(payload.k).map_err(|_| InvalidCursor)?;
        if !fits(&key) {
            return Err(InvalidCursor);
        }
        Ok(match payload.d {
            Direction::After => Cursor::After(key),
            Direction::Before => Cursor::Before(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::listing::{Ordering, SortValue};

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let codec = CursorCodec::new(b"k1");
        let ordering = Ordering::parse("-temperature,name").unwrap();
        let order = ordering.to_string();
        let decode = |codec: &CursorCodec, token: &str, ordering: &Ordering| {
            codec.decode(token, &ordering.to_string(), |key: &Vec<SortValue>| {
                ordering.fits(key)
            })
        };
        let position = Cursor::Before(vec![
            SortValue::Real(-3.25),
            SortValue::Text("Ås \"quoted\"".into()),
            SortValue::Integer(42),
        ]);
        let token = codec.encode(&order, &position);
        assert_eq!(decode(&codec, &token, &ordering), Ok(position));
        let end = codec.encode(&order, &Cursor::<Vec<SortValue>>::End);
        assert_eq!(decode(&codec, &end, &ordering), Ok(Cursor::End));
        let nowhere = codec.encode(&order, &Cursor::After(Vec::<SortValue>::new()));
        assert_eq!(decode(&codec, &nowhere, &ordering), Err(InvalidCursor));

        let other_ordering = Ordering::parse("name").unwrap();
        assert_eq!(decode(&codec, &token, &other_ordering), Err(InvalidCursor));
        assert_eq!(
            decode(&CursorCodec::new(b"k2"), &token, &ordering),
            Err(InvalidCursor)
        );
        let mut flipped = token.into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(decode(&codec, &flipped, &ordering), Err(InvalidCursor));
        assert_eq!(
            decode(&codec, "bm90IGEgY3Vyc29y", &ordering),
            Err(InvalidCursor)
        );
        assert_eq!(decode(&codec, "%%%", &ordering), Err(InvalidCursor));
    }

    #[test]
    fn a_token_signs_the_order_the_direction_and_the_key_as_json() {
        // The same JSON, field for field, as tokens already handed out: they keep working after
        // an upgrade, and across instances of different versions.
        let codec = CursorCodec::new(b"k1");
        let after = Cursor::After(vec![SortValue::Integer(7)]);
        let token = codec.encode("id", &after);
        let payload = |token: &str| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .unwrap();
            String::from_utf8(bytes[..bytes.len() - TAG_BYTES].to_vec()).unwrap()
        };
        assert_eq!(payload(&token), r#"{"o":"id","d":"n","k":[7]}"#);
        let end = codec.encode("-name,id", &Cursor::<Vec<SortValue>>::End);
        assert_eq!(payload(&end), r#"{"o":"-name,id","d":"p","k":[]}"#);
        assert_eq!(codec.encode("id", &Cursor::<Vec<SortValue>>::Start), "");
    }
}
