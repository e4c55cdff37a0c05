//! The byte layout of frames, batches and events (docs/FORMAT.md §3), and the validation of
//! hostile bytes.
//!
//! Everything here works on plain byte slices: no I/O, no allocation proportional to a length
//! field read from the file. Decoders return [`FrameError`] instead of panicking; every length
//! is checked against the bytes actually present before it is used.

/// Size of a frame header in bytes.
pub(crate) const FRAME_HEADER_SIZE: usize = 24;
/// Frames start at offsets that are multiples of this.
pub(crate) const FRAME_ALIGN: usize = 8;
/// Fixed part of a batch header (before the stream id).
pub(crate) const BATCH_HEADER_FIXED: usize = 21;
/// Fixed part of an event record in format version 1 (before type, data, metadata).
pub(crate) const EVENT_FIXED_V1: usize = 25;
/// Fixed part of an event record in format version 2 (before type, tags, data, metadata).
pub(crate) const EVENT_FIXED_V2: usize = 27;
/// Most tags on one event (format version 2).
pub(crate) const MAX_TAGS: usize = crate::types::MAX_TAGS_PER_EVENT;
/// Largest number of events in one batch (one `append`): 1,048,575, as an event index inside a
/// batch is packed into 20 bits of an index entry.
pub const MAX_EVENTS_PER_BATCH: usize = (1 << 20) - 1;
/// Longest stream id or event type in bytes.
pub const MAX_NAME_LEN: usize = 255;

// The layout constants against docs/FORMAT.md §3 and against each other, at compile time.
const _: () = {
    // header_crc, body_len, seq, body_crc, durable_lag (§3.1).
    assert!(4 + 4 + 8 + 4 + 4 == FRAME_HEADER_SIZE);
    // event_count, stream_len, first_version, recorded_at_us (§3.2).
    assert!(4 + 1 + 8 + 8 == BATCH_HEADER_FIXED);
    // event_id, type_len, data_len, metadata_len (§3.2), then tags_len in version 2.
    assert!(16 + 1 + 4 + 4 == EVENT_FIXED_V1);
    assert!(EVENT_FIXED_V1 + 2 == EVENT_FIXED_V2);
    // A full tag section (count × (length byte + longest tag)) fits its u16 length.
    assert!(MAX_TAGS * (1 + MAX_NAME_LEN) <= u16::MAX as usize);
    // `align8` rounds with a mask.
    assert!(FRAME_ALIGN.is_power_of_two());
    // A seal (a header without body) keeps the next frame aligned without padding.
    assert!(FRAME_HEADER_SIZE.is_multiple_of(FRAME_ALIGN));
    // Name lengths are stored in one byte.
    assert!(MAX_NAME_LEN <= u8::MAX as usize);
    // An event index fits the 20 bits a `Location` leaves above its 44-bit offset.
    assert!(MAX_EVENTS_PER_BATCH < 1 << (64 - 44));
    assert!(MAX_LOCATION_OFFSET == (1 << 44) - 1);
};

/// The layout of event records, by the file's format version (docs/FORMAT.md §2, §3.2):
/// version 1 records have no tags; version 2 records carry a tag section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Format version 1: `event_id, type_len, data_len, metadata_len, type, data, metadata`.
    V1,
    /// Format version 2: version 1's fields plus `tags_len` and the tag section after the type.
    V2,
}

impl Layout {
    /// Bytes of an event record before its variable parts.
    #[inline]
    pub fn event_fixed(self) -> usize {
        match self {
            Layout::V1 => EVENT_FIXED_V1,
            Layout::V2 => EVENT_FIXED_V2,
        }
    }

    /// Whether its records can carry tags.
    #[inline]
    pub fn has_tags(self) -> bool {
        self == Layout::V2
    }
}

/// Round `n` up to the frame alignment.
#[inline]
pub(crate) fn align8(n: u64) -> u64 {
    (n + (FRAME_ALIGN as u64 - 1)) & !(FRAME_ALIGN as u64 - 1)
}

/// Bytes a frame with a body of `body_len` bytes occupies in a segment, padding included.
#[inline]
pub(crate) fn frame_size(body_len: u64) -> u64 {
    align8(FRAME_HEADER_SIZE as u64 + body_len)
}

/// Why a byte range is not a valid frame, batch or event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes than a frame header.
    ShortHeader,
    /// The header CRC (salted with the file id) does not match.
    HeaderChecksum,
    /// The header is intact but carries another sequence number.
    WrongSeq { expected: u64, found: u64 },
    /// `body_len` runs past the end of the segment.
    BodyOutOfBounds { body_len: u32, available: u64 },
    /// The body CRC does not match.
    BodyChecksum,
    /// CRCs hold but the content breaks a rule of the format.
    Malformed(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::ShortHeader => write!(f, "truncated frame header"),
            FrameError::HeaderChecksum => write!(f, "frame header checksum mismatch"),
            FrameError::WrongSeq { expected, found } => {
                write!(f, "frame sequence {found} where {expected} was expected")
            }
            FrameError::BodyOutOfBounds {
                body_len,
                available,
            } => write!(
                f,
                "frame body of {body_len} bytes runs past the segment end ({available} bytes left)"
            ),
            FrameError::BodyChecksum => write!(f, "frame body checksum mismatch"),
            FrameError::Malformed(what) => write!(f, "malformed frame content: {what}"),
        }
    }
}

/// A decoded, CRC-checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub body_len: u32,
    pub seq: u64,
    pub body_crc: u32,
    pub durable_lag: u32,
}

impl FrameHeader {
    /// `durable_seq`: every frame with a smaller seq was durable before this one was written.
    pub fn durable_seq(&self) -> u64 {
        self.seq.saturating_sub(u64::from(self.durable_lag))
    }

    /// Bytes the whole frame occupies, padding included.
    pub fn size(&self) -> u64 {
        frame_size(u64::from(self.body_len))
    }
}

#[inline]
fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

#[inline]
fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// A CRC-32 hasher, cloned from one made once: `Hasher::new` detects CPU features on every
/// call, which is measurable at two small CRCs per frame.
fn crc_hasher() -> crc32fast::Hasher {
    static TEMPLATE: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(crc32fast::Hasher::new).clone()
}

/// CRC-32 of `bytes` (what `crc32fast::hash` computes).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc_hasher();
    h.update(bytes);
    h.finalize()
}

fn header_crc(file_id: &[u8; 16], rest: &[u8]) -> u32 {
    let mut h = crc_hasher();
    h.update(file_id);
    h.update(rest);
    h.finalize()
}

/// Encode a frame header into `out[..24]`.
pub(crate) fn encode_frame_header(
    out: &mut [u8],
    file_id: &[u8; 16],
    body_len: u32,
    seq: u64,
    body_crc: u32,
    durable_lag: u32,
) {
    assert!(
        out.len() >= FRAME_HEADER_SIZE,
        "frame header buffer too small"
    );
    out[4..8].copy_from_slice(&body_len.to_le_bytes());
    out[8..16].copy_from_slice(&seq.to_le_bytes());
    out[16..20].copy_from_slice(&body_crc.to_le_bytes());
    out[20..24].copy_from_slice(&durable_lag.to_le_bytes());
    let crc = header_crc(file_id, &out[4..FRAME_HEADER_SIZE]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// Check the header at the start of `bytes` (its salted CRC only; not the seq, not the body).
pub(crate) fn decode_frame_header(
    bytes: &[u8],
    file_id: &[u8; 16],
) -> Result<FrameHeader, FrameError> {
    let h = bytes
        .get(..FRAME_HEADER_SIZE)
        .ok_or(FrameError::ShortHeader)?;
    let stored = read_u32(h, 0).ok_or(FrameError::ShortHeader)?;
    if stored != header_crc(file_id, &h[4..FRAME_HEADER_SIZE]) {
        return Err(FrameError::HeaderChecksum);
    }
    Ok(FrameHeader {
        body_len: read_u32(h, 4).ok_or(FrameError::ShortHeader)?,
        seq: read_u64(h, 8).ok_or(FrameError::ShortHeader)?,
        body_crc: read_u32(h, 16).ok_or(FrameError::ShortHeader)?,
        durable_lag: read_u32(h, 20).ok_or(FrameError::ShortHeader)?,
    })
}

/// Check a whole frame at the start of `seg_rest` (the bytes from the frame's offset to the end
/// of its segment): header CRC, expected seq, bounds, body CRC. Returns the header and the body.
pub(crate) fn check_frame<'a>(
    seg_rest: &'a [u8],
    file_id: &[u8; 16],
    expected_seq: u64,
) -> Result<(FrameHeader, &'a [u8]), FrameError> {
    let header = decode_frame_header(seg_rest, file_id)?;
    if header.seq != expected_seq {
        return Err(FrameError::WrongSeq {
            expected: expected_seq,
            found: header.seq,
        });
    }
    let available = (seg_rest.len() - FRAME_HEADER_SIZE) as u64;
    if u64::from(header.body_len) > available {
        return Err(FrameError::BodyOutOfBounds {
            body_len: header.body_len,
            available,
        });
    }
    let body = &seg_rest[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + header.body_len as usize];
    if crc32(body) != header.body_crc {
        return Err(FrameError::BodyChecksum);
    }
    Ok((header, body))
}

/// A decoded batch header (the part shared by all events of one append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader<'a> {
    pub event_count: u32,
    pub first_version: u64,
    pub recorded_at_us: i64,
    pub stream: &'a str,
    /// Offset of the first event record, relative to the batch start.
    pub events_offset: usize,
}

/// A decoded event record, borrowing from the log bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventRecord<'a> {
    pub event_id: [u8; 16],
    pub event_type: &'a str,
    pub data: &'a [u8],
    pub metadata: &'a [u8],
    /// The tag section (structure and UTF-8 checked; empty without tags).
    pub tags: &'a [u8],
    /// Bytes this record occupies.
    pub size: usize,
}

fn name<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, FrameError> {
    std::str::from_utf8(bytes).map_err(|_| FrameError::Malformed(what))
}

/// Why a stream id fails [`check_stream_name`] (also [`decode_batch_header`]'s message).
pub(crate) const BAD_STREAM_ID: &str = "stream id is empty or not UTF-8";
/// Why an event type fails [`check_event_type`] (also [`decode_event`]'s message).
pub(crate) const BAD_EVENT_TYPE: &str = "event type is empty or not UTF-8";

/// The UTF-8 check [`decode_batch_header`] applies to [`RawBatchHeader::stream`].
pub(crate) fn check_stream_name(bytes: &[u8]) -> Result<&str, FrameError> {
    name(bytes, BAD_STREAM_ID)
}

/// The UTF-8 check [`decode_event`] applies to [`RawEventRecord::event_type`].
pub(crate) fn check_event_type(bytes: &[u8]) -> Result<&str, FrameError> {
    name(bytes, BAD_EVENT_TYPE)
}

/// A batch header with every check but the stream id's UTF-8 validity (bytes equal to an
/// already validated name need none: the index checks new names only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawBatchHeader<'a> {
    pub event_count: u32,
    pub first_version: u64,
    pub recorded_at_us: i64,
    /// Non-empty; UTF-8 not checked.
    pub stream: &'a [u8],
    pub events_offset: usize,
}

/// An event record with every check but the type's UTF-8 validity (see [`RawBatchHeader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawEventRecord<'a> {
    pub event_id: [u8; 16],
    /// Non-empty; UTF-8 not checked.
    pub event_type: &'a [u8],
    pub data: &'a [u8],
    pub metadata: &'a [u8],
    /// The tag section: structure checked (see [`check_tag_section`]), UTF-8 not.
    pub tags: &'a [u8],
    pub tag_count: usize,
    pub size: usize,
}

/// Decode the batch header at the start of `b`.
pub(crate) fn decode_batch_header(b: &[u8]) -> Result<BatchHeader<'_>, FrameError> {
    let h = decode_batch_header_raw(b)?;
    Ok(BatchHeader {
        event_count: h.event_count,
        first_version: h.first_version,
        recorded_at_us: h.recorded_at_us,
        stream: check_stream_name(h.stream)?,
        events_offset: h.events_offset,
    })
}

/// [`decode_batch_header`] without the UTF-8 check of the stream id.
pub(crate) fn decode_batch_header_raw(b: &[u8]) -> Result<RawBatchHeader<'_>, FrameError> {
    const SHORT: FrameError = FrameError::Malformed("batch header runs past the body");
    let event_count = read_u32(b, 0).ok_or(SHORT)?;
    let stream_len = *b.get(4).ok_or(SHORT)? as usize;
    let first_version = read_u64(b, 5).ok_or(SHORT)?;
    let recorded_at_us = read_u64(b, 13).ok_or(SHORT)?.cast_signed();
    let stream = b
        .get(BATCH_HEADER_FIXED..BATCH_HEADER_FIXED + stream_len)
        .ok_or(SHORT)?;
    if event_count == 0 || event_count as usize > MAX_EVENTS_PER_BATCH {
        return Err(FrameError::Malformed("batch event count out of range"));
    }
    if first_version.checked_add(u64::from(event_count)).is_none() {
        return Err(FrameError::Malformed("batch versions overflow"));
    }
    if stream.is_empty() {
        return Err(FrameError::Malformed(BAD_STREAM_ID));
    }
    Ok(RawBatchHeader {
        event_count,
        first_version,
        recorded_at_us,
        stream,
        events_offset: BATCH_HEADER_FIXED + stream_len,
    })
}

/// Why a tag fails [`check_tag`].
pub(crate) const BAD_TAG: &str = "tag is not UTF-8";

/// The UTF-8 check [`decode_event`] applies to each tag of a record.
pub(crate) fn check_tag(bytes: &[u8]) -> Result<&str, FrameError> {
    name(bytes, BAD_TAG)
}

/// Check the structure of a tag section (docs/FORMAT.md §3.2): `len: u8` (1..=255) then
/// `len` bytes, repeated, exactly filling it, at most [`MAX_TAGS`] tags. Returns the count.
pub(crate) fn check_tag_section(section: &[u8]) -> Result<usize, FrameError> {
    let mut rest = section;
    let mut count = 0usize;
    // Bounded by the section's length: each round consumes at least 2 bytes.
    while let Some((&len, after)) = rest.split_first() {
        if len == 0 {
            return Err(FrameError::Malformed("empty tag"));
        }
        rest = after
            .get(len as usize..)
            .ok_or(FrameError::Malformed("tag runs past its section"))?;
        count += 1;
    }
    if count > MAX_TAGS {
        return Err(FrameError::Malformed("too many tags on one event"));
    }
    Ok(count)
}

/// The tags of a checked tag section, as raw bytes (see [`check_tag_section`]).
pub(crate) fn tag_bytes(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = section;
    std::iter::from_fn(move || {
        let (&len, after) = rest.split_first()?;
        let tag = after.get(..len as usize)?;
        rest = &after[len as usize..];
        Some(tag)
    })
}

/// Decode the event record at the start of `b`, laid out as `layout` says.
pub(crate) fn decode_event(b: &[u8], layout: Layout) -> Result<EventRecord<'_>, FrameError> {
    let e = decode_event_raw(b, layout)?;
    for tag in tag_bytes(e.tags) {
        check_tag(tag)?;
    }
    Ok(EventRecord {
        event_id: e.event_id,
        event_type: check_event_type(e.event_type)?,
        data: e.data,
        metadata: e.metadata,
        tags: e.tags,
        size: e.size,
    })
}

/// [`decode_event`] without the UTF-8 checks of the event type and the tags.
pub(crate) fn decode_event_raw(b: &[u8], layout: Layout) -> Result<RawEventRecord<'_>, FrameError> {
    const SHORT: FrameError = FrameError::Malformed("event record runs past the body");
    let id = b.get(..16).ok_or(SHORT)?;
    let type_len = *b.get(16).ok_or(SHORT)? as usize;
    let data_len = read_u32(b, 17).ok_or(SHORT)? as usize;
    let meta_len = read_u32(b, 21).ok_or(SHORT)? as usize;
    let tags_len = match layout {
        Layout::V1 => 0,
        Layout::V2 => {
            let t = b.get(25..27).ok_or(SHORT)?;
            usize::from(u16::from_le_bytes([t[0], t[1]]))
        }
    };
    let fixed = layout.event_fixed();
    let type_end = fixed + type_len;
    let tags_end = type_end + tags_len;
    let data_end = tags_end.checked_add(data_len).ok_or(SHORT)?;
    let meta_end = data_end.checked_add(meta_len).ok_or(SHORT)?;
    if meta_end > b.len() {
        return Err(SHORT);
    }
    if type_len == 0 {
        return Err(FrameError::Malformed(BAD_EVENT_TYPE));
    }
    let tags = &b[type_end..tags_end];
    let tag_count = check_tag_section(tags)?;
    let mut event_id = [0u8; 16];
    event_id.copy_from_slice(id);
    Ok(RawEventRecord {
        event_id,
        event_type: &b[fixed..type_end],
        data: &b[tags_end..data_end],
        metadata: &b[data_end..meta_end],
        tags,
        tag_count,
        size: meta_end,
    })
}

/// Encoded size of a batch header for a stream id of `stream_len` bytes.
pub(crate) fn batch_header_size(stream_len: usize) -> usize {
    BATCH_HEADER_FIXED + stream_len
}

/// Encoded size of one event record with a tag section of `tags_len` bytes (0 in
/// [`Layout::V1`]; see [`tag_section_size`]).
pub(crate) fn event_size(
    layout: Layout,
    type_len: usize,
    tags_len: usize,
    data_len: usize,
    meta_len: usize,
) -> usize {
    layout.event_fixed() + type_len + tags_len + data_len + meta_len
}

/// Encoded size of the tag section holding `tags`.
pub(crate) fn tag_section_size<S: AsRef<str>>(tags: &[S]) -> usize {
    tags.iter().map(|t| 1 + t.as_ref().len()).sum()
}

/// Append a batch header to `out`. `first_version` and `recorded_at_us` can be patched later
/// with [`patch_batch_header`] (they are assigned under the writer lock).
pub(crate) fn encode_batch_header(out: &mut Vec<u8>, event_count: u32, stream: &str) {
    assert!(
        !stream.is_empty() && stream.len() <= MAX_NAME_LEN,
        "stream length validated by the caller"
    );
    out.extend_from_slice(&event_count.to_le_bytes());
    out.push(stream.len() as u8);
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(stream.as_bytes());
}

/// Set the version and timestamp of an encoded batch (at the start of `batch`).
pub(crate) fn patch_batch_header(batch: &mut [u8], first_version: u64, recorded_at_us: i64) {
    batch[5..13].copy_from_slice(&first_version.to_le_bytes());
    batch[13..21].copy_from_slice(&recorded_at_us.to_le_bytes());
}

/// The parts of one event record to encode.
pub(crate) struct EventParts<'a, S: AsRef<str>> {
    pub event_id: &'a [u8; 16],
    pub event_type: &'a str,
    /// Validated by the caller: distinct, 1..=255 bytes each, at most [`MAX_TAGS`]; empty in
    /// [`Layout::V1`].
    pub tags: &'a [S],
    pub data: &'a [u8],
    pub metadata: &'a [u8],
}

/// Append one event record to `out`, laid out as `layout` says.
pub(crate) fn encode_event<S: AsRef<str>>(
    out: &mut Vec<u8>,
    layout: Layout,
    e: &EventParts<'_, S>,
) {
    assert!(
        !e.event_type.is_empty() && e.event_type.len() <= MAX_NAME_LEN,
        "event type length validated by the caller"
    );
    assert!(
        layout.has_tags() || e.tags.is_empty(),
        "tags on a version 1 log refused by the caller"
    );
    assert!(
        e.tags.len() <= MAX_TAGS,
        "tag count validated by the caller"
    );
    out.extend_from_slice(e.event_id);
    out.push(e.event_type.len() as u8);
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.metadata.len() as u32).to_le_bytes());
    if layout.has_tags() {
        out.extend_from_slice(&(tag_section_size(e.tags) as u16).to_le_bytes());
    }
    out.extend_from_slice(e.event_type.as_bytes());
    for t in e.tags {
        let t = t.as_ref();
        assert!(
            !t.is_empty() && t.len() <= MAX_NAME_LEN,
            "tag length validated by the caller"
        );
        out.push(t.len() as u8);
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(e.data);
    out.extend_from_slice(e.metadata);
}

/// Where an event lives: the file offset of its batch header (44 bits) and its index inside
/// the batch (20 bits), packed in one `u64` to keep the index small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Location(u64);

/// Largest file offset a [`Location`] can name.
pub(crate) const MAX_LOCATION_OFFSET: u64 = (1 << 44) - 1;

impl Location {
    /// Pack a batch's file offset and an event index. Both must be in range.
    pub fn new(batch_file_offset: u64, index_in_batch: u32) -> Location {
        assert!(
            batch_file_offset <= MAX_LOCATION_OFFSET,
            "file offset beyond the 16 TiB limit"
        );
        assert!(
            (index_in_batch as usize) <= MAX_EVENTS_PER_BATCH,
            "event index beyond the batch limit"
        );
        Location(batch_file_offset | (u64::from(index_in_batch) << 44))
    }
    /// The packed form (what the index stores).
    pub fn to_raw(self) -> u64 {
        self.0
    }
    /// Unpack a value produced by [`Location::to_raw`].
    pub fn from_raw(raw: u64) -> Location {
        Location(raw)
    }
    /// File offset of the batch header.
    pub fn batch_offset(self) -> u64 {
        self.0 & MAX_LOCATION_OFFSET
    }
    /// Index of the event inside its batch.
    pub fn index_in_batch(self) -> u32 {
        (self.0 >> 44) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips_and_is_salted() {
        let id = [7u8; 16];
        let mut buf = [0u8; FRAME_HEADER_SIZE];
        encode_frame_header(&mut buf, &id, 10, 42, 0xdead_beef, 3);
        let h = decode_frame_header(&buf, &id).unwrap();
        assert_eq!(h.seq, 42);
        assert_eq!(h.durable_seq(), 39);
        assert_eq!(
            decode_frame_header(&buf, &[8u8; 16]),
            Err(FrameError::HeaderChecksum)
        );
    }

    #[test]
    fn zero_bytes_are_never_a_frame() {
        let zeros = [0u8; 64];
        assert_eq!(
            decode_frame_header(&zeros, &[0u8; 16]),
            Err(FrameError::HeaderChecksum)
        );
        assert_eq!(
            decode_frame_header(&zeros, &[1u8; 16]),
            Err(FrameError::HeaderChecksum)
        );
    }

    #[test]
    fn event_decoding_rejects_lengths_past_the_end() {
        for layout in [Layout::V1, Layout::V2] {
            let mut b = Vec::new();
            let tags: &[&str] = if layout.has_tags() {
                &["a:1", "b"]
            } else {
                &[]
            };
            let parts = EventParts {
                event_id: &[1; 16],
                event_type: "T",
                tags,
                data: b"abc",
                metadata: b"",
            };
            encode_event(&mut b, layout, &parts);
            let e = decode_event(&b, layout).unwrap();
            assert_eq!(e.size, b.len());
            assert_eq!(e.data, b"abc");
            let decoded: Vec<&[u8]> = tag_bytes(e.tags).collect();
            let expected: Vec<&[u8]> = tags.iter().map(|t| t.as_bytes()).collect();
            assert_eq!(decoded, expected);
            b[17] = 200; // data_len now runs past the end
            assert!(decode_event(&b, layout).is_err());
            let mut huge = b.clone();
            huge[17..21].copy_from_slice(&u32::MAX.to_le_bytes());
            huge[21..25].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(decode_event(&huge, layout).is_err());
        }
    }

    #[test]
    fn tag_sections_are_checked() {
        assert_eq!(check_tag_section(&[]), Ok(0));
        assert_eq!(check_tag_section(&[1, b'a', 2, b'b', b'c']), Ok(2));
        assert!(check_tag_section(&[0]).is_err(), "empty tag");
        assert!(check_tag_section(&[3, b'a']).is_err(), "runs past");
        let mut b = Vec::new();
        let parts = EventParts {
            event_id: &[1; 16],
            event_type: "T",
            tags: &["ok"],
            data: b"",
            metadata: b"",
        };
        encode_event(&mut b, Layout::V2, &parts);
        let at = EVENT_FIXED_V2 + 1 + 1; // the tag's first byte
        b[at] = 0xFF;
        assert!(decode_event_raw(&b, Layout::V2).is_ok(), "raw skips UTF-8");
        assert_eq!(
            decode_event(&b, Layout::V2).map(|_| ()),
            Err(FrameError::Malformed(BAD_TAG))
        );
    }

    #[test]
    fn location_packs_offset_and_index() {
        let l = Location::new(MAX_LOCATION_OFFSET, MAX_EVENTS_PER_BATCH as u32);
        assert_eq!(l.batch_offset(), MAX_LOCATION_OFFSET);
        assert_eq!(l.index_in_batch(), MAX_EVENTS_PER_BATCH as u32);
    }
}
