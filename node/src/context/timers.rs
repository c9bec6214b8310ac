//! The consensus engine's timeouts and the checkpoint resend tick, as
//! messages the actor sends itself after a delay (on tokio's clock, which
//! tests can pause). A cancelled or superseded timeout still arrives, and
//! is recognised by its sequence number and ignored.

use std::collections::HashMap;
use std::time::Duration;

use conclave_consensus::mal::Timeout;
use tokio::sync::mpsc;

use super::ingress::Message;

pub(super) struct Timers {
    inbox: mpsc::Sender<Message>,
    /// The timeouts running, with the sequence number of their message.
    armed: HashMap<Timeout, u64>,
    seq: u64,
    /// A checkpoint resend tick is scheduled.
    tick_armed: bool,
}

impl Timers {
    pub(super) fn new(inbox: mpsc::Sender<Message>) -> Self {
        Self {
            inbox,
            armed: HashMap::new(),
            seq: 0,
            tick_armed: false,
        }
    }

    /// Starts `timeout`, replacing a running one of the same kind.
    pub(super) fn schedule(&mut self, timeout: Timeout, after: Duration) {
        self.seq += 1;
        let seq = self.seq;
        self.armed.insert(timeout, seq);
        self.after(after, Message::TimeoutElapsed(timeout, seq));
    }

    pub(super) fn cancel(&mut self, timeout: &Timeout) {
        self.armed.remove(timeout);
    }

    pub(super) fn cancel_all(&mut self) {
        self.armed.clear();
    }

    /// Whether an elapsed timeout's message is the running one (it stops).
    pub(super) fn fired(&mut self, timeout: &Timeout, seq: u64) -> bool {
        if self.armed.get(timeout) != Some(&seq) {
            return false;
        }
        self.armed.remove(timeout);
        true
    }

    /// Schedules one checkpoint resend tick unless one is scheduled.
    pub(super) fn arm_tick(&mut self, after: Duration) {
        if self.tick_armed {
            return;
        }
        self.tick_armed = true;
        self.after(after, Message::CheckpointTick);
    }

    /// The tick arrived.
    pub(super) fn ticked(&mut self) {
        self.tick_armed = false;
    }

    /// Sends `msg` to the actor after `after`.
    pub(super) fn after(&self, after: Duration, msg: Message) {
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = inbox.send(msg).await;
        });
    }
}
