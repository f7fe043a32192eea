//! Invariant: exactly-once stream processing survives being killed anywhere. The
//! `exactly_once` example's pipeline (consume `in` read_committed, produce `out`, commit the
//! consumed offsets in the same transaction, abort some transactions on purpose) is killed
//! over and over, by itself at random I/O operations (`std::process::abort`, including
//! between a transaction's decision and its last marker) and from outside (SIGKILL), and
//! restarted each time. After every kill and at the end the example checks: no input lost,
//! no output duplicated, nothing aborted or undecided visible read_committed, committed
//! offsets that cover exactly the input whose output is committed, and no partition's last
//! stable offset moving back. It exits non-zero on any violation.
//!
//! A short run by default (CI); `EOSLOG_EOS_KILLS=1000` keeps running fresh pipelines until
//! at least that many kills happened (BENCHMARKS.md gives the long run's command).

use std::path::PathBuf;
use std::process::Command;

fn example() -> PathBuf {
    // target/<profile>/deps/eos_kill-<hash> -> target/<profile>/examples/exactly_once
    let exe = std::env::current_exe().expect("test path");
    let profile = exe.parent().and_then(|d| d.parent()).expect("target dir");
    profile
        .join("examples")
        .join(format!("exactly_once{}", std::env::consts::EXE_SUFFIX))
}

fn main() {
    let want: u64 = std::env::var("EOSLOG_EOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let exe = example();
    assert!(
        exe.exists(),
        "{} not built (cargo test builds the examples)",
        exe.display()
    );
    let (mut kills, mut rounds, mut decided) = (0u64, 0u64, 0u64);
    while kills < want {
        rounds += 1;
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(&exe)
            .arg("--dir")
            .arg(dir.path())
            .args([
                "--records",
                "3000",
                "--crash-every",
                "150",
                "--kill-after-ms",
                "400",
            ])
            .args(["--seed", &rounds.to_string()])
            .output()
            .expect("run the example");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {rounds} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.contains("crashing at"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("exactly_once:"))
            .expect("summary line");
        let number_before = |word: &str| -> u64 {
            let words: Vec<&str> = summary.split([' ', ',']).filter(|w| !w.is_empty()).collect();
            words
                .iter()
                .position(|w| *w == word)
                .and_then(|i| words.get(i - 1))
                .and_then(|n| n.parse().ok())
                .expect("count in the summary")
        };
        kills += number_before("self-crashes") + number_before("SIGKILLs");
        decided += number_before("decided");
        assert_eq!(number_before("violations"), 0, "{summary}");
        println!("round {rounds}: {summary}");
    }
    println!(
        "eos_kill: {rounds} pipelines, {kills} kills, {decided} decided transactions completed at a restart, 0 violations"
    );
}
