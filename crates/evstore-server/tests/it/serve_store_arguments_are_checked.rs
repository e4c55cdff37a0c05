//! `evstore serve` takes exactly one of `--file` and `--database-url`, and a database URL that
//! does not parse or names a server that cannot be reached is a clear one-line error (exit 1,
//! the password redacted), never a panic. The real binary, no PostgreSQL needed.

use std::process::{Command, Output};

use crate::sigterm_loses_no_acknowledged_write::evstore_binary;

fn serve(args: &[&str]) -> Output {
    Command::new(evstore_binary())
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn file_and_database_url_are_exclusive_and_one_is_required() {
    let both = serve(&["--file", "x.evs", "--database-url", "postgres://a@%2Ftmp/b"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(
        stderr(&both).contains("'--file <FILE>' cannot be used with '--database-url <URL>'"),
        "{}",
        stderr(&both)
    );
    let neither = serve(&[]);
    assert_eq!(neither.status.code(), Some(2), "{}", stderr(&neither));
    assert!(
        stderr(&neither).contains("<--file <FILE>|--database-url <URL>>"),
        "{}",
        stderr(&neither)
    );
}

#[test]
fn a_bad_or_unreachable_database_is_a_clear_error() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let refused = serve(&["--database-url", "postgres://app:s3cret@127.0.0.1:1/shop"]);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot open the store postgres://app:***@127.0.0.1:1/shop")
            && err.contains("Connection refused"),
        "{err}"
    );
    assert!(
        !err.contains("s3cret") && !err.contains("panicked"),
        "{err}"
    );

    let bad = serve(&["--database-url", "postgres://app@localhost:notaport/shop"]);
    let err = stderr(&bad);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
