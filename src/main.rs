//! The `evstore` command-line tool.

use std::process::ExitCode;

fn main() -> ExitCode {
    evstore::cli::run()
}
