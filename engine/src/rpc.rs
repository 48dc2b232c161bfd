//! Request/response messaging between simulated nodes, over madsim datagrams.
//!
//! Payloads travel as typed values (no serialization on the hot path); every message still pays
//! madsim's cost of ≥ 1 ms per send and per receive, so callers batch. Per-link delay and loss
//! (spec §19, issue 3) are injected here from a [`LinkFaults`] table that the simulator owns.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::Endpoint;
use madsim::rand::Rng;

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
    // Keep request tags apart from response tags, which are random with the top bit set.
    hash & !(1 << 63)
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
    /// The local socket is gone (the node is being killed).
    #[error("network error: {0}")]
    Io(#[from] io::Error),
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
    links: Arc<Mutex<BTreeMap<(IpAddr, IpAddr), LinkFault>>>,
}

impl LinkFaults {
    /// Sets (or with `None` clears) the fault on the directed link `src → dst`.
    pub fn set(&self, src: IpAddr, dst: IpAddr, fault: Option<LinkFault>) {
        let mut links = self.links.lock().unwrap();
        match fault {
            Some(fault) => links.insert((src, dst), fault),
            None => links.remove(&(src, dst)),
        };
    }

    /// What happens to one message on `src → dst`: `None` if it is lost, else its extra delay.
    fn draw(&self, src: IpAddr, dst: IpAddr) -> Option<Duration> {
        let links = self.links.lock().unwrap();
        if links.is_empty() {
            return Some(Duration::ZERO);
        }
        let Some(fault) = links.get(&(src, dst)) else {
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

type Envelope<R> = (u64, R);

/// One node's messaging endpoint: makes calls and serves requests.
#[derive(Clone)]
pub struct Rpc {
    endpoint: Endpoint,
    local_ip: IpAddr,
    faults: LinkFaults,
}

impl Rpc {
    /// Binds the node's endpoint at `addr`.
    pub async fn bind(addr: SocketAddr, faults: LinkFaults) -> io::Result<Self> {
        let endpoint = Endpoint::bind(addr).await?;
        Ok(Rpc { endpoint, local_ip: addr.ip(), faults })
    }

    /// This endpoint's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("a bound endpoint has an address")
    }

    /// Sends `request` to `dst` and waits at most `timeout` for the answer.
    pub async fn call<R: Request>(
        &self,
        dst: SocketAddr,
        request: R,
        timeout: Duration,
    ) -> Result<R::Response, RpcError> {
        let reply_tag = madsim::rand::random::<u64>() | (1 << 63);
        let exchange = async {
            self.send(dst, R::ID, Box::new((reply_tag, request) as Envelope<R>)).await?;
            let (payload, _) = self.endpoint.recv_from_raw(reply_tag).await?;
            let response = payload
                .downcast::<R::Response>()
                .expect("a reply tag is only ever used for this request's response type");
            Ok::<_, RpcError>(*response)
        };
        match crate::timer::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::Timeout { dst, timeout }),
        }
    }

    /// Serves requests of type `R`: each one is handled in its own task, so a slow answer
    /// (a long-polling fetch) does not hold up the next request.
    pub fn serve<R, F, Fut>(&self, mut handler: F)
    where
        R: Request,
        F: FnMut(R, SocketAddr) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R::Response> + Send + 'static,
    {
        let rpc = self.clone();
        madsim::task::spawn(async move {
            loop {
                let Ok((payload, from)) = rpc.endpoint.recv_from_raw(R::ID).await else {
                    return; // the node is going down
                };
                let (reply_tag, request) = *payload
                    .downcast::<Envelope<R>>()
                    .expect("a request tag is only ever used for its request type");
                let answer = handler(request, from);
                let rpc = rpc.clone();
                madsim::task::spawn(async move {
                    let response = answer.await;
                    let _ = rpc.send(from, reply_tag, Box::new(response)).await;
                });
            }
        });
    }

    async fn send(
        &self,
        dst: SocketAddr,
        tag: u64,
        payload: Box<dyn std::any::Any + Send + Sync>,
    ) -> io::Result<()> {
        match self.faults.draw(self.local_ip, dst.ip()) {
            None => Ok(()), // lost on a faulty link
            Some(delay) if delay.is_zero() => self.endpoint.send_to_raw(dst, tag, payload).await,
            Some(delay) => {
                let endpoint = self.endpoint.clone();
                madsim::task::spawn(async move {
                    madsim::time::sleep(delay).await;
                    let _ = endpoint.send_to_raw(dst, tag, payload).await;
                });
                Ok(())
            }
        }
    }
}
