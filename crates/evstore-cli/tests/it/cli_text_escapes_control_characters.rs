//! Everything the CLI prints for a person escapes control and other non-printing characters:
//! stream ids, event types, order/user/product ids, paths and error messages taken from a file
//! or the command line can neither break a line (one event is one line), fake another line, nor
//! reach the terminal as raw escape sequences. `--json` stays valid JSON, unchanged.

use std::path::Path;

use crate::common::cli::{evstore, stderr, stdout};
use evstore::{ExpectedVersion, NewEvent, Store};

/// Stream ids and event types a hostile writer could store (all valid names for the library).
const STREAMS: [&str; 5] = [
    "with\nnewline\tand\0nul",
    "fake\n#999999 2026-01-01T00:00:00.000000Z  Order-x v0  OrderCreated  user_id=\"root\"",
    "ansi\u{1b}[2J\u{1b}[31mred\u{7}",
    "bidi\u{202e}txt.exe\u{2066}",
    "sep\u{2028}line\u{2029}para\u{85}next\r",
];
const TYPES: [&str; 3] = [
    "Type\nInjected",
    "T\u{7f}\u{9b}",
    "zero\u{200b}width\u{feff}",
];

/// Characters that must never reach a person's terminal raw.
fn non_printing(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// No raw control or invisible character, except the newlines that end lines.
fn assert_printable(what: &str, text: &str) {
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.chars().find(|&c| non_printing(c)) {
            panic!("{what}: line {i} holds a raw {c:?}: {line:?}");
        }
    }
    assert!(!text.contains('\r'), "{what}: {text:?}");
}

/// A store holding one event per (stream, type) pair, plus plain ones: 17 events.
fn build(path: &Path) -> usize {
    let store = Store::open(path).unwrap();
    let mut n = 0;
    for stream in STREAMS {
        for ty in TYPES {
            store
                .append(
                    stream,
                    ExpectedVersion::Any,
                    &[NewEvent::new(ty, b"data\n\x1b[0m".to_vec())],
                )
                .unwrap();
            n += 1;
        }
    }
    store
        .append(
            "plain",
            ExpectedVersion::NoStream,
            &[
                NewEvent::new("Plain", Vec::new()),
                NewEvent::new("Plain", b"x".to_vec()),
            ],
        )
        .unwrap();
    n + 2
}

/// Each event line of `dump`/`tail` text output: starts with `#position`, one per event.
fn assert_one_line_per_event(what: &str, text: &str, events: usize) {
    assert_printable(what, text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events, "{what}: {text}");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("#{i:<6} ")), "{what}: {line:?}");
    }
}

#[test]
fn dump_tail_stats_and_verify_escape_names_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esc.evs");
    let events = build(&path);
    let p = path.to_str().unwrap();

    let dump = evstore(dir.path(), &["dump", p]);
    assert_eq!(dump.status.code(), Some(0), "{}", stderr(&dump));
    let text = stdout(&dump);
    assert_one_line_per_event("dump", &text, events);
    // Visible escapes, in the order they are stored.
    assert!(
        text.contains("with\\nnewline\\tand\\0nul v0  Type\\nInjected"),
        "{text}"
    );
    assert!(
        text.contains("ansi\\u{1b}[2J\\u{1b}[31mred\\u{7}"),
        "{text}"
    );
    assert!(text.contains("bidi\\u{202e}txt.exe\\u{2066}"), "{text}");
    assert!(
        text.contains("sep\\u{2028}line\\u{2029}para\\u{85}next\\r"),
        "{text}"
    );
    assert!(text.contains("T\\u{7f}\\u{9b}"), "{text}");
    assert!(text.contains("zero\\u{200b}width\\u{feff}"), "{text}");
    // The forged line stays inside the event that carries it.
    assert_eq!(text.matches("#999999").count(), TYPES.len(), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("#999999")), "{text}");

    let tail = evstore(dir.path(), &["tail", p, "-n", "1000"]);
    assert_eq!(tail.status.code(), Some(0), "{}", stderr(&tail));
    assert_eq!(stdout(&tail), text, "tail prints the same lines");

    // Filtering by a name with control characters still works and prints it escaped (argv
    // cannot hold a NUL, so not the first stream).
    let one = stdout(&evstore(
        dir.path(),
        &["dump", p, "--stream", STREAMS[2], "--type", TYPES[0]],
    ));
    assert_printable("dump --stream", &one);
    assert_eq!(one.lines().count(), 1, "{one}");

    let stats = evstore(dir.path(), &["stats", p]);
    assert_eq!(stats.status.code(), Some(0), "{}", stderr(&stats));
    let stats = stdout(&stats);
    assert_printable("stats", &stats);
    assert!(stats.contains("  Type\\nInjected "), "{stats}");

    let verify = evstore(dir.path(), &["verify", p]);
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
    assert_printable("verify", &stdout(&verify));

    // --json is unchanged: JSON escapes, one document per event, no raw control characters.
    let json = stdout(&evstore(dir.path(), &["dump", p, "--json"]));
    assert_eq!(json.lines().count(), events, "{json}");
    assert!(
        json.contains(r#""stream":"with\nnewline\tand\u0000nul""#),
        "{json}"
    );
    assert!(
        json.contains("\"stream\":\"bidi\u{202e}txt.exe\u{2066}\""),
        "{json}"
    );
}

#[test]
fn error_messages_and_paths_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    // A path with control characters, in an error (no such file) and in normal output.
    let missing = "no\nsuch\u{1b}[31m.evs";
    let o = evstore(dir.path(), &["stats", missing]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_printable("stderr", &err);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.contains("no\\nsuch\\u{1b}[31m.evs: no such file"),
        "{err}"
    );

    let name = "odd\tname\u{202e}.evs";
    build(&dir.path().join(name));
    let verify = stdout(&evstore(dir.path(), &["verify", name]));
    assert_printable("verify", &verify);
    assert!(
        verify.starts_with("odd\\tname\\u{202e}.evs: clean: "),
        "{verify}"
    );

    // A store in use (by a writer: repair needs it to itself): the message names the path.
    let held = Store::open(dir.path().join(name)).unwrap();
    let o = evstore(dir.path(), &["repair", name]);
    assert_ne!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert_printable("stderr", &err);
    assert!(err.contains("odd\\tname\\u{202e}.evs"), "{err}");
    drop(held);
}

#[test]
fn orders_output_escapes_ids_users_products_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let id = "ord\n#fake\u{1b}[2J";
    let user = "bob\u{202e}\tadmin";
    let run = |args: &[&str]| {
        let mut all = vec!["orders", "--file", "o.evs"];
        all.extend_from_slice(args);
        let o = evstore(dir.path(), &all);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert_printable(&format!("{args:?}"), &out);
        out
    };
    assert_eq!(
        run(&["create", "--user", user, "--id", id]),
        "ord\\n#fake\\u{1b}[2J\n"
    );
    run(&[
        "add-item",
        id,
        "--product",
        "book\r\n\u{2028}",
        "--quantity",
        "2",
        "--price",
        "1.50",
    ]);
    run(&["cancel", id, "--reason", "out\nof\u{7}stock"]);
    let show = run(&["show", id]);
    assert!(show.contains("order    ord\\n#fake\\u{1b}[2J\n"), "{show}");
    assert!(show.contains("user     bob\\u{202e}\\tadmin\n"), "{show}");
    assert!(show.contains("book\\r\\n\\u{2028}"), "{show}");
    assert!(show.contains("(out\\nof\\u{7}stock)"), "{show}");
    let history = run(&["history", id]);
    assert_eq!(history.lines().count(), 3, "{history}");
    let list = run(&["list", "--user", user]);
    assert_eq!(list.lines().count(), 3, "header, one order, count: {list}");
    assert!(list.contains("ord\\n#fake\\u{1b}[2J"), "{list}");

    // A refused command: the error names the order, escaped.
    let o = evstore(dir.path(), &["orders", "--file", "o.evs", "ship", id]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_printable("stderr", &err);
    assert_eq!(err.lines().count(), 1, "{err:?}");
}
