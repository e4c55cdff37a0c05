//! Connecting applies each migration once, records it, and is safe to race.

use evstore::{ExpectedVersion, NewEvent};
use evstore_postgres::testing::TestStore;
use evstore_postgres::{PgStore, MIGRATIONS, SCHEMA_VERSION};

#[test]
fn migrations_apply_once_and_concurrent_connects_agree() {
    let Some(t) = TestStore::fresh("migrations_apply_once_and_concurrent_connects_agree") else {
        return;
    };
    t.store
        .append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![1])])
        .unwrap();
    // Eight more connects to the same schema at once: none fails, none re-applies.
    let stores: Vec<PgStore> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8).map(|_| sc.spawn(|| t.connect_again())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut conn = t.store.connection().unwrap();
    let versions: Vec<i32> = conn
        .query(
            "SELECT version FROM evstore_schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    assert_eq!(MIGRATIONS.len(), SCHEMA_VERSION as usize);
    // The data survived and every store sees it.
    for s in &stores {
        assert_eq!(s.stream_version("s").unwrap(), Some(0));
    }
}

#[test]
fn a_schema_from_a_newer_build_is_refused() {
    let Some(t) = TestStore::fresh("a_schema_from_a_newer_build_is_refused") else {
        return;
    };
    t.store
        .connection()
        .unwrap()
        .execute(
            "INSERT INTO evstore_schema_migrations (version, name) VALUES (999, 'future')",
            &[],
        )
        .unwrap();
    let err = PgStore::connect_with(&t.url, TestStore::options(t.store.schema())).unwrap_err();
    assert!(matches!(err, evstore::Error::InvalidInput(_)), "{err}");
}

#[test]
fn a_bad_url_or_schema_is_invalid_input() {
    assert!(matches!(
        PgStore::connect("not a url ::"),
        Err(evstore::Error::InvalidInput(_))
    ));
    let opts = evstore_postgres::PgOptions {
        schema: Some("Robert'); DROP TABLE x;--".into()),
        ..Default::default()
    };
    assert!(matches!(
        PgStore::connect_with("postgres://localhost/x", opts),
        Err(evstore::Error::InvalidInput(_))
    ));
}

#[test]
fn a_url_names_the_schema_and_keeps_its_other_options() {
    let Some(t) = TestStore::fresh("a_url_names_the_schema_and_keeps_its_other_options") else {
        return;
    };
    let url = format!("{}%20-cstatement_timeout%3D4321", t.schema_url());
    let s = PgStore::connect(&url).unwrap();
    assert_eq!(s.schema(), t.store.schema());
    let mut c = s.connection().unwrap();
    let timeout: String = c.query_one("SHOW statement_timeout", &[]).unwrap().get(0);
    assert_eq!(timeout, "4321ms");
    let path: String = c.query_one("SHOW search_path", &[]).unwrap().get(0);
    assert_eq!(path, t.store.schema());
}
