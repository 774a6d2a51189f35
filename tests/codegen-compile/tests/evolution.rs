//! A peer built from `schemas/evolution/v1.wsp` talking to one built from `v2.wsp`, both ways
//! (PROTOCOL.md §6): added optional field, optional trailing parameter, method, client-side
//! notification, service and enum variant; renamed parameter; reordered fields; removed (and
//! reserved) optional field, variant and method.
//! `wsp-codegen breaking --against v1.wsp v2.wsp` passes on this pair (wsp-codegen's
//! `tests/breaking.rs`): this test is the proof on the wire that what it accepts works.

mod common;

use common::{connect, serve, within};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;
use wsp_codegen_compile_tests::{v1, v2};
use wsp_runtime::codegen::Stream;
use wsp_runtime::{CallContext, CallError, Codec, ServiceError};

struct V1Server {
    seen: mpsc::UnboundedSender<String>,
}

impl v1::evolution::Accounts for V1Server {
    async fn get(
        &self,
        _ctx: CallContext,
        id: u64,
    ) -> Result<v1::evolution::Profile, ServiceError> {
        Ok(v1::evolution::Profile {
            name: format!("user {id}"),
            nickname: Some("nick".into()),
        })
    }

    async fn set_status(
        &self,
        _ctx: CallContext,
        id: u64,
        status: v1::evolution::Status,
    ) -> Result<(), ServiceError> {
        let status = match status {
            v1::evolution::Status::Unknown(newer) => format!("unknown {}", newer.name()),
            known => format!("{known:?}"),
        };
        let _ = self.seen.send(format!("{id} {status}"));
        Ok(())
    }

    async fn delete_account(&self, _ctx: CallContext, id: u64) -> Result<(), ServiceError> {
        let _ = self.seen.send(format!("delete {id}"));
        Ok(())
    }
}

struct V2Server {
    seen: mpsc::UnboundedSender<String>,
}

impl v2::evolution::Accounts for V2Server {
    async fn get(
        &self,
        _ctx: CallContext,
        id: u64,
    ) -> Result<v2::evolution::Profile, ServiceError> {
        Ok(v2::evolution::Profile {
            name: format!("user {id}"),
            email: Some("u@example.com".into()),
        })
    }

    async fn set_status(
        &self,
        _ctx: CallContext,
        id: u64,
        status: v2::evolution::Status,
        note: Option<String>,
    ) -> Result<(), ServiceError> {
        let status = match status {
            v2::evolution::Status::Unknown(older) => format!("unknown {}", older.name()),
            known => format!("{known:?}"),
        };
        let _ = self.seen.send(format!("{id} {status} {note:?}"));
        Ok(())
    }

    fn list(
        self: Arc<Self>,
        _ctx: CallContext,
    ) -> impl Stream<Item = Result<v2::evolution::Profile, ServiceError>> + Send + 'static {
        futures_util::stream::iter(vec![Ok(v2::evolution::Profile {
            name: "a".into(),
            email: None,
        })])
    }
}

#[tokio::test]
async fn old_client_talks_to_new_server() {
    for codec in [Codec::MsgPack, Codec::Json] {
        let (tx, mut seen) = mpsc::unbounded_channel();
        let server = serve(vec![
            v2::evolution::AccountsServer::new(V2Server { seen: tx }).into_service(),
        ])
        .await;
        let client = connect(&server, codec, vec![]).await;
        let old = v1::evolution::AccountsClient::from_caller(client.caller());

        // The new optional field is ignored by the old reader.
        let profile = within(old.get(u64::MAX)).await.unwrap();
        assert_eq!(profile.name, format!("user {}", u64::MAX));
        assert_eq!(profile.nickname, None);
        // The new optional trailing parameter is absent.
        within(old.set_status(7, v1::evolution::Status::Offline))
            .await
            .unwrap();
        assert_eq!(within(seen.recv()).await.unwrap(), "7 Offline None");
        // The removed variant decodes as the unknown one, with its name.
        within(old.set_status(8, v1::evolution::Status::Invisible))
            .await
            .unwrap();
        assert_eq!(
            within(seen.recv()).await.unwrap(),
            "8 unknown Invisible None"
        );
        // The removed method is unknown to the new server.
        let gone = within(old.delete_account(9)).await;
        assert!(matches!(gone, Err(CallError::UnknownMethod(_))), "{gone:?}");
        // The new client-side notification: the old client drops it and counts it, and the
        // connection goes on.
        for peer in server.connections() {
            let callbacks = v2::evolution::AccountsCallbacksClient::from_caller(peer.caller());
            within(callbacks.changed(9)).await.unwrap();
        }
        for _ in 0..200 {
            if client.stats().invalid_frames == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(client.stats().invalid_frames, 1);
        assert_eq!(within(old.get(3)).await.unwrap().name, "user 3");

        within(client.close(1000, "done")).await.unwrap();
        within(server.close()).await;
    }
}

#[tokio::test]
async fn new_client_talks_to_old_server() {
    for codec in [Codec::MsgPack, Codec::Json] {
        let (tx, mut seen) = mpsc::unbounded_channel();
        let server = serve(vec![
            v1::evolution::AccountsServer::new(V1Server { seen: tx }).into_service(),
        ])
        .await;
        let client = connect(&server, codec, vec![]).await;
        let new = v2::evolution::AccountsClient::from_caller(client.caller());

        // The removed field is ignored, the added one is absent.
        let profile = within(new.get(1)).await.unwrap();
        assert_eq!(profile.email, None);
        // The renamed parameter arrives in its position.
        assert_eq!(profile.name, "user 1");
        // The extra trailing argument is ignored; the new variant decodes as the unknown one,
        // with its name.
        within(new.set_status(
            2,
            v2::evolution::Status::Away { since: 5 },
            Some("lunch".into()),
        ))
        .await
        .unwrap();
        assert_eq!(within(seen.recv()).await.unwrap(), "2 unknown Away");
        within(new.set_status(3, v2::evolution::Status::Online, None))
            .await
            .unwrap();
        assert_eq!(within(seen.recv()).await.unwrap(), "3 Online");
        // The added service is unknown to the old server.
        let badges = v2::evolution::BadgesClient::from_caller(client.caller());
        let unknown = within(badges.award(2, "gold")).await;
        assert!(
            matches!(unknown, Err(CallError::UnknownMethod(_))),
            "{unknown:?}"
        );
        // The added method is unknown to the old server.
        let items: Vec<_> = within(new.list().collect::<Vec<_>>()).await;
        assert_eq!(items.len(), 1);
        assert!(
            matches!(items[0], Err(CallError::UnknownMethod(_))),
            "{items:?}"
        );

        within(client.close(1000, "done")).await.unwrap();
        within(server.close()).await;
    }
}
