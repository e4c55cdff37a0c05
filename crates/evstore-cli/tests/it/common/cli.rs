//! Running the `evstore` binary from integration tests, and reading its output: the one
//! harness every CLI test uses.
#![allow(
    dead_code,
    reason = "shared helpers: each test module uses some of them"
)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// The `evstore` binary built for these tests, as a command to configure (for a child that
/// must be spawned rather than waited for, e.g. `tail --follow`).
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evstore"))
}

/// Run `evstore ARGS...` in `dir` and wait for it.
pub fn evstore<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Output {
    command()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the evstore binary runs")
}

/// Stdout as text (it must be UTF-8).
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// Stderr as text (it must be UTF-8).
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// The unsigned integer value of `"key":` in a one-line JSON document (the first occurrence).
pub fn json_u64(doc: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let at = doc.find(&pat)? + pat.len();
    let digits: String = doc[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The raw JSON text of the value of `"key":` up to the next `,`, `}` or `]` (for numbers,
/// strings without those characters, `null`, `true`...).
pub fn json_raw<'a>(doc: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let at = doc.find(&pat)? + pat.len();
    let rest = &doc[at..];
    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// `1234567` → `1,234,567` (the CLI's grouping of large numbers).
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
