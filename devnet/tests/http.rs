//! What the devnet answers to malformed, oversized, expired and unauthenticated requests (raw HTTP), and that it
//! keeps serving afterwards.

mod common;

use candid::{Encode, Principal};
use ciborium::value::Value;
use common::*;
use opml_devnet::DevnetConfig;
use reqwest::StatusCode;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// An anonymous envelope of `request_type` for `canister` (CBOR, self-describe tag).
fn envelope(request_type: &str, canister: Principal, method: &str, arg: Vec<u8>, expiry: u64) -> Vec<u8> {
    let content = Value::Map(vec![
        (text("request_type"), text(request_type)),
        (text("canister_id"), Value::Bytes(canister.as_slice().to_vec())),
        (text("method_name"), text(method)),
        (text("arg"), Value::Bytes(arg)),
        (text("sender"), Value::Bytes(vec![4])),
        (text("ingress_expiry"), Value::Integer(expiry.into())),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&Value::Tag(55799, Box::new(Value::Map(vec![(text("content"), content)]))), &mut out)
        .unwrap();
    out
}

async fn post(url: &str, body: Vec<u8>, content_type: &str) -> (StatusCode, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the devnet answers");
    let status = resp.status();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn malformed_oversized_and_expired_requests() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let base = devnet.url().to_string();
    let call = format!("{base}/api/v4/canister/{id}/call");
    let query_url = format!("{base}/api/v3/canister/{id}/query");
    let read_state_url = format!("{base}/api/v3/canister/{id}/read_state");
    let soon = now_nanos() + 60_000_000_000;

    // Not CBOR.
    for url in [&call, &query_url, &read_state_url] {
        let (s, body) = post(url, b"\xff\x00 certainly not cbor".to_vec(), "application/cbor").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("Could not parse body"));
    }
    // CBOR, but not an envelope / wrong request type / missing fields.
    let (s, _) = post(&call, vec![0x83, 1, 2, 3], "application/cbor").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, body) = post(&call, envelope("query", id, "inc", Encode!().unwrap(), soon), "application/cbor").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    // Wrong content type.
    let (s, _) = post(&call, envelope("call", id, "inc", Encode!().unwrap(), soon), "application/json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Expired, and too far in the future.
    for expiry in [now_nanos() - 600_000_000_000, now_nanos() + 3_600_000_000_000] {
        let (s, body) = post(&call, envelope("call", id, "inc", Encode!().unwrap(), expiry), "application/cbor").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("ingress_expiry not within expected range"));
    }

    // An argument over the 2 MiB ingress limit: 413 from the ingress check; a body over 5 MiB: 413 at once.
    let big = envelope("call", id, "inc", vec![0u8; 2 * 1024 * 1024 + 1], soon);
    let (s, body) = post(&call, big, "application/cbor").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&body));
    let (s, _) = post(&call, vec![0u8; 6 * 1024 * 1024], "application/cbor").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);

    // A non-anonymous sender without a signature.
    let content = Value::Map(vec![
        (text("request_type"), text("call")),
        (text("canister_id"), Value::Bytes(id.as_slice().to_vec())),
        (text("method_name"), text("inc")),
        (text("arg"), Value::Bytes(Encode!().unwrap())),
        (text("sender"), Value::Bytes(vec![1; 29])),
        (text("ingress_expiry"), Value::Integer(soon.into())),
    ]);
    let mut unsigned = Vec::new();
    ciborium::ser::into_writer(&Value::Map(vec![(text("content"), content)]), &mut unsigned).unwrap();
    let (s, body) = post(&call, unsigned, "application/cbor").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("authenticate"));

    // Canister id and effective canister id disagree.
    let other = opml_devnet::replica::canister_id_from_u64(7);
    let (s, _) = post(
        &format!("{base}/api/v4/canister/{other}/call"),
        envelope("call", id, "inc", Encode!().unwrap(), soon),
        "application/cbor",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Unknown endpoint.
    let (s, _) = post(&format!("{base}/api/v9/nothing"), vec![], "application/cbor").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A well-formed anonymous call still works, synchronously, with a certificate.
    let (s, body) = post(&call, envelope("call", id, "inc", Encode!().unwrap(), soon), "application/cbor").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = ciborium::de::from_reader(&body[..]).unwrap();
    let Value::Tag(55799, inner) = v else { panic!("untagged response") };
    let Value::Map(m) = *inner else { panic!("not a map") };
    assert!(m.iter().any(|(k, v)| *k == text("status") && *v == text("replied")));
    assert!(m.iter().any(|(k, _)| *k == text("certificate")));

    // Status.
    let resp = reqwest::get(format!("{base}/api/v2/status")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = ciborium::de::from_reader(&resp.bytes().await.unwrap()[..]).unwrap();
    let Value::Tag(_, inner) = v else { panic!() };
    let Value::Map(m) = *inner else { panic!() };
    let root = m.iter().find(|(k, _)| *k == text("root_key")).map(|(_, v)| v.clone());
    assert_eq!(root, Some(Value::Bytes(devnet.root_key())));

    // The agent still gets through.
    let agent = anonymous_agent(&base).await;
    assert_eq!(query::<u64>(&agent, id, "get", Encode!().unwrap()).await, 1);
}

#[tokio::test]
async fn read_state_of_another_senders_request_is_forbidden() {
    let (devnet, id) = devnet_with_counter(DevnetConfig::default());
    let alice = agent(devnet.url(), ed25519_identity(21)).await;
    let bob = agent(devnet.url(), ed25519_identity(22)).await;
    let signed = alice.update(&id, "inc").with_arg(Encode!().unwrap()).sign().unwrap();
    let rid = signed.request_id;
    let _ = alice.update_signed(id, signed.signed_update).await.unwrap();
    let (_, _cert) = alice.request_status_raw(&rid, id).await.unwrap();
    let e = bob.request_status_raw(&rid, id).await.unwrap_err();
    match e {
        ic_agent::AgentError::HttpError(p) => assert_eq!(p.status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
}
