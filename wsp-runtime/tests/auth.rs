//! Authentication at accept time: an asynchronous check of the upgrade request (a token looked
//! up in a store) refuses with an HTTP status or gives the connection typed data its handlers
//! read; a client's headers are computed at every connect, so a refreshed token is sent after
//! a reconnect.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio_tungstenite::tungstenite::Error as WsError;
use wsp_runtime::{
    Client, ConnectError, FnService, ReconnectPolicy, Reject, Server, ServiceError, Value,
};

/// Who a connection belongs to, as the token store says.
#[derive(Debug)]
struct User {
    name: String,
    token: String,
}

/// A token store that answers after a while, as a database would.
#[derive(Clone, Default)]
struct Store(Arc<Mutex<HashMap<String, String>>>);

impl Store {
    async fn lookup(&self, token: &str) -> Option<String> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.lock().unwrap().get(token).cloned()
    }
}

async fn server(store: Store) -> Server {
    let whoami = FnService::new("auth.Auth")
        .unary("whoami", |ctx, _| async move {
            let user = ctx
                .data::<User>()
                .ok_or_else(|| ServiceError::internal("no user"))?;
            Ok(Value::Array(vec![
                user.name.as_str().into(),
                user.token.as_str().into(),
            ]))
        })
        .into_service();
    server_with(
        Server::builder()
            .config(test_config())
            .service(whoami)
            .authenticate(move |req| {
                let store = store.clone();
                async move {
                    let token = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .ok_or_else(|| Reject::new(401, "a bearer token is required"))?
                        .to_owned();
                    match store.lookup(&token).await {
                        Some(name) => Ok(User { name, token }),
                        None => Err(Reject::new(403, "unknown token")),
                    }
                }
            }),
    )
    .await
}

async fn whoami(client: &Client) -> (String, String) {
    let v = within(10, client.caller().call_value("auth.Auth/whoami", vec![]))
        .await
        .unwrap();
    let a = v.as_array().unwrap();
    (
        a[0].as_str().unwrap().to_owned(),
        a[1].as_str().unwrap().to_owned(),
    )
}

fn refused(r: Result<(), ConnectError>) -> (u16, String) {
    match r {
        Err(ConnectError::WebSocket(WsError::Http(resp))) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (resp.status().as_u16(), body)
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_async_check_refuses_bad_tokens_and_types_the_good_ones() {
    let store = Store::default();
    store.0.lock().unwrap().insert("good".into(), "ada".into());
    let server = server(store).await;

    let none = Client::builder(server.url())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    assert_eq!(
        refused(within(10, none.connect()).await),
        (401, "a bearer token is required".into())
    );
    let bad = Client::builder(server.url())
        .header("Authorization", "Bearer bad")
        .reconnect(ReconnectPolicy::disabled())
        .build();
    assert_eq!(
        refused(within(10, bad.connect()).await),
        (403, "unknown token".into())
    );

    let good = Client::builder(server.url())
        .header("Authorization", "Bearer good")
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(10, good.connect()).await.unwrap();
    assert_eq!(whoami(&good).await, ("ada".into(), "good".into()));
    good.close(1000, "done").await.unwrap();
    server.close().await;
}

#[tokio::test]
async fn a_refreshed_token_is_sent_after_a_reconnect() {
    let store = Store::default();
    store.0.lock().unwrap().insert("first".into(), "ada".into());
    store
        .0
        .lock()
        .unwrap()
        .insert("second".into(), "ada".into());
    let server = server(store).await;
    let current = Arc::new(Mutex::new("first".to_owned()));
    let token = current.clone();
    let client = Client::builder(server.url())
        .config(test_config())
        .headers_from(move || {
            let token = token.lock().unwrap().clone();
            async move { vec![("Authorization".into(), format!("Bearer {token}"))] }
        })
        .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_millis(20)))
        .build();
    within(10, client.connect()).await.unwrap();
    assert_eq!(whoami(&client).await.1, "first");
    // The token is refreshed; then the server drops the connection (a restart, as the client
    // sees it) and the client reconnects with the new token.
    *current.lock().unwrap() = "second".into();
    let mut state = client.watch_state();
    for peer in server.connections() {
        let _ = peer.close(1012, "restarting").await;
    }
    within(
        10,
        state.wait_for(|s| *s == wsp_runtime::ConnectionState::Reconnecting),
    )
    .await
    .unwrap();
    within(
        10,
        state.wait_for(|s| *s == wsp_runtime::ConnectionState::Connected),
    )
    .await
    .unwrap();
    assert_eq!(whoami(&client).await.1, "second");
    client.close(1000, "done").await.unwrap();
    server.close().await;
}
