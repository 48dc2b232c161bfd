//! The data plane: network buffers of stream elements between subtasks
//! (docs/model/network.md#network-buffers). Records, watermarks and (later) barriers travel
//! in-band, in order, one message per buffer.

use serde::{Deserialize, Serialize};

use super::ids::JobId;
use super::job::Vertex;
use crate::protocol::click_event::{ClickEvent, ClickEventStatistics};

/// A buffer is sent when it holds this many bytes (Flink's 32 KiB memory segments).
pub const BUFFER_BYTES: usize = 32 * 1024;

/// A record on one of the job's edges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// Source → Timestamps/Watermarks: an event and the Kafka partition it came from.
    Sourced {
        /// The `input` partition it was read from.
        partition: u32,
        /// The event.
        event: ClickEvent,
    },
    /// Timestamps/Watermarks → Counter.
    Click(ClickEvent),
    /// Counter → Sink.
    Statistics(ClickEventStatistics),
}

impl Record {
    /// Bytes a [`Record::Click`] of a page `page_len` bytes long takes in a network buffer.
    #[inline]
    pub const fn click_size(page_len: usize) -> usize {
        4 + 8 + 2 + page_len
    }

    /// Bytes this record takes in a network buffer (length prefix plus Flink's binary layout).
    #[inline]
    pub fn serialized_size(&self) -> usize {
        match self {
            Record::Sourced { event, .. } => 4 + 4 + 8 + 2 + event.page.len(),
            Record::Click(event) => Record::click_size(event.page.len()),
            Record::Statistics(s) => 4 + 8 + 8 + 8 + 2 + s.page.len(),
        }
    }
}

/// One element of a stream, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StreamElement {
    /// A data record.
    Record(Record),
    /// Event time has reached this timestamp on the channel.
    Watermark(i64),
    /// The channel is idle (no events expected) or active again.
    WatermarkStatus(WatermarkStatus),
    /// The upstream subtask learnt which Kafka partitions it reads (flinksim: lets
    /// Timestamps/Watermarks keep one generator per partition,
    /// docs/model/job.md#event-time-and-watermarks).
    PartitionsAssigned(Vec<u32>),
    /// A checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(super::checkpoint::CheckpointBarrier),
}

impl StreamElement {
    /// Bytes the element takes in a buffer.
    #[inline]
    pub fn serialized_size(&self) -> usize {
        match self {
            StreamElement::Record(r) => r.serialized_size(),
            StreamElement::Watermark(_) => 4 + 8,
            StreamElement::WatermarkStatus(_) => 4 + 4,
            StreamElement::PartitionsAssigned(p) => 4 + 4 * p.len(),
            StreamElement::Barrier(_) => 4 + 8 + 8,
        }
    }
}

/// Whether a channel takes part in the min over watermarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatermarkStatus {
    /// Left out of the min.
    Idle,
    /// Part of the min again.
    Active,
}

/// A network buffer: elements in order, filled up to [`BUFFER_BYTES`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkBuffer {
    /// The elements, oldest first.
    pub elements: Vec<StreamElement>,
    /// Their serialized size.
    pub bytes: usize,
}

impl NetworkBuffer {
    /// Whether an element of `size` serialized bytes still fits.
    #[inline]
    pub fn has_room(&self, size: usize) -> bool {
        self.bytes + size <= BUFFER_BYTES
    }

    /// Appends an element of `size` serialized bytes.
    #[inline]
    pub fn push(&mut self, element: StreamElement, size: usize) {
        self.bytes += size;
        self.elements.push(element);
    }
}

/// Names one input channel: which consumer subtask, fed by which producer subtask, in which
/// execution graph of which job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId {
    /// The job.
    pub job_id: JobId,
    /// The execution graph's version (bumped on each restart).
    pub graph_version: u64,
    /// The consuming vertex.
    pub consumer: Vertex,
    /// The consuming subtask.
    pub consumer_subtask: u32,
    /// The producing subtask.
    pub producer_subtask: u32,
    /// The channel's index in the consumer's input gate (0 on a forward edge, the producing
    /// subtask on a hash edge).
    pub input_index: u32,
}

/// A producer pushes one buffer to a consumer on another TaskManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliverBuffer {
    /// The channel.
    pub channel: ChannelId,
    /// Sequence number on the channel, from 0: a resent buffer is recognised and dropped.
    pub sequence: u64,
    /// Buffers the sender holds for the channel behind this one (its backlog): the consumer
    /// asks for floating buffers by it (docs/model/network.md#credits-and-backpressure).
    pub backlog: u32,
    /// The buffer.
    pub buffer: NetworkBuffer,
}

/// The consumer's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliverResponse {
    /// Taken (or already taken before).
    Accepted,
    /// No such consumer here (not deployed yet, or gone): retry later or give up.
    UnknownChannel,
}
crate::request!(DeliverBuffer => DeliverResponse);
