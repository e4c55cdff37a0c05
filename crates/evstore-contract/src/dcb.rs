//! The contract of tags, Dynamic Consistency Boundary queries and append conditions, and
//! atomic multi-stream appends (issue #15): `read_query`, `append_if` and `append_multi` of
//! [`EventStorage`](evstore::EventStorage), as the file store's doc comments specify them.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use evstore::query::{MAX_CONFLICTS_LISTED, MAX_QUERY_ITEMS};
use evstore::{
    AppendCondition, AppendResult, Error, ExpectedVersion, NewEvent, Query, QueryItem,
    RecordedEvent, Result, StreamAppend,
};
use uuid::Uuid;

use crate::{ev, ok, Backend};

fn tagged(t: &str, tags: &[&str]) -> NewEvent {
    NewEvent::new(t, b"{}".to_vec()).with_tags(tags.iter().copied())
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

fn invalid<T: std::fmt::Debug>(name: &str, r: &Result<T>, what: &str) {
    assert!(
        matches!(r, Err(Error::InvalidInput(_))),
        "{name}: {what}: expected InvalidInput, got {r:?}"
    );
}

/// `read_query_page`: pages of at most `max` matches, in order, whose concatenation is the
/// whole `read_query`; a full page's head is its last event's position (so the next page reads
/// after it, and a condition after it sees exactly the later matches), a partial page's head
/// is the log's; `max = 0` returns nothing and `after` as the head.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_read_query_pages<B: Backend>(s: &B) {
    let name = s.backend_name();
    let log = query_log(s);
    let log_head = log.last().map(|e| e.position);
    let query = Query::new(vec![
        QueryItem::new(&[], &["k:1"]),
        QueryItem::new(&["C"], &[]),
    ]);
    let (all, head) = ok(s.read_query(&query, None), "whole read");
    assert_eq!(head, log_head, "{name}");
    assert!(
        all.len() > 7,
        "{name}: the query matches enough for several pages"
    );
    let mut paged = Vec::new();
    let mut after = None;
    // Bounded: every full page moves `after` on by at least one match.
    for _ in 0..=all.len() {
        let (page, page_head) = ok(s.read_query_page(&query, after, 3), "page");
        assert!(page.len() <= 3, "{name}");
        paged.extend(page.iter().map(|e| e.position));
        if page.len() < 3 {
            assert_eq!(
                page_head, log_head,
                "{name}: a partial page's head is the log's"
            );
            break;
        }
        assert_eq!(
            page_head,
            page.last().map(|e| e.position),
            "{name}: full page"
        );
        after = page_head;
    }
    assert_eq!(
        paged,
        positions(&all),
        "{name}: pages add up to the whole read"
    );
    let (none, h) = ok(s.read_query_page(&query, Some(5), 0), "max 0");
    assert!(none.is_empty() && h == Some(5), "{name}: max 0");
    // A condition after a full page's head fails on exactly the later matches.
    let (first, first_head) = ok(s.read_query_page(&query, None, 2), "first page");
    assert_eq!(first.len(), 2);
    let later: Vec<u64> = positions(&all).into_iter().skip(2).collect();
    match s.append_if(
        "pages-probe",
        ExpectedVersion::Any,
        &[ev("Probe", b"")],
        &AppendCondition::new(query, first_head),
    ) {
        Err(Error::AppendConditionFailed { positions: p, .. }) => assert_eq!(p, later, "{name}"),
        other => panic!("{name}: expected a failed condition, got {other:?}"),
    }
}

/// Tags round-trip through every read in the order appended (untagged events read back with
/// none), and the tag limits are enforced with `InvalidInput`, writing nothing: 1..=255 bytes,
/// distinct on one event, at most [`evstore::MAX_TAGS_PER_EVENT`].
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_tags_round_trip<B: Backend>(s: &B) {
    let name = s.backend_name();
    let long = "t".repeat(255);
    let many: Vec<String> = (0..evstore::MAX_TAGS_PER_EVENT)
        .map(|i| format!("tag-{i}"))
        .collect();
    let events = vec![
        tagged("Tagged", &["z:last", "a:first", "ünïcødé:✓"]),
        ev("Plain", b""),
        NewEvent::new("Tagged", b"{}".to_vec()).with_tags([long.as_str()]),
        NewEvent::new("Many", b"{}".to_vec()).with_tags(many.clone()),
    ];
    ok(s.append("t", ExpectedVersion::NoStream, &events), "append");
    let want: Vec<Vec<String>> = events.iter().map(|e| e.tags.clone()).collect();
    let got = |read: Vec<RecordedEvent>| -> Vec<Vec<String>> {
        read.into_iter().map(|e| e.tags().to_vec()).collect()
    };
    assert_eq!(
        got(ok(s.read_stream("t", 0), "read_stream")),
        want,
        "{name}"
    );
    assert_eq!(got(ok(s.read_all_events(0), "read_all")), want, "{name}");
    assert_eq!(
        got(ok(s.read_by_type("Many", None), "read_by_type")),
        std::slice::from_ref(&many),
        "{name}"
    );
    let (read, head) = ok(s.read_query(&Query::all(), None), "read_query");
    assert_eq!((got(read), head), (want, Some(3)), "{name}");
    // The limits, each refused with nothing written.
    let bad: [(&str, Vec<String>); 4] = [
        ("an empty tag", vec![String::new()]),
        ("a 256-byte tag", vec!["t".repeat(256)]),
        ("a repeated tag", vec!["a".into(), "b".into(), "a".into()]),
        ("256 tags", (0..256).map(|i| format!("tag-{i}")).collect()),
    ];
    for (what, tags) in bad {
        let e = NewEvent::new("E", b"".to_vec()).with_tags(tags);
        invalid(
            name,
            &s.append("bad", ExpectedVersion::Any, std::slice::from_ref(&e)),
            what,
        );
        invalid(
            name,
            &s.append_multi(&[
                StreamAppend::new("ok", ExpectedVersion::Any, vec![ev("E", b"")]),
                StreamAppend::new("bad", ExpectedVersion::Any, vec![e]),
            ]),
            what,
        );
    }
    assert_eq!(
        ok(s.head(), "head"),
        Some(3),
        "{name}: refused appends wrote nothing"
    );
}

/// The log the query contract reads: 48 events of types `A`, `B`, `C` on 4 streams, tagged
/// from `k:0..k:3`, `p:0..p:2` and sometimes `rare` (some untagged).
fn query_log<B: Backend>(s: &B) -> Vec<RecordedEvent> {
    for i in 0..48u64 {
        let ty = ["A", "B", "C"][(i % 3) as usize];
        let mut tags = Vec::new();
        if i % 5 != 0 {
            tags.push(format!("k:{}", i % 4));
        }
        if i % 2 == 0 {
            tags.push(format!("p:{}", (i / 2) % 3));
        }
        if i % 11 == 3 {
            tags.push("rare".to_string());
        }
        let e = NewEvent::new(ty, i.to_le_bytes().to_vec()).with_tags(tags);
        ok(
            s.append(&format!("q-{}", i % 4), ExpectedVersion::Any, &[e]),
            "append",
        );
    }
    ok(s.read_all_events(0), "read_all")
}

/// The positions of `log` that `query` matches after `after`, by the model
/// ([`Query::matches`]).
fn model(log: &[RecordedEvent], query: &Query, after: Option<u64>) -> Vec<u64> {
    log.iter()
        .filter(|e| after.is_none_or(|a| e.position > a))
        .filter(|e| {
            let tags: Vec<&str> = e.tags.iter().map(String::as_str).collect();
            query.matches(&e.event_type, &tags)
        })
        .map(|e| e.position)
        .collect()
}

/// `read_query` agrees with the model ([`Query::matches`]): types OR'd, tags AND'ed, items
/// OR'd, an item with neither matches everything, a query with no items matches nothing,
/// `after` excludes positions at or before it; events come in position order, whole, with the
/// head the read saw. A query over the limits is `InvalidInput`.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_query_semantics<B: Backend>(s: &B) {
    let name = s.backend_name();
    let (read, head) = ok(s.read_query(&Query::all(), None), "empty log");
    assert!(read.is_empty() && head.is_none(), "{name}: empty log");
    let log = query_log(s);
    let item = QueryItem::new;
    let queries = vec![
        Query::new(vec![]),
        Query::all(),
        Query::new(vec![item(&["A"], &[])]),
        Query::new(vec![item(&["A", "C"], &[])]),
        Query::new(vec![item(&[], &["k:1"])]),
        Query::new(vec![item(&[], &["k:2", "p:1"])]),
        Query::new(vec![item(&["B"], &["k:2", "p:1"])]),
        Query::new(vec![item(&["A", "B"], &["rare"])]),
        Query::new(vec![item(&[], &["k:0", "k:1"])]),
        Query::new(vec![item(&["Missing"], &[])]),
        Query::new(vec![item(&[], &["missing"])]),
        Query::new(vec![item(&["A"], &["k:1"]), item(&["C"], &["p:2"])]),
        Query::new(vec![item(&[], &["rare"]), item(&["B"], &[])]),
        Query::new(vec![item(&["C"], &["k:3"]), item(&[], &[])]),
        Query::new(vec![
            item(&["A"], &["missing"]),
            item(&["Missing"], &["k:1"]),
        ]),
    ];
    for query in &queries {
        for after in [None, Some(0), Some(17), Some(46), Some(47), Some(100)] {
            let (read, head) = ok(s.read_query(query, after), "read_query");
            assert_eq!(
                positions(&read),
                model(&log, query, after),
                "{name}: {query:?} after {after:?}"
            );
            assert_eq!(head, Some(47), "{name}: the head the read saw");
            for e in &read {
                assert_eq!(e, &log[usize::try_from(e.position).unwrap_or(usize::MAX)]);
            }
        }
    }
    // Pseudo-random queries against the model.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let types = ["A", "B", "C", "D"];
    let tags = [
        "k:0", "k:1", "k:2", "k:3", "p:0", "p:1", "p:2", "rare", "none",
    ];
    for _ in 0..40 {
        let items: Vec<QueryItem> = (0..=next(3))
            .map(|_| {
                let ty: Vec<&str> = (0..next(3)).map(|_| types[next(4) as usize]).collect();
                let tg: Vec<&str> = (0..next(3)).map(|_| tags[next(9) as usize]).collect();
                QueryItem::new(&ty, &tg)
            })
            .collect();
        let query = Query::new(items);
        let after = [None, Some(next(48))][next(2) as usize];
        let (read, _) = ok(s.read_query(&query, after), "read_query");
        assert_eq!(
            positions(&read),
            model(&log, &query, after),
            "{name}: {query:?} after {after:?}"
        );
    }
    let too_many = Query::new(vec![QueryItem::new(&["A"], &[]); MAX_QUERY_ITEMS + 1]);
    invalid(name, &s.read_query(&too_many, None), "too many items");
    invalid(
        name,
        &s.read_query(&Query::new(vec![QueryItem::new(&[], &[""])]), None),
        "an empty tag",
    );
}

/// `append_if` appends when no event matching the condition's query has a position after
/// `after`, and otherwise fails with `AppendConditionFailed` listing the conflicting positions
/// (ascending, at most [`MAX_CONFLICTS_LISTED`]) and the condition's `after`, writing
/// nothing. A query with no items never fails; the expected version is checked first.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_append_if<B: Backend>(s: &B) {
    let name = s.backend_name();
    let alice = Query::new(vec![QueryItem::new(&["Claimed"], &["user:alice"])]);
    let claim = |tag: &str| tagged("Claimed", &[tag]);
    // Nothing matches in an empty log, after anything.
    let r = ok(
        s.append_if(
            "u-1",
            ExpectedVersion::NoStream,
            &[claim("user:alice")],
            &AppendCondition::new(alice.clone(), None),
        ),
        "first claim",
    );
    assert_eq!(r.first_position, 0);
    // Unrelated events (other tag, other type) do not conflict.
    ok(
        s.append("u-2", ExpectedVersion::Any, &[claim("user:bob")]),
        "bob",
    );
    ok(
        s.append(
            "u-3",
            ExpectedVersion::Any,
            &[tagged("Released", &["user:alice"])],
        ),
        "other type",
    );
    let (read, head) = ok(s.read_query(&alice, None), "read");
    assert_eq!((positions(&read), head), (vec![0], Some(2)), "{name}");
    ok(
        s.append_if(
            "u-4",
            ExpectedVersion::Any,
            &[claim("user:carol")],
            &AppendCondition::new(alice.clone(), head),
        ),
        "condition after the head holds",
    );
    let failed = |r: Result<AppendResult>, want: &[u64], after: Option<u64>| {
        condition_failed(name, &r, want, after);
    };
    let head = ok(s.head(), "head");
    for after in [None, Some(0)] {
        let want: &[u64] = if after.is_none() { &[0] } else { &[] };
        let r = s.append_if(
            "u-5",
            ExpectedVersion::Any,
            &[claim("user:alice")],
            &AppendCondition::new(alice.clone(), after),
        );
        if want.is_empty() {
            ok(r, "after the only match");
        } else {
            failed(r, want, after);
        }
    }
    // Now positions 0 and 4 claim alice.
    let r = s.append_if(
        "u-6",
        ExpectedVersion::Any,
        &[claim("user:alice")],
        &AppendCondition::new(alice.clone(), head.map(|h| h - 2)),
    );
    failed(r, &[4], head.map(|h| h - 2));
    assert_eq!(
        ok(s.head(), "head"),
        Some(4),
        "{name}: a failed condition wrote nothing"
    );
    assert_eq!(ok(s.stream_version("u-6"), "version"), None);
    // The expected version is checked before the condition.
    let r = s.append_if(
        "u-1",
        ExpectedVersion::NoStream,
        &[claim("user:alice")],
        &AppendCondition::new(alice.clone(), None),
    );
    assert!(
        matches!(
            r,
            Err(Error::WrongExpectedVersion {
                actual: Some(0),
                ..
            })
        ),
        "{name}: {r:?}"
    );
    append_if_edge_cases(s);
}

/// Asserts that `r` is `AppendConditionFailed` with `want` and `after`.
fn condition_failed(name: &str, r: &Result<AppendResult>, want: &[u64], after: Option<u64>) {
    match r {
        Err(Error::AppendConditionFailed {
            positions,
            after: a,
        }) => {
            assert_eq!((positions.as_slice(), *a), (want, after), "{name}");
        }
        other => panic!("{name}: expected AppendConditionFailed, got {other:?}"),
    }
}

/// A query with no items never fails; one over the limits is refused; at most
/// [`MAX_CONFLICTS_LISTED`] conflicting positions are listed: the first ones.
fn append_if_edge_cases<B: Backend>(s: &B) {
    let name = s.backend_name();
    let claim = |tag: &str| tagged("Claimed", &[tag]);
    // A query with no items never fails; one over the limits is refused.
    ok(
        s.append_if(
            "u-7",
            ExpectedVersion::Any,
            &[claim("user:alice")],
            &AppendCondition::new(Query::new(vec![]), None),
        ),
        "empty query",
    );
    let too_many = Query::new(vec![QueryItem::new(&["A"], &[]); MAX_QUERY_ITEMS + 1]);
    invalid(
        name,
        &s.append_if(
            "u-8",
            ExpectedVersion::Any,
            &[ev("E", b"")],
            &AppendCondition::new(too_many, None),
        ),
        "too many items",
    );
    let base = ok(s.head(), "head").map_or(0, |h| h + 1);
    let n = MAX_CONFLICTS_LISTED as u64 + 3;
    let flood: Vec<NewEvent> = (0..n).map(|_| tagged("Flood", &["flood"])).collect();
    ok(s.append("flood", ExpectedVersion::Any, &flood), "flood");
    let q = Query::new(vec![QueryItem::new(&[], &["flood"])]);
    let want: Vec<u64> = (base + 1..base + 1 + MAX_CONFLICTS_LISTED as u64).collect();
    condition_failed(
        name,
        &s.append_if(
            "x",
            ExpectedVersion::Any,
            &[ev("E", b"")],
            &AppendCondition::new(q, Some(base)),
        ),
        &want,
        Some(base),
    );
}

/// A repeated `append_if` returns the original result without checking the condition again
/// (its own events match it now), as a repeated `append` does.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_append_if_idempotent_retry<B: Backend>(s: &B) {
    let name = s.backend_name();
    for (expected, seat) in [
        (ExpectedVersion::NoStream, "seat:12A"),
        (ExpectedVersion::Any, "seat:12B"),
    ] {
        let stream = format!("booking-{seat}");
        let q = Query::new(vec![QueryItem::new(&["Booked"], &[seat])]);
        let condition = AppendCondition::new(q.clone(), None);
        let events = vec![tagged("Booked", &[seat]), ev("Noted", b"")];
        let first = ok(s.append_if(&stream, expected, &events, &condition), "first");
        ok(
            s.append("other", ExpectedVersion::Any, &[ev("X", b"")]),
            "other",
        );
        assert_eq!(
            ok(
                s.append_if(&stream, expected, &events, &condition),
                "repeat"
            ),
            first,
            "{name}: {expected:?}"
        );
        // The same condition with fresh events fails: the first append's event matches.
        let r = s.append_if(
            &format!("{stream}-again"),
            ExpectedVersion::Any,
            &[tagged("Booked", &[seat])],
            &condition,
        );
        match r {
            Err(Error::AppendConditionFailed { positions, after }) => {
                assert_eq!(
                    (positions, after),
                    (vec![first.first_position], None),
                    "{name}"
                );
            }
            other => panic!("{name}: expected AppendConditionFailed, got {other:?}"),
        }
        let (read, _) = ok(s.read_query(&q, None), "read");
        assert_eq!(
            positions(&read),
            [first.first_position],
            "{name}: one booking"
        );
    }
}

/// `threads` threads decide on the same empty history and race to claim one tag with
/// `append_if`: exactly one wins each round, the others get `AppendConditionFailed` naming the
/// winner's position.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_racing_tag_claims_have_one_winner<B: Backend>(s: &Arc<B>, threads: usize) {
    let name = s.backend_name();
    for round in 0..4 {
        let tag = format!("username:user-{round}");
        let q = Query::new(vec![QueryItem::new(&["UsernameClaimed"], &[tag.as_str()])]);
        let barrier = Barrier::new(threads);
        let results: Vec<Result<AppendResult>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|i| {
                    let (s, q, tag, barrier) = (s.clone(), q.clone(), tag.clone(), &barrier);
                    sc.spawn(move || {
                        let (seen, head) = ok(s.read_query(&q, None), "read");
                        assert!(seen.is_empty());
                        barrier.wait();
                        s.append_if(
                            &format!("claim-{round}-{i}"),
                            ExpectedVersion::NoStream,
                            &[tagged("UsernameClaimed", &[tag.as_str()])],
                            &AppendCondition::new(q, head),
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let winners: Vec<&AppendResult> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{name}: round {round}: {results:?}");
        let won_at = winners[0].first_position;
        for r in &results {
            match r {
                Ok(_) => {}
                Err(Error::AppendConditionFailed { positions, .. }) => {
                    assert_eq!(positions, &[won_at], "{name}");
                }
                Err(e) => panic!("{name}: a loser failed otherwise: {e}"),
            }
        }
        let (read, _) = ok(s.read_query(&q, None), "read");
        assert_eq!(positions(&read), [won_at], "{name}: one claim stored");
    }
}

/// `append_multi` writes all parts or nothing: results per part in order with consecutive
/// positions and one `recorded_at`; one part's wrong expected version writes nothing and
/// names that stream and its actual version; no parts, a repeated stream or an invalid part is
/// `InvalidInput`, writing nothing.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_append_multi_is_atomic<B: Backend>(s: &B) {
    let name = s.backend_name();
    ok(
        s.append("b", ExpectedVersion::NoStream, &[ev("E", b"b0")]),
        "b",
    );
    let parts = vec![
        StreamAppend::new(
            "a",
            ExpectedVersion::NoStream,
            vec![ev("E", b"a0"), ev("E", b"a1")],
        ),
        StreamAppend::new("b", ExpectedVersion::Exact(0), vec![ev("E", b"b1")]),
        StreamAppend::new(
            "c",
            ExpectedVersion::Any,
            vec![tagged("T", &["multi"]), ev("E", b"c1"), ev("E", b"c2")],
        ),
    ];
    let rs = ok(s.append_multi(&parts), "multi");
    let want = [(0, 1, 1, 2), (1, 1, 3, 3), (0, 2, 4, 6)];
    let got: Vec<(u64, u64, u64, u64)> = rs
        .iter()
        .map(|r| {
            (
                r.first_version,
                r.last_version,
                r.first_position,
                r.last_position,
            )
        })
        .collect();
    assert_eq!(got, want, "{name}");
    let all = ok(s.read_all_events(0), "read_all");
    assert_eq!(all.len(), 7);
    assert!(
        all[1..].iter().all(|e| e.recorded_at == all[1].recorded_at),
        "{name}: one stamp"
    );
    let streams: Vec<&str> = all.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["b", "a", "a", "b", "c", "c", "c"], "{name}");
    assert_eq!(all[4].tags, ["multi"], "{name}");
    // One wrong expected version: nothing written, the error names that stream.
    let bad = vec![
        StreamAppend::new("d", ExpectedVersion::NoStream, vec![ev("E", b"")]),
        StreamAppend::new("b", ExpectedVersion::Exact(0), vec![ev("E", b"")]),
        StreamAppend::new("a", ExpectedVersion::Exact(5), vec![ev("E", b"")]),
    ];
    match s.append_multi(&bad) {
        Err(Error::WrongExpectedVersion { stream, actual, .. }) => {
            assert_eq!((stream.as_str(), actual), ("b", Some(1)), "{name}");
        }
        other => panic!("{name}: expected WrongExpectedVersion, got {other:?}"),
    }
    let one = |stream: &str| StreamAppend::new(stream, ExpectedVersion::Any, vec![ev("E", b"")]);
    invalid(name, &s.append_multi(&[]), "no parts");
    invalid(
        name,
        &s.append_multi(&[one("x"), one("y"), one("x")]),
        "a repeated stream",
    );
    invalid(
        name,
        &s.append_multi(&[
            one("x"),
            StreamAppend::new("y", ExpectedVersion::Any, vec![]),
        ]),
        "an empty part",
    );
    invalid(
        name,
        &s.append_multi(&[one("x"), one("")]),
        "an empty stream id",
    );
    assert_eq!(
        ok(s.head(), "head"),
        Some(6),
        "{name}: refused appends wrote nothing"
    );
    assert_eq!(ok(s.stream_version("d"), "d"), None, "{name}");
    assert_eq!(ok(s.stream_version("x"), "x"), None, "{name}");
}

/// A repeated multi-stream append returns the original results and writes nothing; one whose
/// parts only partly repeat it is an `IdempotencyConflict`, writing nothing.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_append_multi_idempotent_retry<B: Backend>(s: &B) {
    let name = s.backend_name();
    let parts = vec![
        StreamAppend::new(
            "m-1",
            ExpectedVersion::NoStream,
            vec![ev("E", b"1"), ev("E", b"2")],
        ),
        StreamAppend::new("m-2", ExpectedVersion::Any, vec![tagged("T", &["x"])]),
    ];
    let first = ok(s.append_multi(&parts), "first");
    ok(
        s.append("other", ExpectedVersion::Any, &[ev("X", b"")]),
        "other",
    );
    assert_eq!(ok(s.append_multi(&parts), "repeat"), first, "{name}");
    let head = ok(s.head(), "head");
    let mut partial = parts.clone();
    partial[1] = StreamAppend::new("m-2", ExpectedVersion::Any, vec![ev("E", b"new")]);
    let r = s.append_multi(&partial);
    assert!(
        matches!(r, Err(Error::IdempotencyConflict { .. })),
        "{name}: expected IdempotencyConflict, got {r:?}"
    );
    assert_eq!(
        ok(s.head(), "head"),
        head,
        "{name}: the conflict wrote nothing"
    );
}

/// Single appends, conditional appends and multi-stream appends from `threads` threads at
/// once (group commit mixing them) keep positions dense from 0, every event written exactly
/// once, and each multi-stream append's parts consecutive in the order given.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_mixed_appends_keep_positions_dense<B: Backend>(s: &Arc<B>, threads: usize) {
    const ROUNDS: usize = 12;
    let name = s.backend_name();
    let written: Vec<(Vec<Uuid>, Vec<Vec<AppendResult>>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|w| {
                let s = s.clone();
                sc.spawn(move || {
                    let mut ids = Vec::new();
                    let mut multis = Vec::new();
                    for i in 0..ROUNDS {
                        match i % 3 {
                            0 => {
                                let e = ev("Single", &[w as u8]);
                                ids.push(e.event_id);
                                ok(
                                    s.append(&format!("s-{w}"), ExpectedVersion::Any, &[e]),
                                    "single",
                                );
                            }
                            1 => {
                                let parts: Vec<StreamAppend> = (0..=i % 2 + 1)
                                    .map(|k| {
                                        let events: Vec<NewEvent> =
                                            (0..=k).map(|_| ev("Multi", &[w as u8])).collect();
                                        StreamAppend::new(
                                            &format!("m-{w}-{k}"),
                                            ExpectedVersion::Any,
                                            events,
                                        )
                                    })
                                    .collect();
                                ids.extend(
                                    parts
                                        .iter()
                                        .flat_map(|p| p.events.iter().map(|e| e.event_id)),
                                );
                                multis.push(ok(s.append_multi(&parts), "multi"));
                            }
                            _ => {
                                let tag = format!("w:{w}:{i}");
                                let e = tagged("Conditional", &[tag.as_str()]);
                                ids.push(e.event_id);
                                let q = Query::new(vec![QueryItem::new(&[], &[tag.as_str()])]);
                                ok(
                                    s.append_if(
                                        &format!("c-{w}"),
                                        ExpectedVersion::Any,
                                        &[e],
                                        &AppendCondition::new(q, None),
                                    ),
                                    "conditional",
                                );
                            }
                        }
                    }
                    (ids, multis)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("writer")).collect()
    });
    let all = ok(s.read_all_events(0), "read_all");
    assert_eq!(
        positions(&all),
        (0..all.len() as u64).collect::<Vec<_>>(),
        "{name}: dense positions"
    );
    let stored: Vec<Uuid> = all.iter().map(|e| e.event_id).collect();
    let stored_set: HashSet<Uuid> = stored.iter().copied().collect();
    let ids: HashSet<Uuid> = written.iter().flat_map(|w| w.0.iter().copied()).collect();
    assert_eq!(stored.len(), stored_set.len(), "{name}: no event twice");
    assert_eq!(stored_set, ids, "{name}: every event once");
    for results in written.iter().flat_map(|w| w.1.iter()) {
        for pair in results.windows(2) {
            assert_eq!(
                pair[1].first_position,
                pair[0].last_position + 1,
                "{name}: parts consecutive"
            );
        }
    }
}
