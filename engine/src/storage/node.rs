//! The storage node's main (docs/model/cluster.md#nodes, docs/model/checkpoints.md#overview): the
//! shared `/tmp` volume as a node of its own. It recovers its index from its disk on every start,
//! then serves whole-file puts, gets, deletes and listings. Every answer that changes the volume is
//! sent only once the change is on disk.
//!
//! madsim's files cannot be removed, renamed or listed, so the volume is two kinds of file:
//! - `storage/blob-<slot>`: the bytes of one live path, or empty when the slot is free. Slots are
//!   reused lowest first, so the number of slot files stays at the most files ever live at once.
//! - `storage/index`: a durable cell (two alternating files with a generation and a checksum,
//!   [`crate::cell`]) holding every live path with its slot and length.
//!
//! A put writes its bytes to a free slot, then commits the index; only then is the path's old
//! slot truncated and freed. A kill at any point leaves either the old or the new index, and
//! each names only slots whose bytes are intact. Recovery truncates every slot the index does
//! not name, so bytes of an unfinished put or an unfinished delete never outlive a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::lock::Mutex;
use madsim::fs::File;

use crate::cell::{self, KeptFile};
use crate::protocol::storage::{
    DeleteFile, DeleteFileResponse, DeletePrefix, DeletePrefixResponse, GetFile, GetFileResponse,
    ListFiles, ListFilesResponse, PutFile, PutFileResponse, StorageError, check_delete_prefix,
    check_path,
};
use crate::rpc::{Network, Rpc};
use crate::trace::NodeTrace;

/// The cell holding the index: `storage/index.0` and `storage/index.1` on the node's disk.
const INDEX_CELL: &str = "storage/index";

/// How to start the storage node.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Where the node listens.
    pub addr: SocketAddr,
    /// The run's link-fault table, shared with every other node.
    pub network: Network,
    /// Where the node records its few significant events.
    pub trace: NodeTrace,
}

/// The storage node's main: recovers the index from disk, binds at `config.addr` and serves
/// until the node is killed. Re-run on every restart.
pub async fn run(config: StorageConfig) {
    let volume = match Volume::recover().await {
        Ok(volume) => volume,
        Err(e) => {
            config.trace.event(format!("storage failed to start: {e}"));
            return;
        }
    };
    let (files, bytes) = volume.usage();
    let store = Arc::new(Mutex::new(volume));
    let rpc = Rpc::bind(config.addr, config.network.clone());
    serve(&rpc, &store);
    config
        .trace
        .event(format!("storage started on {} with {files} files ({bytes} bytes)", config.addr));
    // The node exits when its main returns; the handlers run in their own tasks.
    std::future::pending::<()>().await;
}

fn serve(rpc: &Rpc, store: &Arc<Mutex<Volume>>) {
    let s = store.clone();
    rpc.serve(move |req: PutFile, _| {
        let s = s.clone();
        async move { PutFileResponse { result: s.lock().await.put(req.path, req.data).await } }
    });
    let s = store.clone();
    rpc.serve(move |req: GetFile, _| {
        let s = s.clone();
        async move { GetFileResponse { result: s.lock().await.get(&req.path).await } }
    });
    let s = store.clone();
    rpc.serve(move |req: DeleteFile, _| {
        let s = s.clone();
        async move { DeleteFileResponse { result: s.lock().await.delete(&req.path).await } }
    });
    let s = store.clone();
    rpc.serve(move |req: DeletePrefix, _| {
        let s = s.clone();
        async move {
            DeletePrefixResponse { result: s.lock().await.delete_prefix(&req.prefix).await }
        }
    });
    let s = store.clone();
    rpc.serve(move |req: ListFiles, _| {
        let s = s.clone();
        async move { ListFilesResponse { result: Ok(s.lock().await.list(&req.prefix)) } }
    });
}

/// Where one live path's bytes are.
#[derive(Clone, Debug)]
struct Entry {
    slot: u32,
    len: u64,
    /// The path's [`IndexRow`] as postcard serializes it, made once with the entry: every commit
    /// writes every row, and serializing them all again cost about 1,500 instructions a commit.
    row: Vec<u8>,
}

impl Entry {
    /// The entry of `path`, in `slot`, `len` bytes long.
    fn new(path: &str, slot: u32, len: u64) -> Entry {
        // Sized for the longest varints (path length 10, slot 5, length 10), so it never grows;
        // kept as it is, since shrinking it into a box would move it again.
        let row = Vec::with_capacity(path.len() + 25);
        let row = postcard::to_extend(&(path, slot, len), row).expect("an index row serializes");
        Entry { slot, len, row }
    }
}

/// One row of the index on disk: path, slot, length.
type IndexRow = (String, u32, u64);

/// Appends the index's rows to `out` as postcard serializes a list of [`IndexRow`]s: the
/// list's length, then each row's bytes as its entry keeps them, in path order.
fn encode_index(files: &BTreeMap<String, Entry>, out: &mut Vec<u8>) {
    // A list's length is a varint, as a usize is.
    *out = postcard::to_extend(&files.len(), std::mem::take(out)).expect("a length serializes");
    for entry in files.values() {
        out.extend_from_slice(&entry.row);
    }
}

/// The node's whole memory: the index of the volume, never the files' bytes.
struct Volume {
    files: BTreeMap<String, Entry>,
    /// Slots below `slots` that no path uses; their files are empty.
    free: BTreeSet<u32>,
    /// How many slot files exist: `storage/blob-0` .. `storage/blob-<slots - 1>`.
    slots: u32,
    /// The generation of the index cell last written.
    generation: u64,
    /// The index cell's files, kept open.
    index: cell::Writer,
    /// By slot, its file once this process has opened it, and the file's length: opening a
    /// file by name cost about 1,250 instructions (measured), twice per put that replaces a path.
    blobs: Vec<Option<KeptFile>>,
}

fn blob_path(slot: u32) -> String {
    use std::fmt::Write;
    // Sized once: `format!` guessed short and grew the string (~400 instructions a path, two
    // paths per file put).
    let mut path = String::with_capacity("storage/blob-".len() + 10);
    path.push_str("storage/blob-");
    let _ = write!(path, "{slot}");
    path
}


fn io_error(path: &str, e: std::io::Error) -> StorageError {
    StorageError::Io { path: path.to_owned(), reason: e.to_string() }
}

impl Volume {
    /// Reads the index back and truncates every slot file it does not name.
    async fn recover() -> Result<Volume, StorageError> {
        let (generation, rows) = match cell::read::<Vec<IndexRow>>(INDEX_CELL).await {
            Some(cell) => cell,
            None => {
                // Missing is a fresh volume; present but unreadable must not silently become one.
                for copy in 0..2 {
                    let name = format!("{INDEX_CELL}.{copy}");
                    if madsim::fs::metadata(&name).await.is_ok_and(|m| m.len() > 0) {
                        return Err(StorageError::Corrupt {
                            path: INDEX_CELL.to_owned(),
                            reason: "no copy of the index is valid".to_owned(),
                        });
                    }
                }
                (0, Vec::new())
            }
        };
        let mut files = BTreeMap::new();
        let mut used = BTreeSet::new();
        for (path, slot, len) in rows {
            if !used.insert(slot) {
                return Err(StorageError::Corrupt {
                    path: INDEX_CELL.to_owned(),
                    reason: format!("slot {slot} is named twice (again by {path})"),
                });
            }
            let entry = Entry::new(&path, slot, len);
            files.insert(path, entry);
        }
        // Slot files are created in order, one at a time, and never removed: the first missing
        // one ends them. A slot the index names counts even so.
        let mut slots = used.last().map_or(0, |last| last + 1);
        while madsim::fs::metadata(blob_path(slots)).await.is_ok() {
            slots += 1;
        }
        let mut free = BTreeSet::new();
        for slot in (0..slots).filter(|slot| !used.contains(slot)) {
            // An unfinished put's bytes, or a delete whose truncation was cut short.
            File::create(blob_path(slot)).await.map_err(|e| io_error(&blob_path(slot), e))?;
            free.insert(slot);
        }
        Ok(Volume { files, free, slots, generation, index: cell::Writer::default(), blobs: Vec::new() })
    }

    /// How many files are live, and their bytes.
    fn usage(&self) -> (usize, u64) {
        (self.files.len(), self.files.values().map(|e| e.len).sum())
    }

    async fn put(&mut self, path: String, data: Bytes) -> Result<(), StorageError> {
        check_path(&path)?;
        let slot = match self.free.first() {
            Some(&slot) => slot,
            None => self.slots,
        };
        if slot == u32::MAX {
            return Err(StorageError::Io { path, reason: "the volume has no free slot".into() });
        }
        if slot == self.slots {
            // A new slot file: count it before creating it, so a failed create is retried by
            // the next put (lowest free slot first) and the files stay numbered without gaps.
            self.slots += 1;
            self.free.insert(slot);
        }
        if let Err(e) = self.write_blob(slot, &data).await {
            self.release(slot).await;
            return Err(io_error(&path, e));
        }
        self.free.remove(&slot);
        let entry = Entry::new(&path, slot, data.len() as u64);
        let old = self.files.insert(path.clone(), entry);
        if let Err(e) = self.commit().await {
            match old {
                Some(old) => self.files.insert(path.clone(), old),
                None => self.files.remove(&path),
            };
            self.release(slot).await;
            return Err(io_error(&path, e));
        }
        if let Some(old) = old {
            self.release(old.slot).await;
        }
        Ok(())
    }

    async fn get(&self, path: &str) -> Result<Option<Bytes>, StorageError> {
        check_path(path)?;
        let Some(entry) = self.files.get(path) else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt { path: path.to_owned(), reason };
        let data = match madsim::fs::read(blob_path(entry.slot)).await {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt(format!("its data file {} is missing", blob_path(entry.slot))));
            }
            Err(e) => return Err(io_error(path, e)),
        };
        if data.len() as u64 != entry.len {
            return Err(corrupt(format!(
                "its data file {} holds {} bytes, the index says {}",
                blob_path(entry.slot),
                data.len(),
                entry.len
            )));
        }
        Ok(Some(Bytes::from(data)))
    }

    async fn delete(&mut self, path: &str) -> Result<(), StorageError> {
        check_path(path)?;
        let Some(entry) = self.files.remove(path) else {
            return Ok(());
        };
        if let Err(e) = self.commit().await {
            self.files.insert(path.to_owned(), entry);
            return Err(io_error(path, e));
        }
        self.release(entry.slot).await;
        Ok(())
    }

    async fn delete_prefix(&mut self, prefix: &str) -> Result<u32, StorageError> {
        check_delete_prefix(prefix)?;
        let paths = self.list(prefix);
        if paths.is_empty() {
            return Ok(0);
        }
        let removed: Vec<(String, Entry)> = paths
            .into_iter()
            .filter_map(|path| self.files.remove(&path).map(|entry| (path, entry)))
            .collect();
        if let Err(e) = self.commit().await {
            self.files.extend(removed);
            return Err(io_error(prefix, e));
        }
        for (_, entry) in &removed {
            self.release(entry.slot).await;
        }
        Ok(u32::try_from(removed.len()).unwrap_or(u32::MAX))
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        self.files
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(path, _)| path)
            .take_while(|path| path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Writes the index as it is in memory as the cell's next generation.
    async fn commit(&mut self) -> std::io::Result<()> {
        let files = &self.files;
        self.index.write_payload(INDEX_CELL, self.generation + 1, |out| encode_index(files, out)).await?;
        self.generation += 1;
        Ok(())
    }

    /// Truncates a slot no committed index names any more and makes it free for reuse.
    async fn release(&mut self, slot: u32) {
        // Should the truncation fail, the bytes stay only until the slot's next use or the next
        // recovery, both of which truncate it again; the deletion itself is already durable.
        let _ = KeptFile::clear(self.blob(slot), || blob_path(slot)).await;
        self.free.insert(slot);
    }

    /// Writes `data` as the whole content of the slot's file (a free slot, which no committed
    /// index names), as `File::create` and a write would leave it.
    async fn write_blob(&mut self, slot: u32, data: &[u8]) -> std::io::Result<()> {
        KeptFile::rewrite(self.blob(slot), || blob_path(slot), data).await
    }

    /// The slot's place for its open file, empty until this process has opened it.
    fn blob(&mut self, slot: u32) -> &mut Option<KeptFile> {
        let index = slot as usize;
        if self.blobs.len() <= index {
            self.blobs.resize_with(index + 1, || None);
        }
        &mut self.blobs[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_written_as_the_list_of_its_rows() {
        let mut files = BTreeMap::new();
        let rows: Vec<IndexRow> =
            vec![("checkpoints/chk-1/_metadata".into(), 3, 1024), ("savepoints/a".into(), 0, 0)];
        for (path, slot, len) in &rows {
            files.insert(path.clone(), Entry::new(path, *slot, *len));
        }
        let mut written = vec![7];
        encode_index(&files, &mut written);
        assert_eq!(written[1..], postcard::to_stdvec(&rows).unwrap(), "after what was there");
        assert_eq!(postcard::from_bytes::<Vec<IndexRow>>(&written[1..]).unwrap(), rows);
        let mut empty = Vec::new();
        encode_index(&BTreeMap::new(), &mut empty);
        assert_eq!(empty, postcard::to_stdvec(&Vec::<IndexRow>::new()).unwrap());
        // Past one byte of varint length.
        let many: Vec<IndexRow> = (0..300).map(|i| (format!("checkpoints/f{i:03}"), i, u64::from(i) << 20)).collect();
        let files: BTreeMap<String, Entry> =
            many.iter().map(|(path, slot, len)| (path.clone(), Entry::new(path, *slot, *len))).collect();
        let mut written = Vec::new();
        encode_index(&files, &mut written);
        assert_eq!(written, postcard::to_stdvec(&many).unwrap());
    }

    #[test]
    fn slot_files_hold_exactly_their_paths_bytes_as_puts_replace_and_deletes_free_them() {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        runtime.block_on(async {
            let mut volume = Volume::recover().await.unwrap();
            let mut model: BTreeMap<String, Bytes> = BTreeMap::new();
            // Sizes that grow and shrink a reused slot's file.
            for (i, size) in [5usize, 300, 1, 0, 64, 2, 300, 7, 40, 3, 1000, 1].into_iter().enumerate() {
                let path = format!("checkpoints/p{}", i % 3);
                let data = Bytes::from(vec![i as u8 + 1; size]);
                volume.put(path.clone(), data.clone()).await.unwrap();
                model.insert(path, data);
                if i % 4 == 3 {
                    volume.delete("checkpoints/p1").await.unwrap();
                    model.remove("checkpoints/p1");
                }
                // Every slot file holds its path's bytes, a free one nothing.
                for slot in 0..volume.slots {
                    let content = madsim::fs::read(blob_path(slot)).await.unwrap();
                    let named = volume.files.iter().find(|(_, entry)| entry.slot == slot);
                    match named {
                        Some((path, _)) => assert_eq!(content, model[path].as_ref(), "step {i}, {path}"),
                        None => assert!(content.is_empty(), "step {i}, free slot {slot}"),
                    }
                }
                for (path, data) in &model {
                    assert_eq!(volume.get(path).await.unwrap().as_ref(), Some(data), "step {i}, {path}");
                }
            }
        });
    }
}

/// What the volume takes on the node's disk, read from the files themselves (tests only).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DiskUsage {
    /// How many slot files exist.
    pub slot_files: u32,
    /// Their bytes, which should be the live files' bytes and nothing more.
    pub slot_bytes: u64,
    /// The bytes of both copies of the index.
    pub index_bytes: u64,
}

/// Measures the volume on the current node's disk; call it on the storage node.
#[cfg(test)]
pub(super) async fn disk_usage() -> DiskUsage {
    let mut usage = DiskUsage { slot_files: 0, slot_bytes: 0, index_bytes: 0 };
    while let Ok(meta) = madsim::fs::metadata(blob_path(usage.slot_files)).await {
        usage.slot_files += 1;
        usage.slot_bytes += meta.len();
    }
    for copy in 0..2 {
        if let Ok(meta) = madsim::fs::metadata(format!("{INDEX_CELL}.{copy}")).await {
            usage.index_bytes += meta.len();
        }
    }
    usage
}

/// Writes bytes to a slot file no index names, as a put killed before its commit leaves them.
#[cfg(test)]
pub(super) async fn plant_orphan(slot: u32, data: &[u8]) {
    let file = File::create(blob_path(slot)).await.unwrap();
    file.write_all_at(data, 0).await.unwrap();
}
