//! The playground's own application pieces: the ClickEvent record formats (spec §5), the
//! `clickevent-generator` node (spec §4) and the `client` node that submits the job.

pub mod click_event;
pub mod client;
pub mod generator;
