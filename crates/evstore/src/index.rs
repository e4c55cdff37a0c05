//! The in-memory index, rebuilt by scanning the log on open and extended as frames are
//! published.
//!
//! * position → [`Location`] (one packed `u64` per event, in fixed-size chunks);
//! * stream id → version → position (one `u32` per event while positions fit in 32 bits, two
//!   `u32`s per event for a stream that reaches a position ≥ 2³²), through a [`StreamTable`];
//! * event type (interned once) → positions (one `u64` per event, chunked);
//! * tag → positions (format version 2 logs): a second [`StreamTable`] keyed by tag, whose
//!   per-name vector holds the positions of the events carrying the tag (one `u32` per tag
//!   occurrence while positions fit in 32 bits), so a tag costs what a stream costs.
//!
//! That is 20 bytes per event, plus per stream: the id once (its bytes, in an arena of 64 KiB
//! chunks, no allocation per stream), a 32-byte entry (packed name location + the version
//! vector's header), one or two `u64` hash-table slots (load factor ≤ 0.8, power-of-two
//! capacity), and up to a quarter of slack in the version vector; plus small per-type
//! overheads. Measured with `examples/index_memory.rs` (streams of 10 events, 20-byte ids, ids
//! included): 28.1 bytes per event at 1M events / 100k streams, 27.9 at 10M / 1M (docs/
//! PERFORMANCE.md may quote older figures). The per-event vectors are chunked, so their growth
//! never doubles a huge allocation, and per-stream version vectors grow by a quarter; the
//! entry vector and the slot table (both per stream, not per event) double.
//!
//! The stream table hashes ids with a keyed folded-multiply hash seeded per [`Index`] from
//! [`std::collections::hash_map::RandomState`] (see [`NameHasher`]): stream ids are chosen by
//! application users, so the table never uses an unseeded hash. The seeding gives hash-flooding
//! resistance comparable to foldhash's or ahash's fallback hasher: not cryptographic, but an
//! attacker who does not learn the seed cannot aim ids at one probe sequence.
//!
//! The index is fed frame bodies by exactly one function, [`Index::add_frame`], both during the
//! recovery scan and when the writer publishes new frames, so a reopened store's index is the
//! same as the one it had before close.

use std::collections::HashMap;

use crate::log::frame::{self, Layout, Location};
use crate::query::{Query, QueryItem};

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
    /// What is wrong with it.
    pub what: String,
}

/// During recovery, a body the index refuses is a frame the scan reports as damage.
impl From<IndexError> for crate::log::recovery::Rejected {
    fn from(e: IndexError) -> Self {
        crate::log::recovery::Rejected {
            body_offset: e.body_offset,
            what: e.what,
        }
    }
}

/// A keyed hash of stream ids: a folded multiply (the 128-bit product of two words, its halves
/// xored) per 8-byte little-endian word, the length mixed in first, and a final fold.
///
/// The keys come from [`std::collections::hash_map::RandomState`] (see [`NameHasher::random`]),
/// fresh for every [`Index`], so which ids collide differs from process to process and from
/// index to index. That gives hash-flooding resistance comparable to foldhash's and ahash's
/// fallback hashers: not a cryptographic guarantee, but ids chosen without knowledge of the
/// keys spread like random ones. Never build a table with fixed keys outside tests.
#[derive(Clone, Copy)]
struct NameHasher {
    /// Start value (xored with the length).
    k0: u64,
    /// Multiplier of the per-word fold (odd, so never zero).
    k1: u64,
    /// Multiplier of the final fold (odd).
    k2: u64,
}

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl NameHasher {
    /// Keys drawn from a fresh `RandomState` (the standard library's per-process random keys,
    /// varied per instance).
    fn random() -> NameHasher {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        NameHasher {
            k0: state.hash_one(0x243F_6A88_85A3_08D3u64),
            k1: state.hash_one(0x1319_8A2E_0370_7344u64) | 1,
            k2: state.hash_one(0xA409_3822_299F_31D0u64) | 1,
        }
    }

    /// Hash of `name`: the length, then every 8-byte little-endian word, the last one read
    /// overlapping its predecessor (names shorter than 8 bytes are read as two overlapping
    /// halves or three single bytes), each folded in with one multiply; then a final fold.
    /// No copies through memory: every read is a plain load.
    #[inline]
    fn hash(&self, name: &[u8]) -> u64 {
        const PI: u64 = 0x9E37_79B9_7F4A_7C15;
        let len = name.len();
        let mut acc = self.k0 ^ (len as u64).wrapping_mul(PI);
        let last = if len >= 8 {
            let mut at = 0;
            // Bounded: `at` grows by 8 up to `len`.
            while at + 8 < len {
                acc = folded_multiply(acc ^ word(name, at), self.k1);
                at += 8;
            }
            word(name, len - 8)
        } else if len >= 4 {
            u64::from(half(name, 0)) << 32 | u64::from(half(name, len - 4))
        } else if len > 0 {
            u64::from(name[0]) << 16 | u64::from(name[len / 2]) << 8 | u64::from(name[len - 1])
        } else {
            0
        };
        acc = folded_multiply(acc ^ last, self.k1);
        folded_multiply(acc ^ PI, self.k2)
    }
}

/// Whether two names are equal, compared a word at a time (names are short; this avoids a
/// call per probe). The last word overlaps its predecessor, as in [`NameHasher::hash`].
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len < 8 {
        return a == b;
    }
    let mut at = 0;
    // Bounded: `at` grows by 8 up to `len`.
    while at + 8 < len {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, len - 8) == word(b, len - 8)
}

/// The little-endian `u64` at `at` (0 past the end, which callers never ask for).
#[inline]
fn word(b: &[u8], at: usize) -> u64 {
    b.get(at..)
        .and_then(|r| r.first_chunk::<8>())
        .map_or(0, |w| u64::from_le_bytes(*w))
}

/// The little-endian `u32` at `at` (0 past the end, which callers never ask for).
#[inline]
fn half(b: &[u8], at: usize) -> u32 {
    b.get(at..)
        .and_then(|r| r.first_chunk::<4>())
        .map_or(0, |w| u32::from_le_bytes(*w))
}

/// Size of one chunk of the name arena. A name never spans two chunks.
const NAME_CHUNK: usize = 1 << 16;
/// Bits of [`Stream::packed`]: name length (8 bits), the wide flag, then the name's start in the
/// arena.
const NAME_LEN_BITS: u32 = 8;
const WIDE: u64 = 1 << NAME_LEN_BITS;
const NAME_START_SHIFT: u32 = NAME_LEN_BITS + 1;
/// Most streams a table holds: slots keep `index + 1` in 32 bits, 0 meaning empty.
const MAX_STREAMS: usize = u32::MAX as usize;
/// Fewest slots of a table that holds anything.
const MIN_SLOTS: usize = 16;

/// One stream: where its id lives in the arena, and its version → position vector.
struct Stream {
    /// `start << NAME_START_SHIFT | wide << NAME_LEN_BITS | len`.
    packed: u64,
    /// version → position: one `u32` per version while narrow; once a position ≥ 2³² arrives
    /// the stream turns wide and holds (low, high) pairs.
    positions: Vec<u32>,
}

impl Stream {
    fn name_range(&self) -> (usize, usize) {
        let start = (self.packed >> NAME_START_SHIFT) as usize;
        let len = (self.packed & ((1 << NAME_LEN_BITS) - 1)) as usize;
        (start, len)
    }

    fn is_wide(&self) -> bool {
        self.packed & WIDE != 0
    }

    /// Number of versions.
    fn len(&self) -> usize {
        if self.is_wide() {
            self.positions.len() / 2
        } else {
            self.positions.len()
        }
    }

    /// The first index whose position is not below `position` (positions ascend).
    fn partition_point_below(&self, position: u64) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some(p) if p < position => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Whether `position` is in the vector (positions ascend).
    fn contains_position(&self, position: u64) -> bool {
        self.get(self.partition_point_below(position)) == Some(position)
    }

    /// The last position.
    fn last(&self) -> Option<u64> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    fn get(&self, version: usize) -> Option<u64> {
        if self.is_wide() {
            let i = version.checked_mul(2)?;
            let lo = *self.positions.get(i)?;
            let hi = *self.positions.get(i + 1)?;
            Some(u64::from(hi) << 32 | u64::from(lo))
        } else {
            self.positions.get(version).map(|&p| u64::from(p))
        }
    }

    /// Make room for `extra` more versions (growing by a quarter, see [`grow_gently`]).
    fn reserve(&mut self, extra: usize) {
        let per = if self.is_wide() { 2 } else { 1 };
        grow_gently(&mut self.positions, extra.saturating_mul(per));
    }

    fn push(&mut self, position: u64) {
        if !self.is_wide() {
            if let Ok(p) = u32::try_from(position) {
                self.positions.push(p);
                return;
            }
            self.widen();
        }
        debug_assert!(self.is_wide(), "a stream past 2^32 positions is wide");
        self.positions.push(position as u32);
        self.positions.push((position >> 32) as u32);
    }

    /// Switch to (low, high) pairs. Happens once per stream, and only for streams that get an
    /// event past position 2³².
    fn widen(&mut self) {
        assert!(!self.is_wide(), "widen a narrow stream only");
        let mut wide = Vec::with_capacity(self.positions.len() * 2 + 2);
        for &p in &self.positions {
            wide.push(p);
            wide.push(0);
        }
        self.positions = wide;
        self.packed |= WIDE;
    }

    /// Positions of versions `[from, to)` (clamped to the versions that exist).
    fn copy_range(&self, from: usize, to: usize) -> Vec<u64> {
        let len = self.len();
        let (from, to) = (from.min(len), to.min(len));
        let to = to.max(from);
        if self.is_wide() {
            (from..to).filter_map(|v| self.get(v)).collect()
        } else {
            self.positions[from..to]
                .iter()
                .map(|&p| u64::from(p))
                .collect()
        }
    }
}

/// Stream id → stream index → [`Stream`], without an allocation per stream.
///
/// * ids live back to back in an arena of [`NAME_CHUNK`]-byte chunks (an entry keeps start and
///   length);
/// * an open-addressing table (power-of-two slots, linear probing, load factor ≤ 0.8) maps an
///   id to its index; a slot is `tag << 32 | (index + 1)` with `tag` the high 32 bits of the
///   id's hash and 0 meaning empty, so a probe compares tags before it touches a name; growth
///   doubles the slots and reinserts every stream, hashing the ids again from the arena.
struct StreamTable {
    hasher: NameHasher,
    slots: Vec<u64>,
    names: Vec<Vec<u8>>,
    streams: Vec<Stream>,
}

impl Default for StreamTable {
    fn default() -> StreamTable {
        StreamTable::with_hasher(NameHasher::random())
    }
}

impl StreamTable {
    fn with_hasher(hasher: NameHasher) -> StreamTable {
        StreamTable {
            hasher,
            slots: Vec::new(),
            names: Vec::new(),
            streams: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.streams.len()
    }

    fn name(&self, index: usize) -> &[u8] {
        let (start, len) = self.streams[index].name_range();
        let chunk = &self.names[start / NAME_CHUNK];
        let at = start % NAME_CHUNK;
        &chunk[at..at + len]
    }

    fn stream(&self, index: u32) -> &Stream {
        &self.streams[index as usize]
    }

    fn stream_mut(&mut self, index: u32) -> &mut Stream {
        &mut self.streams[index as usize]
    }

    /// The probe for `name`: `Ok(index)` if present, else `Err(slot)`, the empty slot where it
    /// would go. The table must have slots.
    #[inline]
    fn probe(&self, name: &[u8], hash: u64) -> Result<u32, usize> {
        debug_assert!(
            self.slots.len().is_power_of_two(),
            "slot count is a power of two"
        );
        let mask = self.slots.len() - 1;
        let tag = hash >> 32;
        let mut i = hash as usize & mask;
        for _ in 0..self.slots.len() {
            let slot = self.slots[i];
            if slot == 0 {
                return Err(i);
            }
            if slot >> 32 == tag {
                let index = (slot as u32 - 1) as usize;
                if same_name(self.name(index), name) {
                    return Ok(index as u32);
                }
            }
            i = (i + 1) & mask;
        }
        panic!(
            "stream table: no empty slot among {} (load factor invariant broken)",
            self.slots.len()
        );
    }

    fn find(&self, name: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        self.probe(name, self.hasher.hash(name)).ok()
    }

    /// The index of `name`, inserted (with no versions) on first sight.
    fn find_or_insert(&mut self, name: &[u8]) -> Result<u32, String> {
        let hash = self.hasher.hash(name);
        let mut slot = None;
        if !self.slots.is_empty() {
            match self.probe(name, hash) {
                Ok(index) => return Ok(index),
                Err(empty) => slot = Some(empty),
            }
        }
        if self.streams.len() >= MAX_STREAMS {
            return Err(format!("more than {MAX_STREAMS} streams"));
        }
        if name.len() > frame::MAX_NAME_LEN {
            return Err(format!("stream id of {} bytes", name.len()));
        }
        // Keep the load factor at most 0.8 after this insertion.
        if (self.streams.len() + 1) * 5 > self.slots.len() * 4 {
            self.grow();
            slot = None;
        }
        let slot = match slot {
            Some(slot) => slot,
            None => match self.probe(name, hash) {
                Ok(_) => unreachable!("the name was absent before the table grew"),
                Err(slot) => slot,
            },
        };
        let start = self.intern(name)?;
        let index = self.streams.len();
        self.streams.push(Stream {
            packed: (start as u64) << NAME_START_SHIFT | name.len() as u64,
            positions: Vec::new(),
        });
        self.slots[slot] = (hash >> 32) << 32 | (index as u64 + 1);
        debug_assert_eq!(
            self.name(index),
            name,
            "the arena returns what was interned"
        );
        Ok(index as u32)
    }

    /// Copy `name` into the arena; its start. A name never spans two chunks.
    fn intern(&mut self, name: &[u8]) -> Result<usize, String> {
        let fits = self
            .names
            .last()
            .is_some_and(|c| c.len() + name.len() <= NAME_CHUNK);
        if !fits {
            let start = self.names.len() * NAME_CHUNK;
            if (start as u64) >> (64 - NAME_START_SHIFT) != 0 {
                return Err("stream ids exceed the name arena".into());
            }
            self.names.push(Vec::with_capacity(NAME_CHUNK));
        }
        let chunks = self.names.len();
        let chunk = &mut self.names[chunks - 1];
        let start = (chunks - 1) * NAME_CHUNK + chunk.len();
        chunk.extend_from_slice(name);
        assert!(chunk.len() <= NAME_CHUNK, "a name never spans two chunks");
        Ok(start)
    }

    /// Double the slots (or allocate the first ones) and reinsert every stream.
    fn grow(&mut self) {
        let count = (self.slots.len() * 2).max(MIN_SLOTS);
        let mask = count - 1;
        let mut slots = vec![0u64; count];
        for index in 0..self.streams.len() {
            let hash = self.hasher.hash(self.name(index));
            let mut i = hash as usize & mask;
            let mut placed = false;
            for _ in 0..count {
                if slots[i] == 0 {
                    slots[i] = (hash >> 32) << 32 | (index as u64 + 1);
                    placed = true;
                    break;
                }
                i = (i + 1) & mask;
            }
            assert!(placed, "a grown stream table has room for every stream");
        }
        self.slots = slots;
    }

    /// Heap bytes held (capacities), for tests and tools.
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
            + self.names.iter().map(Vec::capacity).sum::<usize>()
            + self.names.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.streams.capacity() * std::mem::size_of::<Stream>()
            + self
                .streams
                .iter()
                .map(|s| s.positions.capacity() * 4)
                .sum::<usize>()
    }
}

/// The index. See the module docs.
pub(crate) struct Index {
    /// How the log's event records are laid out (its format version).
    layout: Layout,
    positions: ChunkedVec,
    streams: StreamTable,
    type_ids: HashMap<Box<str>, u32>,
    types: Vec<ChunkedVec>,
    /// Name of each type id (the same names as the keys of `type_ids`), so the lookups below
    /// compare bytes instead of hashing or allocating.
    type_names: Vec<Box<str>>,
    last_recorded_at_us: Option<i64>,
    /// The type id of the last event indexed: most logs repeat types in runs, and this skips a
    /// hash lookup per event.
    last_type: Option<u32>,
    /// Tag → positions of the events carrying it (see the module docs).
    tags: StreamTable,
    /// Tag occurrences indexed.
    tag_occurrences: u64,
}

impl Index {
    /// An empty index of a log whose event records are laid out as `layout` says.
    pub fn new(layout: Layout) -> Index {
        Index {
            layout,
            positions: ChunkedVec::default(),
            streams: StreamTable::default(),
            type_ids: HashMap::new(),
            types: Vec::new(),
            type_names: Vec::new(),
            last_recorded_at_us: None,
            last_type: None,
            tags: StreamTable::default(),
            tag_occurrences: 0,
        }
    }

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
            // Names are checked for UTF-8 only when first seen: bytes equal to a known
            // (validated) stream id or event type are valid too.
            let h = frame::decode_batch_header_raw(batch).map_err(|e| err(e.to_string()))?;
            self.check_recorded_at(h.recorded_at_us).map_err(err)?;
            let batch_file_offset = body_file_offset + at as u64;
            if batch_file_offset > frame::MAX_LOCATION_OFFSET {
                return Err(err("file offset beyond the 16 TiB limit".into()));
            }
            let stream_idx = self.stream_index(h.stream).map_err(err)?;
            let stream = self.streams.stream_mut(stream_idx);
            let have = stream.len() as u64;
            if h.first_version != have {
                return Err(err(format!(
                    "stream {:?} continues at version {} but has {} events",
                    String::from_utf8_lossy(h.stream),
                    h.first_version,
                    have
                )));
            }
            let first_position = self.positions.len() as u64;
            stream.reserve(h.event_count as usize);
            // One pass: on an error the caller discards the whole index (see above).
            let mut off = h.events_offset;
            for i in 0..h.event_count {
                let ev = frame::decode_event_raw(&batch[off..], self.layout)
                    .map_err(|e| err(e.to_string()))?;
                off += ev.size;
                let position = first_position + u64::from(i);
                self.positions
                    .push(Location::new(batch_file_offset, i).to_raw());
                self.streams.stream_mut(stream_idx).push(position);
                let type_id = match self.last_type {
                    Some(id)
                        if same_name(self.type_names[id as usize].as_bytes(), ev.event_type) =>
                    {
                        id
                    }
                    _ => {
                        let id = self.type_id(ev.event_type).map_err(err)?;
                        self.last_type = Some(id);
                        id
                    }
                };
                self.types[type_id as usize].push(position);
                if ev.tag_count > 0 {
                    self.add_tags(ev.tags, position).map_err(err)?;
                }
            }
            self.last_recorded_at_us = Some(h.recorded_at_us);
            at += off;
        }
        Ok(())
    }

    /// A batch's timestamp must be in chrono's range and not before the previous batch's
    /// (docs/FORMAT.md §6).
    #[inline]
    fn check_recorded_at(&self, recorded_at_us: i64) -> Result<(), String> {
        if !timestamp_in_range(recorded_at_us) {
            return Err(format!("recorded_at {recorded_at_us} µs is out of range"));
        }
        if let Some(prev) = self.last_recorded_at_us {
            if recorded_at_us < prev {
                return Err(format!(
                    "recorded_at goes backwards ({recorded_at_us} µs after {prev} µs)"
                ));
            }
        }
        Ok(())
    }

    /// The index of stream `name`, added on first sight; only a new name's UTF-8 is checked
    /// (bytes equal to a known, validated name are valid).
    #[inline]
    fn stream_index(&mut self, name: &[u8]) -> Result<u32, String> {
        if let Some(i) = self.streams.find(name) {
            return Ok(i);
        }
        frame::check_stream_name(name).map_err(|e| e.to_string())?;
        self.streams.find_or_insert(name)
    }

    /// Index the tags of the event at `position` (a structure-checked tag section); only a new
    /// tag's UTF-8 is checked, as for names.
    fn add_tags(&mut self, section: &[u8], position: u64) -> Result<(), String> {
        for tag in frame::tag_bytes(section) {
            let i = if let Some(i) = self.tags.find(tag) {
                i
            } else {
                frame::check_tag(tag).map_err(|e| e.to_string())?;
                self.tags.find_or_insert(tag)?
            };
            let postings = self.tags.stream_mut(i);
            // A tag repeated on one event is indexed once.
            if postings.last() != Some(position) {
                postings.push(position);
                self.tag_occurrences += 1;
            }
        }
        Ok(())
    }

    /// The id of `event_type`, interned on first sight. With few types (the usual case) a
    /// linear byte comparison beats hashing.
    fn type_id(&mut self, event_type: &[u8]) -> Result<u32, String> {
        const LINEAR: usize = 16;
        if self.type_names.len() <= LINEAR {
            // Known names need no UTF-8 check: equal bytes to a validated name.
            if let Some(i) = self
                .type_names
                .iter()
                .position(|n| same_name(n.as_bytes(), event_type))
            {
                return Ok(i as u32);
            }
        }
        let event_type = frame::check_event_type(event_type).map_err(|e| e.to_string())?;
        if let Some(&id) = self.type_ids.get(event_type) {
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
        let i = self.streams.find(stream.as_bytes())?;
        (self.streams.stream(i).len() as u64).checked_sub(1)
    }

    /// Position of one version of a stream.
    pub fn stream_position(&self, stream: &str, version: u64) -> Option<u64> {
        let i = self.streams.find(stream.as_bytes())?;
        let v = usize::try_from(version).ok()?;
        self.streams.stream(i).get(v)
    }

    /// Positions of a stream's versions `[from_version, to_version)`.
    pub fn stream_positions(&self, stream: &str, from_version: u64, to_version: u64) -> Vec<u64> {
        let Some(i) = self.streams.find(stream.as_bytes()) else {
            return Vec::new();
        };
        let from = usize::try_from(from_version).unwrap_or(usize::MAX);
        let to = usize::try_from(to_version).unwrap_or(usize::MAX);
        self.streams.stream(i).copy_range(from, to)
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

    /// Distinct tags, and tag occurrences indexed.
    pub fn tag_counts(&self) -> (usize, u64) {
        (self.tags.len(), self.tag_occurrences)
    }

    /// Heap bytes of the tag index (names, entries, slots, position vectors).
    pub fn tag_heap_bytes(&self) -> usize {
        self.tags.heap_bytes()
    }

    /// Positions after `after` (all when `None`) of the indexed events `query` matches, in
    /// ascending order, at most `limit` of them (the first ones).
    pub fn matching_positions(&self, query: &Query, after: Option<u64>, limit: usize) -> Vec<u64> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        let end = self.len();
        let mut out = Vec::new();
        if start >= end || limit == 0 {
            return out;
        }
        for item in query.items() {
            self.item_positions(item, start, end, limit, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(limit);
        out
    }

    /// Push the first `limit` positions in `[start, end)` that `item` matches, ascending.
    fn item_positions(
        &self,
        item: &QueryItem,
        start: u64,
        end: u64,
        limit: usize,
        out: &mut Vec<u64>,
    ) {
        let types: Vec<&ChunkedVec> = item
            .types()
            .iter()
            .filter_map(|t| self.type_positions(t))
            .collect();
        if !item.types().is_empty() && types.is_empty() {
            return; // none of its types was ever appended
        }
        let type_ok = |p: u64| {
            item.types().is_empty()
                || types.iter().any(|v| {
                    let i = v.partition_point(|x| x < p);
                    v.get(i) == Some(p)
                })
        };
        if item.tags().is_empty() && item.types().is_empty() {
            out.extend(start..end.min(start.saturating_add(limit as u64)));
            return;
        }
        if item.tags().is_empty() {
            for v in types {
                let from = v.partition_point(|x| x < start);
                let mut taken = 0;
                // Bounded by `limit` and the vector's length.
                for i in from..v.len() {
                    match v.get(i) {
                        Some(p) if p < end && taken < limit => {
                            out.push(p);
                            taken += 1;
                        }
                        _ => break,
                    }
                }
            }
            return;
        }
        let mut lists = Vec::with_capacity(item.tags().len());
        for tag in item.tags() {
            match self.tags.find(tag.as_bytes()) {
                Some(i) => lists.push(self.tags.stream(i)),
                None => return, // no event carries it
            }
        }
        // Walk the rarest tag's positions; check the others by binary search.
        lists.sort_by_key(|l| l.len());
        let Some((rarest, others)) = lists.split_first() else {
            return;
        };
        let mut taken = 0;
        // Bounded by the rarest tag's occurrences.
        for i in rarest.partition_point_below(start)..rarest.len() {
            let Some(p) = rarest.get(i) else { break };
            if p >= end || taken >= limit {
                break;
            }
            if others.iter().all(|l| l.contains_position(p)) && type_ok(p) {
                out.push(p);
                taken += 1;
            }
        }
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
    #[cfg(feature = "test-support")]
    pub fn fingerprint(&self) -> IndexFingerprint {
        let mut streams: Vec<(String, Vec<u64>)> = (0..self.streams.len())
            .map(|i| {
                let name = String::from_utf8_lossy(self.streams.name(i)).into_owned();
                (
                    name,
                    self.streams.stream(i as u32).copy_range(0, usize::MAX),
                )
            })
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
        let mut tags: Vec<(String, Vec<u64>)> = (0..self.tags.len())
            .map(|i| {
                let name = String::from_utf8_lossy(self.tags.name(i)).into_owned();
                (name, self.tags.stream(i as u32).copy_range(0, usize::MAX))
            })
            .collect();
        tags.sort();
        IndexFingerprint {
            streams,
            types,
            locations,
            tags,
        }
    }
}

#[cfg(feature = "test-support")]
/// A comparable copy of the index (see [`Index::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct IndexFingerprint {
    pub streams: Vec<(String, Vec<u64>)>,
    pub types: Vec<(String, Vec<u64>)>,
    pub locations: Vec<u64>,
    pub tags: Vec<(String, Vec<u64>)>,
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
fn grow_gently<T>(v: &mut Vec<T>, extra: usize) {
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
        let mut idx = Index::new(Layout::V2);
        let names: Vec<String> = (0..40).map(|i| format!("T{i}")).collect();
        let ids: Vec<u32> = names
            .iter()
            .map(|n| idx.type_id(n.as_bytes()).unwrap())
            .collect();
        assert_eq!(ids, (0..40).collect::<Vec<u32>>());
        for (n, &id) in names.iter().zip(&ids) {
            assert_eq!(idx.type_id(n.as_bytes()).unwrap(), id);
            assert_eq!(idx.type_ids[n.as_str()], id);
            assert_eq!(&*idx.type_names[id as usize], n.as_str());
        }
    }

    /// A frame body of one batch per `(stream, first_version, types)`.
    fn body(batches: &[(&str, u64, &[&str])], recorded_at_us: i64) -> Vec<u8> {
        let mut out = Vec::new();
        for &(stream, first_version, types) in batches {
            let start = out.len();
            frame::encode_batch_header(&mut out, types.len() as u32, stream);
            frame::patch_batch_header(&mut out[start..], first_version, recorded_at_us);
            for (i, t) in types.iter().enumerate() {
                let parts = frame::EventParts::<&str> {
                    event_id: &[i as u8; 16],
                    event_type: t,
                    tags: &[],
                    data: b"data",
                    metadata: b"",
                };
                frame::encode_event(&mut out, Layout::V2, &parts);
            }
        }
        out
    }

    #[test]
    fn names_are_checked_for_utf8_when_first_seen() {
        let t = 1_700_000_000_000_000;
        // A known stream and type: indexed.
        let mut idx = Index::new(Layout::V2);
        idx.add_frame(&body(&[("orders", 0, &["Created"])], t), 4096)
            .expect("valid frame");
        // The same names again, then a new stream whose id is not UTF-8: rejected.
        let mut bad_stream = body(
            &[
                ("orders", 1, &["Created"]),
                ("ord\u{e9}rs", 0, &["Created"]),
            ],
            t,
        );
        let second =
            frame::batch_header_size("orders".len()) + frame::event_size(Layout::V2, 7, 0, 4, 0);
        let at = second + frame::batch_header_size(0) + 3;
        assert_eq!(&bad_stream[at..at + 2], "\u{e9}".as_bytes());
        bad_stream[at] = 0xFF; // a lone continuation-less lead byte: invalid UTF-8
        let e = idx
            .add_frame(&bad_stream, 8192)
            .expect_err("invalid stream id");
        let malformed = |what| frame::FrameError::Malformed(what).to_string();
        assert_eq!(
            (e.body_offset, e.what),
            (second, malformed(frame::BAD_STREAM_ID))
        );
        // A new event type that is not UTF-8: rejected; the known one is not re-checked.
        let mut idx = Index::new(Layout::V2);
        let mut bad_type = body(&[("s", 0, &["Known", "N\u{e9}w"])], t);
        let len = bad_type.len();
        let at = len - 4 - "N\u{e9}w".len() + 1; // the é, before the 4-byte payload
        assert_eq!(&bad_type[at..at + 2], "\u{e9}".as_bytes());
        bad_type[at + 1] = b'x'; // lead byte without its continuation
        let e = idx.add_frame(&bad_type, 4096).expect_err("invalid type");
        assert_eq!(e.what, malformed(frame::BAD_EVENT_TYPE));
    }

    /// Names that stress the table: short, long with a shared prefix, differing only in the
    /// last byte, differing only in length (also by trailing zero bytes).
    fn awkward_names(count: usize) -> Vec<Vec<u8>> {
        let prefix = "p".repeat(240);
        let mut names: Vec<Vec<u8>> = Vec::new();
        for i in 0..count {
            names.push(format!("s-{i}").into_bytes());
            names.push(format!("{prefix}{i:09}").into_bytes());
        }
        for b in 0..=255u8 {
            if b.is_ascii() {
                let mut n = prefix.clone().into_bytes();
                n.push(b);
                names.push(n);
            }
        }
        for len in 1..=frame::MAX_NAME_LEN {
            names.push(vec![b'a'; len]);
            let mut z = vec![b'z'];
            z.resize(len, 0);
            names.push(z);
        }
        names
    }

    #[test]
    fn stream_table_finds_every_stream_after_growth() {
        let names = awkward_names(60_000);
        assert!(names.len() > 100_000);
        let mut t = StreamTable::default();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.find(n), None, "not yet inserted");
            assert_eq!(
                t.find_or_insert(n),
                Ok(i as u32),
                "new names get the next index"
            );
        }
        assert_eq!(t.len(), names.len());
        assert!(t.slots.len().is_power_of_two());
        assert!(t.len() * 5 <= t.slots.len() * 4, "load factor at most 0.8");
        for (i, n) in names.iter().enumerate() {
            assert_eq!(
                t.find(n),
                Some(i as u32),
                "{:?}",
                String::from_utf8_lossy(n)
            );
            assert_eq!(
                t.find_or_insert(n),
                Ok(i as u32),
                "no duplicate on reinsert"
            );
            assert_eq!(t.name(i), &n[..]);
        }
        assert_eq!(t.len(), names.len(), "reinserting adds nothing");
        for absent in [
            &b"s-"[..],
            b"s-60000",
            b"p",
            &[b'a'; 256][..],
            b"z\0\0\0\0\0\0\0\0",
        ] {
            if !names.iter().any(|n| n == absent) {
                assert_eq!(t.find(absent), None);
            }
        }
        let stored: usize = names.iter().map(Vec::len).sum();
        assert!(
            t.names.len() <= stored / (NAME_CHUNK - frame::MAX_NAME_LEN) + 1,
            "names are packed in chunks, not allocated one by one"
        );
    }

    #[test]
    fn colliding_tags_are_told_apart_by_name() {
        // A degenerate hasher: every name hashes to 0, so every probe starts at slot 0 and
        // every tag matches; only the name comparison tells streams apart.
        // With a zero word multiplier every name hashes to the same value too, with a non-zero
        // tag.
        let names = awkward_names(600);
        for degenerate in [
            NameHasher {
                k0: 0,
                k1: 0,
                k2: 0,
            },
            NameHasher {
                k0: 5,
                k1: 0,
                k2: 0xD6E8_FEB8_6659_FD93,
            },
        ] {
            let h0 = degenerate.hash(&names[0]);
            assert!(names.iter().all(|n| degenerate.hash(n) == h0));
            let mut t = StreamTable::with_hasher(degenerate);
            for (i, n) in names.iter().enumerate() {
                assert_eq!(t.find_or_insert(n), Ok(i as u32));
            }
            for (i, n) in names.iter().enumerate() {
                assert_eq!(t.find(n), Some(i as u32));
                assert_eq!(t.name(i), &n[..]);
            }
            assert_eq!(t.find(b"absent"), None);
        }
    }

    #[test]
    fn stream_table_costs_about_12_bytes_per_event_at_10_events_per_stream() {
        // The shape of examples/index_memory.rs: 20-byte ids, 10 versions each.
        let mut t = StreamTable::default();
        let streams = 100_000usize;
        for s in 0..streams {
            let name = format!("stream-{s:013}");
            let i = t.find_or_insert(name.as_bytes()).expect("insert");
            let stream = t.stream_mut(i);
            for v in 0..10u64 {
                stream.reserve(1);
                stream.push(v * streams as u64 + s as u64);
            }
        }
        let per_stream = t.heap_bytes() as f64 / streams as f64;
        // Entry 32 B (in a doubled vector), ids 20 B, slots 8 B at load ≤ 0.8, 12 u32 slots.
        assert!(per_stream < 125.0, "{per_stream} heap bytes per stream");
        assert_eq!(t.stream(7).get(9), Some(9 * streams as u64 + 7));
    }

    #[test]
    fn hash_sees_every_byte_and_the_length() {
        let h = NameHasher::random();
        for len in 1..=64usize {
            let base: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(31) ^ 0x5A).collect();
            let hb = h.hash(&base);
            for i in 0..len {
                let mut m = base.clone();
                m[i] ^= 1;
                assert_ne!(h.hash(&m), hb, "byte {i} of {len}");
            }
            let mut longer = base.clone();
            longer.push(0);
            assert_ne!(h.hash(&longer), hb, "length {len} vs {}", len + 1);
            assert!(same_name(&base, &base.clone()));
            assert!(!same_name(&base, &longer));
        }
        let other = NameHasher::random();
        assert_ne!(
            (h.k0, h.k1, h.k2),
            (other.k0, other.k1, other.k2),
            "every table gets its own seed"
        );
    }

    #[test]
    fn reindexing_the_same_frames_gives_the_same_fingerprint() {
        let mut frames = Vec::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        for f in 0..2_000u64 {
            let mut batches = Vec::new();
            for b in 0..=(f % 3) {
                let stream = format!("stream-{}", (f * 7 + b * 13) % 257);
                let n = ((f + b) % 4 + 1) as usize;
                let v = versions.entry(stream.clone()).or_insert(0);
                batches.push((stream, *v, n));
                *v += n as u64;
            }
            let types = ["Created", "Renamed", "Deleted", "Tagged"];
            let spec: Vec<(&str, u64, &[&str])> = batches
                .iter()
                .map(|(s, v, n)| (s.as_str(), *v, &types[..*n]))
                .collect();
            frames.push(body(
                &spec,
                1_700_000_000_000_000 + i64::try_from(f).unwrap(),
            ));
        }
        let build = || {
            let mut idx = Index::new(Layout::V2);
            let mut offset = 4096u64;
            for f in &frames {
                idx.add_frame(f, offset).expect("valid frames index");
                offset += frame::frame_size(f.len() as u64);
            }
            idx
        };
        let (a, b) = (build(), build());
        assert_ne!(
            a.streams.hasher.k0, b.streams.hasher.k0,
            "two indexes, two seeds"
        );
        let fa = a.fingerprint();
        assert_eq!(fa, b.fingerprint());
        assert_eq!(fa.streams.len(), versions.len());
        assert_eq!(a.stream_count(), versions.len());
        for (name, positions) in &fa.streams {
            assert_eq!(positions.len() as u64, versions[name]);
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(a.stream_version(name), Some(versions[name] - 1));
            assert_eq!(a.stream_position(name, 0), Some(positions[0]));
            assert_eq!(
                a.stream_positions(name, 1, 3),
                positions[1..3.min(positions.len()).max(1)]
            );
            assert_eq!(a.stream_positions(name, u64::MAX, 0), Vec::<u64>::new());
        }
        assert_eq!(a.stream_version("stream-9999"), None);
        assert_eq!(a.stream_positions("stream-9999", 0, 10), Vec::<u64>::new());
    }

    #[test]
    fn add_frame_rejects_a_version_gap() {
        let mut idx = Index::new(Layout::V2);
        idx.add_frame(&body(&[("s", 0, &["A", "B"])], 1), 4096)
            .expect("first");
        let e = idx
            .add_frame(&body(&[("s", 3, &["A"])], 2), 8192)
            .expect_err("gap");
        assert!(
            e.what.contains("continues at version 3 but has 2"),
            "{}",
            e.what
        );
        let mut idx = Index::new(Layout::V2);
        let e = idx
            .add_frame(&body(&[("new", 1, &["A"])], 1), 4096)
            .expect_err("new stream must start at 0");
        assert!(e.what.contains("has 0 events"), "{}", e.what);
    }

    #[test]
    fn streams_turn_wide_past_u32_positions() {
        let mut s = Stream {
            packed: 0,
            positions: Vec::new(),
        };
        let values = [
            0u64,
            7,
            u64::from(u32::MAX),
            1 << 32,
            (1 << 40) + 3,
            u64::MAX >> 20,
        ];
        for (i, &v) in values.iter().enumerate() {
            s.reserve(1);
            s.push(v);
            assert_eq!(s.len(), i + 1);
            assert_eq!(s.is_wide(), v > u64::from(u32::MAX) || s.is_wide());
        }
        assert!(s.is_wide());
        for (i, &v) in values.iter().enumerate() {
            assert_eq!(s.get(i), Some(v));
        }
        assert_eq!(s.get(values.len()), None);
        assert_eq!(s.copy_range(0, usize::MAX), values.to_vec());
        assert_eq!(s.copy_range(2, 4), values[2..4].to_vec());
        assert_eq!(s.copy_range(5, 2), Vec::<u64>::new());
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
