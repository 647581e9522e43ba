//! Where a relayed upstream session is in its conversation, followed from the frames the relay
//! passes each way: what the upstream still owes a ReadyForQuery for (each Query and Sync sent,
//! in order), whether extended-protocol messages were sent since the last Sync, and the last
//! transaction status. Only a session at rest — nothing owed, nothing half-sent, no message
//! half-read, no COPY open — may be reset and kept for the next sign-in; any other is closed.
//!
//! COPY FROM STDIN: PostgreSQL ignores a Sync that reaches it in copy-in mode, so such a Sync
//! is owed nothing. A client of the extended protocol sends Bind, Execute, Sync before it learns
//! (CopyInResponse) that the Execute began a COPY: when that answer comes, the Syncs sent after
//! the COPY began and before the client's CopyDone or CopyFail are taken back. A Sync sent in
//! the middle of the data, before the COPY's end, leaves it unknowable whether PostgreSQL will
//! answer it (an error may have ended copy-in mode first): the flow is then in doubt, the
//! session is never kept, and no query of Portcullis's own is sent on it.
//!
//! Queries Portcullis sends of its own (the creator group's role switch) are followed too:
//! their answers, up to and including their ReadyForQuery, are taken out of what the client
//! gets — but for notices, notifications and parameter changes, which are the session's.

use std::collections::VecDeque;

use bytes::BytesMut;

/// What was sent that matters for what the upstream answers, in the order sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// A simple Query (answered up to a ReadyForQuery); `own` if Portcullis sent it.
    Query { own: bool },
    /// A Sync (answered by a ReadyForQuery, unless PostgreSQL was in copy-in mode).
    Sync,
    /// The client's CopyDone or CopyFail: the end of a COPY's data.
    CopyEnd,
}

/// The conversation's state.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Sent and not yet answered (a CopyEnd stays until what precedes it is answered).
    pending: VecDeque<Sent>,
    /// How many of `pending` are queries of Portcullis's own.
    own_pending: usize,
    /// PostgreSQL is taking a COPY's data and the client has not ended it yet.
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
                b'Q' => {
                    self.pending.push_back(Sent::Query { own });
                    self.own_pending += usize::from(own);
                }
                b'S' if self.copying => self.doubt = true,
                b'S' => {
                    self.pending.push_back(Sent::Sync);
                    self.unsynced = false;
                }
                // CopyDone, CopyFail.
                b'c' | b'f' => {
                    self.pending.push_back(Sent::CopyEnd);
                    self.copying = false;
                }
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
        if self.own_pending == 0 && !self.hiding {
            // Nothing to take out (nothing of ours is owed): the bytes go as they are.
            self.walk(&bytes, None);
            return bytes;
        }
        let mut out = BytesMut::with_capacity(bytes.len());
        self.walk(&bytes, Some(&mut out));
        out
    }

    /// What the next ReadyForQuery answers (CopyEnd marks whose COPY is over are dropped).
    fn owed(&mut self) -> Option<Sent> {
        while self.pending.front() == Some(&Sent::CopyEnd) {
            self.pending.pop_front();
        }
        self.pending.front().copied()
    }

    /// A ReadyForQuery came: what it answers is no longer owed.
    fn answered(&mut self) {
        match self.owed() {
            Some(Sent::Query { own }) => {
                self.own_pending -= usize::from(own);
                self.pending.pop_front();
            }
            Some(Sent::Sync) => {
                self.pending.pop_front();
            }
            // Nothing sent asked for it.
            Some(Sent::CopyEnd) | None => self.doubt = true,
        }
    }

    /// A CopyInResponse (or CopyBothResponse) came: PostgreSQL is in copy-in mode, begun by the
    /// first Query still owed or, if a Sync comes first, by an Execute before it. The Syncs
    /// sent after that and before the COPY's end reach it in copy-in mode: none is answered.
    fn copy_began(&mut self) {
        let by_query = matches!(self.owed(), Some(Sent::Query { .. }));
        let from = usize::from(by_query);
        let mut kept = VecDeque::with_capacity(self.pending.len());
        let (mut ended, mut sync_after_end) = (false, false);
        for (i, sent) in self.pending.drain(..).enumerate() {
            match sent {
                // Reaches PostgreSQL in copy-in mode: ignored, never answered.
                Sent::Sync if i >= from && !ended => continue,
                Sent::CopyEnd if i >= from => ended = true,
                Sent::Sync if ended => sync_after_end = true,
                _ => {}
            }
            kept.push_back(sent);
        }
        self.pending = kept;
        self.copying = !ended;
        if !by_query {
            // Begun by an Execute: its batch is open until a Sync after the COPY's end.
            self.unsynced = !sync_after_end;
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
        (self.pending.iter().all(|s| *s == Sent::CopyEnd)
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

    /// What tokio-postgres's `copy_in` sends: Bind, Execute, Sync, then (once the
    /// CopyInResponse came) the data, CopyDone and Sync. PostgreSQL ignores the first Sync (it
    /// arrives in copy-in mode) and answers one ReadyForQuery for the two.
    fn extended_copy(flow: &mut Flow, pipelined: bool) {
        let batch = [
            frame(b'B', b"\0\0\0\0\0\0\0"),
            frame(b'E', b"\0\0\0\0\0"),
            frame(b'S', b""),
        ]
        .concat();
        let data = [frame(b'd', b"1\n"), frame(b'c', b""), frame(b'S', b"")].concat();
        flow.sent(&batch);
        if pipelined {
            flow.sent(&data);
        }
        flow.received(BytesMut::from(
            &[frame(b'2', b""), frame(b'G', b"\0\0\0")].concat()[..],
        ));
        if !pipelined {
            assert_eq!(flow.at_rest(), None, "in the middle of the COPY");
            flow.sent(&data);
        }
        assert_eq!(flow.at_rest(), None, "the COPY's answer is owed");
        flow.received(BytesMut::from(
            &[frame(b'C', b"COPY 1\0"), frame(b'Z', b"I")].concat()[..],
        ));
    }

    #[test]
    fn a_sync_that_reaches_postgresql_during_copy_in_is_owed_nothing() {
        for pipelined in [false, true] {
            let mut flow = Flow::default();
            extended_copy(&mut flow, pipelined);
            assert_eq!(flow.at_rest(), Some(b'I'), "pipelined: {pipelined}");
            // A COPY by simple Query is unchanged: one Query, one ReadyForQuery.
            flow.sent(&frame(b'Q', b"COPY t FROM STDIN\0"));
            flow.received(BytesMut::from(&frame(b'G', b"\0\0\0")[..]));
            flow.sent(&[frame(b'd', b"1\n"), frame(b'c', b"")].concat());
            assert_eq!(flow.at_rest(), None);
            flow.received(BytesMut::from(
                &[frame(b'C', b"COPY 1\0"), frame(b'Z', b"I")].concat()[..],
            ));
            assert_eq!(flow.at_rest(), Some(b'I'), "pipelined: {pipelined}");
        }
        // The extended COPY's batch stays open until a Sync after its end.
        let mut flow = Flow::default();
        flow.sent(&[frame(b'B', b""), frame(b'E', b""), frame(b'S', b"")].concat());
        flow.received(BytesMut::from(&frame(b'G', b"\0\0\0")[..]));
        flow.sent(&frame(b'c', b""));
        flow.received(BytesMut::from(&frame(b'C', b"COPY 0\0")[..]));
        assert_eq!(flow.at_rest(), None, "no Sync after the COPY yet");
        assert!(!flow.synced());
    }

    #[test]
    fn after_a_copy_our_answers_are_still_told_from_the_clients() {
        let mut flow = Flow::default();
        extended_copy(&mut flow, false);
        flow.sent_own(&frame(b'Q', b"SELECT set_config(...)\0"));
        flow.sent(&frame(b'Q', b"CREATE TABLE t ()\0"));
        let ours = [frame(b'C', b"SELECT 1\0"), frame(b'Z', b"I")].concat();
        let theirs = [frame(b'C', b"CREATE TABLE\0"), frame(b'Z', b"I")].concat();
        let got = flow.received(BytesMut::from(&[ours, theirs.clone()].concat()[..]));
        assert_eq!(&got[..], &theirs[..]);
        assert_eq!(flow.at_rest(), Some(b'I'));
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
}
