//! Request routing: serve an eligible request from HAPI after the checks, or relay the
//! request to the Python gateway unchanged (every other request, and every doubt).

use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::checks;
use crate::config::Config;
use crate::events::{Event, Events};
use crate::grants::{self, Grants, Standing};
use crate::lane::{self, Candidate};

/// Bodies sent upstream: a client's request body (relayed) or a whole one of ours.
pub type ReqBody = Either<Incoming, Full<Bytes>>;
/// Bodies answered: a whole checked body of ours, or the gateway's (streamed).
pub type RespBody = Either<Full<Bytes>, Incoming>;
pub type HttpClient = Client<HttpConnector, ReqBody>;

/// The largest HAPI answer checked here (a larger one goes to the gateway).
const MAX_BODY: usize = 32 << 20;
/// Header fields that end at this hop (never relayed either way).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const UNREACHABLE: &str = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"the gateway's policy engine is unreachable"}]}"#;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub cfg: Config,
    pub client: HttpClient,
    pub grants: Grants,
    pub events: Events,
    ids: RandomState,
    next_id: AtomicU64,
}

impl App {
    pub fn new(cfg: Config, events: Events) -> App {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            // below uvicorn's 5 s keep-alive: the gateway never closes a connection the pool
            // is about to reuse (HAPI's connections are only ever asked again on a miss)
            .pool_idle_timeout(Duration::from_secs(4))
            .pool_max_idle_per_host(128) // room for 64 concurrent clients and their grant calls
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        App {
            cfg,
            client,
            grants: Grants::default(),
            events,
            ids: RandomState::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// 16 random lowercase hex digits (for an event whose client sent no x-request-id).
    fn new_request_id(&self) -> String {
        let mut hasher = self.ids.build_hasher();
        hasher.write_u64(self.next_id.fetch_add(1, Ordering::Relaxed));
        format!("{:016x}", hasher.finish())
    }

    /// The token's grant, from the cache or the gateway; None: not served here.
    async fn grant(&self, token: &str) -> Option<Arc<grants::Grant>> {
        let standing: Standing = match self.grants.cached(token, unix_now()) {
            Some(standing) => standing,
            None => {
                let (valid_until, standing) = grants::ask(&self.client, &self.cfg, token).await?;
                self.grants.insert(token, valid_until, standing.clone());
                standing
            }
        };
        standing
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One request: served here if it is eligible and everything checks out, else relayed.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    if let Some(response) = serve(&app, &parts, arrived).await {
        return Ok(response);
    }
    Ok(relay(&app, parts, body).await)
}

/// The answer served here, or None to let the gateway answer.
async fn serve(app: &App, parts: &Parts, arrived: Instant) -> Option<Response<RespBody>> {
    let cfg = &app.cfg;
    let cand = lane::candidate(cfg, parts)?;
    let grant = app.grant(cand.token).await?;
    let uri = lane::upstream_uri(cfg, &grant, &cand)?;
    let (headers, body) = tokio::time::timeout(cfg.upstream_timeout, ask_hapi(app, uri, &cand))
        .await
        .ok()??;
    let served = checks::body_ok(cfg, &grant, &cand, &body)?;

    let length = body.len();
    let mut response = Response::new(Either::Left(Full::new(body)));
    let out = response.headers_mut();
    for (name, value) in &headers {
        if matches!(
            name.as_str(),
            "etag"
                | "last-modified"
                | "x-request-id"
                | "retry-after"
                | "x-progress"
                | "cache-control"
                | "expires"
                | "location"
                | "content-location"
        ) {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert(CONTENT_TYPE, cand.content_type.clone());
    out.insert(CONTENT_LENGTH, HeaderValue::from(length));

    let latency = arrived.elapsed().as_secs_f64() * 1000.0;
    let request_id = match cand.request_id.and_then(|v| v.to_str().ok()) {
        Some(id) => id.to_owned(),
        None => app.new_request_id(),
    };
    let event = Event {
        ts: unix_now(),
        request_id,
        method: "GET",
        path: cand.path.to_owned(),
        query: cand.query.to_owned(),
        grant: grant.id.clone(),
        interaction: cand.interaction.name(),
        resource_type: cand.resource_type.to_owned(),
        status: 200,
        result_count: served.result_count,
        patients: served.patients,
        latency_ms: (latency * 1000.0).round() / 1000.0,
    };
    // no event, no answer: a request the audit would not see is left to the gateway
    app.events.send(event).then_some(response)
}

/// HAPI's answer to the lane's request, if its head passes the checks: headers and body.
async fn ask_hapi(app: &App, uri: http::Uri, cand: &Candidate<'_>) -> Option<(HeaderMap, Bytes)> {
    let mut req = Request::new(Either::Right(Full::new(Bytes::new())));
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    if let Some(id) = cand.request_id {
        headers.append(X_REQUEST_ID, id.clone());
    }
    headers.append(X_FORWARDED_HOST, cand.host.clone());
    headers.append(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.append(ACCEPT, app.cfg.upstream_accept.clone());
    headers.append(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    let response = app.client.request(req).await.ok()?;
    if !checks::head_ok(&app.cfg, response.status(), response.headers(), cand) {
        return None; // dropping the body: the pool does not reuse a connection left unread
    }
    let (head, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()?
        .to_bytes();
    if checks::encoding(&head.headers)? {
        // served as the gateway serves it: inflated
        return Some((head.headers, Bytes::from(checks::gunzip(&body, MAX_BODY)?)));
    }
    Some((head.headers, body))
}

/// The request to the Python gateway as the client sent it (minus hop-by-hop fields), and its
/// answer back the same way, bodies streamed.
async fn relay(app: &App, parts: Parts, body: Incoming) -> Response<RespBody> {
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri = if target.starts_with('/') {
        format!("{}{}", app.cfg.gateway, target).parse().ok()
    } else {
        None // `OPTIONS *` and the like: not a path the gateway serves
    };
    let Some(uri) = uri else {
        let mut response = Response::new(Either::Left(Full::new(Bytes::new())));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let mut req = Request::new(Either::Left(body));
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = parts.headers;
    strip_hop_by_hop(req.headers_mut());
    match app.client.request(req).await {
        Ok(response) => {
            let (mut head, body) = response.into_parts();
            strip_hop_by_hop(&mut head.headers);
            Response::from_parts(head, Either::Right(body))
        }
        Err(_) => unreachable_gateway(),
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn unreachable_gateway() -> Response<RespBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(
        UNREACHABLE.as_bytes(),
    ))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json;charset=utf-8"),
    );
    response
}
