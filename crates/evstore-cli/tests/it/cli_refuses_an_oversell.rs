//! `evstore orders set-stock` / `stock` and `evstore demo` show the stock rule that spans
//! orders: an add-item that would oversell a limited product is refused with a clear one-line
//! message (exit 1) and writes nothing; a cancel releases the units; the stock cannot be set
//! below what orders reserve.

use std::path::Path;

use crate::common::cli::{evstore, stderr, stdout};

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

/// Run and require exit 1 with one line on stderr; returns it.
fn refused(dir: &Path, args: &[&str]) -> String {
    let o = evstore(dir, args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn orders(args: &[&str]) -> Vec<String> {
    let mut all = vec!["orders", "--file", "shop.evs"];
    all.extend_from_slice(args);
    all.into_iter().map(str::to_string).collect()
}

#[test]
fn orders_refuse_an_oversell_and_cancel_releases_stock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let a = orders(args);
        ok(d, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let fail = |args: &[&str]| {
        let a = orders(args);
        refused(d, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // set-stock creates the file, like create.
    assert_eq!(
        run(&["set-stock", "lamp", "--units", "3"]).trim(),
        "product lamp: 3 in stock, 0 reserved, 3 available"
    );
    let a = run(&["create", "--user", "alice"]).trim().to_string();
    let b = run(&["create", "--user", "bob"]).trim().to_string();
    let add = |id: &str, qty: &str| {
        vec![
            "add-item".to_string(),
            id.to_string(),
            "--product".into(),
            "lamp".into(),
            "--quantity".into(),
            qty.into(),
            "--price".into(),
            "19.99".into(),
        ]
    };
    let args = add(&a, "2");
    run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = add(&b, "2");
    let err = fail(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        err.contains(&format!(
            "order {b}: product \"lamp\" would be oversold: 2 requested, 1 available"
        )),
        "{err}"
    );
    assert!(run(&["show", &b]).contains("items    (none)"));
    assert_eq!(
        run(&["stock", "lamp"]).trim(),
        "product lamp: 3 in stock, 2 reserved, 1 available"
    );
    assert_eq!(
        run(&["stock", "lamp", "--json"]).trim(),
        r#"{"product_id":"lamp","stock":3,"reserved":2,"available":1}"#
    );
    let err = fail(&["set-stock", "lamp", "--units", "1"]);
    assert!(
        err.contains("product \"lamp\" cannot have 1 units: orders already reserve 2"),
        "{err}"
    );
    run(&["cancel", &a, "--reason", "changed my mind"]);
    assert_eq!(
        run(&["stock", "lamp"]).trim(),
        "product lamp: 3 in stock, 0 reserved, 3 available"
    );
    let args = add(&b, "2");
    run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // A product whose stock was never set is unlimited.
    assert_eq!(
        run(&["stock", "pen", "--json"]).trim(),
        r#"{"product_id":"pen","stock":null,"reserved":0,"available":null}"#
    );
    assert_eq!(
        run(&["stock", "pen"]).trim(),
        "product pen: unlimited, 0 reserved"
    );
}

#[test]
fn demo_shows_a_refused_oversell_and_a_cancel_releasing_stock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for run in 0..2 {
        // 20 orders: 14 from the writer threads, 6 in the limited-stock section.
        let out = ok(
            d,
            &[
                "demo",
                "--orders",
                "20",
                "--threads",
                "2",
                "--file",
                "demo.evs",
            ],
        );
        for expected in [
            "Limited stock",
            "set stock of limited-edition-grinder: ",
            "3 available",
            "asks for 2: REFUSED, product \"limited-edition-grinder\" would be oversold: 2 requested, 1 available",
            "takes the last one: ",
            "0 available",
            "cancelled, releasing 2: ",
            "4 threads race for the last units, one new order each: 2 got one, 2 refused",
        ] {
            assert!(out.contains(expected), "run {run}: {expected:?} missing:\n{out}");
        }
    }
    // What the demo wrote agrees: every limited unit is held by exactly one order.
    let stock = ok(
        d,
        &[
            "orders",
            "--file",
            "demo.evs",
            "stock",
            "limited-edition-grinder",
            "--json",
        ],
    );
    assert!(stock.contains("\"available\":0"), "{stock}");
    let stats = ok(d, &["stats", "demo.evs", "--json"]);
    assert!(
        stats.contains("\"OrderCreated\":40"),
        "--orders is the total: {stats}"
    );
    // Fewer than 12 orders: no room for the section, and none extra are created.
    let small = ok(d, &["demo", "--orders", "4", "--file", "small.evs"]);
    assert!(!small.contains("Limited stock"), "{small}");
}
