//! Keys to key groups to subtasks, and Kafka partitions to source subtasks
//! (docs/model/job.md#partitions-and-key-groups), in Java's wrapping 32-bit arithmetic so that
//! flinksim places every key where Flink would.

use serde::{Deserialize, Serialize};

/// The default and the playground's maximum parallelism: the number of key groups.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// Java's `String.hashCode` over UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    // An ASCII byte is its own UTF-16 code unit; every key on the hot path is ASCII.
    if s.is_ascii() {
        return ascii_java_string_hash(s.as_bytes());
    }
    s.encode_utf16().fold(0, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Java's `String.hashCode` of an ASCII string, given its bytes (also at compile time).
pub const fn ascii_java_string_hash(bytes: &[u8]) -> i32 {
    let mut h: i32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        h = h.wrapping_mul(31).wrapping_add(bytes[i] as i32);
        i += 1;
    }
    h
}

/// Flink's `MathUtils.murmurHash(int)`, made non-negative as Flink does.
pub fn murmur_hash(code: i32) -> i32 {
    let mut h = code.wrapping_mul(0xcc9e_2d51_u32 as i32);
    h = h.rotate_left(15);
    h = h.wrapping_mul(0x1b87_3593);
    h = h.rotate_left(13);
    h = h.wrapping_mul(5).wrapping_add(0xe654_6b64_u32 as i32);
    h ^= 4;
    h ^= ((h as u32) >> 16) as i32;
    h = h.wrapping_mul(0x85eb_ca6b_u32 as i32);
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(0xc2b2_ae35_u32 as i32);
    h ^= ((h as u32) >> 16) as i32;
    if h >= 0 { h } else if h == i32::MIN { 0 } else { -h }
}

/// A key group: the unit in which keyed state is stored, snapshotted and moved on rescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyGroup(pub u32);

impl KeyGroup {
    /// The key group of a string key.
    pub fn of_str(key: &str, max_parallelism: u32) -> KeyGroup {
        KeyGroup::of_hash_code(java_string_hash(key), max_parallelism)
    }

    /// The key group of a key whose Java `hashCode` is `hash_code`.
    pub fn of_hash_code(hash_code: i32, max_parallelism: u32) -> KeyGroup {
        KeyGroup(murmur_hash(hash_code) as u32 % max_parallelism)
    }

    /// The subtask that owns this key group at parallelism `p`.
    pub fn owner(self, max_parallelism: u32, parallelism: u32) -> u32 {
        self.0 * parallelism / max_parallelism
    }
}

/// The contiguous key groups one subtask owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGroupRange {
    /// First key group, inclusive.
    pub start: u32,
    /// Last key group, inclusive.
    pub end: u32,
}

impl KeyGroupRange {
    /// The range subtask `index` owns at parallelism `p`: ⌈i·maxP/p⌉ … ⌊((i+1)·maxP − 1)/p⌋.
    pub fn of_subtask(max_parallelism: u32, parallelism: u32, index: u32) -> KeyGroupRange {
        KeyGroupRange {
            start: (index * max_parallelism).div_ceil(parallelism),
            end: ((index + 1) * max_parallelism - 1) / parallelism,
        }
    }

    /// Whether `group` lies in the range.
    pub fn contains(self, group: KeyGroup) -> bool {
        (self.start..=self.end).contains(&group.0)
    }
}

/// Flink's default max parallelism for a job first started at parallelism `p`.
pub fn default_max_parallelism(parallelism: u32) -> u32 {
    let p = parallelism + parallelism / 2;
    p.next_power_of_two().clamp(DEFAULT_MAX_PARALLELISM, 32768)
}

/// The source subtask that reads `partition` of `topic` at parallelism `p`
/// (`KafkaTopicPartitionAssigner`).
pub fn kafka_partition_owner(topic: &str, partition: u32, parallelism: u32) -> u32 {
    let start = (java_string_hash(topic).wrapping_mul(31) & 0x7fff_ffff) as u32 % parallelism;
    (start + partition) % parallelism
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn the_ascii_path_hashes_as_utf16_does(key in "\\PC{0,24}", ascii in "[ -~]{0,24}") {
            for key in [key, ascii] {
                let utf16 =
                    key.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
                prop_assert_eq!(java_string_hash(&key), utf16);
            }
        }
    }

    /// Test vectors (docs/model/job.md#partitions-and-key-groups): hash code, murmur hash, key
    /// group, owner at p = 2, 3, 4.
    #[test]
    fn pages_land_in_flink_s_key_groups() {
        let vectors = [
            ("/help", 46604272, 1050976111, 111, [1, 2, 3]),
            ("/index", 1445916163, 1256445584, 16, [0, 0, 0]),
            ("/shop", 46934949, 1442300617, 73, [1, 1, 2]),
            ("/jobs", 46673157, 159051023, 15, [0, 0, 0]),
            ("/about", 1438181566, 1564131005, 61, [0, 1, 1]),
            ("/news", 46783362, 1526248998, 38, [0, 0, 1]),
        ];
        for (page, hash, murmur, group, owners) in vectors {
            assert_eq!(java_string_hash(page), hash, "{page}");
            assert_eq!(murmur_hash(hash), murmur, "{page}");
            let kg = KeyGroup::of_str(page, 128);
            assert_eq!(kg, KeyGroup(group), "{page}");
            for (p, owner) in [2, 3, 4].into_iter().zip(owners) {
                assert_eq!(kg.owner(128, p), owner, "{page} at p={p}");
                assert!(KeyGroupRange::of_subtask(128, p, owner).contains(kg));
            }
        }
    }

    #[test]
    fn input_partitions_map_to_source_subtasks_as_in_flink() {
        assert_eq!(java_string_hash("input"), 100358090);
        let owners = |p| [0, 1].map(|part| kafka_partition_owner("input", part, p));
        assert_eq!(owners(1), [0, 0]);
        assert_eq!(owners(2), [0, 1]);
        assert_eq!(owners(3), [0, 1]);
        assert_eq!(owners(4), [2, 3]);
    }

    #[test]
    fn default_max_parallelism_is_at_least_128() {
        assert_eq!(default_max_parallelism(2), 128);
        assert_eq!(default_max_parallelism(200), 512);
    }
}
