//! The IC HTTP interface (the subset ic-agent 0.49 uses), served on loopback with axum:
//!
//! - `GET /api/v2/status`: CBOR status with the root key;
//! - `POST /api/{v2,v3,v4}/canister/<ecid>/call` (v2 answers 202 at once; v3/v4 wait for the result and answer
//!   with a certificate, or 202 after [`SYNC_CALL_TIMEOUT`]); also `/api/{v3,v4}/subnet/<id>/call`;
//! - `POST /api/{v2,v3}/canister/<ecid>/query`, signed by the node key;
//! - `POST /api/{v2,v3}/canister/<ecid>/read_state` and `/api/{v2,v3}/subnet/<id>/read_state`.
//!
//! Requests are validated as a replica does: CBOR envelope, request type, content fields, ingress expiry, sender
//! and signature (with delegations), effective canister id, size. Malformed requests get 400, oversized ones 413,
//! read_state of another sender's request 403, unknown endpoints 404; nothing a client sends panics the devnet.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use candid::Principal;
use ciborium::value::Value;

use crate::cbor::{self, as_bytes, as_text, as_u64, get as field, untag};
use crate::crypto;
use crate::replica::{IngressCall, IngressStatus, Reject, Replica, wall_nanos};

/// How long a synchronous call waits for its result before answering 202.
pub const SYNC_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP request body (the ingress payload limit is checked separately, with 413 as well).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// The IC's maximum ingress time-to-live and the clock drift it tolerates.
pub const MAX_INGRESS_TTL: Duration = Duration::from_secs(5 * 60);
pub const PERMITTED_DRIFT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct AppState {
    pub replica: Arc<Mutex<Replica>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v2/status", get(status))
        .route("/api/v2/canister/{ecid}/call", post(call_async))
        .route("/api/v3/canister/{ecid}/call", post(call_sync))
        .route("/api/v4/canister/{ecid}/call", post(call_sync))
        .route("/api/v3/subnet/{sid}/call", post(call_sync_subnet))
        .route("/api/v4/subnet/{sid}/call", post(call_sync_subnet))
        .route("/api/v2/canister/{ecid}/query", post(query))
        .route("/api/v3/canister/{ecid}/query", post(query))
        .route("/api/v2/canister/{ecid}/read_state", post(read_state))
        .route("/api/v3/canister/{ecid}/read_state", post(read_state))
        .route("/api/v2/subnet/{sid}/read_state", post(read_state_subnet))
        .route("/api/v3/subnet/{sid}/read_state", post(read_state_subnet))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not found: the devnet serves /api/v2/status and the canister and subnet call, query and read_state endpoints\n") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn cbor_response(status: StatusCode, v: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/cbor")], cbor::encode_tagged(v)).into_response()
}

/// An error response, boxed (it travels in `Err` variants).
fn error(status: StatusCode, msg: impl Into<String>) -> Box<Response> {
    Box::new(error_response(status, msg))
}

fn error_response(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], m).into_response()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| error_response(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}")))
}

fn lock(r: &Arc<Mutex<Replica>>) -> std::sync::MutexGuard<'_, Replica> {
    // A panic inside the replica would be a devnet bug; keep serving with the state as it is.
    r.lock().unwrap_or_else(|p| p.into_inner())
}

async fn status(State(s): State<AppState>) -> Response {
    let root_key = lock(&s.replica).root_key().to_vec();
    cbor_response(
        StatusCode::OK,
        cbor::map([
            ("ic_api_version", cbor::text("0.18.0")),
            ("impl_version", cbor::text(concat!("opml-devnet ", env!("CARGO_PKG_VERSION")))),
            ("replica_health_status", cbor::text("healthy")),
            ("root_key", cbor::bytes(&root_key)),
        ]),
    )
}

/// A validated request.
struct Validated {
    request_id: [u8; 32],
    sender: Principal,
    expiry: u64,
    canister_id: Option<Principal>,
    method_name: Option<String>,
    arg: Option<Vec<u8>>,
    paths: Option<Vec<Vec<Vec<u8>>>>,
    /// Size of the message for the ingress limit: method name and argument.
    payload_bytes: usize,
}

type HttpResult<T> = Result<T, Box<Response>>;

fn parse_principal(v: Option<&Value>, field: &str) -> HttpResult<Principal> {
    let b = v.and_then(as_bytes).ok_or_else(|| {
        error(StatusCode::BAD_REQUEST, format!("Could not parse body: missing or invalid `{field}` (a blob)"))
    })?;
    Principal::try_from_slice(b).map_err(|e| {
        error(StatusCode::BAD_REQUEST, format!("Could not parse body: invalid principal in `{field}`: {e}"))
    })
}

/// Parses and validates an envelope for `expected` ("call", "query" or "read_state").
fn validate(headers: &HeaderMap, body: &[u8], expected: &str) -> HttpResult<Validated> {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) if ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/cbor")) => {}
        _ => return Err(error(StatusCode::BAD_REQUEST, "Unexpected content-type, expected application/cbor.")),
    }
    let value: Value = ciborium::de::from_reader(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("Could not parse body as {expected} message: {e}")))?;
    let bad = |m: String| error(StatusCode::BAD_REQUEST, format!("Could not parse body as {expected} message: {m}"));
    let Value::Map(envelope) = untag(&value) else {
        return Err(bad("the envelope is not a map".into()));
    };
    let Some(Value::Map(content)) = field(envelope, "content").map(untag) else {
        return Err(bad("missing `content` map".into()));
    };
    let request_type =
        field(content, "request_type").and_then(as_text).ok_or_else(|| bad("missing `request_type`".into()))?;
    if request_type != expected {
        return Err(bad(format!("request_type is `{request_type}`, this endpoint takes `{expected}`")));
    }
    let sender = parse_principal(field(content, "sender"), "sender")?;
    let expiry = field(content, "ingress_expiry")
        .and_then(as_u64)
        .ok_or_else(|| bad("missing or invalid `ingress_expiry` (a nat64)".into()))?;
    let request_id = cbor::hash_of_map(content).map_err(|e| bad(format!("cannot compute the request id: {e}")))?;

    let (mut canister_id, mut method_name, mut arg, mut paths) = (None, None, None, None);
    let mut payload_bytes = 0usize;
    if expected == "read_state" {
        let Some(Value::Array(ps)) = field(content, "paths").map(untag) else {
            return Err(bad("missing `paths` (an array of paths)".into()));
        };
        let mut out = Vec::new();
        for p in ps {
            let Value::Array(labels) = untag(p) else {
                return Err(bad("a path is not an array of blobs".into()));
            };
            let mut path = Vec::new();
            for l in labels {
                path.push(as_bytes(l).ok_or_else(|| bad("a path label is not a blob".into()))?.to_vec());
            }
            out.push(path);
        }
        paths = Some(out);
    } else {
        canister_id = Some(parse_principal(field(content, "canister_id"), "canister_id")?);
        let m = field(content, "method_name")
            .and_then(as_text)
            .ok_or_else(|| bad("missing `method_name` (text)".into()))?;
        let a = field(content, "arg").and_then(as_bytes).ok_or_else(|| bad("missing `arg` (a blob)".into()))?;
        payload_bytes = m.len() + a.len();
        method_name = Some(m.to_string());
        arg = Some(a.to_vec());
    }

    // Expiry, against the host's wall clock (advancing the devnet's time does not expire clients' requests).
    let now = wall_nanos();
    let min = now;
    let max = now + (MAX_INGRESS_TTL + PERMITTED_DRIFT).as_nanos() as u64;
    if expiry < min || expiry > max {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid request expiry: Specified ingress_expiry not within expected range: Minimum allowed expiry: \
                 {min}, Maximum allowed expiry: {max}, Provided expiry: {expiry}"
            ),
        ));
    }

    authenticate(envelope, sender, &request_id, canister_id, now)?;
    Ok(Validated { request_id, sender, expiry, canister_id, method_name, arg, paths, payload_bytes })
}

/// Checks the sender against the signature (and delegation chain) of the envelope.
fn authenticate(
    envelope: &[(Value, Value)],
    sender: Principal,
    request_id: &[u8; 32],
    target: Option<Principal>,
    now: u64,
) -> HttpResult<()> {
    let unauthorized = |m: String| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Failed to authenticate request 0x{} due to: {m}", hex::encode(request_id)),
        )
    };
    let pubkey = field(envelope, "sender_pubkey").and_then(as_bytes);
    let sig = field(envelope, "sender_sig").and_then(as_bytes);
    let delegations = field(envelope, "sender_delegation").map(untag);
    if sender == Principal::anonymous() {
        if pubkey.is_some() || sig.is_some() || delegations.is_some() {
            return Err(unauthorized(
                "the anonymous sender must not have a public key, signature or delegation".into(),
            ));
        }
        return Ok(());
    }
    let (Some(pubkey), Some(sig)) = (pubkey, sig) else {
        return Err(unauthorized(format!("missing signature or public key for non-anonymous sender {sender}")));
    };
    if Principal::self_authenticating(pubkey) != sender {
        return Err(unauthorized(format!("the sender {sender} does not match the public key in sender_pubkey")));
    }
    let mut key = pubkey.to_vec();
    if let Some(d) = delegations {
        let Value::Array(chain) = d else {
            return Err(unauthorized("sender_delegation is not an array".into()));
        };
        if chain.len() > 20 {
            return Err(unauthorized("the delegation chain is longer than 20".into()));
        }
        for signed in chain {
            let Value::Map(signed) = untag(signed) else {
                return Err(unauthorized("a delegation is not a map".into()));
            };
            let Some(Value::Map(del)) = field(signed, "delegation").map(untag) else {
                return Err(unauthorized("a signed delegation has no `delegation` map".into()));
            };
            let dsig = field(signed, "signature")
                .and_then(as_bytes)
                .ok_or_else(|| unauthorized("a delegation has no signature".into()))?;
            let dkey = field(del, "pubkey")
                .and_then(as_bytes)
                .ok_or_else(|| unauthorized("a delegation has no pubkey".into()))?;
            let exp = field(del, "expiration")
                .and_then(as_u64)
                .ok_or_else(|| unauthorized("a delegation has no expiration".into()))?;
            let hash = cbor::hash_of_map(del).map_err(|e| unauthorized(format!("invalid delegation: {e}")))?;
            let mut msg = crypto::DOMAIN_DELEGATION.to_vec();
            msg.extend_from_slice(&hash);
            crypto::verify_signature(&key, &msg, dsig)
                .map_err(|e| unauthorized(format!("invalid delegation signature: {e}")))?;
            if exp < now {
                return Err(unauthorized(format!("a delegation expired at {exp} (now {now})")));
            }
            if let Some(Value::Array(targets)) = field(del, "targets").map(untag)
                && let Some(t) = target
                && !targets.iter().any(|x| as_bytes(x) == Some(t.as_slice()))
            {
                return Err(unauthorized(format!("canister {t} is not one of the delegation's targets")));
            }
            key = dkey.to_vec();
        }
    }
    let mut msg = crypto::DOMAIN_REQUEST.to_vec();
    msg.extend_from_slice(request_id);
    crypto::verify_signature(&key, &msg, sig).map_err(|e| unauthorized(format!("Invalid signature: {e}")))?;
    Ok(())
}

fn parse_ecid(s: &str) -> HttpResult<Principal> {
    Principal::from_text(s)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("Invalid effective canister id {s:?}: {e}")))
}

fn check_size(v: &Validated, max: usize) -> HttpResult<()> {
    if v.payload_bytes > max {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request 0x{} is too large. Message byte size {} is larger than the max allowed {max}.",
                hex::encode(v.request_id),
                v.payload_bytes
            ),
        ));
    }
    Ok(())
}

fn check_ecid(canister_id: Principal, ecid: Principal) -> HttpResult<()> {
    if canister_id != Principal::management_canister() && canister_id != ecid {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("Specified CanisterId {canister_id} does not match effective canister id in URL {ecid}"),
        ));
    }
    Ok(())
}

fn reject_fields(r: &Reject) -> [(&'static str, Value); 3] {
    [
        ("reject_code", cbor::nat(r.code as u64)),
        ("reject_message", cbor::text(&r.message)),
        ("error_code", cbor::text(&r.error_code)),
    ]
}

fn non_replicated_rejection(r: &Reject) -> Response {
    let [a, b, c] = reject_fields(r);
    cbor_response(StatusCode::OK, cbor::map([("status", cbor::text("non_replicated_rejection")), a, b, c]))
}

/// Accepts an update call; returns the validated request, or the response to send.
fn accept_call(s: &AppState, headers: &HeaderMap, body: &[u8], ecid: Option<Principal>) -> HttpResult<Validated> {
    let v = validate(headers, body, "call")?;
    let cid = v.canister_id.expect("calls have a canister id");
    if let Some(ecid) = ecid {
        check_ecid(cid, ecid)?;
    }
    let mut r = lock(&s.replica);
    check_size(&v, r.limits.max_ingress_bytes)?;
    let call = IngressCall {
        request_id: v.request_id,
        sender: v.sender,
        canister_id: cid,
        method: v.method_name.clone().expect("calls have a method"),
        arg: v.arg.clone().expect("calls have an arg"),
        expiry: v.expiry,
    };
    r.submit_ingress(call).map_err(|rej| Box::new(non_replicated_rejection(&rej)))?;
    Ok(v)
}

async fn call_async(State(s): State<AppState>, Path(ecid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let st = s.clone();
    let r = blocking(move || -> HttpResult<()> {
        let ecid = parse_ecid(&ecid)?;
        accept_call(&st, &headers, &body, Some(ecid))?;
        lock(&st.replica).run_pass();
        Ok(())
    })
    .await;
    match r {
        Ok(Ok(())) | Err(_) => StatusCode::ACCEPTED.into_response(),
        Ok(Err(resp)) => *resp,
    }
}

async fn call_sync(State(s): State<AppState>, Path(ecid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    sync_call(s, Some(ecid), headers, body).await
}

async fn call_sync_subnet(
    State(s): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let st = s.clone();
    let ok = blocking(move || parse_ecid(&sid).map(|p| p == lock(&st.replica).subnet_id())).await;
    match ok {
        Ok(Ok(true)) => sync_call(s, None, headers, body).await,
        Ok(Ok(false)) => error_response(StatusCode::NOT_FOUND, "Unknown subnet id"),
        Ok(Err(r)) => *r,
        Err(r) => r,
    }
}

async fn sync_call(s: AppState, ecid: Option<String>, headers: HeaderMap, body: Bytes) -> Response {
    let r = blocking(move || -> HttpResult<Response> {
        let ecid = ecid.as_deref().map(parse_ecid).transpose()?;
        let v = accept_call(&s, &headers, &body, ecid)?;
        let start = Instant::now();
        loop {
            let mut r = lock(&s.replica);
            if let Some((st, _)) = r.ingress_status(&v.request_id)
                && matches!(st, IngressStatus::Replied(_) | IngressStatus::Rejected(_) | IngressStatus::Done)
            {
                let cert = r.certificate(&[vec![b"request_status".to_vec(), v.request_id.to_vec()]]);
                return Ok(cbor_response(
                    StatusCode::OK,
                    cbor::map([("status", cbor::text("replied")), ("certificate", Value::Bytes(cert))]),
                ));
            }
            if start.elapsed() > SYNC_CALL_TIMEOUT {
                return Ok(StatusCode::ACCEPTED.into_response());
            }
            let n = r.run_pass();
            drop(r);
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    })
    .await;
    match r {
        Ok(Ok(resp)) | Err(resp) => resp,
        Ok(Err(resp)) => *resp,
    }
}

async fn query(State(s): State<AppState>, Path(ecid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let r = blocking(move || -> HttpResult<Response> {
        let ecid = parse_ecid(&ecid)?;
        let v = validate(&headers, &body, "query")?;
        let cid = v.canister_id.expect("queries have a canister id");
        check_ecid(cid, ecid)?;
        let mut r = lock(&s.replica);
        check_size(&v, r.limits.max_ingress_bytes)?;
        let result = r.query(v.sender, cid, v.method_name.as_deref().unwrap_or(""), v.arg.clone().unwrap_or_default());
        let timestamp = wall_nanos();
        let rid = Value::Bytes(v.request_id.to_vec());
        let (signable, mut response): (Value, Vec<(&str, Value)>) = match &result {
            Ok(reply) => {
                let reply_map = cbor::map([("arg", Value::Bytes(reply.clone()))]);
                (
                    cbor::map([
                        ("status", cbor::text("replied")),
                        ("reply", reply_map.clone()),
                        ("request_id", rid),
                        ("timestamp", cbor::nat(timestamp)),
                    ]),
                    vec![("status", cbor::text("replied")), ("reply", reply_map)],
                )
            }
            Err(rej) => {
                let [a, b, c] = reject_fields(rej);
                (
                    cbor::map([
                        ("status", cbor::text("rejected")),
                        a.clone(),
                        b.clone(),
                        c.clone(),
                        ("request_id", rid),
                        ("timestamp", cbor::nat(timestamp)),
                    ]),
                    vec![("status", cbor::text("rejected")), a, b, c],
                )
            }
        };
        let Value::Map(entries) = &signable else { unreachable!() };
        let hash = cbor::hash_of_map(entries).expect("hashable");
        let sig = r.sign_query_response(&hash);
        let node = r.node_id();
        response.push((
            "signatures",
            Value::Array(vec![cbor::map([
                ("timestamp", cbor::nat(timestamp)),
                ("signature", Value::Bytes(sig)),
                ("identity", Value::Bytes(node.as_slice().to_vec())),
            ])]),
        ));
        Ok(cbor_response(
            StatusCode::OK,
            Value::Map(response.into_iter().map(|(k, v)| (Value::Text(k.to_string()), v)).collect()),
        ))
    })
    .await;
    match r {
        Ok(Ok(resp)) | Err(resp) => resp,
        Ok(Err(resp)) => *resp,
    }
}

async fn read_state(State(s): State<AppState>, Path(ecid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    read_state_impl(s, Target::Canister(ecid), headers, body).await
}

async fn read_state_subnet(
    State(s): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    read_state_impl(s, Target::Subnet(sid), headers, body).await
}

enum Target {
    Canister(String),
    Subnet(String),
}

async fn read_state_impl(s: AppState, target: Target, headers: HeaderMap, body: Bytes) -> Response {
    let r = blocking(move || -> HttpResult<Response> {
        let v = validate(&headers, &body, "read_state")?;
        let paths = v.paths.clone().unwrap_or_default();
        let mut r = lock(&s.replica);
        let (ecid, subnet) = match &target {
            Target::Canister(e) => (Some(parse_ecid(e)?), None),
            Target::Subnet(sid) => {
                let sid = parse_ecid(sid)?;
                if sid != r.subnet_id() {
                    return Err(error(StatusCode::NOT_FOUND, format!("Unknown subnet id {sid}")));
                }
                (None, Some(sid))
            }
        };
        let mut request_ids = Vec::new();
        for p in &paths {
            let first = p.first().map(|l| l.as_slice());
            match first {
                None => return Err(error(StatusCode::BAD_REQUEST, "Invalid path requested: an empty path")),
                Some(b"time") | Some(b"subnet") | Some(b"canister_ranges") | Some(b"api_boundary_nodes") => {}
                Some(b"request_status") if subnet.is_none() => {
                    let Some(rid) = p.get(1) else {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            "Invalid path requested: request_status needs a request id",
                        ));
                    };
                    let rid: [u8; 32] = rid.as_slice().try_into().map_err(|_| {
                        error(StatusCode::BAD_REQUEST, "Invalid path requested: a request id is 32 bytes")
                    })?;
                    if !request_ids.contains(&rid) {
                        request_ids.push(rid);
                    }
                    if request_ids.len() > 1 {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            "Can only request a single request ID in request_status paths",
                        ));
                    }
                    if let Some((_, sender)) = r.ingress_status(&rid)
                        && sender != v.sender
                    {
                        return Err(error(
                            StatusCode::FORBIDDEN,
                            "Request IDs must be for requests signed by the caller.",
                        ));
                    }
                }
                Some(b"canister") if subnet.is_none() => {
                    let Some(cid) = p.get(1) else {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            "Invalid path requested: canister needs a canister id",
                        ));
                    };
                    let ecid = ecid.expect("canister endpoint");
                    if cid.as_slice() != ecid.as_slice() {
                        let shown =
                            Principal::try_from_slice(cid).map(|p| p.to_text()).unwrap_or_else(|_| hex::encode(cid));
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "Effective principal id in URL {ecid} does not match requested principal id: {shown}."
                            ),
                        ));
                    }
                }
                Some(other) => {
                    return Err(error(
                        StatusCode::NOT_FOUND,
                        format!("Invalid path requested: {}", String::from_utf8_lossy(other)),
                    ));
                }
            }
        }
        let cert = r.certificate(&paths);
        Ok(cbor_response(StatusCode::OK, cbor::map([("certificate", Value::Bytes(cert))])))
    })
    .await;
    match r {
        Ok(Ok(resp)) | Err(resp) => resp,
        Ok(Err(resp)) => *resp,
    }
}
