//! Durable cells: small values rewritten whole on every change (a partition's manifest, the
//! broker's topics, producer ids and committed offsets, the storage node's index).
//!
//! `File::create` truncates before the new content is written, so a file rewritten in place could
//! be lost to a kill in between. Each cell therefore alternates between two files, `<name>.0` and
//! `<name>.1`, each holding `generation u64 | length u32 | xxh3 checksum u64 | postcard`; a reader
//! takes the valid file with the higher generation. The payload is postcard, not JSON: the
//! storage node rewrites its index on every put, and JSON's string escaping made that a few
//! percent of a whole run.
//!
//! A cell rewritten often (the storage node's index) goes through a [`Writer`], which keeps its
//! two files open and rewrites one in place: the new content over the old, then the file cut to
//! the new length. What the file holds after a write is exactly what `File::create` and a write
//! leave, and a kill during the rewrite tears that slot alone, as a kill between `File::create`
//! and the write does: the other slot still holds the previous generation.

use madsim::fs::File;
use serde::{Serialize, de::DeserializeOwned};
use xxhash_rust::xxh3::xxh3_64;

/// Bytes before the payload: generation, payload length, checksum.
const HEADER: usize = 8 + 4 + 8;

/// Writes generation `generation` of the cell `name` (callers count generations up from 1).
pub async fn write<T: Serialize>(name: &str, generation: u64, value: &T) -> std::io::Result<()> {
    let content = encode(generation, value)?;
    let file = File::create(slot_path(name, generation % 2)).await?;
    file.write_all_at(&content, 0).await?;
    file.sync_all().await
}

/// The one writer of a cell, keeping its two files open between writes: opening a file by
/// name cost about 1,250 instructions per write (measured), the storage node writes its index
/// on every put and delete. Made afresh with the process (a restarted node opens them again).
#[derive(Default)]
pub struct Writer {
    /// Per slot, its file once written through this writer.
    slots: [Option<KeptFile>; 2],
}

impl Writer {
    /// [`write`](fn@write): generation `generation` of the cell `name`, which is always the same name
    /// for one writer.
    pub async fn write<T: Serialize>(&mut self, name: &str, generation: u64, value: &T) -> std::io::Result<()> {
        self.write_encoded(name, generation, encode(generation, value)?).await
    }

    /// [`write`](Self::write) of a payload the caller lays out itself, as postcard would
    /// serialize the cell's value: `payload` appends it to what it is given.
    pub async fn write_payload(
        &mut self,
        name: &str,
        generation: u64,
        payload: impl FnOnce(&mut Vec<u8>),
    ) -> std::io::Result<()> {
        let content = encode_with(generation, |mut content| {
            payload(&mut content);
            Ok(content)
        })?;
        self.write_encoded(name, generation, content).await
    }

    /// Writes `content`, a whole encoded generation, to its slot.
    async fn write_encoded(&mut self, name: &str, generation: u64, content: Vec<u8>) -> std::io::Result<()> {
        // A kill before the cut leaves the new content whole, read as such (the header gives
        // its length), with the old tail after it; a kill within the write tears the slot, as
        // one within a fresh file's write does.
        KeptFile::rewrite(&mut self.slots[(generation % 2) as usize], || slot_path(name, generation % 2), &content)
            .await
    }
}

/// A file kept open with its length, rewritten in place: after each rewrite it holds exactly
/// what `File::create` by name and a write of the same bytes would leave, without the create.
pub struct KeptFile {
    file: File,
    len: u64,
}

impl KeptFile {
    /// Makes `data` the whole content of the file in `kept`, created at `path()` the first time
    /// (when `kept` is empty), then synced.
    pub async fn rewrite(
        kept: &mut Option<KeptFile>,
        path: impl FnOnce() -> String,
        data: &[u8],
    ) -> std::io::Result<()> {
        let new_len = data.len() as u64;
        let kept = match kept {
            Some(kept) => {
                kept.file.write_all_at(data, 0).await?;
                if new_len < kept.len {
                    kept.file.set_len(new_len).await?;
                }
                kept.len = new_len;
                kept
            }
            None => {
                let file = File::create(path()).await?;
                file.write_all_at(data, 0).await?;
                kept.insert(KeptFile { file, len: new_len })
            }
        };
        kept.file.sync_all().await
    }

    /// Empties the file in `kept`, created empty at `path()` the first time; not synced.
    pub async fn clear(kept: &mut Option<KeptFile>, path: impl FnOnce() -> String) -> std::io::Result<()> {
        match kept {
            Some(kept) if kept.len > 0 => {
                kept.file.set_len(0).await?;
                kept.len = 0;
            }
            Some(_) => {}
            None => {
                *kept = Some(KeptFile { file: File::create(path()).await?, len: 0 });
            }
        }
        Ok(())
    }
}

/// Generation `generation` of a cell holding `value`: the header, then the payload.
fn encode<T: Serialize>(generation: u64, value: &T) -> std::io::Result<Vec<u8>> {
    encode_with(generation, |content| postcard::to_extend(value, content).map_err(std::io::Error::other))
}

/// Generation `generation` of a cell whose payload `payload` appends to the header's room.
fn encode_with(
    generation: u64,
    payload: impl FnOnce(Vec<u8>) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    // Room for a storage index of a few dozen paths without growing (and copying) on the way.
    let mut content = Vec::with_capacity(4096);
    content.resize(HEADER, 0);
    content = payload(content)?;
    let payload_len = u32::try_from(content.len() - HEADER).map_err(std::io::Error::other)?;
    let checksum = xxh3_64(&content[HEADER..]);
    content[0..8].copy_from_slice(&generation.to_be_bytes());
    content[8..12].copy_from_slice(&payload_len.to_be_bytes());
    content[12..HEADER].copy_from_slice(&checksum.to_be_bytes());
    Ok(content)
}

/// The newest valid generation of the cell `name` and its value, if it was ever written.
pub async fn read<T: DeserializeOwned>(name: &str) -> Option<(u64, T)> {
    let mut best: Option<(u64, T)> = None;
    for slot in 0..2 {
        let Ok(content) = madsim::fs::read(slot_path(name, slot)).await else {
            continue;
        };
        let Some(parsed) = parse(&content) else {
            continue;
        };
        if best.as_ref().is_none_or(|(generation, _)| parsed.0 > *generation) {
            best = Some(parsed);
        }
    }
    best
}

/// `<name>.<slot>`, built by hand rather than by `format!`, which runs on every storage put.
fn slot_path(name: &str, slot: u64) -> String {
    let mut path = String::with_capacity(name.len() + 2);
    path.push_str(name);
    path.push('.');
    path.push(if slot == 0 { '0' } else { '1' });
    path
}

fn parse<T: DeserializeOwned>(content: &[u8]) -> Option<(u64, T)> {
    let generation = u64::from_be_bytes(content.get(0..8)?.try_into().ok()?);
    let len = u32::from_be_bytes(content.get(8..12)?.try_into().ok()?) as usize;
    let checksum = u64::from_be_bytes(content.get(12..HEADER)?.try_into().ok()?);
    let payload = content.get(HEADER..HEADER.checked_add(len)?)?;
    if xxh3_64(payload) != checksum {
        return None;
    }
    let (value, rest) = postcard::take_from_bytes(payload).ok()?;
    rest.is_empty().then_some((generation, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> madsim::runtime::Runtime {
        madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default())
    }

    #[test]
    fn a_cell_keeps_its_last_value_when_the_newer_file_is_torn() {
        runtime().block_on(async {
            assert_eq!(read::<Vec<u64>>("cell").await, None);
            write("cell", 1, &vec![1u64]).await.unwrap();
            write("cell", 2, &vec![1u64, 2]).await.unwrap();
            assert_eq!(read::<Vec<u64>>("cell").await, Some((2, vec![1, 2])));
            // A kill between File::create and the write leaves generation 3's slot empty.
            File::create("cell.1").await.unwrap();
            assert_eq!(read::<Vec<u64>>("cell").await, Some((2, vec![1, 2])));
        });
    }

    #[test]
    fn a_writer_leaves_the_files_a_fresh_write_does_growing_and_shrinking() {
        runtime().block_on(async {
            let mut writer = Writer::default();
            for (generation, len) in (1u64..).zip([3usize, 1, 8, 2, 0, 5, 5, 1, 9, 0]) {
                let value: Vec<u64> = (0..len as u64).map(|i| i * 1000).collect();
                writer.write("kept", generation, &value).await.unwrap();
                write("fresh", generation, &value).await.unwrap();
                for slot in 0..2 {
                    let kept = madsim::fs::read(slot_path("kept", slot)).await.ok();
                    let fresh = madsim::fs::read(slot_path("fresh", slot)).await.ok();
                    assert_eq!(kept, fresh, "generation {generation}, slot {slot}");
                }
                assert_eq!(read::<Vec<u64>>("kept").await, Some((generation, value)));
            }
        });
    }

    #[test]
    fn a_rewrite_killed_before_its_cut_reads_as_the_new_generation() {
        runtime().block_on(async {
            let mut writer = Writer::default();
            writer.write("cell", 1, &vec![1u64, 2, 3, 4]).await.unwrap();
            writer.write("cell", 2, &vec![5u64]).await.unwrap();
            // Generation 3's whole content over generation 1's longer one, not yet cut.
            let mut file = madsim::fs::read("cell.1").await.unwrap();
            let new = encode(3, &vec![6u64]).unwrap();
            assert!(new.len() < file.len());
            file[..new.len()].copy_from_slice(&new);
            File::create("cell.1").await.unwrap().write_all_at(&file, 0).await.unwrap();
            assert_eq!(read::<Vec<u64>>("cell").await, Some((3, vec![6])));
            // Cut within the new content, it is torn: the previous generation is read.
            File::create("cell.1").await.unwrap().write_all_at(&new[..new.len() - 1], 0).await.unwrap();
            assert_eq!(read::<Vec<u64>>("cell").await, Some((2, vec![5])));
        });
    }

    #[test]
    fn a_flipped_byte_or_a_cut_file_is_not_read() {
        runtime().block_on(async {
            let rows = vec![("checkpoints/chk-1/_metadata".to_string(), 3u32, 1024u64)];
            write("cell", 1, &rows).await.unwrap();
            let good = madsim::fs::read("cell.1").await.unwrap();
            assert_eq!(parse::<Vec<(String, u32, u64)>>(&good), Some((1, rows)));
            for at in [0, 9, 13, HEADER, good.len() - 1] {
                let mut bad = good.clone();
                bad[at] ^= 0x40;
                let parsed = parse::<Vec<(String, u32, u64)>>(&bad);
                // A flipped generation byte is still a valid cell, of another generation.
                assert!(parsed.is_none() || at == 0, "byte {at}: {parsed:?}");
            }
            for len in 0..good.len() {
                assert_eq!(parse::<Vec<(String, u32, u64)>>(&good[..len]), None, "cut to {len}");
            }
        });
    }
}
