//! Topic metadata: one small file per topic under `eoslog.topics/`, written atomically, and
//! Kafka's rules for topic names.
//!
//! ```text
//! eoslog.topics/<topic>.topic:
//! eoslog-topic 1
//! partitions <count>
//! config <key>=<value>        (zero or more: the topic's own configs, Kafka's names)
//! crc <CRC-32C of every byte above>
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::StorageError;
use crate::fs::FileSystem;

use super::sealed;

/// The directory of topic files inside a store.
pub const TOPICS_DIR: &str = "eoslog.topics";
const SUFFIX: &str = ".topic";
const HEADER: &str = "eoslog-topic 1";

/// What a topic file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub partitions: u32,
    pub configs: Vec<(String, String)>,
}

/// Whether two different topic names differ only in `.` against `_` (Kafka's
/// `Topic.hasCollision`): their metric names would be the same.
pub(crate) fn collide(a: &str, b: &str) -> bool {
    let unified = |x: u8| if x == b'.' { b'_' } else { x };
    a != b && a.len() == b.len() && a.bytes().map(unified).eq(b.bytes().map(unified))
}

/// Of `existing`, a name that collides with `name` ([`collide`]): the least such, so the
/// answer does not depend on the map's order.
pub(crate) fn colliding<'a>(name: &str, existing: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    if !name.contains(['.', '_']) {
        return None;
    }
    existing.map(String::as_str).filter(|e| collide(name, e)).min()
}

/// Kafka's rule for a topic name: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
pub(crate) fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 249 {
        return Err("a topic name has 1 to 249 characters");
    }
    if name == "." || name == ".." {
        return Err("a topic name cannot be \".\" or \"..\"");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err("a topic name may hold only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

pub(crate) fn topic_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(TOPICS_DIR).join(format!("{name}{SUFFIX}"))
}

/// The name of the topic a file in `eoslog.topics/` describes.
pub(crate) fn name_of(file: &str) -> Option<&str> {
    file.strip_suffix(SUFFIX).filter(|n| valid_name(n).is_ok())
}

fn body(t: &TopicRecord) -> String {
    let mut body = format!("partitions {}\n", t.partitions);
    for (k, v) in &t.configs {
        let _ = writeln!(body, "config {k}={v}");
    }
    body
}

fn parse(mut lines: std::str::Lines<'_>) -> Option<TopicRecord> {
    let partitions = lines.next()?.strip_prefix("partitions ")?.parse().ok()?;
    let mut configs = Vec::new();
    for line in lines {
        let (k, v) = line.strip_prefix("config ")?.split_once('=')?;
        configs.push((k.to_owned(), v.to_owned()));
    }
    Some(TopicRecord { partitions, configs })
}

pub(crate) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    t: &TopicRecord,
) -> Result<(), StorageError> {
    sealed::write(fs, &topic_path(dir, name), HEADER, &body(t))
}

pub(crate) fn read(fs: &dyn FileSystem, path: &Path) -> Result<TopicRecord, StorageError> {
    sealed::read(fs, path, HEADER, "unreadable topic file", parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafkas_rule() {
        assert!(valid_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let fs = crate::fs::StdFileSystem;
        std::fs::create_dir_all(dir.path().join(TOPICS_DIR)).expect("mkdir");
        let t = TopicRecord {
            partitions: 12,
            configs: vec![("cleanup.policy".into(), "compact".into())],
        };
        write(&fs, dir.path(), "orders", &t).expect("write");
        let path = topic_path(dir.path(), "orders");
        assert_eq!(read(&fs, &path).expect("read"), t);
        let bytes = std::fs::read(&path).expect("bytes");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x04;
            std::fs::write(&path, &b).expect("damage");
            assert!(read(&fs, &path).is_err(), "flip at {i}");
        }
    }
}
