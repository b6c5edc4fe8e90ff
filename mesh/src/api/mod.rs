//! The operator HTTP API (axum, JSON). Read endpoints take their own read transactions
//! on the store; operator actions (POST, bearer token from the config) go through the
//! node's event loop so they are serialised with ingest and recorded in the lineage.
//! `GET /openapi.json` describes every route; `GET /metrics` is Prometheus text.

mod openapi;

use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use slope_proto::DeviceId;

use crate::metrics::Metrics;
use crate::node::ApiPort;
use crate::store::{DeviceRecord, Store};
use crate::trust::Scope;

/// What the handlers share.
#[derive(Clone)]
pub struct State {
    pub store: Arc<Store>,
    pub metrics: Metrics,
    pub node: ApiPort,
    pub token: String,
    pub peer_id: String,
    pub witness: String,
    /// The gateway's public key (hex), what peers list in `[[trust.witnesses]]`.
    pub witness_key: String,
}

/// The router.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/devices", get(devices))
        .route("/v1/devices/{id}", get(device))
        .route("/v1/devices/{id}/lineage", get(device_lineage))
        .route("/v1/devices/{id}/release", post(release))
        .route("/v1/devices/{id}/pin", post(pin))
        .route("/v1/divergences", get(divergences))
        .route("/v1/peers", get(peers))
        .route("/v1/lineage/verify", get(lineage_verify))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An API error: status and message, as JSON.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn parse_id(s: &str) -> ApiResult<DeviceId> {
    let bytes = hex::decode(s)
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "device id: not hexadecimal".into()))?;
    let id: [u8; 32] = bytes.try_into().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "device id: expected 64 hex characters".into(),
        )
    })?;
    Ok(DeviceId(id))
}

fn authorize(state: &State, headers: &HeaderMap) -> ApiResult<()> {
    if state.token.is_empty() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "operator actions are disabled: set api.token in the configuration".into(),
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare in constant time over the token's length.
    let ok = given.is_some_and(|g| {
        g.len() == state.token.len()
            && g.bytes()
                .zip(state.token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ))
    }
}

/// A device in a listing.
#[derive(Serialize)]
pub struct DeviceSummary {
    pub device: String,
    pub admission: crate::trust::Admission,
    pub depth: u32,
    pub head_seq: u32,
    pub epoch: u32,
    pub witnesses: usize,
    pub quarantined: bool,
    pub last_seen_ms: u64,
}

fn summary(id: &DeviceId, r: &DeviceRecord) -> DeviceSummary {
    DeviceSummary {
        device: hex::encode(id.0),
        admission: r.admission,
        depth: r.depth,
        head_seq: r.head_seq,
        epoch: r.epoch,
        witnesses: r.witnesses.len(),
        quarantined: r.quarantine.is_some(),
        last_seen_ms: r.last_seen_ms,
    }
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::DOCUMENT,
    )
        .into_response()
}

async fn metrics(AxState(s): AxState<State>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn status(AxState(s): AxState<State>) -> ApiResult<Json<serde_json::Value>> {
    let (records, head) = s.store.lineage_head()?;
    let peers = s.node.peers().await.map(|p| p.len()).unwrap_or(0);
    Ok(Json(json!({
        "peer_id": s.peer_id,
        "witness": s.witness,
        "witness_key": s.witness_key,
        "devices": s.store.device_count()?,
        "divergences": s.store.divergence_count()?,
        "peers": peers,
        "lineage": { "records": records, "head": hex::encode(head) },
    })))
}

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
    limit: Option<usize>,
}

async fn devices(
    AxState(s): AxState<State>,
    Query(p): Query<Page>,
) -> ApiResult<Json<Vec<DeviceSummary>>> {
    let after = p.after.as_deref().map(parse_id).transpose()?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let list = s.store.devices(after.as_ref(), limit)?;
    Ok(Json(list.iter().map(|(id, r)| summary(id, r)).collect()))
}

async fn device(
    AxState(s): AxState<State>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_id(&id)?;
    let r = s
        .store
        .device(&id)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "unknown device".into()))?;
    let proof = s.store.divergence(&id)?.map(hex::encode);
    let compact = s.store.compact_device(&id)?;
    let mut suites = vec![1u8];
    suites.extend(compact.map(|_| 2u8));
    let witnesses: Vec<_> = r
        .witnesses
        .iter()
        .map(|w| json!({"witness": hex::encode(w.witness), "count": w.count, "last_rssi_dbm": w.last_rssi}))
        .collect();
    Ok(Json(json!({
        "device": hex::encode(id.0),
        "admission": r.admission,
        "reasons": r.reasons.lines(),
        "slope": {
            "head_seq": r.head_seq,
            "head_digest": hex::encode(r.head_digest),
            "epoch": r.epoch,
            "depth": r.depth,
            "first_seen_ms": r.first_seen_ms,
            "last_seen_ms": r.last_seen_ms,
        },
        "grant": r.grant,
        "pinned": r.pinned,
        "quarantine": r.quarantine.map(|q| json!({
            "seq": q.seq,
            "proof_digest": hex::encode(q.proof_digest),
            "lineage_index": q.lineage_index,
            "proof": proof,
        })),
        "witnesses": witnesses,
        "rf_profile": {
            "samples": r.rf.count,
            "mean_rssi_dbm": r.rf.mean_rssi,
            "mean_snr_db": r.rf.mean_snr_db,
            "last_freq_hz": r.rf.last_freq_hz,
            "last_sf": r.rf.last_sf,
        },
        "suites": suites,
        "compact": compact.map(|c| json!({
            "anchor_epoch": c.epoch,
            "chain_first": c.first,
            "chain_len": c.len,
            "start_ms": c.start_ms,
            "interval_ms": c.interval_ms,
            "delay": c.delay,
            "head_interval": c.head_interval,
            "chain_position": c.head_interval.map(|h| h.saturating_sub(c.first).saturating_add(1)),
            "frames": c.frames,
            "authenticated": c.authenticated,
            "bad_mac": c.bad_mac,
            "renewed": c.renewed.map(|(first, len)| json!({"first": first, "len": len})),
        })),
    })))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn device_lineage(
    AxState(s): AxState<State>,
    Path(id): Path<String>,
    Query(l): Query<Limit>,
) -> ApiResult<Json<Vec<crate::lineage::Record>>> {
    let id = parse_id(&id)?;
    let limit = l.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(s.store.lineage_of(&id, limit)?))
}

/// Stored proofs a page at a time (`after`, `limit` as for devices), each re-verified
/// with its own suite's verifier: `seq` is the position (suite 1) or the interval
/// (suite 2) the two events conflict at.
async fn divergences(
    AxState(s): AxState<State>,
    Query(p): Query<Page>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let after = p.after.as_deref().map(parse_id).transpose()?;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        s.store
            .divergences_page(after.as_ref(), limit)?
            .into_iter()
            .map(|(id, proof)| {
                let checked = crate::pipeline::check_proof(&proof);
                let suite = if crate::pipeline::compact::is_compact(&proof) {
                    2
                } else {
                    1
                };
                json!({
                    "device": hex::encode(id.0),
                    "suite": suite,
                    "seq": checked.map(|(_, _, seq)| seq),
                    "verified": checked.is_some(),
                    "proof": hex::encode(proof),
                })
            })
            .collect(),
    ))
}

async fn peers(AxState(s): AxState<State>) -> ApiResult<Json<Vec<crate::node::PeerInfo>>> {
    Ok(Json(s.node.peers().await?))
}

async fn lineage_verify(AxState(s): AxState<State>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(match s.store.verify_lineage()? {
        Ok(n) => json!({"ok": true, "records": n}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    }))
}

#[derive(Deserialize, Default)]
struct Note {
    #[serde(default)]
    note: String,
}

async fn release(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Note>>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize(&s, &headers)?;
    let id = parse_id(&id)?;
    let note = body.map(|b| b.0.note).unwrap_or_default();
    let released = s.node.release(id, note).await?;
    if !released {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "device unknown or not quarantined".into(),
        ));
    }
    Ok(Json(json!({"released": true})))
}

#[derive(Deserialize)]
struct PinBody {
    scope: Option<Scope>,
    #[serde(default)]
    note: String,
}

async fn pin(
    AxState(s): AxState<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<PinBody>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize(&s, &headers)?;
    let id = parse_id(&id)?;
    if !s.node.pin(id, body.scope, body.note).await? {
        return Err(ApiError(StatusCode::NOT_FOUND, "unknown device".into()));
    }
    Ok(Json(json!({"pinned": body.scope})))
}
