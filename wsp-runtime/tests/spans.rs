//! The per-call spans: each incoming call runs in a `wsp.handle` span naming the connection,
//! the call id and the method, with its outcome recorded — a handler that finishes at its
//! first poll (answered without a task) as well as one that waits; each outgoing call runs in
//! a `wsp.call` span.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use wsp_runtime::{Client, FnService, ReconnectPolicy, Server, ServiceError, Value};

/// Fields of a span as text.
#[derive(Clone, Debug, Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().into(),
            format!("{value:?}").trim_matches('"').into(),
        );
    }
}

/// What the capturing layer saw.
#[derive(Clone, Default)]
struct Seen {
    /// Each event's message with the name and fields of the span it happened in.
    events: Arc<Mutex<Vec<(String, String, Fields)>>>,
    /// Each closed span's name and final fields.
    closed: Arc<Mutex<Vec<(String, Fields)>>>,
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        ctx.span(id).unwrap().extensions_mut().insert(f);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(ext.get_mut::<Fields>().unwrap());
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut msg = Fields::default();
        event.record(&mut msg);
        let message = msg.0.get("message").cloned().unwrap_or_default();
        if let Some(span) = ctx.event_span(event) {
            let fields = span
                .extensions()
                .get::<Fields>()
                .cloned()
                .unwrap_or_default();
            self.events
                .lock()
                .unwrap()
                .push((message, span.name().into(), fields));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span
            .extensions()
            .get::<Fields>()
            .cloned()
            .unwrap_or_default();
        self.closed
            .lock()
            .unwrap()
            .push((span.name().into(), fields));
    }
}

#[tokio::test]
async fn every_incoming_call_runs_in_its_span_with_its_outcome() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    let _default = tracing::subscriber::set_default(subscriber);

    let svc = FnService::new("t.T")
        .unary("fast", |_, _| async {
            tracing::info!("in fast");
            Ok(Value::from(1))
        })
        .unary("slow", |_, _| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tracing::info!("in slow");
            Ok(Value::from(2))
        })
        .unary("fail", |_, _| async {
            tracing::info!("in fail");
            Err(ServiceError::unavailable("not now"))
        })
        .into_service();
    let server = server_with(Server::builder().config(test_config()).service(svc)).await;
    let client = Client::builder(server.url())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(10, client.connect()).await.unwrap();
    let conn = server.connections()[0].id().to_string();
    for m in ["fast", "slow", "fail"] {
        let _ = within(10, client.caller().call_value(&format!("t.T/{m}"), vec![])).await;
    }
    client.close(1000, "done").await.unwrap();
    server.close().await;

    let events = seen.events.lock().unwrap().clone();
    for (m, outcome) in [("fast", "ok"), ("slow", "ok"), ("fail", "UNAVAILABLE")] {
        let (_, span, fields) = events
            .iter()
            .find(|(msg, _, _)| *msg == format!("in {m}"))
            .unwrap_or_else(|| panic!("no event of {m}: {events:?}"));
        assert_eq!(span, "wsp.handle", "{m}");
        assert_eq!(
            fields.0.get("method").map(String::as_str),
            Some(&*format!("t.T/{m}"))
        );
        assert_eq!(fields.0.get("conn"), Some(&conn), "{m}");
        let closed = seen.closed.lock().unwrap().clone();
        let done = closed
            .iter()
            .find(|(name, f)| {
                name == "wsp.handle" && f.0.get("method") == Some(&format!("t.T/{m}"))
            })
            .unwrap_or_else(|| panic!("the span of {m} did not close: {closed:?}"));
        assert_eq!(
            done.1.0.get("outcome").map(String::as_str),
            Some(outcome),
            "{m}"
        );
    }
    let calls = seen
        .closed
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == "wsp.call")
        .count();
    assert!(calls >= 3, "the outgoing calls' spans: {calls}");
}
