//! The services behind the examples and the README demo, written against the code that
//! `build.rs` generates from `schemas/math.wsp` and `schemas/chat.wsp`.
//!
//! - [`math`] and [`chat`] are the generated modules.
//! - [`Calculator`] implements the `math.Math` service.
//! - [`Room`] implements `chat.Chat`: it asks each joining client a question, broadcasts posts
//!   to every member and streams the room to followers.
//! - [`Terminal`] is the client side of `chat.Chat`: it answers the server's calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wsp_runtime::RpcError;

use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast;
use wsp_runtime::{CallContext, Items, ServiceError};

/// Generated from `schemas/math.wsp`.
#[allow(missing_docs)]
pub mod math {
    wsp_runtime::include_schema!("math");
}

/// Generated from `schemas/chat.wsp`.
#[allow(missing_docs)]
pub mod chat {
    wsp_runtime::include_schema!("chat");
}

use chat::{ChatCallbacksClient, ChatError, Message};
use math::MathError;

/// The `math.Math` service.
#[derive(Debug, Default)]
pub struct Calculator;

impl math::Math for Calculator {
    async fn add(&self, _ctx: CallContext, values: Vec<i64>) -> Result<i64, RpcError<MathError>> {
        values
            .iter()
            .try_fold(0i64, |sum, v| sum.checked_add(*v))
            .ok_or_else(|| {
                MathError::Overflow {
                    operation: "add".into(),
                }
                .into()
            })
    }

    async fn divide(&self, _ctx: CallContext, a: f64, b: f64) -> Result<f64, RpcError<MathError>> {
        if b == 0.0 {
            Err(MathError::DivisionByZero.into())
        } else {
            Ok(a / b)
        }
    }

    fn count(
        self: Arc<Self>,
        _ctx: CallContext,
        from: u32,
        to: u32,
    ) -> impl Stream<Item = Result<u32, ServiceError>> + Send + 'static {
        stream::iter(from..=to).then(|n| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(n)
        })
    }

    async fn sum(
        &self,
        _ctx: CallContext,
        mut values: Items<i64>,
    ) -> Result<i64, RpcError<MathError>> {
        let mut total = 0i64;
        while let Some(value) = values.next().await {
            total = total.checked_add(value?).ok_or(MathError::Overflow {
                operation: "sum".into(),
            })?;
        }
        Ok(total)
    }

    fn running(
        self: Arc<Self>,
        _ctx: CallContext,
        start: i64,
        values: Items<i64>,
    ) -> impl Stream<Item = Result<i64, RpcError<MathError>>> + Send + 'static {
        running_totals(start, values)
    }

    async fn reset(&self, _ctx: CallContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn log(&self, ctx: CallContext, line: String) {
        println!(
            "  [server] log from connection {}: {line}",
            ctx.connection_id()
        );
    }
}

/// The running total from `start`, one per value as it comes; an overflow ends the stream with
/// `Overflow`.
fn running_totals(
    start: i64,
    values: Items<i64>,
) -> impl Stream<Item = Result<i64, RpcError<MathError>>> + Send + 'static {
    stream::unfold(Some((values, start)), |state| async move {
        let (mut values, total) = state?;
        let value = match values.next().await? {
            Ok(value) => value,
            Err(e) => return Some((Err(e.into()), None)),
        };
        Some(match total.checked_add(value) {
            Some(total) => (Ok(total), Some((values, total))),
            None => {
                let overflow = MathError::Overflow {
                    operation: "running".into(),
                };
                (Err(overflow.into()), None)
            }
        })
    })
}

/// A chat room: the `chat.Chat` service.
#[derive(Debug)]
pub struct Room {
    members: Mutex<HashMap<u64, Member>>,
    history: Mutex<Vec<Message>>,
    feed: broadcast::Sender<Message>,
}

#[derive(Debug)]
struct Member {
    name: String,
    client: ChatCallbacksClient,
}

impl Default for Room {
    fn default() -> Self {
        Self {
            members: Mutex::default(),
            history: Mutex::default(),
            feed: broadcast::channel(64).0,
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Room {
    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl chat::Chat for Room {
    async fn join(
        &self,
        ctx: CallContext,
        name: String,
    ) -> Result<Vec<Message>, RpcError<ChatError>> {
        if self.members().values().any(|m| m.name == name) {
            return Err(ChatError::NameTaken { name }.into());
        }
        // A call from the server into the client, in the middle of the client's own call.
        let client = ChatCallbacksClient::from_context(&ctx);
        let answer = client
            .ask(
                "Do you accept the room rules?",
                vec!["yes".into(), "no".into()],
            )
            .await
            .map_err(|_| ChatError::RoomFull)?;
        if answer != "yes" {
            return Err(ChatError::RoomFull.into());
        }
        self.members()
            .insert(ctx.connection_id(), Member { name, client });
        Ok(self
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn post(&self, ctx: CallContext, text: String) -> Result<(), ServiceError> {
        let (author, targets) = {
            let members = self.members();
            let author = members
                .get(&ctx.connection_id())
                .map_or_else(|| "anonymous".to_owned(), |m| m.name.clone());
            let targets: Vec<ChatCallbacksClient> =
                members.values().map(|m| m.client.clone()).collect();
            (author, targets)
        };
        let message = Message {
            author,
            text,
            sent_at: now_millis(),
        };
        {
            // History and feed change under one lock, so a follower sees each message once.
            let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            history.push(message.clone());
            // A receiver-less feed is not an error: nobody follows the room right now.
            let _ = self.feed.send(message.clone());
        }
        for client in targets {
            let message = message.clone();
            // Each notification is queued on its own connection; one slow member does not hold
            // up the post or the others.
            tokio::spawn(async move {
                let _ = client.broadcast(message).await;
            });
        }
        Ok(())
    }

    fn follow(
        self: Arc<Self>,
        _ctx: CallContext,
    ) -> impl Stream<Item = Result<Message, ServiceError>> + Send + 'static {
        let (past, rx) = {
            let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            (history.clone(), self.feed.subscribe())
        };
        let live = stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(message) => return Some((Ok(message), rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        stream::iter(past.into_iter().map(Ok)).chain(live)
    }

    async fn leave(&self, ctx: CallContext) {
        self.members().remove(&ctx.connection_id());
    }
}

/// The client side of `chat.Chat`: prints what the server sends and answers its questions.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// Shown before every line this client prints.
    pub name: String,
    /// The answer given to every question.
    pub answer: String,
}

impl chat::ChatCallbacks for Terminal {
    async fn broadcast(&self, _ctx: CallContext, message: Message) {
        println!(
            "  [{}] broadcast: <{}> {}",
            self.name, message.author, message.text
        );
    }

    async fn ask(
        &self,
        _ctx: CallContext,
        question: String,
        choices: Vec<String>,
    ) -> Result<String, ServiceError> {
        println!(
            "  [{}] the server asks: {question} {choices:?} -> {}",
            self.name, self.answer
        );
        Ok(self.answer.clone())
    }

    fn typing(
        self: Arc<Self>,
        _ctx: CallContext,
        _room: String,
    ) -> impl Stream<Item = Result<bool, ServiceError>> + Send + 'static {
        stream::iter([true, false].map(Ok))
    }

    async fn review(
        &self,
        _ctx: CallContext,
        mut draft: Items<String>,
    ) -> Result<u32, ServiceError> {
        let mut kept = 0;
        while let Some(line) = draft.next().await {
            if !line?.trim().is_empty() {
                kept += 1;
            }
        }
        Ok(kept)
    }

    fn shout(
        self: Arc<Self>,
        _ctx: CallContext,
        lines: Items<String>,
    ) -> impl Stream<Item = Result<String, ServiceError>> + Send + 'static {
        lines.map(|line| Ok(line?.to_uppercase()))
    }
}

/// The axum example's application: an ordinary route (`GET /health`), the wsp route (`/wsp`)
/// and, given a Prometheus recorder's handle, `GET /metrics` (the server's statistics and the
/// per-method call metrics, in Prometheus text), all on one router, so one port serves them.
pub fn axum_app(
    wsp: wsp_runtime::Server,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> axum::Router {
    let mut app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/wsp", wsp_runtime::axum::route(wsp.clone()));
    if let Some(handle) = metrics {
        app = app.route(
            "/metrics",
            axum::routing::get(move || {
                let (wsp, handle) = (wsp.clone(), handle.clone());
                async move {
                    wsp.export_metrics();
                    handle.render()
                }
            }),
        );
    }
    app
}
