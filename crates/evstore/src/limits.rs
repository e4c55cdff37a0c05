//! The input rules every backend applies, in one place: name lengths, events per append, tags,
//! and the shape of a multi-stream append. The file [`Store`](crate::Store) checks them before
//! it writes; other backends (the PostgreSQL one) call the same functions, so a request one
//! backend takes the other takes too, with the same [`Error::InvalidInput`] wording.

use crate::error::{Error, Result};
use crate::types::StreamAppend;

pub use crate::log::frame::{MAX_EVENTS_PER_BATCH as MAX_EVENTS_PER_APPEND, MAX_NAME_LEN};
pub use crate::types::MAX_TAGS_PER_EVENT;

/// `Err(InvalidInput)` unless `name` — a stream id or event type, as `what` says — is
/// 1..=[`MAX_NAME_LEN`] bytes (UTF-8 by construction).
///
/// ```
/// assert!(evstore::limits::check_name("order-1", "stream id").is_ok());
/// assert!(evstore::limits::check_name("", "stream id").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` and the length.
pub fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "{what} must be 1..={MAX_NAME_LEN} bytes of UTF-8, got {} bytes",
            name.len()
        )));
    }
    Ok(())
}

/// `Err(InvalidInput)` unless `tag` is 1..=[`MAX_NAME_LEN`] bytes, as a stream id.
///
/// # Errors
/// [`Error::InvalidInput`] with the length.
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "a tag must be 1..={MAX_NAME_LEN} bytes of UTF-8, got {} bytes",
            tag.len()
        )));
    }
    Ok(())
}

/// `Err(InvalidInput)` unless an event's `tags` are valid ([`check_tag`]), distinct, and at
/// most [`MAX_TAGS_PER_EVENT`].
///
/// ```
/// let tags = vec!["a".to_string(), "a".to_string()];
/// assert!(evstore::limits::check_tags(&tags).is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] naming the first rule broken.
pub fn check_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS_PER_EVENT {
        return Err(Error::InvalidInput(format!(
            "an event carries at most {MAX_TAGS_PER_EVENT} tags, got {}",
            tags.len()
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        check_tag(t)?;
        if tags[..i].contains(t) {
            return Err(Error::InvalidInput(format!(
                "tag {t:?} appears twice on one event"
            )));
        }
    }
    Ok(())
}

/// `Err(InvalidInput)` unless a multi-stream append has at least one part and its streams are
/// distinct. (Each part is then checked as a single append.)
///
/// # Errors
/// [`Error::InvalidInput`] for no parts or a repeated stream.
pub fn check_multi(appends: &[StreamAppend]) -> Result<()> {
    if appends.is_empty() {
        return Err(Error::InvalidInput(
            "a multi-stream append needs at least one stream".into(),
        ));
    }
    for (i, a) in appends.iter().enumerate() {
        if appends[..i].iter().any(|b| b.stream == a.stream) {
            return Err(Error::InvalidInput(format!(
                "stream {:?} appears twice in one multi-stream append",
                a.stream
            )));
        }
    }
    Ok(())
}
