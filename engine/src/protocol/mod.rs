//! What nodes say to each other, and the shared vocabulary they say it in: ids, the job's
//! arguments and graph, the records' formats, key groups, states. One module per protocol; no I/O here.

pub mod checkpoint;
pub mod click_event;
pub mod cluster;
pub mod data;
pub mod deployment;
pub mod ids;
pub mod job;
pub mod kafka;
pub mod key_group;
pub mod metrics;
pub mod rest;
pub mod rest_api;
pub mod snapshot;
pub mod states;
pub mod storage;
