//! What nodes say to each other, and the shared vocabulary they say it in: ids, the job's
//! arguments and graph, key groups. One module per protocol; no I/O here.

pub mod ids;
pub mod job;
pub mod key_group;
