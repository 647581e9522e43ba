//! Where a relayed upstream session is in its conversation, followed from the frames the relay
//! passes each way: how many ReadyForQuery the upstream still owes (one per Query or Sync
//! sent), whether extended-protocol messages were sent since the last Sync, and the last
//! transaction status. Only a session at rest — nothing owed, nothing half-sent, no message
//! half-read — may be reset and kept for the next sign-in; any other is closed.
//!
//! Queries Portcullis sends of its own (the creator group's role switch) are followed too:
//! their answers, up to and including their ReadyForQuery, are taken out of what the client
//! gets — but for notices, notifications and parameter changes, which are the session's.

use std::collections::VecDeque;

use bytes::BytesMut;

/// The conversation's state.
#[derive(Debug, Clone)]
pub struct Flow {
    /// ReadyForQuery messages owed for the Queries and Syncs sent, and those received.
    ready_sent: u64,
    ready_received: u64,
    /// Extended-protocol messages sent since the last Sync.
    unsynced: bool,
    /// The header of the upstream message being read (type and length), as far as read, and
    /// how much of it already went to the client.
    head: [u8; 5],
    head_len: usize,
    head_shown: usize,
    /// Bytes of the current upstream message's body not yet seen.
    left: usize,
    /// The current message is Portcullis's own answer (not for the client).
    hiding: bool,
    /// The current message is a ReadyForQuery whose status byte is next.
    status_next: bool,
    /// The last ReadyForQuery's transaction status: `I` idle, `T` in a transaction, `E` failed.
    status: u8,
    /// The ReadyForQuery ordinals (counted from 0) that end Portcullis's own queries.
    own: VecDeque<u64>,
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            ready_sent: 0,
            ready_received: 0,
            unsynced: false,
            head: [0; 5],
            head_len: 0,
            head_shown: 0,
            left: 0,
            hiding: false,
            status_next: false,
            status: b'I',
            own: VecDeque::new(),
        }
    }
}

fn frame_len(header: &[u8]) -> usize {
    usize::try_from(i32::from_be_bytes([
        header[1], header[2], header[3], header[4],
    ]))
    .unwrap_or(0)
}

impl Flow {
    /// Notes whole frontend frames sent to the upstream.
    pub fn sent(&mut self, frames: &[u8]) {
        let mut i = 0;
        while i + 5 <= frames.len() {
            match frames[i] {
                b'Q' => self.ready_sent += 1,
                b'S' => {
                    self.ready_sent += 1;
                    self.unsynced = false;
                }
                // Parse, Bind, Describe, Execute, Close, Flush.
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
                _ => {}
            }
            i += 1 + frame_len(&frames[i..]).max(4);
        }
    }

    /// Notes a Query of Portcullis's own sent to the upstream: its answers are not the client's.
    pub fn sent_own(&mut self, query: &[u8]) {
        self.own.push_back(self.ready_sent);
        self.sent(query);
    }

    /// Whether no extended-protocol batch is open (a Query sent now runs on its own).
    pub fn synced(&self) -> bool {
        !self.unsynced
    }

    /// Notes bytes received from the upstream (any split across reads) and gives back what
    /// the client gets of them: all of it, but for the answers to Portcullis's own queries.
    pub fn received(&mut self, bytes: BytesMut) -> BytesMut {
        if self.own.is_empty() && !self.hiding {
            // Nothing to take out (nothing of ours is owed): the bytes go as they are.
            self.walk(&bytes, None);
            return bytes;
        }
        let mut out = BytesMut::with_capacity(bytes.len());
        self.walk(&bytes, Some(&mut out));
        out
    }

    fn walk(&mut self, mut bytes: &[u8], mut out: Option<&mut BytesMut>) {
        while !bytes.is_empty() {
            if self.left > 0 {
                if self.status_next {
                    self.status = bytes[0];
                    self.status_next = false;
                }
                let n = self.left.min(bytes.len());
                if let Some(out) = out.as_deref_mut() {
                    if !self.hiding {
                        out.extend_from_slice(&bytes[..n]);
                    }
                }
                self.left -= n;
                if self.left == 0 {
                    self.hiding = false;
                }
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if self.head_len < 5 {
                if out.is_none() {
                    self.head_shown = self.head_len;
                }
                continue;
            }
            let shown = if out.is_none() { 5 } else { self.head_shown };
            // Answers to a query of ours, but for what is the session's (a notice, a
            // notification, a parameter change) and a message already begun to the client.
            self.hiding = self.own.front() == Some(&self.ready_received)
                && !matches!(self.head[0], b'N' | b'A' | b'S')
                && shown == 0;
            if let Some(out) = out.as_deref_mut() {
                if !self.hiding {
                    out.extend_from_slice(&self.head[shown..]);
                }
            }
            self.head_len = 0;
            self.head_shown = 0;
            self.left = frame_len(&self.head).saturating_sub(4);
            if self.head[0] == b'Z' {
                if self.own.front() == Some(&self.ready_received) {
                    self.own.pop_front();
                }
                self.ready_received += 1;
                self.status_next = self.left > 0;
            }
            if self.left == 0 {
                self.hiding = false;
            }
        }
    }

    /// The last ReadyForQuery's transaction status.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// At rest — nothing owed, nothing half-sent or half-read — with this transaction status.
    pub fn at_rest(&self) -> Option<u8> {
        (self.ready_sent == self.ready_received
            && !self.unsynced
            && self.head_len == 0
            && self.left == 0)
            .then_some(self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn a_session_is_at_rest_only_when_every_answer_arrived() {
        let mut flow = Flow::default();
        assert_eq!(flow.at_rest(), Some(b'I'));
        flow.sent(&frame(b'Q', b"BEGIN\0"));
        assert_eq!(flow.at_rest(), None);
        let mut answer = frame(b'C', b"BEGIN\0");
        answer.extend(frame(b'Z', b"T"));
        // Split anywhere, even inside a header.
        for cut in 0..answer.len() {
            let mut f = flow.clone();
            f.received(BytesMut::from(&answer[..cut][..]));
            assert_eq!(f.at_rest(), None, "cut at {cut}");
            f.received(BytesMut::from(&answer[cut..][..]));
            assert_eq!(f.at_rest(), Some(b'T'), "cut at {cut}");
        }
        // Extended protocol without a Sync is not at rest, even with nothing owed.
        let mut flow = Flow::default();
        flow.sent(
            &[
                frame(b'P', b"\0SELECT 1\0\0\0"),
                frame(b'B', b"\0\0\0\0\0\0\0\0"),
            ]
            .concat(),
        );
        assert_eq!(flow.at_rest(), None);
        flow.sent(&frame(b'S', b""));
        flow.received(BytesMut::from(&frame(b'1', b"")[..]));
        assert_eq!(flow.at_rest(), None);
        flow.received(BytesMut::from(&frame(b'Z', b"I")[..]));
        assert_eq!(flow.at_rest(), Some(b'I'));
        // A COPY the client left half-way: the Query's ReadyForQuery never came.
        let mut flow = Flow::default();
        flow.sent(&frame(b'Q', b"COPY t FROM STDIN\0"));
        flow.received(BytesMut::from(&frame(b'G', b"\0\0\0")[..]));
        flow.sent(&frame(b'd', b"1\n"));
        assert_eq!(flow.at_rest(), None);
    }

    #[test]
    fn answers_to_portcullis_queries_never_reach_the_client() {
        let mut flow = Flow::default();
        flow.sent_own(&frame(b'Q', b"SELECT set_config(...)\0"));
        flow.sent(&frame(b'Q', b"CREATE TABLE t ()\0"));
        flow.sent_own(&frame(b'Q', b"SELECT set_config(...)\0"));
        let ours = [
            frame(b'T', b"\0\x01set_config\0"),
            frame(b'D', b"\0\x01\0\0\0\x01x"),
            frame(b'C', b"SELECT 1\0"),
            frame(b'Z', b"I"),
        ]
        .concat();
        let theirs = [
            frame(b'N', b"notice\0"),
            frame(b'C', b"CREATE TABLE\0"),
            frame(b'Z', b"I"),
        ]
        .concat();
        // A notice in the middle of our answers is the session's: it goes through.
        let t = frame(b'T', b"\0\x01set_config\0").len();
        let mut upstream = ours[..t].to_vec();
        upstream.extend(frame(b'N', b"late\0"));
        upstream.extend(&ours[t..]);
        upstream.extend(&theirs);
        upstream.extend(&ours);
        let mut want = frame(b'N', b"late\0");
        want.extend(&theirs);
        // Split anywhere: the client gets exactly its answers.
        for cut in 0..upstream.len() {
            let mut f = flow.clone();
            let mut got = f.received(BytesMut::from(&upstream[..cut])).to_vec();
            got.extend(f.received(BytesMut::from(&upstream[cut..])));
            assert_eq!(got, want, "cut at {cut}");
            assert_eq!(f.at_rest(), Some(b'I'));
        }
    }
}
