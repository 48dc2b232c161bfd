//! Request/response messaging between simulated nodes, over madsim's reliable connections.
//!
//! A node opens one connection to each peer it calls, on first use, and both sides keep it:
//! requests travel one way and responses the other, as typed payloads (no serialization on the
//! hot path), matched by a call id. Every message still costs ≥ 1 ms of simulated time at the
//! receiver, so callers batch. (madsim's datagrams cost more: a ≥ 1 ms sleep at the sender and
//! at the receiver, and an address formatted to a string per send; issue 7's profile.)
//!
//! Faults stay datagram-like, and they are flinksim's (spec §19, issue 3): the [`LinkFaults`]
//! table the simulator owns decides per message whether it is lost, delayed, or cut off by a
//! partition; a message to a dead or restarted node is lost with its connection. Callers never
//! see an error before their timeout, as with a real network.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use madsim::net::{Endpoint, Receiver, Sender};
use madsim::rand::Rng;
use tokio::sync::oneshot;

/// A request type and the response it gets; `ID` tags it on the wire.
pub trait Request: Send + Sync + 'static {
    /// The answer to this request.
    type Response: Send + Sync + 'static;
    /// A unique tag per request type (see [`request!`](crate::request)).
    const ID: u64;
}

/// Declares `impl Request for $req { type Response = $rsp; }` with an ID hashed from the name.
#[macro_export]
macro_rules! request {
    ($req:ty => $rsp:ty) => {
        impl $crate::rpc::Request for $req {
            type Response = $rsp;
            const ID: u64 = $crate::rpc::tag_of(stringify!($req));
        }
    };
}

/// FNV-1a over a type name: a stable wire tag for a request type.
pub const fn tag_of(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x100_0000_01b3);
        i += 1;
    }
    hash
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer within the timeout: the peer is dead, partitioned, or the message was lost.
    #[error("no answer from {dst} within {timeout:?}")]
    Timeout {
        /// Where the request went.
        dst: SocketAddr,
        /// How long the caller waited.
        timeout: Duration,
    },
}

/// Delay and loss on one directed link, drawn per message from the engine's seeded RNG.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkFault {
    /// Extra delay added to every message on the link.
    pub delay: Option<Range<Duration>>,
    /// Probability in [0, 1] that a message on the link is dropped.
    pub loss_probability: f64,
}

/// The simulator's table of faulty links, shared by every node's [`Rpc`] in one run.
#[derive(Clone, Debug, Default)]
pub struct LinkFaults {
    links: Arc<Mutex<FaultTable>>,
}

#[derive(Debug, Default)]
struct FaultTable {
    faulty: BTreeMap<(IpAddr, IpAddr), LinkFault>,
    /// Directed links cut by a partition: everything sent on them is lost.
    cut: BTreeSet<(IpAddr, IpAddr)>,
}

impl LinkFaults {
    /// Sets (or with `None` clears) the fault on the directed link `src → dst`.
    pub fn set(&self, src: IpAddr, dst: IpAddr, fault: Option<LinkFault>) {
        let mut links = self.links.lock().unwrap();
        match fault {
            Some(fault) => links.faulty.insert((src, dst), fault),
            None => links.faulty.remove(&(src, dst)),
        };
    }

    /// Cuts both directions between `a` and `b` (a network partition).
    pub fn partition(&self, a: IpAddr, b: IpAddr) {
        let mut links = self.links.lock().unwrap();
        links.cut.insert((a, b));
        links.cut.insert((b, a));
    }

    /// Heals a partition between `a` and `b`.
    pub fn heal(&self, a: IpAddr, b: IpAddr) {
        let mut links = self.links.lock().unwrap();
        links.cut.remove(&(a, b));
        links.cut.remove(&(b, a));
    }

    /// What happens to one message on `src → dst`: `None` if it is lost, else its extra delay.
    fn draw(&self, src: IpAddr, dst: IpAddr) -> Option<Duration> {
        let links = self.links.lock().unwrap();
        if links.cut.contains(&(src, dst)) {
            return None;
        }
        let Some(fault) = links.faulty.get(&(src, dst)) else {
            return Some(Duration::ZERO);
        };
        let mut rng = madsim::rand::thread_rng();
        if fault.loss_probability > 0.0 && rng.gen_bool(fault.loss_probability.min(1.0)) {
            return None;
        }
        Some(match &fault.delay {
            Some(range) if !range.is_empty() => rng.gen_range(range.clone()),
            Some(range) => range.start,
            None => Duration::ZERO,
        })
    }
}

type Payload = Box<dyn Any + Send + Sync>;
type Answer = Pin<Box<dyn Future<Output = Payload> + Send>>;
type Handler = Box<dyn FnMut(Payload, SocketAddr) -> Answer + Send>;

/// What travels on a connection.
enum Frame {
    /// A call: `tag` names the request type, `call` the caller's waiting slot.
    Request { call: u64, tag: u64, body: Payload },
    /// The answer to call `call`.
    Response { call: u64, body: Payload },
}

/// One node's messaging endpoint: makes calls and serves requests.
#[derive(Clone)]
pub struct Rpc {
    shared: Arc<Shared>,
}

struct Shared {
    endpoint: Endpoint,
    local_ip: IpAddr,
    faults: LinkFaults,
    /// Handlers by request tag.
    handlers: Mutex<BTreeMap<u64, Handler>>,
    /// Open connections to the peers this node calls.
    peers: Mutex<BTreeMap<SocketAddr, Arc<Sender>>>,
    /// Calls waiting for their response, by call id.
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    next_call: u64,
    slots: BTreeMap<u64, oneshot::Sender<Payload>>,
}

impl Rpc {
    /// Binds the node's endpoint at `addr`.
    pub async fn bind(addr: SocketAddr, faults: LinkFaults) -> io::Result<Self> {
        let endpoint = Endpoint::bind(addr).await?;
        let shared = Shared {
            endpoint,
            local_ip: addr.ip(),
            faults,
            handlers: Mutex::default(),
            peers: Mutex::default(),
            waiting: Mutex::default(),
        };
        Ok(Rpc {
            shared: Arc::new(shared),
        })
    }

    /// This endpoint's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared
            .endpoint
            .local_addr()
            .expect("a bound endpoint has an address")
    }

    /// Sends `request` to `dst` and waits at most `timeout` for the answer.
    pub async fn call<R: Request>(
        &self,
        dst: SocketAddr,
        request: R,
        timeout: Duration,
    ) -> Result<R::Response, RpcError> {
        let (slot, answer) = oneshot::channel();
        let call = {
            let mut waiting = self.shared.waiting.lock().unwrap();
            waiting.next_call += 1;
            let call = waiting.next_call;
            waiting.slots.insert(call, slot);
            call
        };
        let exchange = async {
            self.shared
                .transmit(
                    dst,
                    Frame::Request {
                        call,
                        tag: R::ID,
                        body: Box::new(request),
                    },
                )
                .await;
            match answer.await {
                Ok(body) => body,
                // Only a dropped Rpc drops the slot: stay silent like a lost message.
                Err(_) => std::future::pending().await,
            }
        };
        let result = crate::timer::timeout(timeout, exchange).await;
        self.shared.waiting.lock().unwrap().slots.remove(&call);
        match result {
            Ok(body) => Ok(*body
                .downcast::<R::Response>()
                .expect("a call id is only ever answered with its request's response type")),
            Err(_) => Err(RpcError::Timeout { dst, timeout }),
        }
    }

    /// Serves requests of type `R`. An answer that is ready at once goes back at once; a slow
    /// one (a long-polling fetch) is finished in its own task, so it holds up no other request.
    pub fn serve<R, F, Fut>(&self, mut handler: F)
    where
        R: Request,
        F: FnMut(R, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = R::Response> + Send + 'static,
    {
        let erased: Handler = Box::new(move |body, from| {
            let request = *body
                .downcast::<R>()
                .expect("a request tag is only ever used for its request type");
            let answer = handler(request, from);
            Box::pin(async move { Box::new(answer.await) as Payload })
        });
        let first = {
            let mut handlers = self.shared.handlers.lock().unwrap();
            let first = handlers.is_empty();
            handlers.insert(R::ID, erased);
            first
        };
        if first {
            madsim::task::spawn(accept(self.shared.clone()));
        }
    }
}

/// Accepts the connections of the peers that call this node, each read by its own task.
async fn accept(shared: Arc<Shared>) {
    while let Ok((sender, receiver, from)) = shared.endpoint.accept1().await {
        madsim::task::spawn(serve_connection(
            shared.clone(),
            Arc::new(sender),
            receiver,
            from,
        ));
    }
}

/// Reads the requests on one accepted connection and answers each on it.
async fn serve_connection(
    shared: Arc<Shared>,
    sender: Arc<Sender>,
    mut receiver: Receiver,
    from: SocketAddr,
) {
    while let Ok(payload) = receiver.recv().await {
        let Ok(frame) = payload.downcast::<Frame>() else {
            continue;
        };
        let Frame::Request { call, tag, body } = *frame else {
            continue;
        };
        let answer = {
            let mut handlers = shared.handlers.lock().unwrap();
            match handlers.get_mut(&tag) {
                Some(handler) => handler(body, from),
                None => continue, // nobody serves it here: lost, as at an unbound port
            }
        };
        let mut answer = answer;
        // Most answers need no waiting: poll once here and spare a task.
        let ready = answer
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        if let Poll::Ready(body) = ready {
            shared
                .respond(&sender, from, Frame::Response { call, body })
                .await;
            continue;
        }
        let (shared, sender) = (shared.clone(), sender.clone());
        madsim::task::spawn(async move {
            let body = answer.await;
            shared
                .respond(&sender, from, Frame::Response { call, body })
                .await;
        });
    }
}

/// Reads the responses on one connection this node opened and hands each to its caller.
async fn read_responses(shared: Weak<Shared>, mut receiver: Receiver) {
    while let Ok(payload) = receiver.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Ok(frame) = payload.downcast::<Frame>() else {
            continue;
        };
        let Frame::Response { call, body } = *frame else {
            continue;
        };
        let slot = shared.waiting.lock().unwrap().slots.remove(&call);
        if let Some(slot) = slot {
            let _ = slot.send(body); // the caller may have timed out meanwhile
        }
    }
}

impl Shared {
    /// Sends a request to `dst` through the link's faults; a lost one is simply not sent.
    async fn transmit(self: &Arc<Self>, dst: SocketAddr, frame: Frame) {
        let shared = self.clone();
        self.through_link(
            dst.ip(),
            async move { shared.send_request(dst, frame).await },
        )
        .await;
    }

    /// Runs `send` as the link to `to` draws: now, after its delay (in a task of its own, so the
    /// caller goes on), or never (the message is lost).
    async fn through_link(&self, to: IpAddr, send: impl Future<Output = ()> + Send + 'static) {
        match self.faults.draw(self.local_ip, to) {
            None => {}
            Some(delay) if delay.is_zero() => send.await,
            Some(delay) => {
                madsim::task::spawn(async move {
                    madsim::time::sleep(delay).await;
                    send.await;
                });
            }
        }
    }

    /// Sends on the connection to `dst`, opening one if there is none (or it broke).
    async fn send_request(self: &Arc<Self>, dst: SocketAddr, frame: Frame) {
        let Some(sender) = self.connection(dst).await else {
            return;
        };
        if sender.send(Box::new(frame)).await.is_err() {
            self.forget(dst, &sender);
        }
    }

    async fn connection(self: &Arc<Self>, dst: SocketAddr) -> Option<Arc<Sender>> {
        if let Some(sender) = self.open_connection(dst) {
            return Some(sender);
        }
        // Refused when nothing listens at `dst` (dead, or not up yet): the message is lost.
        let (sender, receiver) = self.endpoint.connect1(dst).await.ok()?;
        // Another call may have connected meanwhile: keep one connection per peer.
        if let Some(sender) = self.open_connection(dst) {
            return Some(sender);
        }
        let sender = Arc::new(sender);
        self.peers.lock().unwrap().insert(dst, sender.clone());
        madsim::task::spawn(read_responses(Arc::downgrade(self), receiver));
        Some(sender)
    }

    fn open_connection(&self, dst: SocketAddr) -> Option<Arc<Sender>> {
        let mut peers = self.peers.lock().unwrap();
        match peers.get(&dst) {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                peers.remove(&dst); // the peer died or restarted: connect anew
                None
            }
            None => None,
        }
    }

    fn forget(&self, dst: SocketAddr, broken: &Arc<Sender>) {
        let mut peers = self.peers.lock().unwrap();
        if peers
            .get(&dst)
            .is_some_and(|sender| Arc::ptr_eq(sender, broken))
        {
            peers.remove(&dst);
        }
    }

    /// Sends a response back on the connection its request came in on, through the faults.
    async fn respond(&self, sender: &Arc<Sender>, to: SocketAddr, frame: Frame) {
        let sender = sender.clone();
        self.through_link(to.ip(), async move { send_now(&sender, frame) })
            .await;
    }
}

/// Puts a frame on a connection; on a closed one (the caller died) it is lost.
fn send_now(sender: &Sender, frame: Frame) {
    // madsim's `Sender::send` is async in name only: it never waits.
    let mut send = std::pin::pin!(sender.send(Box::new(frame)));
    let _ = send.as_mut().poll(&mut Context::from_waker(Waker::noop()));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use madsim::runtime::{Handle, Runtime};
    use madsim::time::{Instant, sleep};

    use super::*;

    struct Echo(u32);
    struct Slow(u32);
    crate::request!(Echo => u32);
    crate::request!(Slow => u32);

    const SERVER: &str = "10.0.0.1:7000";
    const CLIENT: &str = "10.0.0.2:7000";
    const TIMEOUT: Duration = Duration::from_secs(1);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Starts the `server` node: `Echo(n)` answers n + 1 at once, `Slow(n)` after 500 ms.
    fn start_server(faults: &LinkFaults) -> madsim::task::NodeId {
        let faults = faults.clone();
        Handle::current()
            .create_node()
            .name("server")
            .ip(addr(SERVER).ip())
            .init(move || {
                let faults = faults.clone();
                async move {
                    let rpc = Rpc::bind(addr(SERVER), faults).await.unwrap();
                    rpc.serve(|Echo(n), _| async move { n + 1 });
                    rpc.serve(|Slow(n), _| async move {
                        sleep(Duration::from_millis(500)).await;
                        n * 2
                    });
                    std::future::pending::<()>().await;
                }
            })
            .build()
            .id()
    }

    /// Runs `test` on a `client` node bound at CLIENT.
    fn with_client<F, Fut>(test: F)
    where
        F: FnOnce(Rpc, LinkFaults, madsim::task::NodeId) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async move {
            let faults = LinkFaults::default();
            let server = start_server(&faults);
            let client = Handle::current()
                .create_node()
                .name("client")
                .ip(addr(CLIENT).ip())
                .build();
            client
                .spawn(async move {
                    sleep(Duration::from_millis(10)).await; // the server binds
                    let rpc = Rpc::bind(addr(CLIENT), faults.clone()).await.unwrap();
                    test(rpc, faults, server).await
                })
                .await
                .unwrap();
        });
    }

    /// How long `call` took, and what it gave.
    async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
        let start = Instant::now();
        let out = call.await;
        (out, start.elapsed())
    }

    #[test]
    fn a_slow_answer_holds_up_no_other_request() {
        with_client(|rpc, _, _| async move {
            let slow = timed(rpc.call(addr(SERVER), Slow(21), TIMEOUT));
            let fast = async {
                sleep(Duration::from_millis(20)).await;
                timed(rpc.call(addr(SERVER), Echo(1), TIMEOUT)).await
            };
            let ((slow, slow_took), (fast, fast_took)) = tokio::join!(slow, fast);
            assert_eq!((slow.unwrap(), fast.unwrap()), (42, 2));
            assert!(slow_took >= Duration::from_millis(500), "{slow_took:?}");
            // Two messages of 1–10 ms each, behind nothing.
            assert!(fast_took <= Duration::from_millis(25), "{fast_took:?}");
        });
    }

    #[test]
    fn a_partition_loses_every_message_until_it_heals() {
        with_client(|rpc, faults, _| async move {
            assert_eq!(rpc.call(addr(SERVER), Echo(1), TIMEOUT).await.unwrap(), 2);
            faults.partition(addr(CLIENT).ip(), addr(SERVER).ip());
            let (result, took) = timed(rpc.call(addr(SERVER), Echo(2), TIMEOUT)).await;
            assert!(
                matches!(result, Err(RpcError::Timeout { .. })),
                "{result:?}"
            );
            assert!(
                took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(5),
                "{took:?}"
            );
            faults.heal(addr(SERVER).ip(), addr(CLIENT).ip());
            assert_eq!(rpc.call(addr(SERVER), Echo(3), TIMEOUT).await.unwrap(), 4);
        });
    }

    #[test]
    fn link_faults_delay_or_drop_the_messages_of_one_direction() {
        with_client(|rpc, faults, _| async move {
            let (client, server) = (addr(CLIENT).ip(), addr(SERVER).ip());
            let delay = Duration::from_millis(200)..Duration::from_millis(300);
            faults.set(
                server,
                client,
                Some(LinkFault {
                    delay: Some(delay),
                    loss_probability: 0.0,
                }),
            );
            let (answer, took) = timed(rpc.call(addr(SERVER), Echo(1), TIMEOUT)).await;
            assert_eq!(answer.unwrap(), 2);
            assert!(took >= Duration::from_millis(200), "{took:?}");
            // Every answer lost: the request arrives, the caller still only times out.
            faults.set(
                server,
                client,
                Some(LinkFault {
                    delay: None,
                    loss_probability: 1.0,
                }),
            );
            let (answer, took) = timed(rpc.call(addr(SERVER), Echo(2), TIMEOUT)).await;
            assert!(
                answer.is_err() && took >= TIMEOUT,
                "{answer:?} after {took:?}"
            );
            faults.set(server, client, None);
            assert_eq!(rpc.call(addr(SERVER), Echo(3), TIMEOUT).await.unwrap(), 4);
        });
    }

    #[test]
    fn a_killed_peer_is_silent_and_a_restarted_one_is_reached_anew() {
        with_client(|rpc, _, server| async move {
            assert_eq!(rpc.call(addr(SERVER), Echo(1), TIMEOUT).await.unwrap(), 2);
            Handle::current().kill(server);
            let (result, took) = timed(rpc.call(addr(SERVER), Echo(2), TIMEOUT)).await;
            assert!(
                result.is_err() && took >= TIMEOUT,
                "{result:?} after {took:?}"
            );
            Handle::current().restart(server);
            sleep(Duration::from_millis(10)).await; // it binds again
            assert_eq!(rpc.call(addr(SERVER), Echo(3), TIMEOUT).await.unwrap(), 4);
        });
    }

    #[test]
    fn a_request_nobody_serves_is_lost() {
        struct Unserved;
        crate::request!(Unserved => ());
        with_client(|rpc, _, _| async move {
            let (result, took) = timed(rpc.call(addr(SERVER), Unserved, TIMEOUT)).await;
            assert!(
                result.is_err() && took >= TIMEOUT,
                "{result:?} after {took:?}"
            );
        });
    }
}
