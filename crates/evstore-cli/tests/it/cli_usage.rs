//! The `evstore` binary: help, usage errors and exit code 2, examples in every help page.

use std::process::Output;

use crate::common::cli::evstore;

/// Run `evstore ARGS...` (the shared harness) in an empty directory of its own.
fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    evstore(dir.path(), args)
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn no_arguments_prints_help_and_exits_2() {
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2));
    let text = all_output(&o);
    for word in [
        "demo", "orders", "stats", "verify", "dump", "tail", "repair", "bench",
    ] {
        assert!(text.contains(word), "help lists {word}: {text}");
    }
    assert!(text.contains("Examples:"), "{text}");
}

#[test]
fn an_unknown_subcommand_prints_the_error_and_the_help_and_exits_2() {
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let text = all_output(&o);
    assert!(
        text.contains("unrecognized subcommand 'frobnicate'"),
        "{text}"
    );
    assert!(text.contains("Commands:"), "full help follows: {text}");
}

#[test]
fn a_bad_option_is_a_usage_error() {
    let o = run(&["stats"]);
    assert_eq!(o.status.code(), Some(2), "missing FILE");
    let o = run(&["dump", "x.evs", "--limit", "many"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["bench", "--durability", "sometimes"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_help_page_has_an_example() {
    let pages: &[&[&str]] = &[
        &["--help"],
        &["demo", "--help"],
        &["orders", "--help"],
        &["orders", "create", "--help"],
        &["orders", "add-item", "--help"],
        &["orders", "confirm", "--help"],
        &["orders", "cancel", "--help"],
        &["orders", "ship", "--help"],
        &["orders", "deliver", "--help"],
        &["orders", "show", "--help"],
        &["orders", "list", "--help"],
        &["orders", "history", "--help"],
        &["stats", "--help"],
        &["verify", "--help"],
        &["dump", "--help"],
        &["tail", "--help"],
        &["repair", "--help"],
        &["bench", "--help"],
    ];
    for args in pages {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Example"), "{args:?} has an example:\n{text}");
        assert!(text.contains("evstore "), "{args:?}:\n{text}");
    }
}

#[test]
fn tail_help_explains_following_another_process() {
    let o = run(&["tail", "--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("another terminal"), "{text}");
    assert!(text.contains("Buffered"), "{text}");
}

#[test]
fn version_prints() {
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("evstore "));
}
