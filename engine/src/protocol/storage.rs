//! What the JobManager and TaskManagers say to the storage node (docs/model/cluster.md#nodes,
//! docs/model/checkpoints.md#overview): the shared `/tmp` volume holding
//! `/tmp/flink-checkpoints-directory` and `/tmp/flink-savepoints-directory`. Every request is
//! idempotent, so a caller whose answer was lost may simply send it again. No I/O here.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The longest path the storage node accepts, in bytes (Linux's `PATH_MAX`).
pub const PATH_BYTES_MAX: usize = 4096;

/// Why a storage request failed. Messages are lowercase and name the path (or prefix).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StorageError {
    /// No answer in time: the storage node is dead or partitioned away. Worth retrying later.
    #[error("storage unavailable for {path}: {reason}")]
    Unavailable {
        /// The path (or prefix) asked for.
        path: String,
        /// What the transport said (`no answer from 10.0.0.5:7000 within 2s`).
        reason: String,
    },
    /// The storage node's disk refused the operation.
    #[error("storage i/o error on {path}: {reason}")]
    Io {
        /// The path (or prefix) asked for.
        path: String,
        /// The disk's error.
        reason: String,
    },
    /// The file behind the path does not hold what the index says it holds.
    #[error("corrupt file {path}: {reason}")]
    Corrupt {
        /// The path asked for.
        path: String,
        /// What did not match.
        reason: String,
    },
    /// The path (or prefix) is not one the storage node accepts.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path (or prefix) as given.
        path: String,
        /// Which rule it broke.
        reason: String,
    },
}

impl StorageError {
    /// Whether the same request may succeed later (only `Unavailable`: the node may come back).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }

    /// The path (or prefix) the failed request named.
    pub fn path(&self) -> &str {
        match self {
            StorageError::Unavailable { path, .. }
            | StorageError::Io { path, .. }
            | StorageError::Corrupt { path, .. }
            | StorageError::InvalidPath { path, .. } => path,
        }
    }
}

/// Checks a file path: not empty, at most [`PATH_BYTES_MAX`] bytes.
pub fn check_path(path: &str) -> Result<(), StorageError> {
    let invalid = |reason: &str| {
        Err(StorageError::InvalidPath { path: path.to_owned(), reason: reason.to_owned() })
    };
    if path.is_empty() {
        return invalid("a path must not be empty");
    }
    if path.len() > PATH_BYTES_MAX {
        return invalid("a path must be at most 4096 bytes");
    }
    Ok(())
}

/// Checks a prefix given to [`DeletePrefix`]: like a path, since an empty prefix would delete
/// every file on the volume.
pub fn check_delete_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Err(StorageError::InvalidPath {
            path: String::new(),
            reason: "an empty prefix would delete every file".to_owned(),
        });
    }
    check_path(prefix)
}

/// Writes a whole file, replacing any earlier content; answered once the bytes are on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutFile {
    /// The file's path (`/tmp/flink-checkpoints-directory/<job-id>/chk-7/_metadata`).
    pub path: String,
    /// Its whole content.
    pub data: Bytes,
}

/// The answer to [`PutFile`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutFileResponse {
    /// Ok once the file and the index naming it are on the storage node's disk.
    pub result: Result<(), StorageError>,
}

/// Reads a whole file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetFile {
    /// The file's path.
    pub path: String,
}

/// The answer to [`GetFile`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetFileResponse {
    /// The file's content, or `None` if no file has this path.
    pub result: Result<Option<Bytes>, StorageError>,
}

/// Deletes one file; deleting a missing file succeeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteFile {
    /// The file's path.
    pub path: String,
}

/// The answer to [`DeleteFile`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteFileResponse {
    /// Ok once the deletion is on disk.
    pub result: Result<(), StorageError>,
}

/// Deletes every file whose path starts with a prefix (a whole `chk-<n>/` directory).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletePrefix {
    /// The prefix, compared byte for byte (`…/chk-7/` does not match `…/chk-70/x`).
    pub prefix: String,
}

/// The answer to [`DeletePrefix`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletePrefixResponse {
    /// How many files were deleted, once the deletion is on disk.
    pub result: Result<u32, StorageError>,
}

/// Lists the paths that start with a prefix.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListFiles {
    /// The prefix (empty: every file).
    pub prefix: String,
}

/// The answer to [`ListFiles`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListFilesResponse {
    /// The matching paths, sorted.
    pub result: Result<Vec<String>, StorageError>,
}

crate::request!(PutFile => PutFileResponse);
crate::request!(GetFile => GetFileResponse);
crate::request!(DeleteFile => DeleteFileResponse);
crate::request!(DeletePrefix => DeletePrefixResponse);
crate::request!(ListFiles => ListFilesResponse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_overlong_paths_are_rejected_with_the_path_named() {
        assert_eq!(check_path("/tmp/flink-checkpoints-directory/j/chk-1/_metadata"), Ok(()));
        let empty = check_path("").unwrap_err();
        assert_eq!(empty.to_string(), "invalid path \"\": a path must not be empty");
        assert!(!empty.is_retryable());
        let long = "x".repeat(PATH_BYTES_MAX + 1);
        assert_eq!(check_path(&long).unwrap_err().path(), long);
        assert_eq!(
            check_delete_prefix("").unwrap_err().to_string(),
            "invalid path \"\": an empty prefix would delete every file"
        );
        assert_eq!(check_delete_prefix("/tmp/flink-checkpoints-directory/j/chk-1/"), Ok(()));
    }
}
