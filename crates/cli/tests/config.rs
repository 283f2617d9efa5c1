//! Configuration reaches the real binary from a file, from `WARDEN_…` variables and
//! from flags, and a bad configuration stops it with every problem named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

fn clean_command() -> Command {
    let mut cmd = Command::new(WARDEN);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_")) {
        cmd.env_remove(key);
    }
    cmd
}

#[test]
fn every_key_can_come_from_a_warden_variable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-env");
    let mut child = clean_command()
        .arg("serve")
        .env("WARDEN_LISTEN", "127.0.0.1:0")
        .env("WARDEN_DATA_DIR", &data)
        .env("WARDEN_LOG__ORIGIN", "example.com/env-log")
        .env("WARDEN_TELEMETRY__CONTEXT_RETENTION_DAYS", "7")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(rest.trim().to_owned());
            break;
        }
    }
    let url = url.expect("server printed its address");
    let key = ureq::get(&format!("{url}/v1/log/key")).call().unwrap().body_mut().read_to_string().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(key.starts_with("example.com/env-log+"), "{key}");
    assert!(data.join("warden.db").is_file(), "WARDEN_DATA_DIR was used");
}

#[test]
fn a_bad_config_file_names_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, "listen = \"not an address\"\n[log]\ncheckpoint_interval_ms = 10\n").unwrap();
    let out = clean_command()
        .args(["serve", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("listen") && err.contains("log.checkpoint_interval_ms"), "{err}");
    assert!(err.contains("warden.toml"), "names the file: {err}");

    std::fs::write(&file, "[log]\norigin = 5\nextra = true\n").unwrap();
    let out = clean_command().args(["serve", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("origin") || err.contains("extra"), "{err}");
    assert!(!dir.path().join("d").exists(), "a rejected configuration creates nothing");
}
