//! `wss://`: a Rust client and server over TLS with a certificate authority made at test time,
//! and a client that does not trust the certificate failing with a clear error.

mod common;

use common::*;
use wsp_runtime::tls::{ClientTls, ServerTls};
use wsp_runtime::{Client, ConnectError, ReconnectPolicy, Server, Value};

/// A CA and a certificate for `localhost` and 127.0.0.1 signed by it: (CA PEM, chain PEM, key PEM).
pub fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "wsp test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

async fn tls_server(chain: &str, key: &str) -> Server {
    server_with(
        Server::builder()
            .config(test_config())
            .service(math())
            .tls(ServerTls::from_pem(chain.as_bytes(), key.as_bytes()).unwrap()),
    )
    .await
}

#[tokio::test]
async fn calls_go_over_wss_to_a_server_with_a_private_ca() {
    let (ca, chain, key) = test_pki();
    let server = tls_server(&chain, &key).await;
    assert!(
        server.url().starts_with("wss://127.0.0.1:"),
        "{}",
        server.url()
    );
    for url in [
        server.url(),
        format!("wss://localhost:{}/", server.local_addr().port()),
    ] {
        let client = Client::builder(&url)
            .tls(ClientTls::empty().add_root_pem(ca.as_bytes()).unwrap())
            .reconnect(ReconnectPolicy::disabled())
            .build();
        within(10, client.connect()).await.unwrap();
        let sum = within(
            10,
            client
                .caller()
                .call_value("math.Math/add", vec![1.into(), 2.into()]),
        )
        .await
        .unwrap();
        assert_eq!(sum, Value::from(3), "{url}");
        // A frame larger than one TLS record.
        let big = Value::Binary(vec![7; 200_000]);
        let back = within(
            10,
            client
                .caller()
                .call_value("math.Math/echo", vec![big.clone()]),
        )
        .await
        .unwrap();
        assert_eq!(back, big);
        client.close(1000, "done").await.unwrap();
    }
    server.close().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_fails_clearly() {
    let (ca, chain, key) = test_pki();
    let server = tls_server(&chain, &key).await;
    // The default roots (Mozilla's) do not include the test CA.
    let client = Client::builder(server.url())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    match within(10, client.connect()).await {
        Err(ConnectError::Tls(why)) => {
            assert!(why.contains("UnknownIssuer"), "{why}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    // Another CA is no better.
    let (other_ca, _, _) = test_pki();
    let client = Client::builder(server.url())
        .tls(
            ClientTls::empty()
                .add_root_pem(other_ca.as_bytes())
                .unwrap(),
        )
        .reconnect(ReconnectPolicy::disabled())
        .build();
    assert!(matches!(
        within(10, client.connect()).await,
        Err(ConnectError::Tls(_))
    ));
    // The server serves on, to a client that trusts it.
    let client = Client::builder(server.url())
        .tls(ClientTls::empty().add_root_pem(ca.as_bytes()).unwrap())
        .reconnect(ReconnectPolicy::disabled())
        .build();
    within(10, client.connect()).await.unwrap();
    client.close(1000, "done").await.unwrap();
    server.close().await;
}

#[test]
fn bad_pem_is_a_clear_error() {
    let e = ServerTls::from_pem(b"not a certificate", b"nor a key").unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let e = ClientTls::empty().add_root_pem(b"nothing").unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
}
