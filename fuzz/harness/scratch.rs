//! A scratch directory for the harnesses that open logs (`index_files`, `log_model`).

use std::path::Path;

/// A fresh temporary directory, on tmpfs (`/dev/shm`) when there is one: runs do many small
/// writes and fsyncs, several times faster there than on disk.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("eoslog-fuzz").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}
