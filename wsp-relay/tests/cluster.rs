//! Relay nodes sharing their routing through a real NATS server (PROTOCOL.md §11.8): a caller
//! at one node reaches a host at another, with every method kind both ways; unknown keys fail
//! at once; a killed node fails its routes' calls quickly and its host moves to a surviving
//! node; a NATS restart is survived; a flood across nodes is slowed, with bounded memory.

mod common;

use std::time::{Duration, Instant};

use common::nats::Nats;
use common::*;
use futures_util::{FutureExt, StreamExt};
use wsp_examples::chat::{ChatCallbacksClient, ChatClient};
use wsp_examples::math::{MathClient, MathError};
use wsp_relay::Relay;
use wsp_runtime::relay::{Identity, RelayOptions};
use wsp_runtime::{CallError, Client, ReconnectPolicy, RpcError, close_code};

async fn node(nats: &Nats) -> Relay {
    Relay::builder()
        .cluster(nats.url())
        .bind("127.0.0.1:0")
        .await
        .expect("a relay node joins")
}

#[tokio::test]
async fn every_method_kind_both_ways_across_two_nodes() {
    let nats = Nats::start().await;
    let (a, b) = (node(&nats).await, node(&nats).await);
    let host = host(&a.url(), Identity::generate(), 2).await;
    // The caller is at node b, the host's spares at node a.
    every_method_kind_both_ways(&b, &host).await;
    // The hand-over was node a's; node b only copied.
    assert_eq!((a.stats().handovers, b.stats().handovers), (1, 0));
    assert!(b.stats().frames_relayed > 10);
    host.close().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn every_method_kind_both_ways_with_three_nodes() {
    let nats = Nats::start().await;
    let (a, b, c) = (node(&nats).await, node(&nats).await, node(&nats).await);
    let host = host(&a.url(), Identity::generate(), 2).await;
    every_method_kind_both_ways(&c, &host).await;
    assert_eq!(
        (
            a.stats().handovers,
            b.stats().handovers,
            c.stats().handovers
        ),
        (1, 0, 0)
    );
    // Node b was never on the route.
    assert_eq!(b.stats().frames_relayed, 0);
    host.close().await;
    for relay in [a, b, c] {
        relay.close().await;
    }
}

/// A caller at `at` and `host` (the route's only connection there) call each other with every
/// method kind, then the caller closes and the host sees its code and reason.
async fn every_method_kind_both_ways(at: &Relay, host: &wsp_runtime::relay::RelayHost) {
    let client = caller(&at.url(), host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    let chat = ChatClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));

    // Caller → host: unary, typed error, notification, server stream, client stream,
    // bidirectional stream.
    assert_eq!(within("add", math.add(vec![1, 2, 3])).await.unwrap(), 6);
    match within("divide", math.divide(1.0, 0.0)).await {
        Err(RpcError::App(MathError::DivisionByZero)) => {}
        other => panic!("expected DivisionByZero, got {other:?}"),
    }
    within("log", math.log("across nodes")).await.unwrap();
    let items: Vec<u32> = within("count", math.count(1, 40).map(|r| r.unwrap()).collect()).await;
    assert_eq!(items, (1..=40).collect::<Vec<_>>());
    let values = futures_util::stream::iter(1..=100i64);
    assert_eq!(within("sum", math.sum(values)).await.unwrap(), 5050);
    let running: Vec<i64> = within(
        "running",
        math.running(10, futures_util::stream::iter([1i64, 2, 3]))
            .map(|r| r.unwrap())
            .collect(),
    )
    .await;
    assert_eq!(running, vec![11, 13, 16]);

    // Host → caller: join asks the caller (unary), post broadcasts to it (notification);
    // then the host calls the caller's streams itself.
    assert!(within("join", chat.join("ada")).await.unwrap().is_empty());
    let mut follow = chat.follow();
    within("post", chat.post("hello across nodes"))
        .await
        .unwrap();
    let first = within("followed", follow.next()).await.unwrap().unwrap();
    assert_eq!(first.text, "hello across nodes");
    let at_host = host
        .connections()
        .pop()
        .expect("the host's end of the route");
    let back = ChatCallbacksClient::from_caller(at_host.caller());
    let typing: Vec<bool> = within("typing", back.typing("lobby").collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(typing, vec![true, false]);
    let draft = futures_util::stream::iter(["a".to_owned(), " ".to_owned(), "b".to_owned()]);
    assert_eq!(within("review", back.review(draft)).await.unwrap(), 2);
    let lines = futures_util::stream::iter(["hi".to_owned(), "there".to_owned()]);
    let shouted: Vec<String> =
        within("shout", back.shout(lines).map(|r| r.unwrap()).collect()).await;
    assert_eq!(shouted, vec!["HI", "THERE"]);

    client.close(1000, "done").await.unwrap();
    // The close reached the host across the nodes (a normal close is the `Ok` outcome).
    let info = within("the host's end closes", at_host.closed())
        .await
        .expect("closed normally");
    assert_eq!((info.code, info.reason.as_str()), (1000, "done"));
}

// Two workers: the nodes' heartbeats keep running while a debug build decodes megabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_carry_messages_larger_than_a_chunk_and_the_window() {
    let nats = Nats::start().await;
    let (a, b, c) = (node(&nats).await, node(&nats).await, node(&nats).await);
    let host = host(&a.url(), Identity::generate(), 2).await;
    let mut adds = Vec::new();
    for relay in [&b, &c] {
        let client = caller(&relay.url(), &host);
        within("connect", client.connect()).await.unwrap();
        adds.push(client);
    }
    // 300,000 values are about 2.7 MB as MessagePack: chunks of the tunnel, and four calls at
    // once from each caller exceed a tunnel's credit window, so credit must flow.
    let values: Vec<i64> = (0..300_000).map(|i| i * 1_000_007).collect();
    let expected: i64 = values.iter().sum();
    // One message larger than the window (700,000 values, about 6.3 MB) on a plain route (an
    // encrypted one is cut into 64 KiB messages): its first chunks must be credited before it
    // is whole, or its sender waits for ever.
    let plain = wsp_runtime::Server::builder()
        .service(wsp_examples::math::MathServer::new(wsp_examples::Calculator).into_service())
        .bind_relay(RelayOptions::new(a.url(), Identity::generate()).encrypt(false))
        .await
        .expect("a plain host registers");
    let plain_client = Client::via_relay(c.url(), plain.public_key())
        .encrypt(false)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect plain", plain_client.connect())
        .await
        .unwrap();
    let huge: Vec<i64> = (0..700_000).map(|i| i * 1_000_007).collect();
    let huge_sum: i64 = huge.iter().sum();
    let math = MathClient::from_caller(plain_client.caller()).with_timeout(Duration::from_secs(15));
    assert_eq!(within("huge add", math.add(huge)).await.unwrap(), huge_sum);
    plain_client.close(1000, "done").await.unwrap();
    plain.close().await;
    let mut calls = Vec::new();
    for client in &adds {
        for _ in 0..4 {
            let math =
                MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(15));
            let values = values.clone();
            calls.push(tokio::spawn(async move { math.add(values).await }));
        }
    }
    for call in calls {
        assert_eq!(within("large add", call).await.unwrap().unwrap(), expected);
    }
    assert_eq!(a.stats().handovers, 3);
    for client in adds {
        client.close(1000, "done").await.unwrap();
    }
    host.close().await;
    for relay in [a, b, c] {
        relay.close().await;
    }
}

#[tokio::test]
async fn a_route_across_nodes_outlives_the_dead_peer_timeout_while_idle() {
    let nats = Nats::start().await;
    // Quiet ends of a route are pinged every 50 ms and taken for lost after 300 ms of silence.
    let quick = || async {
        Relay::builder()
            .cluster(nats.url())
            .ping_interval(Duration::from_millis(50))
            .dead_peer_timeout(Duration::from_millis(300))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
    };
    let (a, b) = (quick().await, quick().await);
    let host = host(&a.url(), Identity::generate(), 1).await;
    let client = caller(&b.url(), &host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(within("add", math.add(vec![1])).await.unwrap(), 1);
    // Idle for several dead-peer timeouts: the pings each node sends into the tunnel are
    // answered, so neither end is taken for lost.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        within("add after idling", math.add(vec![2])).await.unwrap(),
        2
    );
    assert!(
        client.closed().now_or_never().is_none(),
        "the route was closed"
    );
    client.close(1000, "done").await.unwrap();
    host.close().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_key_no_node_holds_is_refused_at_once() {
    let nats = Nats::start().await;
    let (a, b) = (node(&nats).await, node(&nats).await);
    let host = host(&a.url(), Identity::generate(), 1).await;
    // Known at a, so the cluster is live; but nobody holds this key.
    let nobody = Identity::generate().public_key();
    let client = Client::via_relay(b.url(), nobody)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    let started = Instant::now();
    let refused = within("connect", client.connect()).await;
    let elapsed = started.elapsed();
    match refused {
        Err(wsp_runtime::ConnectError::Relay { code, .. }) => {
            assert_eq!(code, close_code::RELAY_UNKNOWN_KEY)
        }
        other => panic!("expected RELAY_UNKNOWN_KEY, got {other:?}"),
    }
    // NATS answers "no responders" at once; waiting for a spare would take 5 s.
    assert!(
        elapsed < Duration::from_secs(2),
        "refused after {elapsed:?}"
    );
    assert_eq!(b.stats().unknown_key, 1);
    host.close().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_killed_node_fails_its_calls_quickly_and_the_host_moves_to_a_surviving_node() {
    let nats = Nats::start().await;
    let (mut killed, killed_url) = RelayProcess::start_with(&["--nats", &nats.url()]);
    let survivor = node(&nats).await;
    // The host's spares are at the node about to die; the survivor is its fallback.
    let identity = Identity::generate();
    let host = wsp_runtime::Server::builder()
        .service(wsp_examples::math::MathServer::new(wsp_examples::Calculator).into_service())
        .bind_relay(
            RelayOptions::new(&killed_url, identity)
                .also(survivor.url())
                .spares(2)
                .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(50))),
        )
        .await
        .expect("host registers");
    let mut spares = host.watch_spares();
    within("spares", spares.wait_for(|n| *n == 2))
        .await
        .unwrap();
    let client = Client::via_relay(survivor.url(), host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(30));
    // A stream in flight: the first items came, the rest never will.
    let mut counting = math.count(1, u32::MAX);
    within("first item", counting.next())
        .await
        .unwrap()
        .unwrap();

    killed.kill();
    let died = Instant::now();
    let failed = within("the stream fails", async {
        loop {
            match counting.next().await {
                Some(Ok(_)) => continue,
                other => return other,
            }
        }
    })
    .await;
    let after = died.elapsed();
    assert!(
        matches!(failed, Some(Err(CallError::Disconnected))),
        "{failed:?}"
    );
    assert!(
        after < Duration::from_secs(2),
        "failed {after:?} after the kill"
    );
    let info = within("closed", client.closed()).await.unwrap_err();
    assert_eq!(info.code, close_code::RELAY_PEER_LOST, "{info:?}");

    // The host re-registers at the survivor, and new calls succeed there.
    within("re-registered", spares.wait_for(|n| *n == 2))
        .await
        .unwrap();
    assert_eq!(host.relay_url(), survivor.url());
    let again = Client::via_relay(survivor.url(), host.public_key())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within("connect again", again.connect()).await.unwrap();
    let math = MathClient::from_caller(again.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(within("add", math.add(vec![2, 3])).await.unwrap(), 5);
    again.close(1000, "done").await.unwrap();
    host.close().await;
    survivor.close().await;
}

#[tokio::test]
async fn the_nodes_resubscribe_after_nats_restarts_and_calls_resume() {
    let mut nats = Nats::start().await;
    let (a, b) = (node(&nats).await, node(&nats).await);
    let host = host(&a.url(), Identity::generate(), 2).await;
    let add_through_b = || async {
        let client = caller(&b.url(), &host);
        client.connect().await.map_err(|e| e.to_string())?;
        let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
        let sum = math.add(vec![20, 22]).await.map_err(|e| e.to_string());
        let _ = client.close(1000, "done").await;
        sum
    };
    assert_eq!(within("before", add_through_b()).await, Ok(42));

    nats.restart().await;
    // Until both nodes are back on NATS, callers may be refused; then calls go through again.
    let resumed = within("calls resume", async {
        loop {
            match add_through_b().await {
                Ok(sum) => return sum,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert_eq!(resumed, 42);
    host.close().await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_flood_across_nodes_is_slowed_with_bounded_memory_and_loses_nothing() {
    let nats = Nats::start().await;
    let (a, a_url) = RelayProcess::start_with(&["--nats", &nats.url()]);
    let (b, b_url) = RelayProcess::start_with(&["--nats", &nats.url()]);
    // The host's spare at node a, joined by hand and then not reading; the caller at node b.
    let (mut spare, mut caller) = raw_route(&Identity::generate(), &a_url, &b_url).await;

    let before = (a.rss(), b.rss());
    let sent = flood(&mut caller).await;
    let during = (a.rss(), b.rss());
    assert!(
        sent < 256 << 20,
        "the sender was never slowed: {sent} bytes went"
    );
    for (node, before, during) in [("a", before.0, during.0), ("b", before.1, during.1)] {
        assert!(
            during.saturating_sub(before) < 48 << 20,
            "node {node}'s memory grew from {before} to {during} bytes while {sent} bytes were sent"
        );
    }
    // The receiver reads at last: every message the sender completed arrives, in full.
    read_flood(&mut spare, sent).await;
    eprintln!(
        "flood across nodes: {} MiB sent before the sender blocked; RSS a {} → {} MiB, b {} → {} MiB",
        sent >> 20,
        before.0 >> 20,
        during.0 >> 20,
        before.1 >> 20,
        during.1 >> 20
    );
}

#[tokio::test]
async fn a_message_lost_between_nodes_closes_the_route_with_the_defined_code() {
    let nats = Nats::start().await;
    let (a, b) = (node(&nats).await, node(&nats).await);
    let host = host(&a.url(), Identity::generate(), 1).await;
    // A NATS client of the test's own watches what node a sends to node b's end of routes.
    let spy = async_nats::connect(nats.url()).await.unwrap();
    let mut to_b = spy.subscribe("wsp.relay.tunnel.*.c").await.unwrap();
    spy.flush().await.unwrap();
    let client = caller(&b.url(), &host);
    within("connect", client.connect()).await.unwrap();
    let math = MathClient::from_caller(client.caller()).with_timeout(Duration::from_secs(5));
    assert_eq!(within("add", math.add(vec![1, 1])).await.unwrap(), 2);
    let seen = within("a tunnel message", to_b.next()).await.unwrap();
    let at_host = within("host side", async {
        loop {
            if let Some(p) = host.connections().pop() {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // One message "lost": the next node b sees skips a sequence number (a binary chunk).
    let mut forged = vec![1u8];
    forged.extend_from_slice(&u64::MAX.to_be_bytes());
    forged.extend_from_slice(b"lost in between");
    spy.publish(seen.subject, forged.into()).await.unwrap();
    spy.flush().await.unwrap();

    let info = within("the caller is closed", client.closed())
        .await
        .unwrap_err();
    assert_eq!(info.code, close_code::RELAY_LINK_BROKEN, "{info:?}");
    assert!(info.reason.contains("lost"), "{info:?}");
    let info = within("the host's end is closed", at_host.closed())
        .await
        .unwrap_err();
    assert_eq!(info.code, close_code::RELAY_LINK_BROKEN, "{info:?}");
    host.close().await;
    a.close().await;
    b.close().await;
}
