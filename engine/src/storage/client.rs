//! The client side of the shared checkpoint/savepoint volume (docs/model/checkpoints.md#overview):
//! how the JobManager and the TaskManagers write snapshots and `_metadata` files, read them back on
//! restore, and remove checkpoints no longer retained. Each call waits at most its timeout, then
//! fails `Unavailable`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::protocol::storage::{
    DeleteFile, DeletePrefix, GetFile, ListFiles, PutFile, StorageError, check_delete_prefix,
    check_path,
};
use crate::rpc::{Request, Rpc};

/// How many times a read for a restore tries an unreachable storage node.
pub const RESTORE_TRIES: u32 = 10;
/// The pause between those tries.
pub const RESTORE_PAUSE: Duration = Duration::from_millis(500);

/// A handle on the storage node, cheap to clone. Every request is idempotent: a caller that got
/// `Unavailable` may send the same call again (checkpoints simply fail instead).
#[derive(Clone)]
pub struct StorageClient {
    rpc: Rpc,
    storage: SocketAddr,
    timeout: Duration,
}

impl StorageClient {
    /// How long a call waits for the storage node's answer unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// A client that sends from `rpc`'s endpoint to the storage node at `storage`.
    pub fn new(rpc: Rpc, storage: SocketAddr) -> StorageClient {
        StorageClient { rpc, storage, timeout: Self::DEFAULT_TIMEOUT }
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> StorageClient {
        self.timeout = timeout;
        self
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Writes the whole file at `path`, replacing any earlier content; Ok once it is on disk.
    pub async fn put(&self, path: &str, data: Bytes) -> Result<(), StorageError> {
        check_path(path)?;
        self.call(path, PutFile { path: path.to_owned(), data }).await?.result
    }

    /// Reads the whole file at `path`, or `None` if there is none.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>, StorageError> {
        check_path(path)?;
        self.call(path, GetFile { path: path.to_owned() }).await?.result
    }

    /// [`get`](Self::get) for a restore, which a short outage must not fail: an unreachable
    /// storage node is tried again, [`RESTORE_TRIES`] times in all, [`RESTORE_PAUSE`] apart
    /// (docs/model/checkpoints.md#restore). Any other answer is final.
    pub async fn get_for_restore(&self, path: &str) -> Result<Option<Bytes>, StorageError> {
        let mut tries = 1;
        loop {
            match self.get(path).await {
                Err(StorageError::Unavailable { .. }) if tries < RESTORE_TRIES => {}
                answer => return answer,
            }
            tries += 1;
            madsim::time::sleep(RESTORE_PAUSE).await;
        }
    }

    /// Deletes the file at `path`; deleting a missing file is Ok.
    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        check_path(path)?;
        self.call(path, DeleteFile { path: path.to_owned() }).await?.result
    }

    /// Deletes every file whose path starts with `prefix` (a whole `chk-<n>/` directory) and
    /// says how many there were. The prefix must not be empty.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u32, StorageError> {
        check_delete_prefix(prefix)?;
        self.call(prefix, DeletePrefix { prefix: prefix.to_owned() }).await?.result
    }

    /// The paths that start with `prefix`, sorted (an empty prefix lists every file).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.call(prefix, ListFiles { prefix: prefix.to_owned() }).await?.result
    }

    async fn call<R: Request>(&self, path: &str, request: R) -> Result<R::Response, StorageError> {
        self.rpc
            .call(self.storage, request, self.timeout)
            .await
            .map_err(|e| StorageError::Unavailable { path: path.to_owned(), reason: e.to_string() })
    }
}
