//! `evstore orders --database-url URL`: the same commands and output on PostgreSQL as on a file.

use evstore_postgres::testing::TestStore;

use crate::common::cli::{evstore, stderr, stdout};

#[test]
fn create_change_show_list_history_on_postgres() {
    let Some(t) = TestStore::fresh("create_change_show_list_history_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = t.schema_url();
    let run = |args: &[&str]| {
        let mut all = vec!["orders", "--database-url", url.as_str()];
        all.extend_from_slice(args);
        let o = evstore(dir.path(), &all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let id = run(&["create", "--user", "alice"]).trim().to_string();
    run(&[
        "add-item",
        &id,
        "--product",
        "book",
        "--quantity",
        "2",
        "--price",
        "12.50",
    ]);
    let confirmed = run(&["confirm", &id]);
    assert!(
        confirmed.contains("confirmed, 1 item, total 25.00 (version 2)"),
        "{confirmed}"
    );
    let shown = run(&["show", &id, "--json"]);
    assert!(shown.contains("\"total_cents\":2500"), "{shown}");
    let before = run(&["show", &id, "--at-version", "0"]);
    assert!(before.contains("status   pending"), "{before}");
    let list = run(&["list", "--user", "alice"]);
    assert!(list.contains(&id) && list.contains("1 order"), "{list}");
    let history = run(&["history", &id]);
    assert_eq!(history.lines().count(), 3, "{history}");
    // The events are in PostgreSQL, where the library sees them.
    assert_eq!(
        t.store.stream_version(&format!("Order-{id}")).unwrap(),
        Some(2)
    );
    // A refused command is reported as on a file store.
    let o = evstore(
        dir.path(),
        &["orders", "--database-url", &url, "ship", "nope"],
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn stats_and_dump_read_a_postgres_url() {
    let Some(t) = TestStore::fresh("stats_and_dump_read_a_postgres_url") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = t.schema_url();
    let o = evstore(
        dir.path(),
        &["orders", "--database-url", &url, "create", "--user", "bob"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = evstore(dir.path(), &["stats", &url, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = stdout(&o);
    assert!(
        doc.contains("\"events\":1") && doc.contains("\"OrderCreated\":1"),
        "{doc}"
    );
    let o = evstore(dir.path(), &["stats", &url]);
    assert!(stdout(&o).contains("head position  0"), "{}", stdout(&o));
    assert!(stdout(&o).contains("tags           none"), "{}", stdout(&o));
    // dump reads the URL too, decoding the Order event like a log file's.
    let o = evstore(
        dir.path(),
        &["orders", "--database-url", &url, "list", "--user", "bob"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for args in [
        vec!["dump", url.as_str(), "--json"],
        vec!["dump", url.as_str(), "--type", "OrderCreated", "--json"],
    ] {
        let o = evstore(dir.path(), &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let doc = stdout(&o);
        assert_eq!(doc.lines().count(), 1, "{doc}");
        assert!(
            doc.contains("\"OrderCreated\"") && doc.contains("\"bob\""),
            "{doc}"
        );
    }
    let o = evstore(dir.path(), &["dump", &url, "--type", "Nope"]);
    assert!(
        o.status.success() && stdout(&o).is_empty(),
        "{}",
        stdout(&o)
    );
    // A stock limit is a tagged event: stats counts the tag.
    let o = evstore(
        dir.path(),
        &[
            "orders",
            "--database-url",
            &url,
            "set-stock",
            "lamp",
            "--units",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = stdout(&evstore(dir.path(), &["stats", &url, "--json"]));
    assert!(
        doc.contains("\"tags\":1") && doc.contains("\"tag_occurrences\":1"),
        "{doc}"
    );
}

#[test]
fn demo_runs_on_postgres_and_continues() {
    let Some(t) = TestStore::fresh("demo_runs_on_postgres_and_continues") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = t.schema_url();
    let args = [
        "demo",
        "--database-url",
        url.as_str(),
        "--orders",
        "40",
        "--threads",
        "4",
    ];
    let o = evstore(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o);
    assert!(first.contains("dense (no gap)"), "{first}");
    assert!(first.contains("Read model in PostgreSQL"), "{first}");
    let head = t.store.head_position().unwrap().unwrap();
    // The projection's and the saga's checkpoints are rows, not files.
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no files written"
    );
    let o = evstore(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("events already there"),
        "{}",
        stdout(&o)
    );
    assert!(t.store.head_position().unwrap().unwrap() > head);
    let rows: i64 = t
        .store
        .connection()
        .unwrap()
        .query_one("SELECT count(*) FROM evstore_checkpoints", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 3,
        "saga, in-memory projection and table projection checkpoints"
    );
}
