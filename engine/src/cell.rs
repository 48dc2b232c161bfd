//! Durable cells: small values rewritten whole on every change (a partition's manifest, the
//! broker's topics, producer ids and committed offsets, the storage node's index).
//!
//! `File::create` truncates before the new content is written, so a file rewritten in place could
//! be lost to a kill in between. Each cell therefore alternates between two files, `<name>.0` and
//! `<name>.1`, each holding `generation u64 | length u32 | xxh3 checksum u64 | postcard`; a reader
//! takes the valid file with the higher generation. The payload is postcard, not JSON: the
//! storage node rewrites its index on every put, and JSON's string escaping made that a few
//! percent of a whole run.

use madsim::fs::File;
use serde::{Serialize, de::DeserializeOwned};
use xxhash_rust::xxh3::xxh3_64;

/// Bytes before the payload: generation, payload length, checksum.
const HEADER: usize = 8 + 4 + 8;

/// Writes generation `generation` of the cell `name` (callers count generations up from 1).
pub async fn write<T: Serialize>(name: &str, generation: u64, value: &T) -> std::io::Result<()> {
    // Room for a storage index of a few dozen paths without growing (and copying) on the way.
    let mut content = Vec::with_capacity(4096);
    content.resize(HEADER, 0);
    content = postcard::to_extend(value, content).map_err(std::io::Error::other)?;
    let payload_len = u32::try_from(content.len() - HEADER).map_err(std::io::Error::other)?;
    let checksum = xxh3_64(&content[HEADER..]);
    content[0..8].copy_from_slice(&generation.to_be_bytes());
    content[8..12].copy_from_slice(&payload_len.to_be_bytes());
    content[12..HEADER].copy_from_slice(&checksum.to_be_bytes());
    let file = File::create(slot_path(name, generation % 2)).await?;
    file.write_all_at(&content, 0).await?;
    file.sync_all().await
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
