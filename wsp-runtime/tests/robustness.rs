//! Raw WebSocket peers speaking (or breaking) the protocol bytes: the documented layout, and
//! the defined outcome of bad input (PROTOCOL §1, §2, §7, §8).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsp_runtime::{Client, Codec, Config, ReconnectPolicy, Server, Value};

/// The example of PROTOCOL §10, byte for byte.
#[tokio::test]
async fn protocol_example_frames() {
    let server = math_server().await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    // [0, 1, {"math.Math.client": ""}]
    let mut hello = vec![0x93, 0x00, 0x01, 0x81, 0xb0];
    hello.extend_from_slice(b"math.Math.client");
    hello.push(0xa0);
    send_bin(&mut ws, hello).await;
    // [1, 1, "math.Math/add", 30000, [[1, 2, 3]]]
    let mut call = vec![0x95, 0x01, 0x01, 0xad];
    call.extend_from_slice(b"math.Math/add");
    call.extend_from_slice(&[0xcd, 0x75, 0x30, 0x91, 0x93, 0x01, 0x02, 0x03]);
    send_bin(&mut ws, call).await;

    // [0, 1, {"math.Math": ""}]
    let mut expected_hello = vec![0x93, 0x00, 0x01, 0x81, 0xa9];
    expected_hello.extend_from_slice(b"math.Math");
    expected_hello.push(0xa0);
    assert_eq!(
        next_msg(&mut ws).await,
        Message::Binary(expected_hello.into())
    );
    // [4, 1, 6]
    assert_eq!(
        next_msg(&mut ws).await,
        Message::Binary(vec![0x93, 0x04, 0x01, 0x06].into())
    );

    // [5, 2, 1, "unknown method …", nil] for an unknown method
    send_bin(
        &mut ws,
        mp(&arr(vec![
            1.into(),
            2.into(),
            "x.Y/z".into(),
            Value::Nil,
            arr(vec![]),
        ])),
    )
    .await;
    let err = decode(&next_msg(&mut ws).await);
    let e = err.as_array().unwrap();
    assert_eq!(
        (e[0].as_u64(), e[1].as_u64(), e[2].as_u64()),
        (Some(5), Some(2), Some(1))
    );
    assert!(e[4].is_nil());
    // CANCEL of an unknown id and a REPLY nobody waits for are ignored.
    send_bin(&mut ws, mp(&arr(vec![8.into(), 77.into()]))).await;
    send_bin(&mut ws, mp(&arr(vec![4.into(), 78.into(), Value::Nil]))).await;
    // A STREAM with credit 2: two ITEMs, then the producer waits for CREDIT.
    send_bin(
        &mut ws,
        mp(&arr(vec![
            2.into(),
            3.into(),
            "math.Math/count".into(),
            Value::Nil,
            2.into(),
            arr(vec![3.into()]),
        ])),
    )
    .await;
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![6.into(), 3.into(), 0.into()])
    );
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![6.into(), 3.into(), 1.into()])
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(150), ws.next())
            .await
            .is_err(),
        "no third ITEM without credit"
    );
    send_bin(&mut ws, mp(&arr(vec![9.into(), 3.into(), 5.into()]))).await;
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![6.into(), 3.into(), 2.into()])
    );
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![7.into(), 3.into()])
    );
}

#[tokio::test]
async fn json_frames_are_text() {
    let server = math_server().await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.json, wsp.v1.msgpack")).await;
    ws.send(Message::text(r#"[0, 1, {}]"#)).await.unwrap();
    ws.send(Message::text(r#"[1, 1, "math.Math/add", null, [1, 2, 3]]"#))
        .await
        .unwrap();
    assert_eq!(
        next_msg(&mut ws).await,
        Message::text(r#"[0,1,{"math.Math":""}]"#)
    );
    assert_eq!(next_msg(&mut ws).await, Message::text("[4,1,6]"));
    // A binary frame on a JSON connection closes with 1003.
    send_bin(&mut ws, vec![0x90]).await;
    assert_eq!(close_code(&mut ws).await, 1003);
}

/// Bad input on one connection closes that connection with its code; others keep working.
async fn expect_close(server: &Server, frames: Vec<Message>, code: u16) {
    let healthy = client_of(server, Codec::MsgPack).await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    for f in frames {
        let _ = ws.send(f).await;
    }
    assert_eq!(close_code(&mut ws).await, code);
    let r = within(
        5,
        healthy.call_value("math.Math/add", vec![1.into(), 1.into()]),
    )
    .await;
    assert_eq!(r.unwrap(), Value::from(2));
}

#[tokio::test]
async fn malformed_frames_close_with_their_codes() {
    let server = math_server().await;
    let hello = || Message::Binary(hello_bytes().into());
    // Garbage bytes: not valid MessagePack.
    expect_close(
        &server,
        vec![hello(), Message::Binary(vec![0xc1, 0xff, 0x00].into())],
        1007,
    )
    .await;
    // Valid MessagePack, not a frame.
    expect_close(
        &server,
        vec![hello(), Message::Binary(vec![0x01].into())],
        1002,
    )
    .await;
    // Unknown frame type.
    expect_close(
        &server,
        vec![hello(), Message::Binary(vec![0x92, 0x63, 0x01].into())],
        1002,
    )
    .await;
    // A frame before HELLO, and a second HELLO.
    expect_close(
        &server,
        vec![Message::Binary(vec![0x92, 0x07, 0x01].into())],
        1002,
    )
    .await;
    expect_close(&server, vec![hello(), hello()], 1002).await;
    // Unsupported version.
    expect_close(
        &server,
        vec![Message::Binary(vec![0x93, 0x00, 0x02, 0x80].into())],
        4000,
    )
    .await;
    // A text frame on a MessagePack connection.
    expect_close(&server, vec![hello(), Message::text("[1]")], 1003).await;
    assert!(server.stats().invalid_frames >= 7);
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let config = test_config().max_message_size(4096);
    let server = server_with(Server::builder().config(config).service(math())).await;
    let big = mp(&arr(vec![
        1.into(),
        1.into(),
        "math.Math/echo".into(),
        Value::Nil,
        arr(vec![Value::Binary(vec![0; 10_000])]),
    ]));
    expect_close(
        &server,
        vec![
            Message::Binary(hello_bytes().into()),
            Message::Binary(big.into()),
        ],
        1009,
    )
    .await;
}

#[tokio::test]
async fn deeply_nested_arguments_get_invalid_arguments_and_the_connection_survives() {
    let server = math_server().await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    send_bin(&mut ws, hello_bytes()).await;
    let _hello = next_msg(&mut ws).await;
    // [1, 5, "math.Math/echo", nil, [[[[… 10,000 levels …]]]]]
    let mut call = mp(&arr(vec![
        1.into(),
        5.into(),
        "math.Math/echo".into(),
        Value::Nil,
    ]));
    call[0] = 0x95;
    call.extend(std::iter::repeat_n(0x91u8, 10_000));
    call.push(0xc0);
    send_bin(&mut ws, call).await;
    let err = decode(&next_msg(&mut ws).await);
    let e = err.as_array().unwrap();
    assert_eq!(
        (e[0].as_u64(), e[1].as_u64(), e[2].as_u64()),
        (Some(5), Some(5), Some(2)),
        "{err}"
    );
    send_bin(
        &mut ws,
        mp(&arr(vec![
            1.into(),
            6.into(),
            "math.Math/add".into(),
            Value::Nil,
            arr(vec![2.into()]),
        ])),
    )
    .await;
    assert_eq!(
        decode(&next_msg(&mut ws).await),
        arr(vec![4.into(), 6.into(), 2.into()])
    );

    // The same over JSON.
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.json")).await;
    ws.send(Message::text("[0,1,{}]")).await.unwrap();
    let _hello = next_msg(&mut ws).await;
    let deep = format!(
        r#"[1,5,"math.Math/echo",null,{}{}]"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    ws.send(Message::text(deep)).await.unwrap();
    match next_msg(&mut ws).await {
        Message::Text(t) => assert!(t.starts_with("[5,5,2,"), "{t}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_hello_closes_with_4001() {
    let config = test_config().handshake_timeout(Duration::from_millis(200));
    let server = server_with(Server::builder().config(config).service(math())).await;
    let mut ws = raw_connect(&server.url(), Some("wsp.v1.msgpack")).await;
    assert_eq!(close_code(&mut ws).await, 4001);
}

#[tokio::test]
async fn subprotocol_negotiation() {
    let server = math_server().await;
    // No subprotocol offered: accepted as MessagePack.
    let mut ws = raw_connect(&server.url(), None).await;
    send_bin(&mut ws, hello_bytes()).await;
    assert!(matches!(next_msg(&mut ws).await, Message::Binary(_)));
    // Only unsupported ones: HTTP 400.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.url(),
    )
    .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", "foo.v9".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn keepalive_detects_a_dead_peer() {
    // A "server" that completes the handshake, says HELLO, then never reads again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _dead = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = accept_raw_hello(tcp).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(ws);
    });
    let config = Config::default()
        .keepalive(Some(Duration::from_millis(50)), Duration::from_millis(300))
        .close_timeout(Duration::from_millis(100));
    let client = Client::builder(format!("ws://{addr}/"))
        .config(config)
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(5, client.connect()).await.unwrap();
    let peer = client.peer().unwrap();
    let err = within(3, peer.closed()).await.unwrap_err();
    assert_eq!(err.code, 4002);
    assert!(peer.stats().frames_sent >= 2, "pings were sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_is_always_the_first_frame_even_when_a_call_follows_at_once() {
    // A call alone on its connection is written on the caller's task; it must never overtake
    // the HELLO the writer task is about to write (seen as a 1-2 % race before the fix).
    const CONNECTIONS: usize = 200;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut first_types = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = accept_raw_hello(tcp).await;
            let first = loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => break b,
                    Some(Ok(_)) => continue,
                    other => panic!("connection ended before a frame: {other:?}"),
                }
            };
            // `[type, ...]`: a fixarray header, then the frame type.
            first_types.push(first[1]);
        }
        first_types
    });
    for _ in 0..CONNECTIONS {
        let client = Client::builder(format!("ws://{addr}/"))
            .reconnect(ReconnectPolicy::disabled())
            .build();
        within(5, client.connect()).await.unwrap();
        // Nobody answers: only the order of what the client writes matters here.
        let _ = tokio::time::timeout(
            Duration::from_millis(20),
            client.call_value("math.Math/add", vec![Value::from(1)]),
        )
        .await;
        client.disconnect().await;
    }
    let first_types = within(10, server).await.unwrap();
    let not_hello = first_types.iter().filter(|t| **t != 0).count();
    assert_eq!(
        not_hello, 0,
        "{not_hello} of {CONNECTIONS} connections began with a frame other than HELLO"
    );
}
