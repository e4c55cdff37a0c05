//! The in-memory index, rebuilt by scanning the log on open and extended as frames are
//! published.
//!
//! * position → [`Location`] (one packed `u64` per event, in fixed-size chunks);
//! * stream id (interned once) → version → position (one `u64` per event);
//! * event type (interned once) → positions (one `u64` per event, chunked).
//!
//! That is 24 bytes per event plus small per-stream and per-type overheads and the interned
//! names (see docs/PERFORMANCE.md for the measured figure). Growth of the big vectors never
//! doubles a huge allocation: they are chunked, and per-stream vectors grow by a quarter.
//!
//! The index is fed frame bodies by exactly one function, [`Index::add_frame`], both during the
//! recovery scan and when the writer publishes new frames, so a reopened store's index is the
//! same as the one it had before close.

use std::collections::HashMap;

use crate::log::frame::{self, Location};

const CHUNK: usize = 1 << 12;

/// A growable `u64` array stored in fixed-size chunks, so growth never copies or doubles a
/// huge allocation.
#[derive(Default)]
pub(crate) struct ChunkedVec {
    full: Vec<Box<[u64]>>,
    tail: Vec<u64>,
}

impl ChunkedVec {
    pub fn len(&self) -> usize {
        self.full.len() * CHUNK + self.tail.len()
    }

    pub fn push(&mut self, value: u64) {
        if self.tail.len() == CHUNK {
            let chunk = std::mem::take(&mut self.tail).into_boxed_slice();
            self.full.push(chunk);
        }
        self.tail.push(value);
    }

    pub fn get(&self, i: usize) -> Option<u64> {
        let (c, o) = (i / CHUNK, i % CHUNK);
        match c.cmp(&self.full.len()) {
            std::cmp::Ordering::Less => Some(self.full[c][o]),
            std::cmp::Ordering::Equal => self.tail.get(o).copied(),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// First index in `[0, len)` for which `pred` is false, assuming `pred` is true on a prefix.
    pub fn partition_point(&self, mut pred: impl FnMut(u64) -> bool) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(v) if pred(v) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Copy `[from, to)` into `out`.
    pub fn extend_into(&self, from: usize, to: usize, out: &mut Vec<u64>) {
        let to = to.min(self.len());
        let mut i = from;
        while i < to {
            let (c, o) = (i / CHUNK, i % CHUNK);
            let chunk: &[u64] = if c < self.full.len() {
                &self.full[c]
            } else {
                &self.tail
            };
            let take = (to - i).min(chunk.len() - o);
            out.extend_from_slice(&chunk[o..o + take]);
            i += take;
        }
    }
}

/// Why a frame body cannot be indexed (the log is corrupt, or a writer bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexError {
    /// Offset inside the body of the batch at fault.
    pub body_offset: usize,
    pub what: String,
}

/// Per-stream state.
struct StreamEntry {
    /// version → position.
    positions: Vec<u64>,
}

/// The index. See the module docs.
#[derive(Default)]
pub(crate) struct Index {
    positions: ChunkedVec,
    stream_ids: HashMap<Box<str>, u32>,
    streams: Vec<StreamEntry>,
    type_ids: HashMap<Box<str>, u32>,
    types: Vec<ChunkedVec>,
    /// Name of each type id (the same names as the keys of `type_ids`), so the lookups below
    /// compare bytes instead of hashing or allocating.
    type_names: Vec<Box<str>>,
    last_recorded_at_us: Option<i64>,
    /// The type id of the last event indexed: most logs repeat types in runs, and this skips a
    /// hash lookup per event.
    last_type: Option<u32>,
}

impl Index {
    /// Index the batches of one frame body located at `body_file_offset` in the file.
    /// On error the index may hold part of the frame and must be discarded (recovery aborts).
    pub fn add_frame(&mut self, body: &[u8], body_file_offset: u64) -> Result<(), IndexError> {
        let mut at = 0usize;
        while at < body.len() {
            let err = |what: String| IndexError {
                body_offset: at,
                what,
            };
            let batch = &body[at..];
            let h = frame::decode_batch_header(batch).map_err(|e| err(e.to_string()))?;
            if !timestamp_in_range(h.recorded_at_us) {
                return Err(err(format!(
                    "recorded_at {} µs is out of range",
                    h.recorded_at_us
                )));
            }
            if let Some(prev) = self.last_recorded_at_us {
                if h.recorded_at_us < prev {
                    return Err(err(format!(
                        "recorded_at goes backwards ({} µs after {} µs)",
                        h.recorded_at_us, prev
                    )));
                }
            }
            let batch_file_offset = body_file_offset + at as u64;
            if batch_file_offset > frame::MAX_LOCATION_OFFSET {
                return Err(err("file offset beyond the 16 TiB limit".into()));
            }
            let stream_idx = match self.stream_ids.get(h.stream) {
                Some(&i) => i as usize,
                None => {
                    let i = u32::try_from(self.streams.len())
                        .map_err(|_| err("more than 2^32 streams".into()))?;
                    self.stream_ids.insert(h.stream.into(), i);
                    self.streams.push(StreamEntry {
                        positions: Vec::new(),
                    });
                    i as usize
                }
            };
            let have = self.streams[stream_idx].positions.len() as u64;
            if h.first_version != have {
                return Err(err(format!(
                    "stream {:?} continues at version {} but has {} events",
                    h.stream, h.first_version, have
                )));
            }
            let first_position = self.positions.len() as u64;
            grow_gently(
                &mut self.streams[stream_idx].positions,
                h.event_count as usize,
            );
            // One pass: on an error the caller discards the whole index (see above).
            let mut off = h.events_offset;
            for i in 0..h.event_count {
                let ev = frame::decode_event(&batch[off..]).map_err(|e| err(e.to_string()))?;
                off += ev.size;
                let position = first_position + u64::from(i);
                self.positions
                    .push(Location::new(batch_file_offset, i).to_raw());
                self.streams[stream_idx].positions.push(position);
                let type_id = match self.last_type {
                    Some(id) if *self.type_names[id as usize] == *ev.event_type => id,
                    _ => {
                        let id = self.type_id(ev.event_type).map_err(err)?;
                        self.last_type = Some(id);
                        id
                    }
                };
                self.types[type_id as usize].push(position);
            }
            self.last_recorded_at_us = Some(h.recorded_at_us);
            at += off;
        }
        Ok(())
    }

    /// The id of `event_type`, interned on first sight. With few types (the usual case) a
    /// linear byte comparison beats hashing.
    fn type_id(&mut self, event_type: &str) -> Result<u32, String> {
        const LINEAR: usize = 16;
        let found = if self.type_names.len() <= LINEAR {
            self.type_names
                .iter()
                .position(|n| **n == *event_type)
                .map(|i| i as u32)
        } else {
            self.type_ids.get(event_type).copied()
        };
        if let Some(id) = found {
            return Ok(id);
        }
        let id = u32::try_from(self.types.len())
            .map_err(|_| "more than 2^32 event types".to_string())?;
        self.type_ids.insert(event_type.into(), id);
        self.type_names.push(event_type.into());
        self.types.push(ChunkedVec::default());
        Ok(id)
    }

    /// Number of events (= next position).
    pub fn len(&self) -> u64 {
        self.positions.len() as u64
    }

    /// Position of the newest event.
    pub fn head(&self) -> Option<u64> {
        self.len().checked_sub(1)
    }

    /// The newest `recorded_at`, in µs.
    pub fn last_recorded_at_us(&self) -> Option<i64> {
        self.last_recorded_at_us
    }

    /// Where the event at `position` lives.
    pub fn location(&self, position: u64) -> Option<Location> {
        self.positions
            .get(usize::try_from(position).ok()?)
            .map(Location::from_raw)
    }

    /// Locations of positions `[from, from + max)` that exist.
    pub fn locations_from(&self, from: u64, max: usize, out: &mut Vec<u64>) {
        let Ok(from) = usize::try_from(from) else {
            return;
        };
        self.positions
            .extend_into(from, from.saturating_add(max), out);
    }

    /// Last version of a stream.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        let &i = self.stream_ids.get(stream)?;
        (self.streams[i as usize].positions.len() as u64).checked_sub(1)
    }

    /// Position of one version of a stream.
    pub fn stream_position(&self, stream: &str, version: u64) -> Option<u64> {
        let &i = self.stream_ids.get(stream)?;
        let v = usize::try_from(version).ok()?;
        self.streams[i as usize].positions.get(v).copied()
    }

    /// Positions of a stream's versions `[from_version, to_version)`.
    pub fn stream_positions(&self, stream: &str, from_version: u64, to_version: u64) -> Vec<u64> {
        let Some(&i) = self.stream_ids.get(stream) else {
            return Vec::new();
        };
        let p = &self.streams[i as usize].positions;
        let from = usize::try_from(from_version)
            .unwrap_or(usize::MAX)
            .min(p.len());
        let to = usize::try_from(to_version)
            .unwrap_or(usize::MAX)
            .min(p.len());
        p[from..to.max(from)].to_vec()
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The positions of an event type (in position order).
    pub fn type_positions(&self, event_type: &str) -> Option<&ChunkedVec> {
        let &i = self.type_ids.get(event_type)?;
        Some(&self.types[i as usize])
    }

    /// Event types and their counts.
    pub fn type_counts(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .type_ids
            .iter()
            .map(|(name, &i)| (name.to_string(), self.types[i as usize].len() as u64))
            .collect();
        v.sort();
        v
    }

    /// A comparable summary, for tests: every stream with its positions, every type with its
    /// positions, the position table.
    pub fn fingerprint(&self) -> IndexFingerprint {
        let mut streams: Vec<(String, Vec<u64>)> = self
            .stream_ids
            .iter()
            .map(|(n, &i)| (n.to_string(), self.streams[i as usize].positions.clone()))
            .collect();
        streams.sort();
        let mut types: Vec<(String, Vec<u64>)> = self
            .type_ids
            .iter()
            .map(|(n, &i)| {
                let mut v = Vec::new();
                let t = &self.types[i as usize];
                t.extend_into(0, t.len(), &mut v);
                (n.to_string(), v)
            })
            .collect();
        types.sort();
        let mut locations = Vec::new();
        self.positions
            .extend_into(0, self.positions.len(), &mut locations);
        IndexFingerprint {
            streams,
            types,
            locations,
        }
    }
}

/// A comparable copy of the index (see [`Index::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct IndexFingerprint {
    pub streams: Vec<(String, Vec<u64>)>,
    pub types: Vec<(String, Vec<u64>)>,
    pub locations: Vec<u64>,
}

/// Whether `us` (µs since the epoch) is a representable `DateTime<Utc>`: the same answer as
/// `DateTime::from_timestamp_micros(us).is_some()`, without the calendar arithmetic.
fn timestamp_in_range(us: i64) -> bool {
    static RANGE: std::sync::LazyLock<(i64, i64)> = std::sync::LazyLock::new(|| {
        (
            chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros(),
            chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros(),
        )
    });
    let (min, max) = *RANGE;
    (min..=max).contains(&us)
}

/// Reserve room for `extra` more elements, growing by a quarter (at least 4 slots) instead of
/// doubling, so a stream's vector wastes at most ~25% (or 4 slots) instead of up to 50%.
fn grow_gently(v: &mut Vec<u64>, extra: usize) {
    let need = v.len() + extra;
    if need > v.capacity() {
        let target = need.max(v.len() + (v.len() / 4).max(4));
        v.reserve_exact(target - v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_range_matches_chrono() {
        let min = chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros();
        let max = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();
        for us in [
            i64::MIN,
            min - 1,
            min,
            min + 1,
            -1,
            0,
            1_700_000_000_000_000,
            max - 1,
            max,
            max + 1,
            i64::MAX,
        ] {
            assert_eq!(
                timestamp_in_range(us),
                chrono::DateTime::from_timestamp_micros(us).is_some(),
                "{us}"
            );
        }
    }

    #[test]
    fn type_ids_linear_and_hashed_agree() {
        let mut idx = Index::default();
        let names: Vec<String> = (0..40).map(|i| format!("T{i}")).collect();
        let ids: Vec<u32> = names.iter().map(|n| idx.type_id(n).unwrap()).collect();
        assert_eq!(ids, (0..40).collect::<Vec<u32>>());
        for (n, &id) in names.iter().zip(&ids) {
            assert_eq!(idx.type_id(n).unwrap(), id);
            assert_eq!(idx.type_ids[n.as_str()], id);
            assert_eq!(&*idx.type_names[id as usize], n.as_str());
        }
    }

    #[test]
    fn chunked_vec_crosses_chunks() {
        let mut c = ChunkedVec::default();
        for i in 0..(CHUNK as u64 * 2 + 5) {
            c.push(i * 2);
        }
        assert_eq!(c.len(), CHUNK * 2 + 5);
        assert_eq!(c.get(CHUNK), Some(CHUNK as u64 * 2));
        assert_eq!(c.get(CHUNK * 2 + 5), None);
        let mut out = Vec::new();
        c.extend_into(CHUNK - 2, CHUNK + 2, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], (CHUNK as u64 - 2) * 2);
        assert_eq!(c.partition_point(|v| v < 10), 5);
    }
}
