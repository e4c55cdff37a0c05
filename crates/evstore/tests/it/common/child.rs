//! Re-executing this test binary as a child process that works until it is killed: the
//! `kill -9` crash tests' harness.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// In a child started by [`run_until_killed`]: the log path from `path_var` and the seed
/// from `seed_var` (1 if unset or unparsable); `None` when not started as a child (the test
/// then does nothing).
pub fn child_args(path_var: &str, seed_var: &str) -> Option<(String, u64)> {
    let path = std::env::var(path_var).ok()?;
    let seed = std::env::var(seed_var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    Some((path, seed))
}

/// Run test `test` (its full libtest name) of this binary as a child with `env` set, wait
/// (up to 2 s) until it prints `READY`, let it work for `run_for`, SIGKILL it, and return every
/// line it printed on stdout. libtest may print its own text before the child's first line:
/// look for markers anywhere in a line, not at its start.
pub fn run_until_killed(test: &str, env: &[(&str, String)], run_for: Duration) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    // Bounded: 2,000 polls of 1 ms.
    for _ in 0..2000 {
        if lines.lock().unwrap().iter().any(|l| l.contains("READY")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(run_for);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    let lines = lines.lock().unwrap();
    lines.clone()
}
