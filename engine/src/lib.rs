//! flinksim's engine: a small, faithful Flink-style stream processor and Kafka-style log.
//!
//! Every component (JobManager, TaskManagers, Kafka broker, generator, client) runs as its own
//! madsim node and talks to the others only through [`rpc`], so a kill or a partition is real.
//! What is modelled, with the numbers, formats and state machines, is documented in `docs/`;
//! comments cite its sections by path (`docs/model/job.md#watermarks`).

#[cfg(not(madsim))]
compile_error!(
    "flinksim runs only inside madsim's simulator: build with `--cfg madsim` \
     (the workspace's .cargo/config.toml sets it; run cargo from the repository root)"
);

pub mod cell;
pub mod counter;
pub mod jobmanager;
pub mod kafka;
pub mod lifecycle;
pub mod lock;
pub mod plant;
pub mod playground;
pub mod protocol;
pub mod rpc;
pub mod storage;
pub mod taskmanager;
pub mod timer;
pub mod trace;
pub mod waiting_task;
