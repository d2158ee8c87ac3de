//! End-to-end tests on loopback: the fast lane between a stub HAPI and a stub gateway.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::config::tests::sample_json;
use crate::events::Events;
use crate::events::tests::Sink;
use crate::server::App;

/// What a stub received: path and query, headers, body.
type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;
type Handler = fn(&str, &HeaderMap, &Bytes) -> Response<Full<Bytes>>;

/// A server on 127.0.0.1:0 answering with `handler`, recording every request.
async fn stub(handler: Handler) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let record = record.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let record = record.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let target = parts.uri.path_and_query().unwrap().to_string();
                    let response = handler(&target, &parts.headers, &body);
                    record.lock().unwrap().push((target, parts.headers, body));
                    Ok::<_, hyper::Error>(response)
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (addr, seen)
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id,
           "meta": {"tag": [{"system": "https://fhirlab.dev/tenant", "code": "tenant-a"}]},
           "status": "final", "subject": {"reference": format!("Patient/{patient}")}})
}

fn hapi(target: &str, _: &HeaderMap, _: &Bytes) -> Response<Full<Bytes>> {
    let body = match target.split_once('?').map_or(target, |(path, _)| path) {
        "/fhir/Observation/o1" => observation("o1", "pat-a"),
        "/fhir/Observation/o2" => observation("o2", "pat-b"),
        "/fhir/Observation" => json!({"resourceType": "Bundle", "type": "searchset", "total": 2,
            "entry": [{"resource": observation("o1", "pat-a"), "search": {"mode": "match"}},
                      {"resource": observation("o3", "pat-a"), "search": {"mode": "match"}}]}),
        _ => {
            return Response::builder()
                .status(404)
                .body(Full::default())
                .unwrap();
        }
    };
    Response::builder()
        .header("content-type", "application/fhir+json;charset=UTF-8")
        .header("etag", "W/\"1\"")
        .header("x-powered-by", "HAPI")
        .header("last-modified", "Tue, 01 Jul 2025 10:00:00 GMT")
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap()
}

fn gateway(target: &str, headers: &HeaderMap, body: &Bytes) -> Response<Full<Bytes>> {
    if target == "/_fastlane/grant" {
        assert_eq!(headers["x-fastlane-secret"], "s3cret");
        assert_eq!(headers["content-type"], "text/plain");
        let answer = match &body[..] {
            b"tok-a" => json!({"eligible": true, "grant": "g-7", "valid_until": 4e9,
                "patient": "pat-a", "tenant": "tenant-a", "checks": ["C05", "C08", "C10"],
                "read": ["Observation"],
                "search": {"Observation": {
                    "narrow": [["_tag", "https://fhirlab.dev/tenant|tenant-a"], ["patient", "pat-a"]],
                    "pinned": [["_tag", "https://fhirlab.dev/tenant|tenant-a"]]}},
                "max_count": 50}),
            b"tok-no" => json!({"eligible": false, "valid_until": 4e9}),
            _ => {
                return Response::builder()
                    .status(500)
                    .body(Full::default())
                    .unwrap();
            }
        };
        return Response::new(Full::new(Bytes::from(answer.to_string())));
    }
    Response::builder()
        .header("x-from", "gateway")
        .header("connection", "keep-alive")
        .body(Full::new(Bytes::from(format!(
            "gateway saw {target} {}",
            body.len()
        ))))
        .unwrap()
}

struct Lane {
    addr: SocketAddr,
    events: Sink,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn start_lane(gateway: SocketAddr, hapi: SocketAddr) -> Lane {
    let text = sample_json(&format!("http://{gateway}"), &format!("http://{hapi}/fhir"));
    let cfg = Config::from_json(&text).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let events = Sink::default();
    let (writer, _thread) = Events::start(Box::new(events.clone()));
    let app = Arc::new(App::new(cfg, writer));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(crate::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    Lane {
        addr,
        events,
        stop,
        done,
    }
}

type TestClient = Client<HttpConnector, Full<Bytes>>;

async fn get(
    client: &TestClient,
    lane: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::get(format!("http://{lane}{target}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client
        .request(req.body(Full::default()).unwrap())
        .await
        .unwrap();
    let (head, body) = response.into_parts();
    (
        head.status,
        head.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn grant_calls(seen: &Seen) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(t, ..)| t == "/_fastlane/grant")
        .count()
}

#[tokio::test]
async fn serves_checks_and_falls_back() {
    let (hapi_addr, hapi_seen) = stub(hapi).await;
    let (gw_addr, gw_seen) = stub(gateway).await;
    let lane = start_lane(gw_addr, hapi_addr).await;
    let client: TestClient = Client::builder(TokioExecutor::new()).build_http();
    let auth = ("authorization", "Bearer tok-a");
    let from_gateway = |h: &HeaderMap| h.get("x-from").is_some();

    // an eligible read: served from HAPI's bytes, with the lane's headers
    let (status, headers, body) = get(
        &client,
        lane.addr,
        "/fhir/Observation/o1",
        &[auth, ("x-request-id", "req-1")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!from_gateway(&headers));
    assert_eq!(
        headers["content-type"],
        "application/fhir+json;charset=utf-8"
    );
    assert_eq!(headers["etag"], "W/\"1\"");
    assert!(headers.contains_key("last-modified") && headers.contains_key("date"));
    assert!(!headers.contains_key("x-powered-by"));
    assert_eq!(headers["content-length"], body.len().to_string());
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        observation("o1", "pat-a")
    );
    {
        let seen = hapi_seen.lock().unwrap();
        let (target, h, _) = &seen[0];
        assert_eq!(target, "/fhir/Observation/o1");
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-request-id",
                "x-forwarded-host",
                "x-forwarded-proto",
                "accept",
                "accept-encoding",
                "host"
            ]
        );
        assert_eq!(h["x-forwarded-host"], lane.addr.to_string());
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["accept"], "application/fhir+json");
        assert_eq!(h["x-request-id"], "req-1");
    }

    // the same token again: the grant is cached
    let (status, headers, _) = get(&client, lane.addr, "/fhir/Observation/o1", &[auth]).await;
    assert_eq!((status, from_gateway(&headers)), (StatusCode::OK, false));
    assert_eq!(grant_calls(&gw_seen), 1);

    // another patient's resource: the gateway answers
    let (status, headers, body) = get(&client, lane.addr, "/fhir/Observation/o2", &[auth]).await;
    assert_eq!((status, from_gateway(&headers)), (StatusCode::OK, true));
    assert_eq!(body, "gateway saw /fhir/Observation/o2 0");
    assert!(!headers.contains_key("connection")); // hop-by-hop, not relayed

    // an extra header: delegated without asking HAPI
    let asked = hapi_seen.lock().unwrap().len();
    let (_, headers, _) = get(
        &client,
        lane.addr,
        "/fhir/Observation/o1",
        &[auth, ("x-foo", "1")],
    )
    .await;
    assert!(from_gateway(&headers));
    assert_eq!(hapi_seen.lock().unwrap().len(), asked);
    let (_, relayed, _) = gw_seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(relayed["x-foo"], "1");
    assert_eq!(relayed["authorization"], "Bearer tok-a");
    assert_eq!(relayed["host"], lane.addr.to_string());

    // a search: the grant's narrowing appended, each result checked
    let (status, headers, _) = get(
        &client,
        lane.addr,
        "/fhir/Observation?code=http://loinc.org|1234-5",
        &[auth],
    )
    .await;
    assert_eq!((status, from_gateway(&headers)), (StatusCode::OK, false));
    assert_eq!(
        hapi_seen.lock().unwrap().last().unwrap().0,
        "/fhir/Observation?code=http%3A%2F%2Floinc.org%7C1234-5\
         &_tag=https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ctenant-a&patient=pat-a"
    );

    // a write: relayed with its body
    let req = Request::post(format!("http://{}/fhir/Observation", lane.addr))
        .header("authorization", "Bearer tok-a")
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            b"{\"resourceType\":\"Observation\"}",
        )))
        .unwrap();
    let response = client.request(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "gateway saw /fhir/Observation 30");

    // a token the gateway keeps: asked once, then remembered
    for _ in 0..2 {
        let (_, headers, _) = get(
            &client,
            lane.addr,
            "/fhir/Observation/o1",
            &[("authorization", "Bearer tok-no")],
        )
        .await;
        assert!(from_gateway(&headers));
    }
    assert_eq!(grant_calls(&gw_seen), 2);
    // a grant call that fails: delegated, not remembered
    for _ in 0..2 {
        let (_, headers, _) = get(
            &client,
            lane.addr,
            "/fhir/Observation/o1",
            &[("authorization", "Bearer tok-x")],
        )
        .await;
        assert!(from_gateway(&headers));
    }
    assert_eq!(grant_calls(&gw_seen), 4);

    // one event per request served here, written once its batch is due
    tokio::time::sleep(crate::events::FLUSH_AFTER * 2).await;
    let text = String::from_utf8(lane.events.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    assert_eq!(events[0]["request_id"], "req-1");
    assert_eq!(events[0]["path"], "/fhir/Observation/o1");
    assert_eq!(events[0]["grant"], "g-7");
    assert_eq!(events[0]["interaction"], "read");
    assert_eq!(events[0]["patients"], json!(["pat-a"]));
    assert_eq!(events[0]["status"], 200);
    assert!(events[0]["latency_ms"].as_f64().unwrap() > 0.0);
    let generated = events[1]["request_id"].as_str().unwrap();
    assert!(
        generated.len() == 16
            && generated
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(events[2]["interaction"], "search-type");
    assert_eq!(events[2]["query"], "code=http://loinc.org|1234-5");
    assert_eq!(events[2]["result_count"], 2);

    lane.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), lane.done)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn unreachable_gateway_is_a_502() {
    let (hapi_addr, _) = stub(hapi).await;
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let lane = start_lane(closed, hapi_addr).await;
    let client: TestClient = Client::builder(TokioExecutor::new()).build_http();
    let (status, headers, body) = get(&client, lane.addr, "/fhir/metadata", &[]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        headers["content-type"],
        "application/fhir+json;charset=utf-8"
    );
    let outcome: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        outcome["issue"][0]["diagnostics"],
        "the gateway's policy engine is unreachable"
    );
    // an eligible request whose grant cannot be asked for: relayed, so a 502 too
    let (status, ..) = get(
        &client,
        lane.addr,
        "/fhir/Observation/o1",
        &[("authorization", "Bearer tok-a")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    lane.stop.send(()).unwrap();
    lane.done.await.unwrap();
}
