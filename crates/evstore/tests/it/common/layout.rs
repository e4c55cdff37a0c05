//! An independent reader of the log layout (docs/FORMAT.md), written without the library's
//! decoder, so recovery tests can find and damage exact frames.
#![allow(
    dead_code,
    reason = "shared by the test modules, each of which uses a subset"
)]

pub const SEG: u64 = 64 * 1024;
pub const HEADER: u64 = 4096;

pub fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A valid frame found by walking the file with the layout of docs/FORMAT.md (independently of
/// the library's decoder).
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    pub segment: u64,
    pub seg_offset: u64,
    pub file_offset: u64,
    pub body_len: u64,
    pub seq: u64,
    pub durable_seq: u64,
}

impl FrameInfo {
    /// File offset just past the body (padding excluded).
    pub fn end(&self) -> u64 {
        self.file_offset + 24 + self.body_len
    }
    /// File offset just past the padding.
    pub fn padded_end(&self) -> u64 {
        self.file_offset + align8(24 + self.body_len)
    }
}

/// `(body_len, durable_lag)` of the valid frame with `seq` at `off` in the segment at `seg_start`.
pub fn parse_frame_at(file: &[u8], seg_start: u64, off: u64, seq: u64) -> Option<(u64, u64)> {
    let seg_size = u64_at(file, 16);
    let file_id = &file[24..40];
    if off + 24 > seg_size {
        return None;
    }
    let at = (seg_start + off) as usize;
    let h = file.get(at..at + 24)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(file_id);
    hasher.update(&h[4..24]);
    if u32_at(h, 0) != hasher.finalize() || u64_at(h, 8) != seq {
        return None;
    }
    let body_len = u64::from(u32_at(h, 4));
    if 24 + body_len > seg_size - off {
        return None;
    }
    let body = file.get(at + 24..at + 24 + body_len as usize)?;
    (crc32fast::hash(body) == u32_at(h, 16)).then_some((body_len, u64::from(u32_at(h, 20))))
}

/// Every valid frame of the log, in order.
pub fn walk_frames(file: &[u8]) -> Vec<FrameInfo> {
    let seg_size = u64_at(file, 16);
    let mut out = Vec::new();
    let (mut seg, mut off, mut seq) = (0u64, 0u64, 0u64);
    loop {
        let seg_start = HEADER + seg * seg_size;
        if let Some((body_len, lag)) = parse_frame_at(file, seg_start, off, seq) {
            out.push(FrameInfo {
                segment: seg,
                seg_offset: off,
                file_offset: seg_start + off,
                body_len,
                seq,
                durable_seq: seq.saturating_sub(lag),
            });
            off += align8(24 + body_len);
            seq += 1;
            continue;
        }
        if let Some((body_len, _)) = parse_frame_at(file, seg_start + seg_size, 0, seq) {
            if align8(24 + body_len) > seg_size - off {
                seg += 1;
                off = 0;
                continue;
            }
        }
        return out;
    }
}

/// One event of [`encode_batch`]: (event id, type, data); no metadata.
pub type RawEvent<'a> = ([u8; 16], &'a str, &'a [u8]);

/// A batch (docs/FORMAT.md §3.2) in format version 2's layout, without tags: the events of one
/// append to `stream`, from `first_version`.
pub fn encode_batch(
    stream: &str,
    first_version: u64,
    recorded_at_us: i64,
    events: &[RawEvent],
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(events.len() as u32).to_le_bytes());
    b.push(stream.len() as u8);
    b.extend_from_slice(&first_version.to_le_bytes());
    b.extend_from_slice(&recorded_at_us.to_le_bytes());
    b.extend_from_slice(stream.as_bytes());
    for (id, ty, data) in events {
        b.extend_from_slice(id);
        b.push(ty.len() as u8);
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes()); // tags_len
        b.extend_from_slice(ty.as_bytes());
        b.extend_from_slice(data);
    }
    b
}

/// A whole frame (docs/FORMAT.md §3.1) with valid CRCs for the file whose header is `file`,
/// padded to a multiple of 8.
pub fn encode_frame(file: &[u8], seq: u64, durable_lag: u32, body: &[u8]) -> Vec<u8> {
    let file_id = &file[24..40];
    let mut f = vec![0u8; 24];
    f[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
    f[8..16].copy_from_slice(&seq.to_le_bytes());
    f[16..20].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    f[20..24].copy_from_slice(&durable_lag.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(file_id);
    hasher.update(&f[4..24]);
    f[0..4].copy_from_slice(&hasher.finalize().to_le_bytes());
    f.extend_from_slice(body);
    f.resize(align8(f.len() as u64) as usize, 0);
    f
}
