//! Scaffolding shared by the Kafka tests: a `kafka` node with topics `input` and `output`
//! (2 partitions each, docs/README.md#defaults-at-a-glance) and a `client` node, inside the test's
//! madsim runtime.

use std::net::SocketAddr;

use madsim::runtime::{Handle, NodeHandle};

use super::{BrokerConfig, TopicSpec};
use crate::rpc::{LinkFault, Network, Rpc};
use crate::trace::Trace;

/// The broker's address.
pub(crate) const BROKER: &str = "10.0.0.2:9092";
/// The client node's address.
pub(crate) const CLIENT: &str = "10.0.0.10:9000";

/// [`BROKER`] parsed.
pub(crate) fn broker_addr() -> SocketAddr {
    BROKER.parse().unwrap()
}

/// Starts the `kafka` node with topics `input` and `output`, 2 partitions each.
pub(crate) fn start_broker(trace: &Trace, network: &Network) {
    let config = BrokerConfig::new(
        broker_addr(),
        vec![TopicSpec::new("input", 2), TopicSpec::new("output", 2)],
        network.clone(),
        trace.for_node("kafka"),
    );
    Handle::current()
        .create_node()
        .name("kafka")
        .ip(broker_addr().ip())
        .init(move || super::run(config.clone()))
        .build();
}

/// Creates the `client` node and binds its Rpc there.
pub(crate) async fn client_node(network: &Network) -> (NodeHandle, Rpc) {
    crate::rpc::bind_on_new_node("client", CLIENT.parse().unwrap(), network).await
}

/// Loses half of the broker's answers to the client (drawn from the run's seed).
pub(crate) fn lose_half_of_the_answers_to_the_client(network: &Network) {
    let client_ip = CLIENT.parse::<SocketAddr>().unwrap().ip();
    let lossy = LinkFault { loss_probability: 0.5, ..LinkFault::default() };
    network.set(broker_addr().ip(), client_ip, Some(lossy));
}
