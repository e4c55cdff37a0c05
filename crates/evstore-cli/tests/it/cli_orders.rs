//! `evstore orders ...` and `evstore demo` through the real binary: output, JSON shapes, exit
//! codes (1 for refused commands, 2 for usage errors).

use std::path::Path;

use crate::common::cli::{evstore, json_raw, stderr, stdout};

/// Run and require exit 0; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = evstore(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The string value of `"key":"..."` in a JSON document (first occurrence).
fn json_str(doc: &str, key: &str) -> Option<String> {
    let start = doc.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = doc[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// A JSON document: one line, an object, balanced braces and brackets outside strings.
fn assert_json_object(doc: &str) {
    let doc = doc.trim_end();
    assert!(!doc.contains('\n'), "one line: {doc}");
    assert!(doc.starts_with('{') && doc.ends_with('}'), "{doc}");
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for c in doc.chars() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0, "{doc}");
    }
    assert_eq!((depth, in_str), (0, false), "{doc}");
}

#[test]
fn an_order_goes_through_its_life_cycle_with_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = "shop.evs";

    let created = ok(
        d,
        &["orders", "--file", f, "create", "--user", "alice", "--json"],
    );
    assert_json_object(&created);
    let id = json_str(&created, "order_id").expect("order_id");
    assert_eq!(id.len(), 36, "a uuid: {id}");

    let added = ok(
        d,
        &[
            "orders",
            "--file",
            f,
            "add-item",
            &id,
            "--product",
            "book",
            "--quantity",
            "2",
            "--price",
            "12.50",
            "--json",
        ],
    );
    assert_json_object(&added);
    assert_eq!(json_raw(&added, "total_cents"), Some("2500"));
    // --file and --json also work after the subcommand.
    ok(
        d,
        &[
            "orders",
            "add-item",
            &id,
            "--product",
            "pen",
            "--price",
            "1.5",
            "--file",
            f,
        ],
    );
    ok(d, &["orders", "--file", f, "confirm", &id]);
    let shipped = ok(d, &["orders", "--file", f, "ship", &id]);
    assert!(shipped.contains("shipped"), "{shipped}");
    ok(d, &["orders", "--file", f, "deliver", &id]);

    let show = ok(d, &["orders", "--file", f, "show", &id, "--json"]);
    assert_json_object(&show);
    assert_eq!(json_str(&show, "order_id").as_deref(), Some(id.as_str()));
    assert_eq!(json_str(&show, "user_id").as_deref(), Some("alice"));
    assert_eq!(json_str(&show, "status").as_deref(), Some("delivered"));
    assert_eq!(json_raw(&show, "total_cents"), Some("2650"));
    assert_eq!(json_raw(&show, "version"), Some("5"));
    assert!(
        show.contains(r#""items":[{"product_id":"book","quantity":2,"price_cents":1250},{"product_id":"pen","quantity":1,"price_cents":150}]"#),
        "{show}"
    );

    let text = ok(d, &["orders", "--file", f, "show", &id]);
    assert!(
        text.contains("delivered") && text.contains("26.50"),
        "{text}"
    );

    let history = ok(d, &["orders", "--file", f, "history", &id, "--json"]);
    assert_json_object(&history);
    for ty in [
        "OrderCreated",
        "ItemAddedToOrder",
        "OrderConfirmed",
        "OrderShipped",
        "OrderDelivered",
    ] {
        assert!(history.contains(&format!("\"type\":\"{ty}\"")), "{history}");
    }
    assert_eq!(history.matches("\"version\":").count(), 6);
    let history_text = ok(d, &["orders", "--file", f, "history", &id]);
    assert_eq!(history_text.lines().count(), 6, "{history_text}");
    assert!(history_text.contains("price_cents=1250"), "{history_text}");

    let second = ok(d, &["orders", "--file", f, "create", "--user", "alice"]);
    let second = second.trim();
    ok(d, &["orders", "--file", f, "create", "--user", "bob"]);
    ok(
        d,
        &[
            "orders",
            "--file",
            f,
            "cancel",
            second,
            "--reason",
            "changed \"mind\"",
        ],
    );
    let list = ok(
        d,
        &["orders", "--file", f, "list", "--user", "alice", "--json"],
    );
    assert_json_object(&list);
    assert!(list.starts_with("{\"orders\":["), "{list}");
    assert_eq!(list.matches("\"order_id\"").count(), 2, "{list}");
    assert!(list.contains(&id) && list.contains(second), "{list}");
    assert!(!list.contains("bob"), "{list}");
    let shown = ok(d, &["orders", "--file", f, "show", second, "--json"]);
    assert_eq!(
        json_str(&shown, "cancel_reason").as_deref(),
        Some("changed \"mind\""),
        "escaped quotes round-trip: {shown}"
    );
    let none = ok(
        d,
        &["orders", "--file", f, "list", "--user", "carol", "--json"],
    );
    assert_eq!(none.trim(), r#"{"orders":[]}"#);
}

#[test]
fn show_travels_in_time_by_version_and_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = "t.evs";
    let id = ok(
        d,
        &[
            "orders", "--file", f, "create", "--user", "u1", "--id", "o-1",
        ],
    );
    assert_eq!(id.trim(), "o-1");
    ok(
        d,
        &[
            "orders",
            "--file",
            f,
            "add-item",
            "o-1",
            "--product",
            "a",
            "--price",
            "3",
        ],
    );
    let history = ok(d, &["orders", "--file", f, "history", "o-1", "--json"]);
    let first_recorded = json_str(&history, "recorded_at").expect("recorded_at");
    ok(d, &["orders", "--file", f, "confirm", "o-1"]);

    let v0 = ok(
        d,
        &[
            "orders",
            "--file",
            f,
            "show",
            "o-1",
            "--at-version",
            "0",
            "--json",
        ],
    );
    assert_eq!(json_raw(&v0, "version"), Some("0"));
    assert_eq!(json_str(&v0, "status").as_deref(), Some("pending"));
    assert!(v0.contains("\"items\":[]"), "{v0}");

    let then = ok(
        d,
        &[
            "orders",
            "--file",
            f,
            "show",
            "o-1",
            "--as-of",
            &first_recorded,
            "--json",
        ],
    );
    assert_eq!(json_raw(&then, "version"), Some("0"), "{then}");

    let now = ok(d, &["orders", "--file", f, "show", "o-1", "--json"]);
    assert_eq!(json_raw(&now, "version"), Some("2"));
    assert_eq!(json_str(&now, "status").as_deref(), Some("confirmed"));

    let before = evstore(
        d,
        &[
            "orders",
            "--file",
            f,
            "show",
            "o-1",
            "--as-of",
            "2000-01-01T00:00:00Z",
        ],
    );
    assert_eq!(before.status.code(), Some(1));
    assert!(
        stderr(&before).contains("did not exist yet"),
        "{}",
        stderr(&before)
    );

    let bad = evstore(
        d,
        &["orders", "--file", f, "show", "o-1", "--as-of", "yesterday"],
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn prices_are_parsed_exactly_and_bad_ones_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = "p.evs";
    ok(
        d,
        &["orders", "--file", f, "create", "--user", "u", "--id", "o"],
    );
    for (price, cents) in [("12", 1200), ("12.5", 1250), ("12.50", 1250), ("0.07", 7)] {
        let out = ok(
            d,
            &[
                "orders",
                "--file",
                f,
                "add-item",
                "o",
                "--product",
                "x",
                "--price",
                price,
                "--json",
            ],
        );
        assert!(
            out.contains(&format!("\"price_cents\":{cents}}}]")),
            "{price} → {cents}: {out}"
        );
    }
    for bad in [
        "12.505", "-1", "-0.50", "abc", "1e3", "12.", "", "0.1.2", "NaN",
    ] {
        let o = evstore(
            d,
            &[
                "orders",
                "--file",
                f,
                "add-item",
                "o",
                "--product",
                "x",
                "--price",
                bad,
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("price"), "{}", stderr(&o));
    }
    let show = ok(d, &["orders", "--file", f, "show", "o", "--json"]);
    assert_eq!(json_raw(&show, "total_cents"), Some("3707"));
}

#[test]
fn refused_commands_print_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = "r.evs";
    ok(
        d,
        &["orders", "--file", f, "create", "--user", "u", "--id", "o"],
    );
    let cases: &[(&[&str], &str)] = &[
        (&["confirm", "o"], "without items"),
        (&["ship", "o"], "cannot go from pending to shipped"),
        (&["deliver", "nope"], "not found"),
        (&["show", "nope"], "not found"),
        (&["history", "nope"], "not found"),
        (&["create", "--user", "u", "--id", "o"], "already exists"),
        (
            &[
                "add-item",
                "o",
                "--product",
                "x",
                "--quantity",
                "0",
                "--price",
                "1",
            ],
            "quantity",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["orders", "--file", f];
        all.extend_from_slice(args);
        let o = evstore(d, &all);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("evstore: "), "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    let missing = evstore(d, &["orders", "--file", "nothing.evs", "show", "o"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no such file"),
        "{}",
        stderr(&missing)
    );
    assert!(
        !d.join("nothing.evs").exists(),
        "a read never creates a file"
    );
}

#[test]
fn demo_writes_reports_and_continues_on_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(d, &["demo", "--orders", "30", "--file", "demo.evs"]);
    for section in [
        "created a new log",
        "events/s",
        "appends per fsync",
        "Sample order",
        "OrderCreated",
        "ItemAddedToOrder",
        "Time travel",
        "load_at_version",
        "load_as_of",
        "Snapshots",
        "Orders of user-",
        "Verify",
        "clean",
    ] {
        assert!(out.contains(section), "demo output has {section:?}:\n{out}");
    }
    let again = ok(d, &["demo", "--orders", "30", "--file", "demo.evs"]);
    assert!(again.contains("reopened"), "{again}");
    let stats = ok(d, &["stats", "demo.evs", "--json"]);
    assert!(stats.contains("\"OrderCreated\":60"), "{stats}");
    let verify = evstore(d, &["verify", "demo.evs"]);
    assert_eq!(verify.status.code(), Some(0), "{}", stdout(&verify));
}

#[test]
fn demo_default_file_is_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["demo", "--orders", "4", "--threads", "2"]);
    assert!(d.join("evstore-demo.evs").exists());
    // `orders` defaults to the same file, so the demo's orders can be explored.
    let list = ok(d, &["orders", "list", "--user", "user-01", "--json"]);
    assert!(list.starts_with("{\"orders\":["), "{list}");
}
