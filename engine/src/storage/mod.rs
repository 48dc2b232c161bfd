//! The shared checkpoint and savepoint volume (docs/model/cluster.md#nodes,
//! docs/model/cluster.md#configuration, docs/model/checkpoints.md#overview): in the playground a
//! docker volume at `/tmp`, here a `storage` node of its own that no TaskManager kill can touch. It
//! keeps whole files by path on its madsim disk, durably; only a small index stays in its memory.

pub mod client;
pub mod node;

pub use crate::protocol::storage::StorageError;
pub use client::StorageClient;
pub use node::{StorageConfig, run};

/// `state.checkpoints.dir` of the playground's flink-conf.yaml
/// (docs/model/cluster.md#configuration), without `file://`.
pub const CHECKPOINTS_DIRECTORY: &str = "/tmp/flink-checkpoints-directory";
/// `state.savepoints.dir` of the playground's flink-conf.yaml
/// (docs/model/cluster.md#configuration), without `file://`.
pub const SAVEPOINTS_DIRECTORY: &str = "/tmp/flink-savepoints-directory";

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use madsim::runtime::{Handle, NodeHandle};
    use madsim::task::NodeId;
    use madsim::time::Instant;

    use super::node::{DiskUsage, disk_usage, plant_orphan};
    use super::*;
    use crate::protocol::storage::{PutFile, PutFileResponse};
    use crate::rpc::{Network, Rpc};
    use crate::trace::Trace;

    const STORAGE: &str = "10.0.0.5:7000";
    const CLIENT: &str = "10.0.0.10:9000";
    const JOB: &str = "/tmp/flink-checkpoints-directory/00000000000000000000000000000001";

    fn storage_addr() -> SocketAddr {
        STORAGE.parse().unwrap()
    }

    fn start_storage(trace: &Trace, network: &Network) -> NodeId {
        let config = StorageConfig {
            addr: storage_addr(),
            network: network.clone(),
            trace: trace.for_node("storage"),
        };
        Handle::current()
            .create_node()
            .name("storage")
            .ip(storage_addr().ip())
            .init(move || run(config.clone()))
            .build()
            .id()
    }

    /// Creates the client node at 10.0.0.10 and a storage client sending from it.
    async fn client_node(network: &Network) -> (NodeHandle, StorageClient) {
        let (node, rpc) =
            crate::rpc::bind_on_new_node("client", CLIENT.parse().unwrap(), network).await;
        (node, StorageClient::new(rpc, storage_addr()))
    }

    /// Measures the storage node's disk (on whichever incarnation of it runs now).
    async fn storage_disk(storage: NodeId) -> DiskUsage {
        Handle::current().get_node(storage).unwrap().spawn(disk_usage()).await.unwrap()
    }

    fn bytes(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn events(trace: &Trace) -> Vec<String> {
        trace.events().into_iter().map(|e| e.message()).collect()
    }

    #[test]
    fn put_get_round_trip_and_overwrite() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            let storage = start_storage(&trace, &network);
            let (client, storage_client) = client_node(&network).await;
            let path = format!("{JOB}/chk-1/_metadata");
            let got = client
                .spawn(async move {
                    let c = storage_client;
                    let missing = c.get(&path).await.unwrap();
                    c.put(&path, bytes("first")).await.unwrap();
                    let first = c.get(&path).await.unwrap();
                    c.put(&path, bytes("second, longer")).await.unwrap();
                    c.put(&path, Bytes::new()).await.unwrap();
                    let empty = c.get(&path).await.unwrap();
                    c.put(&path, bytes("third")).await.unwrap();
                    (missing, first, empty, c.get(&path).await.unwrap(), c.list("").await.unwrap())
                })
                .await
                .unwrap();
            assert_eq!(got.0, None);
            assert_eq!(got.1, Some(bytes("first")));
            assert_eq!(got.2, Some(Bytes::new()));
            assert_eq!(got.3, Some(bytes("third")));
            assert_eq!(got.4, [format!("{JOB}/chk-1/_metadata")]);
            // Overwriting reuses the freed slot: two slot files, only the live bytes in them.
            let disk = storage_disk(storage).await;
            assert_eq!((disk.slot_files, disk.slot_bytes), (2, 5), "{disk:?}");
            assert_eq!(events(&trace), ["storage started on 10.0.0.5:7000 with 0 files (0 bytes)"]);
        });
    }

    #[test]
    fn list_by_prefix_is_sorted_and_matches_bytewise() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_storage(&trace, &network);
            let (client, c) = client_node(&network).await;
            let (chk7, chk, all, none) = client
                .spawn(async move {
                    for name in ["chk-70/b", "chk-7/_metadata", "chk-7/a", "chk-8/a", "chk-7/0"] {
                        c.put(&format!("{JOB}/{name}"), bytes(name)).await.unwrap();
                    }
                    c.put("/tmp/flink-savepoints-directory/savepoint-1/_metadata", bytes("s"))
                        .await
                        .unwrap();
                    (
                        c.list(&format!("{JOB}/chk-7/")).await.unwrap(),
                        c.list(&format!("{JOB}/chk-")).await.unwrap(),
                        c.list("").await.unwrap(),
                        c.list("/tmp/nothing-here/").await.unwrap(),
                    )
                })
                .await
                .unwrap();
            let under = |names: &[&str]| -> Vec<String> {
                names.iter().map(|n| format!("{JOB}/{n}")).collect()
            };
            assert_eq!(chk7, under(&["chk-7/0", "chk-7/_metadata", "chk-7/a"]));
            assert_eq!(
                chk,
                under(&["chk-7/0", "chk-7/_metadata", "chk-7/a", "chk-70/b", "chk-8/a"])
            );
            assert_eq!(all.len(), 6);
            assert_eq!(all[0], format!("{JOB}/chk-7/0"));
            assert_eq!(all[5], "/tmp/flink-savepoints-directory/savepoint-1/_metadata");
            assert!(none.is_empty());
        });
    }

    #[test]
    fn delete_and_delete_prefix_remove_only_what_they_name() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            let storage = start_storage(&trace, &network);
            let (client, c) = client_node(&network).await;
            let (counts, left, gone) = client
                .spawn(async move {
                    for name in ["chk-1/a", "chk-1/b", "chk-1/_metadata", "chk-10/a", "chk-2/a"] {
                        c.put(&format!("{JOB}/{name}"), bytes(name)).await.unwrap();
                    }
                    c.delete(&format!("{JOB}/chk-2/a")).await.unwrap();
                    // Deleting again, or a path never written, is fine: requests are idempotent.
                    c.delete(&format!("{JOB}/chk-2/a")).await.unwrap();
                    c.delete(&format!("{JOB}/never")).await.unwrap();
                    let counts = [
                        c.delete_prefix(&format!("{JOB}/chk-1/")).await.unwrap(),
                        c.delete_prefix(&format!("{JOB}/chk-1/")).await.unwrap(),
                    ];
                    let gone = c.get(&format!("{JOB}/chk-1/a")).await.unwrap();
                    (counts, c.list("").await.unwrap(), gone)
                })
                .await
                .unwrap();
            assert_eq!(counts, [3, 0]);
            assert_eq!(left, [format!("{JOB}/chk-10/a")]);
            assert_eq!(gone, None);
            let disk = storage_disk(storage).await;
            assert_eq!((disk.slot_files, disk.slot_bytes), (5, "chk-10/a".len() as u64));
        });
    }

    #[test]
    fn concurrent_puts_all_land_and_read_back_intact() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_storage(&trace, &network);
            let (client, c) = client_node(&network).await;
            let ok = client
                .spawn(async move {
                    let puts: Vec<_> = (0..20)
                        .map(|i| {
                            let c = c.clone();
                            madsim::task::spawn(async move {
                                let path = format!("{JOB}/chk-3/op-{i:02}");
                                c.put(&path, Bytes::from(vec![i as u8; 100 * i])).await
                            })
                        })
                        .collect();
                    for put in puts {
                        put.await.unwrap().unwrap();
                    }
                    let paths = c.list(&format!("{JOB}/chk-3/")).await.unwrap();
                    assert_eq!(paths.len(), 20);
                    for (i, path) in paths.iter().enumerate() {
                        let data = c.get(path).await.unwrap().unwrap();
                        assert_eq!(data, vec![i as u8; 100 * i], "{path}");
                    }
                    true
                })
                .await
                .unwrap();
            assert!(ok);
        });
    }

    #[test]
    fn bad_paths_are_refused_by_client_and_node_without_panicking() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_storage(&trace, &network);
            let addr: SocketAddr = CLIENT.parse().unwrap();
            let client = Handle::current().create_node().name("client").ip(addr.ip()).build();
            let errors = client
                .spawn(async move {
                    madsim::time::sleep(Duration::from_millis(10)).await; // storage binds
                    let rpc = Rpc::bind(addr, network);
                    let c = StorageClient::new(rpc.clone(), storage_addr());
                    let long = "x".repeat(5000);
                    // A request built by hand skips the client's checks: the node checks too.
                    let raw = PutFile { path: String::new(), data: Bytes::new() };
                    let answer: PutFileResponse =
                        rpc.call(storage_addr(), raw, Duration::from_secs(1)).await.unwrap();
                    let errors = vec![
                        c.put("", bytes("x")).await.unwrap_err(),
                        c.get(&long).await.unwrap_err(),
                        c.delete("").await.unwrap_err(),
                        c.delete_prefix("").await.unwrap_err(),
                        answer.result.unwrap_err(),
                    ];
                    // Still serving.
                    c.put("/tmp/ok", bytes("ok")).await.unwrap();
                    errors
                })
                .await
                .unwrap();
            let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            let empty = "invalid path \"\": a path must not be empty".to_owned();
            let long =
                format!("invalid path \"{}\": a path must be at most 4096 bytes", "x".repeat(5000));
            let prefix = "invalid path \"\": an empty prefix would delete every file".to_owned();
            assert_eq!(messages, [empty.clone(), long, empty.clone(), prefix, empty]);
            assert!(errors.iter().all(|e| !e.is_retryable()));
        });
    }

    /// Puts, overwrites and deletes, leaves an unfinished put's bytes on disk, kills and restarts
    /// the storage node, then reads everything back: (what was read, trace, disk after restart).
    async fn restart_scenario() -> (Vec<Option<Bytes>>, Vec<String>, DiskUsage) {
        let (trace, network) = (Trace::new(), Network::default());
        let storage = start_storage(&trace, &network);
        let (client, c) = client_node(&network).await;
        let paths: Vec<String> =
            ["chk-1/a", "chk-1/b", "chk-1/_metadata", "chk-2/a", "chk-2/b", "chk-3/a"]
                .iter()
                .map(|n| format!("{JOB}/{n}"))
                .collect();
        let before = {
            let (c, paths) = (c.clone(), paths.clone());
            client.spawn(async move {
                for path in &paths {
                    c.put(path, bytes(path)).await.unwrap();
                }
                c.put(&paths[1], bytes("b, overwritten")).await.unwrap();
                c.delete(&paths[0]).await.unwrap();
                c.delete_prefix(&format!("{JOB}/chk-2/")).await.unwrap()
            })
        };
        assert_eq!(before.await.unwrap(), 2);
        let node = Handle::current().get_node(storage).unwrap();
        let end = node.spawn(disk_usage()).await.unwrap().slot_files;
        node.spawn(plant_orphan(end, b"bytes of a put cut short by the kill")).await.unwrap();
        Handle::current().kill(storage);
        madsim::time::sleep(Duration::from_secs(1)).await;
        Handle::current().restart(storage);
        // A request sent before the restarted node listens again is lost: give it a moment.
        madsim::time::sleep(Duration::from_millis(10)).await;
        let read = client
            .spawn(async move {
                let mut read = Vec::new();
                for path in &paths {
                    read.push(c.get(path).await.unwrap());
                }
                read
            })
            .await
            .unwrap();
        (read, events(&trace), storage_disk(storage).await)
    }

    #[test]
    fn restart_keeps_every_put_and_every_delete_made_before_the_kill() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        let (read, events, disk) = rt.block_on(restart_scenario());
        let text = |r: &Option<Bytes>| r.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let read: Vec<Option<String>> = read.iter().map(text).collect();
        assert_eq!(
            read,
            [
                None,
                Some("b, overwritten".to_owned()),
                Some(format!("{JOB}/chk-1/_metadata")),
                None,
                None,
                Some(format!("{JOB}/chk-3/a")),
            ]
        );
        let live = [
            "b, overwritten".to_owned(),
            format!("{JOB}/chk-1/_metadata"),
            format!("{JOB}/chk-3/a"),
        ]
        .iter()
        .map(|s| s.len() as u64)
        .sum::<u64>();
        assert_eq!(
            events,
            [
                "storage started on 10.0.0.5:7000 with 0 files (0 bytes)".to_owned(),
                format!("storage started on 10.0.0.5:7000 with 3 files ({live} bytes)"),
            ]
        );
        // The orphan's slot file is kept (madsim cannot remove files) but truncated.
        assert_eq!((disk.slot_files, disk.slot_bytes), (8, live), "{disk:?}");
    }

    #[test]
    fn a_run_with_a_restart_replays_identically_from_its_seed() {
        let config = madsim::Config::default();
        // Runs seed 7 twice, each on a fresh thread, and fails on the first RNG divergence.
        let (read, _, _) = madsim::runtime::Runtime::check_determinism(7, config, restart_scenario);
        assert_eq!(read.len(), 6);
    }

    #[test]
    fn a_dead_or_partitioned_node_is_unavailable_within_the_timeout() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            let storage = start_storage(&trace, &network);
            let (client, c) = client_node(&network).await;
            let path = format!("{JOB}/chk-1/_metadata");
            let timed = |c: StorageClient, path: String, data: &'static str| async move {
                let start = Instant::now();
                let put = c.put(&path, bytes(data)).await;
                let got = c.get(&path).await;
                (put, got, start.elapsed())
            };
            // Dead: a short timeout, for both the put and the get.
            Handle::current().kill(storage);
            let short = c.clone().with_timeout(Duration::from_millis(500));
            let (put, got, waited) =
                client.spawn(timed(short, path.clone(), "lost")).await.unwrap();
            let put = put.unwrap_err();
            assert!(put.is_retryable());
            assert_eq!(
                put.to_string(),
                format!(
                    "storage unavailable for {path}: no answer from 10.0.0.5:7000 within 500ms"
                )
            );
            assert!(matches!(got, Err(StorageError::Unavailable { .. })), "{got:?}");
            assert!(waited >= Duration::from_secs(1), "{waited:?}");
            assert!(waited < Duration::from_millis(1010), "{waited:?}");

            Handle::current().restart(storage);
            madsim::time::sleep(Duration::from_millis(10)).await;
            let (put, got, _) = client.spawn(timed(c.clone(), path.clone(), "v1")).await.unwrap();
            put.unwrap();
            assert_eq!(got.unwrap(), Some(bytes("v1")));

            // Partitioned (both directions): the default 2 s timeout.
            let client_ip = CLIENT.parse::<SocketAddr>().unwrap().ip();
            let storage_ip = STORAGE.parse::<SocketAddr>().unwrap().ip();
            network.partition(client_ip, storage_ip);
            let (put, got, waited) =
                client.spawn(timed(c.clone(), path.clone(), "v2")).await.unwrap();
            assert!(matches!(put, Err(StorageError::Unavailable { .. })), "{put:?}");
            assert!(matches!(got, Err(StorageError::Unavailable { .. })), "{got:?}");
            assert!(waited >= Duration::from_secs(4), "{waited:?}");
            assert!(waited < Duration::from_millis(4010), "{waited:?}");
            network.heal(client_ip, storage_ip);
            // The put whose request never arrived did nothing; the node kept its state.
            let got = client.spawn(async move { c.get(&path).await }).await.unwrap();
            assert_eq!(got.unwrap(), Some(bytes("v1")));
        });
    }

    /// A long run (docs/model/checkpoints.md#overview: one retained checkpoint) must not grow the
    /// volume: every completed checkpoint writes 10 state files and `_metadata`, then removes the
    /// previous one.
    #[test]
    fn six_hundred_checkpoints_with_one_retained_keep_the_disk_bounded() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            let storage = start_storage(&trace, &network);
            let (client, c) = client_node(&network).await;
            let size = |n: u32, i: u32| 1000 + ((n * 7 + i * 13) % 50) as usize * 40;
            let (removed, retained) = client
                .spawn(async move {
                    let mut removed = 0;
                    for n in 1..=600u32 {
                        for i in 0..10 {
                            let data = Bytes::from(vec![n as u8; size(n, i)]);
                            c.put(&format!("{JOB}/chk-{n}/op-{i}"), data).await.unwrap();
                        }
                        c.put(&format!("{JOB}/chk-{n}/_metadata"), bytes("meta")).await.unwrap();
                        if n > 1 {
                            removed +=
                                c.delete_prefix(&format!("{JOB}/chk-{}/", n - 1)).await.unwrap();
                        }
                    }
                    (removed, c.list(JOB).await.unwrap())
                })
                .await
                .unwrap();
            assert_eq!(removed, 599 * 11);
            assert_eq!(retained.len(), 11);
            assert!(retained.iter().all(|p| p.starts_with(&format!("{JOB}/chk-600/"))));
            let live: u64 = (0..10).map(|i| size(600, i) as u64).sum::<u64>() + 4;
            let disk = storage_disk(storage).await;
            // At most two checkpoints are ever live at once: 22 slot files, reused ever after.
            assert_eq!(disk.slot_files, 22, "{disk:?}");
            assert_eq!(disk.slot_bytes, live, "{disk:?}");
            assert!(disk.index_bytes < 4096, "{disk:?}");
        });
    }
}
