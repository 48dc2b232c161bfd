//! The playground's own application pieces: the `clickevent-generator` node
//! (docs/model/job.md#the-generator) and the `client` node that submits the job. The records'
//! formats they write and read are [`protocol::click_event`](crate::protocol::click_event).

pub mod curl;
pub mod client;
pub mod generator;
