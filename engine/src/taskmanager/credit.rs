//! Credit-based flow control on the receiving side of an input gate
//! (docs/model/network.md#credits-and-backpressure), as Flink's: each input channel owns 2
//! exclusive buffers, and the gate keeps a pool of 8 floating buffers that it lends to channels
//! whose sender announced a backlog. A channel's credit (what its sender may send without
//! waiting) is its unused buffers: exclusive ones free plus floating ones granted and not yet
//! used. No I/O: the gate registry and the input gate drive it.

use std::collections::VecDeque;

/// Buffers each input channel owns (Flink's `taskmanager.network.memory.buffers-per-channel`).
pub const EXCLUSIVE_BUFFERS_PER_CHANNEL: usize = 2;
/// Buffers an input gate lends to its channels (Flink's
/// `taskmanager.network.memory.floating-buffers-per-gate`).
pub const FLOATING_BUFFERS_PER_GATE: usize = 8;

/// Which kind of buffer a received network buffer occupies until the task has read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// One of the channel's own.
    Exclusive,
    /// One lent by the gate's pool; it goes back to the pool once read.
    Floating,
}

/// One input channel's buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChannelBuffers {
    /// Exclusive buffers not holding data.
    exclusive_free: usize,
    /// Floating buffers granted to the channel and not holding data yet.
    floating_free: usize,
    /// Floating buffers holding data the task has not read yet.
    floating_used: usize,
    /// Unused buffers the channel asks for: the last backlog its sender announced plus its
    /// exclusive buffers (Flink's `backlog + initialCredit`), 0 before any backlog.
    required: usize,
}

impl ChannelBuffers {
    fn unused(&self) -> usize {
        self.exclusive_free + self.floating_free
    }
}

/// How the buffers of a gate are used now, for `inPoolUsage`, `inputExclusiveBuffersUsage` and
/// `inputFloatingBuffersUsage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputBufferUsage {
    /// Exclusive buffers holding data.
    pub exclusive_used: usize,
    /// Exclusive buffers in all (2 per channel).
    pub exclusive_total: usize,
    /// Floating buffers lent out to channels (holding data or granted as credit): the pool's
    /// buffers in use, as Flink counts them.
    pub floating_used: usize,
    /// Floating buffers in all.
    pub floating_total: usize,
}

/// The credits of one input gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputCredits {
    channels: Vec<ChannelBuffers>,
    exclusive_per_channel: usize,
    /// Floating buffers in the pool, not lent to any channel.
    pool: usize,
    floating_total: usize,
    /// Channels waiting for floating buffers, in the order they asked.
    waiting: VecDeque<usize>,
}

impl InputCredits {
    /// A gate of `channels` channels with Flink's default buffers.
    pub fn new(channels: usize) -> InputCredits {
        InputCredits::with_buffers(channels, EXCLUSIVE_BUFFERS_PER_CHANNEL, FLOATING_BUFFERS_PER_GATE)
    }

    /// A gate of `channels` channels, `exclusive` buffers each, and `floating` shared ones.
    pub fn with_buffers(channels: usize, exclusive: usize, floating: usize) -> InputCredits {
        let channel = ChannelBuffers { exclusive_free: exclusive, ..ChannelBuffers::default() };
        InputCredits {
            channels: vec![channel; channels],
            exclusive_per_channel: exclusive,
            pool: floating,
            floating_total: floating,
            waiting: VecDeque::new(),
        }
    }

    /// The credit `channel` has announced to its sender: buffers it may send without waiting.
    pub fn credit(&self, channel: usize) -> usize {
        self.channels[channel].unused()
    }

    /// Floating buffers in the pool, lent to no channel.
    pub fn pool(&self) -> usize {
        self.pool
    }

    /// A buffer arrives on `channel`: it takes one of the channel's unused buffers (a floating
    /// one first, as Flink does), or `None` when the channel has no credit and the sender must
    /// wait. `backlog` (buffers the sender holds behind this one) travels with it: a backlog
    /// makes the channel ask the pool for floating buffers.
    pub fn receive(&mut self, channel: usize, backlog: usize) -> Option<BufferKind> {
        let buffers = &mut self.channels[channel];
        let kind = if buffers.floating_free > 0 {
            buffers.floating_free -= 1;
            buffers.floating_used += 1;
            BufferKind::Floating
        } else if buffers.exclusive_free > 0 {
            buffers.exclusive_free -= 1;
            BufferKind::Exclusive
        } else {
            return None;
        };
        if backlog > 0 {
            self.announce_backlog(channel, backlog);
        }
        Some(kind)
    }

    /// The sender of `channel` holds `backlog` buffers: the channel asks for floating buffers
    /// until it has `backlog` + its exclusive count unused, and waits in line for the rest.
    pub fn announce_backlog(&mut self, channel: usize, backlog: usize) {
        self.channels[channel].required = backlog + self.exclusive_per_channel;
        self.grant(channel);
        if self.channels[channel].unused() < self.channels[channel].required && !self.waiting.contains(&channel) {
            self.waiting.push_back(channel);
        }
    }

    /// The task has read a buffer of `channel`: an exclusive one is the channel's again (and a
    /// floating one it no longer needs goes back to the pool); a floating one goes back to the
    /// pool, which lends it to the first channel waiting.
    pub fn release(&mut self, channel: usize, kind: BufferKind) {
        let buffers = &mut self.channels[channel];
        match kind {
            BufferKind::Exclusive => {
                buffers.exclusive_free += 1;
                if buffers.floating_free > 0 && buffers.unused() > buffers.required {
                    buffers.floating_free -= 1;
                    self.pool += 1;
                }
            }
            BufferKind::Floating => {
                buffers.floating_used -= 1;
                self.pool += 1;
            }
        }
        self.serve_waiting();
    }

    /// How the gate's buffers are used now.
    pub fn usage(&self) -> InputBufferUsage {
        let exclusive_total = self.channels.len() * self.exclusive_per_channel;
        InputBufferUsage {
            exclusive_used: exclusive_total - self.channels.iter().map(|c| c.exclusive_free).sum::<usize>(),
            exclusive_total,
            floating_used: self.floating_total - self.pool,
            floating_total: self.floating_total,
        }
    }

    /// Lends `channel` floating buffers from the pool until it has what it asks for.
    fn grant(&mut self, channel: usize) {
        let buffers = &mut self.channels[channel];
        while self.pool > 0 && buffers.unused() < buffers.required {
            self.pool -= 1;
            buffers.floating_free += 1;
        }
    }

    /// Lends buffers back in the pool to the channels waiting, first come first served.
    fn serve_waiting(&mut self) {
        while self.pool > 0 {
            let Some(&channel) = self.waiting.front() else { return };
            self.grant(channel);
            let buffers = &self.channels[channel];
            if buffers.unused() >= buffers.required {
                self.waiting.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_credit_alone_is_two_buffers_and_a_sender_without_credit_waits() {
        let mut gate = InputCredits::new(3);
        assert_eq!(gate.credit(0), 2);
        // No backlog announced: the channel gets no floating buffers.
        assert_eq!(gate.receive(0, 0), Some(BufferKind::Exclusive));
        assert_eq!(gate.receive(0, 0), Some(BufferKind::Exclusive));
        assert_eq!(gate.credit(0), 0);
        assert_eq!(gate.receive(0, 0), None, "no credit left: the sender waits");
        assert_eq!(gate.pool(), 8, "the floating buffers stay in the pool");
        // Other channels keep their own credit.
        assert_eq!(gate.credit(1), 2);
        // Once the task reads a buffer, its exclusive buffer is credit again.
        gate.release(0, BufferKind::Exclusive);
        assert_eq!(gate.credit(0), 1);
        assert_eq!(gate.receive(0, 0), Some(BufferKind::Exclusive));
    }

    #[test]
    fn a_channel_whose_sender_announces_a_backlog_gets_floating_buffers() {
        let mut gate = InputCredits::new(2);
        // Three buffers wait behind this one: the channel asks for 3 + 2 unused buffers.
        assert_eq!(gate.receive(0, 3), Some(BufferKind::Exclusive));
        assert_eq!(gate.credit(0), 5);
        assert_eq!(gate.pool(), 4);
        // Floating buffers are used first.
        assert_eq!(gate.receive(0, 2), Some(BufferKind::Floating));
        assert_eq!(gate.usage(), InputBufferUsage { exclusive_used: 1, exclusive_total: 4, floating_used: 4, floating_total: 8 });
        // Asking for more than the pool has lends what it has.
        assert_eq!(gate.receive(1, 20), Some(BufferKind::Exclusive));
        assert_eq!(gate.pool(), 0);
        assert_eq!(gate.credit(1), 1 + 4);
    }

    #[test]
    fn a_read_floating_buffer_returns_to_the_pool_and_goes_to_another_channel() {
        let mut gate = InputCredits::new(2);
        // Channel 0's sender holds 6 buffers: it gets 7 of the 8 floating ones.
        gate.receive(0, 6);
        assert_eq!((gate.credit(0), gate.pool()), (8, 1));
        // Channel 1's sender holds 4: it gets the last one and waits in line for the rest.
        gate.receive(1, 4);
        assert_eq!((gate.credit(1), gate.pool()), (2, 0));
        // Channel 0 fills its floating buffers.
        for _ in 0..7 {
            assert_eq!(gate.receive(0, 0), Some(BufferKind::Floating));
        }
        // The task reads one: it goes back to the pool and on to channel 1.
        gate.release(0, BufferKind::Floating);
        assert_eq!((gate.credit(1), gate.pool()), (3, 0));
        for _ in 0..3 {
            gate.release(0, BufferKind::Floating);
        }
        assert_eq!(gate.credit(1), 6, "channel 1 asked for 4 + 2 unused buffers");
        // It has what it asked for: the next one stays in the pool.
        gate.release(0, BufferKind::Floating);
        assert_eq!(gate.pool(), 1);
    }

    #[test]
    fn an_exclusive_buffer_back_gives_up_a_floating_one_the_channel_no_longer_needs() {
        let mut gate = InputCredits::new(1);
        gate.receive(0, 1); // asks for 1 + 2 unused: two floating buffers
        assert_eq!((gate.credit(0), gate.pool()), (3, 6));
        gate.release(0, BufferKind::Exclusive); // 4 unused, 3 asked for: one goes back
        assert_eq!((gate.credit(0), gate.pool()), (3, 7));
        assert_eq!(gate.receive(0, 0), Some(BufferKind::Floating));
        gate.release(0, BufferKind::Floating);
        assert_eq!((gate.credit(0), gate.pool()), (2, 8));
    }
}
