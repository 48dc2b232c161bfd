//! The playground's own application pieces: the ClickEvent record formats
//! (docs/model/job.md#record-formats), the `clickevent-generator` node
//! (docs/model/job.md#the-generator) and the `client` node that submits the job.

pub mod click_event;
pub mod curl;
pub mod client;
pub mod generator;
