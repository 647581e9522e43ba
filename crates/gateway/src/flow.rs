//! Where a relayed upstream session is in its conversation, followed from the frames the relay
//! passes each way: what the upstream still owes a ReadyForQuery for (each Query and Sync sent,
//! in order), whether extended-protocol messages were sent since the last Sync, and the last
//! transaction status. Only a session at rest — nothing owed, nothing half-sent, no message
//! half-read, no COPY open — may be reset and kept for the next sign-in; any other is closed.
//!
//! COPY FROM STDIN: PostgreSQL ignores a Sync that reaches it in copy-in mode — but answers
//! one that reaches it after an error ended copy-in mode, and the relay cannot tell which
//! happened. So a COPY is followed exactly only when no Sync can be caught in it: begun by a
//! simple Query with no Sync sent after it. A Sync owed when copy-in begins (the extended
//! protocol's Bind, Execute, Sync, as tokio-postgres sends it) or sent before the client ends
//! the COPY leaves the flow **in doubt**: the session is never kept, and no query of
//! Portcullis's own is sent on it again.
//!
//! Queries Portcullis sends of its own (the creator group's role switch) are followed too:
//! their answers, up to and including their ReadyForQuery, are taken out of what the client
//! gets — but for notices, notifications and parameter changes, which are the session's.

use std::collections::VecDeque;

use bytes::BytesMut;

/// What was sent that matters for what the upstream answers, in the order sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// A simple Query or a FunctionCall (answered up to a ReadyForQuery); `own` if Portcullis
    /// sent it.
    Query { own: bool },
    /// A Sync (answered by a ReadyForQuery, unless PostgreSQL was in copy-in mode).
    Sync,
}

/// The conversation's state.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Sent and not yet answered.
    pending: VecDeque<Sent>,
    /// How many of `pending` are queries of Portcullis's own.
    own_pending: usize,
    /// PostgreSQL began taking a COPY's data and the client has not ended it since.
    copying: bool,
    /// The count of what is owed is lost (see the module's doc).
    doubt: bool,
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
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            pending: VecDeque::new(),
            own_pending: 0,
            copying: false,
            doubt: false,
            unsynced: false,
            head: [0; 5],
            head_len: 0,
            head_shown: 0,
            left: 0,
            hiding: false,
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
        self.note_sent(frames, false);
    }

    /// Notes a Query of Portcullis's own sent to the upstream: its answers are not the client's.
    pub fn sent_own(&mut self, query: &[u8]) {
        self.note_sent(query, true);
    }

    fn note_sent(&mut self, frames: &[u8], own: bool) {
        let mut i = 0;
        while i + 5 <= frames.len() {
            match frames[i] {
                // Query, FunctionCall: each answered up to a ReadyForQuery — unless an error
                // in an open extended batch has PostgreSQL discard it until the next Sync.
                b'Q' | b'F' => {
                    if self.unsynced {
                        self.doubt = true;
                    }
                    self.pending.push_back(Sent::Query { own });
                    self.own_pending += usize::from(own);
                }
                b'S' if self.copying => self.doubt = true,
                b'S' => {
                    self.pending.push_back(Sent::Sync);
                    self.unsynced = false;
                }
                // CopyDone, CopyFail.
                b'c' | b'f' => self.copying = false,
                // Parse, Bind, Describe, Execute, Close, Flush.
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
                _ => {}
            }
            i += 1 + frame_len(&frames[i..]).max(4);
        }
    }

    /// Whether no extended-protocol batch is open (a Query sent now runs on its own) and a
    /// query of Portcullis's own may be sent ([`Self::may_send_own`]).
    pub fn synced(&self) -> bool {
        !self.unsynced && self.may_send_own()
    }

    /// Whether a query of Portcullis's own may be sent now: what the upstream owes is known
    /// and no COPY is taking data (a Query then would be the COPY's error, not answered).
    pub fn may_send_own(&self) -> bool {
        !self.doubt && !self.copying
    }

    /// Notes bytes received from the upstream (any split across reads) and gives back what
    /// the client gets of them: all of it, but for the answers to Portcullis's own queries.
    pub fn received(&mut self, bytes: BytesMut) -> BytesMut {
        if self.own_pending == 0 && !self.hiding && self.head_shown == self.head_len {
            // Nothing to take out (nothing of ours is owed, no header bytes held back): the
            // bytes go as they are.
            self.walk(&bytes, None);
            return bytes;
        }
        let mut out = BytesMut::with_capacity(bytes.len());
        self.walk(&bytes, Some(&mut out));
        out
    }

    /// What the next ReadyForQuery answers.
    fn owed(&self) -> Option<Sent> {
        self.pending.front().copied()
    }

    /// A ReadyForQuery came: what it answers is no longer owed.
    fn answered(&mut self) {
        match self.pending.pop_front() {
            Some(Sent::Query { own }) => self.own_pending -= usize::from(own),
            Some(Sent::Sync) => {}
            // Nothing sent asked for it.
            None => self.doubt = true,
        }
    }

    /// A CopyInResponse (or CopyBothResponse) came: PostgreSQL is in copy-in mode. Followed
    /// exactly only if no Sync is owed now (see the module's doc).
    fn copy_began(&mut self) {
        self.copying = true;
        if self.pending.contains(&Sent::Sync) {
            self.doubt = true;
        }
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
            self.hiding = self.owed() == Some(Sent::Query { own: true })
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
            match self.head[0] {
                b'Z' => {
                    self.answered();
                    self.status_next = self.left > 0;
                }
                b'G' | b'W' => self.copy_began(),
                _ => {}
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

    /// At rest — nothing owed, nothing half-sent or half-read, no COPY open, nothing in
    /// doubt — with this transaction status.
    pub fn at_rest(&self) -> Option<u8> {
        (self.pending.is_empty()
            && !self.copying
            && !self.doubt
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

    fn receive(flow: &mut Flow, frames: &[Vec<u8>]) -> Vec<u8> {
        flow.received(BytesMut::from(&frames.concat()[..])).to_vec()
    }

    /// `COPY t FROM STDIN` by simple Query, its data sent once the CopyInResponse came, and
    /// its end.
    fn simple_copy(flow: &mut Flow) {
        flow.sent(&frame(b'Q', b"COPY t FROM STDIN\0"));
        receive(flow, &[frame(b'G', b"\0\0\0")]);
        assert_eq!(flow.at_rest(), None, "in the middle of the COPY");
        assert!(
            !flow.may_send_own(),
            "a query now would be the COPY's error"
        );
        flow.sent(&[frame(b'd', b"1\n"), frame(b'c', b"")].concat());
        receive(flow, &[frame(b'C', b"COPY 1\0"), frame(b'Z', b"I")]);
    }

    #[test]
    fn a_copy_by_simple_query_is_followed_exactly() {
        let mut flow = Flow::default();
        simple_copy(&mut flow);
        assert_eq!(flow.at_rest(), Some(b'I'));
        // Our queries after it are still told from the client's.
        flow.sent_own(&frame(b'Q', b"SELECT set_config(...)\0"));
        flow.sent(&frame(b'Q', b"CREATE TABLE t ()\0"));
        let theirs = [frame(b'C', b"CREATE TABLE\0"), frame(b'Z', b"I")];
        let got = receive(
            &mut flow,
            &[
                frame(b'C', b"SELECT 1\0"),
                frame(b'Z', b"I"),
                theirs[0].clone(),
                theirs[1].clone(),
            ],
        );
        assert_eq!(got, theirs.concat());
        assert_eq!(flow.at_rest(), Some(b'I'));
        // Two COPYs in one Query, each ended by the client in turn.
        let mut flow = Flow::default();
        flow.sent(&frame(b'Q', b"COPY t FROM STDIN; COPY t FROM STDIN\0"));
        receive(&mut flow, &[frame(b'G', b"\0\0\0")]);
        flow.sent(&frame(b'c', b""));
        receive(
            &mut flow,
            &[frame(b'C', b"COPY 0\0"), frame(b'G', b"\0\0\0")],
        );
        assert_eq!(flow.at_rest(), None, "the second COPY is open");
        flow.sent(&frame(b'c', b""));
        receive(&mut flow, &[frame(b'C', b"COPY 0\0"), frame(b'Z', b"I")]);
        assert_eq!(flow.at_rest(), Some(b'I'));
        // A COPY that fails on its data: PostgreSQL answers the Query at once and drops the
        // rest of the data; the session is at rest once the client has ended the COPY.
        let mut flow = Flow::default();
        flow.sent(&frame(b'Q', b"COPY t FROM STDIN\0"));
        receive(&mut flow, &[frame(b'G', b"\0\0\0")]);
        flow.sent(&frame(b'd', b"x\n"));
        receive(&mut flow, &[frame(b'E', b"SERROR\0\0"), frame(b'Z', b"I")]);
        assert_eq!(flow.at_rest(), None, "the client has not ended the COPY");
        flow.sent(&frame(b'c', b""));
        assert_eq!(flow.at_rest(), Some(b'I'));
    }

    #[test]
    fn a_sync_that_may_be_caught_in_a_copy_leaves_the_session_in_doubt() {
        // tokio-postgres's copy_in: Bind, Execute, Sync, then (after the CopyInResponse) the
        // data, CopyDone, Sync. PostgreSQL answers the first Sync only if an error ended
        // copy-in mode before it was read.
        let batch = [frame(b'B', b""), frame(b'E', b""), frame(b'S', b"")].concat();
        let end = [frame(b'c', b""), frame(b'S', b"")].concat();
        let mut flow = Flow::default();
        flow.sent(&batch);
        receive(&mut flow, &[frame(b'2', b""), frame(b'G', b"\0\0\0")]);
        flow.sent(&end);
        receive(&mut flow, &[frame(b'C', b"COPY 0\0"), frame(b'Z', b"I")]);
        assert_eq!(flow.at_rest(), None);
        assert!(!flow.may_send_own() && !flow.synced());
        // The same COPY with no Sync before its end is followed exactly.
        let mut flow = Flow::default();
        flow.sent(&[frame(b'B', b""), frame(b'E', b""), frame(b'H', b"")].concat());
        receive(&mut flow, &[frame(b'2', b""), frame(b'G', b"\0\0\0")]);
        flow.sent(&end);
        receive(&mut flow, &[frame(b'C', b"COPY 0\0"), frame(b'Z', b"I")]);
        assert_eq!(flow.at_rest(), Some(b'I'));
        // Pipelined ahead of the CopyInResponse (a review's attacks): Syncs, a CopyDone and
        // queries behind a simple-Query COPY, or behind an Execute.
        for sent in [
            [
                frame(b'Q', b"COPY t FROM STDIN\0"),
                frame(b'd', b"x\n"),
                frame(b'S', b""),
                frame(b'S', b""),
                frame(b'c', b""),
                frame(b'Q', b"SELECT 1\0"),
            ]
            .concat(),
            [
                frame(b'B', b""),
                frame(b'E', b""),
                frame(b'c', b""),
                frame(b'S', b""),
                frame(b'S', b""),
                frame(b'Q', b"SELECT 1\0"),
            ]
            .concat(),
        ] {
            let mut flow = Flow::default();
            flow.sent(&sent);
            receive(&mut flow, &[frame(b'G', b"\0\0\0")]);
            assert!(!flow.may_send_own());
            receive(
                &mut flow,
                &[
                    frame(b'E', b"SERROR\0\0"),
                    frame(b'Z', b"I"),
                    frame(b'Z', b"I"),
                    frame(b'Z', b"I"),
                ],
            );
            assert_eq!(flow.at_rest(), None, "{sent:?}");
        }
    }

    #[test]
    fn a_sync_in_the_middle_of_a_copys_data_leaves_the_session_in_doubt() {
        let mut flow = Flow::default();
        flow.sent(&frame(b'Q', b"COPY t FROM STDIN\0"));
        flow.received(BytesMut::from(&frame(b'G', b"\0\0\0")[..]));
        assert!(
            !flow.may_send_own(),
            "a query now would be the COPY's error"
        );
        flow.sent(&[frame(b'd', b"1\n"), frame(b'S', b""), frame(b'c', b"")].concat());
        flow.received(BytesMut::from(
            &[frame(b'C', b"COPY 1\0"), frame(b'Z', b"I")].concat()[..],
        ));
        assert_eq!(flow.at_rest(), None);
        assert!(!flow.may_send_own());
        // A ReadyForQuery that nothing asked for does the same.
        let mut flow = Flow::default();
        flow.received(BytesMut::from(&frame(b'Z', b"I")[..]));
        assert_eq!(flow.at_rest(), None);
    }

    #[test]
    fn function_calls_are_owed_queries_in_an_open_batch_doubt_and_held_bytes_reach_the_client() {
        // A FunctionCall is owed a ReadyForQuery like a Query.
        let mut flow = Flow::default();
        flow.sent(&[frame(b'F', b"\0\0\0\0"), frame(b'Q', b"SELECT 1\0")].concat());
        receive(
            &mut flow,
            &[frame(b'V', b"\xff\xff\xff\xff"), frame(b'Z', b"I")],
        );
        assert_eq!(flow.at_rest(), None, "the Query's answer is still owed");
        receive(&mut flow, &[frame(b'C', b"SELECT 1\0"), frame(b'Z', b"I")]);
        assert_eq!(flow.at_rest(), Some(b'I'));
        // A Query inside an open extended batch may be discarded by PostgreSQL (an error in
        // the batch): in doubt.
        let mut flow = Flow::default();
        flow.sent(
            &[
                frame(b'P', b"\0SELEC 1\0\0\0"),
                frame(b'Q', b"SELECT 1\0"),
                frame(b'S', b""),
            ]
            .concat(),
        );
        assert!(!flow.synced());
        receive(&mut flow, &[frame(b'E', b"SERROR\0\0"), frame(b'Z', b"I")]);
        assert_eq!(flow.at_rest(), None);
        // Header bytes held back at the end of our answers reach the client with the rest.
        let mut flow = Flow::default();
        flow.sent_own(&frame(b'Q', b"SELECT set_config(...)\0"));
        flow.sent(&frame(b'Q', b"SELECT 2\0"));
        let ours = [frame(b'C', b"SELECT 1\0"), frame(b'Z', b"I")].concat();
        let theirs = [frame(b'C', b"SELECT 1\0"), frame(b'Z', b"I")].concat();
        let upstream = [ours.clone(), theirs.clone()].concat();
        for cut in ours.len() + 1..ours.len() + 5 {
            let mut f = flow.clone();
            let mut got = f.received(BytesMut::from(&upstream[..cut])).to_vec();
            got.extend(f.received(BytesMut::from(&upstream[cut..])));
            assert_eq!(got, theirs, "cut at {cut}");
        }
    }
}
