//! Where a relayed upstream session is in its conversation, followed from the frames the relay
//! passes each way: how many ReadyForQuery the upstream still owes (one per Query or Sync
//! sent), whether extended-protocol messages were sent since the last Sync, and the last
//! transaction status. Only a session at rest — nothing owed, nothing half-sent, no message
//! half-read — may be reset and kept for the next sign-in; any other is closed.

/// The conversation's state.
#[derive(Debug, Clone)]
pub struct Flow {
    /// ReadyForQuery messages the upstream still owes.
    owed: u64,
    /// Extended-protocol messages sent since the last Sync.
    unsynced: bool,
    /// The header of the upstream message being read (type and length), as far as read.
    head: [u8; 5],
    head_len: usize,
    /// Bytes of the current upstream message's body not yet seen.
    left: usize,
    /// The current message is a ReadyForQuery whose status byte is next.
    status_next: bool,
    /// The last ReadyForQuery's transaction status: `I` idle, `T` in a transaction, `E` failed.
    status: u8,
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            owed: 0,
            unsynced: false,
            head: [0; 5],
            head_len: 0,
            left: 0,
            status_next: false,
            status: b'I',
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
                b'Q' => self.owed += 1,
                b'S' => {
                    self.owed += 1;
                    self.unsynced = false;
                }
                // Parse, Bind, Describe, Execute, Close, Flush.
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
                _ => {}
            }
            i += 1 + frame_len(&frames[i..]).max(4);
        }
    }

    /// Notes bytes received from the upstream (any split across reads).
    pub fn received(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                if self.status_next {
                    self.status = bytes[0];
                    self.status_next = false;
                }
                let n = self.left.min(bytes.len());
                self.left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if self.head_len == 5 {
                self.head_len = 0;
                self.left = frame_len(&self.head).saturating_sub(4);
                if self.head[0] == b'Z' {
                    self.owed = self.owed.saturating_sub(1);
                    self.status_next = self.left > 0;
                }
            }
        }
    }

    /// The last ReadyForQuery's transaction status.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// At rest — nothing owed, nothing half-sent or half-read — with this transaction status.
    pub fn at_rest(&self) -> Option<u8> {
        (self.owed == 0 && !self.unsynced && self.head_len == 0 && self.left == 0)
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
            f.received(&answer[..cut]);
            assert_eq!(f.at_rest(), None, "cut at {cut}");
            f.received(&answer[cut..]);
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
        flow.received(&frame(b'1', b""));
        assert_eq!(flow.at_rest(), None);
        flow.received(&frame(b'Z', b"I"));
        assert_eq!(flow.at_rest(), Some(b'I'));
        // A COPY the client left half-way: the Query's ReadyForQuery never came.
        let mut flow = Flow::default();
        flow.sent(&frame(b'Q', b"COPY t FROM STDIN\0"));
        flow.received(&frame(b'G', b"\0\0\0"));
        flow.sent(&frame(b'd', b"1\n"));
        assert_eq!(flow.at_rest(), None);
    }
}
