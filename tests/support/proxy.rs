//! `FaultProxy`: a TCP proxy in front of PostgreSQL that a test can blackhole, sever, or cut right after a COMMIT.
//!
//! One task per connection pumps both directions, so every control below
//! works while traffic flows and from any task: a test points a host's
//! `DATABASE_URL` at [`FaultProxy::port`] and cuts that host (and only that
//! host) off the database whenever it likes.
//!
//! The client→server direction is framed as PostgreSQL messages (startup
//! packets, then type byte + length), so a cut can fall exactly after one
//! message. This assumes the server refuses SSL (the test clusters do):
//! behind TLS the framing is lost and cuts never fire.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A proxy on `127.0.0.1:<port>` forwarding to one upstream address.
/// Dropping it closes the listener and every connection.
pub struct FaultProxy {
    shared: Arc<Shared>,
    port: u16,
    accept: JoinHandle<()>,
}

/// What every connection task watches; one `watch` so a change reaches
/// tasks blocked anywhere (reading, writing, waiting out a blackhole).
#[derive(Debug, Clone, Copy, Default)]
struct State {
    blackhole: bool,
    /// Bumped by `sever_all`: a connection that saw another value when it
    /// began is cut (connections made afterwards are not).
    sever_generation: u64,
    closed: bool,
}

struct Shared {
    upstream: SocketAddr,
    state: watch::Sender<State>,
    /// COMMIT messages still to cut (see `cut_after_commit`).
    cuts_armed: AtomicUsize,
    /// When set, a COMMIT message is cut only if it also contains this text.
    cut_filter: Mutex<Option<String>>,
    /// Cut before the COMMIT message is forwarded (it never reaches the
    /// server) instead of after.
    cut_before: AtomicBool,
    accepted: AtomicU64,
    commits_cut: AtomicU64,
    open: AtomicUsize,
}

impl FaultProxy {
    /// Listen on a free port of 127.0.0.1 and forward to `upstream`
    /// (typically `127.0.0.1:<postgres port>`). Must be called on a Tokio
    /// runtime that outlives the proxy's use.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            upstream,
            state: watch::Sender::new(State::default()),
            cuts_armed: AtomicUsize::new(0),
            cut_filter: Mutex::new(None),
            cut_before: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            commits_cut: AtomicU64::new(0),
            open: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            shared,
            port,
            accept,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// While on, connections are accepted (and existing ones kept open) but
    /// no byte moves in either direction and no new upstream connection is
    /// made: to the client the database looks unreachable — connects and
    /// queries hang, nothing is refused. Off: buffered traffic flows again,
    /// like a network partition that heals.
    pub fn blackhole(&self, on: bool) {
        self.shared.state.send_modify(|s| s.blackhole = on);
    }

    /// Close every current connection abruptly, both sides (RST), as a
    /// crashed middlebox would. Connections made afterwards work.
    pub fn sever_all(&self) {
        self.shared.state.send_modify(|s| s.sever_generation += 1);
    }

    /// Arm: the next `n` client→server messages (simple `Q` or `Parse`)
    /// whose SQL contains the word `COMMIT` are forwarded to the server,
    /// then both sides are closed before any answer comes back — the
    /// client cannot know whether it committed. The server side is closed
    /// gracefully after the message, so the server does read (and, in
    /// general, run) it; the client side is reset. Replaces an earlier
    /// arming; `0` disarms.
    ///
    /// `COMMIT` is matched as a word (`READ COMMITTED` does not match), but
    /// every COMMIT on the connection counts: the audit chainer's bare
    /// `COMMIT` too. To cut only the invocation loop's batch (`EXECUTE a;
    /// COMMIT; ...`), use [`Self::cut_after_commit_containing`].
    pub fn cut_after_commit(&self, n: usize) {
        self.shared.cut_before.store(false, Ordering::SeqCst);
        *self.shared.cut_filter.lock().unwrap() = None;
        self.shared.cuts_armed.store(n, Ordering::SeqCst);
    }

    /// Like [`Self::cut_after_commit`], counting only COMMIT messages that
    /// also contain `text` (e.g. `"EXECUTE"`: the audited commit batch).
    pub fn cut_after_commit_containing(&self, n: usize, text: &str) {
        self.shared.cut_before.store(false, Ordering::SeqCst);
        *self.shared.cut_filter.lock().unwrap() = Some(text.to_owned());
        self.shared.cuts_armed.store(n, Ordering::SeqCst);
    }

    /// Like [`Self::cut_after_commit_containing`], but the connection is
    /// closed instead of forwarding the COMMIT message (and whatever was
    /// read with it): the server never sees it, so the transaction aborts,
    /// and the client cannot tell that from a COMMIT whose answer was lost.
    pub fn drop_commit_containing(&self, n: usize, text: &str) {
        self.shared.cut_before.store(true, Ordering::SeqCst);
        *self.shared.cut_filter.lock().unwrap() = Some(text.to_owned());
        self.shared.cuts_armed.store(n, Ordering::SeqCst);
    }

    /// Cuts armed and not yet done.
    pub fn cuts_pending(&self) -> usize {
        self.shared.cuts_armed.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// COMMIT messages cut so far.
    pub fn commits_cut(&self) -> u64 {
        self.shared.commits_cut.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.state.send_modify(|s| s.closed = true);
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or the like: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.open.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        tokio::spawn(async move {
            connection(client, &shared).await;
            shared.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// How a connection ended.
enum End {
    /// Both directions reached EOF, or one failed.
    Done,
    Severed,
    /// A COMMIT went to the server; its answer must never reach the client.
    Cut,
}

async fn connection(mut client: TcpStream, shared: &Shared) {
    let mut state = shared.state.subscribe();
    let generation = state.borrow().sever_generation;
    // Blackholed: hold the client without even connecting upstream, as a
    // dead route would.
    let severed = tokio::select! {
        () = wait_open(state.clone()) => false,
        () = wait_severed(state.clone(), generation) => true,
    };
    if severed || state.borrow_and_update().closed {
        return reset(client);
    }
    let mut server = match TcpStream::connect(shared.upstream).await {
        Ok(server) => server,
        // The database is down: the client sees its connection closed, as
        // it would see a refused connection behind a real proxy.
        Err(_) => return reset(client),
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let cut = AtomicBool::new(false);
    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let up = pump_up(
            &mut client_read,
            &mut server_write,
            shared,
            &cut,
            state.clone(),
        );
        let down = pump_down(&mut server_read, &mut client_write, &cut, state.clone());
        let severed = wait_severed(state.clone(), generation);
        tokio::pin!(up, down, severed);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut up, if !up_done => match end {
                    Pumped::Eof => up_done = true,
                    Pumped::Failed => break End::Done,
                    Pumped::Cut => break End::Cut,
                },
                end = &mut down, if !down_done => match end {
                    Pumped::Eof => down_done = true,
                    Pumped::Failed | Pumped::Cut => break End::Done,
                },
                () = &mut severed => break End::Severed,
            }
            if up_done && down_done {
                break End::Done;
            }
        }
    };
    match end {
        End::Done => {}
        End::Severed => {
            reset(client);
            reset(server);
        }
        End::Cut => {
            shared.commits_cut.fetch_add(1, Ordering::SeqCst);
            reset(client);
            // FIN after the COMMIT message: the server reads all of it.
            let _ = server.shutdown().await;
        }
    }
}

/// Close with RST rather than FIN (SO_LINGER 0), so the peer sees the
/// connection fail rather than end.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor owned by `stream`, and a properly
    // sized `linger` value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Returns once the blackhole is off (or the proxy is closing).
async fn wait_open(mut state: watch::Receiver<State>) {
    loop {
        {
            let s = state.borrow_and_update();
            if !s.blackhole || s.closed {
                return;
            }
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Returns once `sever_all` was called after `generation`, or the proxy closes.
async fn wait_severed(mut state: watch::Receiver<State>, generation: u64) {
    loop {
        {
            let s = state.borrow_and_update();
            if s.sever_generation != generation || s.closed {
                return;
            }
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

enum Pumped {
    Eof,
    Failed,
    Cut,
}

const CHUNK: usize = 64 * 1024;

/// Client → server, framing messages to find the COMMIT to cut after.
async fn pump_up(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    shared: &Shared,
    cut: &AtomicBool,
    state: watch::Receiver<State>,
) -> Pumped {
    let mut buf = vec![0u8; CHUNK];
    let mut framer = Framer::default();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Pumped::Eof;
            }
            Ok(n) => n,
            Err(_) => return Pumped::Failed,
        };
        wait_open(state.clone()).await;
        let cut_at = framer.feed(&buf[..n], |kind, body| shared.take_cut(kind, body));
        let end = match cut_at {
            Some(_) if shared.cut_before.load(Ordering::SeqCst) => 0,
            Some(end) => end,
            None => n,
        };
        if cut_at.is_some() {
            // Before the message goes out: its answer can only come back
            // after this, and the other direction drops whatever it reads
            // once it sees the flag.
            cut.store(true, Ordering::SeqCst);
        }
        if to.write_all(&buf[..end]).await.is_err() || to.flush().await.is_err() {
            return Pumped::Failed;
        }
        if cut_at.is_some() {
            return Pumped::Cut;
        }
    }
}

/// Server → client.
async fn pump_down(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    cut: &AtomicBool,
    state: watch::Receiver<State>,
) -> Pumped {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Pumped::Eof;
            }
            Ok(n) => n,
            Err(_) => return Pumped::Failed,
        };
        wait_open(state.clone()).await;
        if cut.load(Ordering::SeqCst) {
            return Pumped::Cut;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return Pumped::Failed;
        }
    }
}

impl Shared {
    /// Whether this complete message is a COMMIT to cut (consuming one arming).
    fn take_cut(&self, kind: u8, body: &[u8]) -> bool {
        if !matches!(kind, b'Q' | b'P') || self.cuts_armed.load(Ordering::SeqCst) == 0 {
            return false;
        }
        if !contains_word(body, b"COMMIT") {
            return false;
        }
        if let Some(filter) = self.cut_filter.lock().unwrap().as_deref() {
            if !body.windows(filter.len()).any(|w| w == filter.as_bytes()) {
                return false;
            }
        }
        self.cuts_armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn contains_word(text: &[u8], word: &[u8]) -> bool {
    let is_ident = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    (0..text.len().saturating_sub(word.len() - 1)).any(|i| {
        &text[i..i + word.len()] == word
            && !is_ident(i.checked_sub(1).and_then(|j| text.get(j)))
            && !is_ident(text.get(i + word.len()))
    })
}

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
/// Bodies kept to look into (SQL text); bigger ones (COPY data) are not.
const MAX_CAPTURE: usize = 1 << 20;

/// Incremental framing of the client→server stream: untyped startup
/// packets (length, code) until the StartupMessage, then typed messages.
#[derive(Default)]
struct Framer {
    typed: bool,
    /// Given up (a length that cannot be right, e.g. after TLS began).
    lost: bool,
    header: Vec<u8>,
    /// Body bytes still to come; `None` while reading a header.
    remaining: Option<usize>,
    kind: u8,
    body: Vec<u8>,
    capture: bool,
}

impl Framer {
    /// Feed `data`; returns the offset just past the first complete message
    /// for which `is_cut(kind, body)` says yes (the bytes after it are not
    /// framed: the connection ends there).
    fn feed(&mut self, data: &[u8], mut is_cut: impl FnMut(u8, &[u8]) -> bool) -> Option<usize> {
        let mut i = 0;
        while i < data.len() && !self.lost {
            match self.remaining {
                None => {
                    let need = if self.typed { 5 } else { 4 };
                    let take = (need - self.header.len()).min(data.len() - i);
                    self.header.extend_from_slice(&data[i..i + take]);
                    i += take;
                    if self.header.len() < need {
                        continue;
                    }
                    let (kind, len_bytes) = if self.typed {
                        (self.header[0], &self.header[1..5])
                    } else {
                        (0, &self.header[0..4])
                    };
                    let len = u32::from_be_bytes(len_bytes.try_into().unwrap()) as usize;
                    self.header.clear();
                    if !(4..=(1 << 30)).contains(&len) {
                        self.lost = true;
                        break;
                    }
                    self.kind = kind;
                    self.remaining = Some(len - 4);
                    self.body.clear();
                    self.capture = !self.typed || matches!(kind, b'Q' | b'P');
                    self.capture &= len - 4 <= MAX_CAPTURE;
                }
                Some(remaining) => {
                    let take = remaining.min(data.len() - i);
                    if self.capture {
                        self.body.extend_from_slice(&data[i..i + take]);
                    }
                    i += take;
                    self.remaining = Some(remaining - take);
                }
            }
            if self.remaining == Some(0) {
                self.remaining = None;
                if !self.typed {
                    let code = self
                        .body
                        .get(0..4)
                        .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
                    // SSL/GSS requests are answered by one byte, then the
                    // real startup packet follows, also untyped.
                    if !matches!(code, Some(SSL_REQUEST | GSSENC_REQUEST)) {
                        self.typed = true;
                    }
                } else if self.capture && is_cut(self.kind, &self.body) {
                    return Some(i);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn frames_find_the_commit_message_however_the_bytes_are_split() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&8u32.to_be_bytes());
        stream.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        stream.extend_from_slice(&12u32.to_be_bytes());
        stream.extend_from_slice(&196608u32.to_be_bytes());
        stream.extend_from_slice(b"u\0x\0");
        stream.extend(typed(b'Q', b"BEGIN ISOLATION LEVEL READ COMMITTED\0"));
        stream.extend(typed(b'Q', b"EXECUTE a('committed'); COMMIT; SELECT 1\0"));
        let end = stream.len();
        stream.extend(typed(b'X', b""));
        for split in 1..stream.len() {
            let mut framer = Framer::default();
            let is_cut = |kind: u8, body: &[u8]| kind == b'Q' && contains_word(body, b"COMMIT");
            let found = framer
                .feed(&stream[..split], is_cut)
                .or_else(|| framer.feed(&stream[split..], is_cut).map(|i| i + split));
            assert_eq!(found, Some(end), "split at {split}");
        }
    }
}
