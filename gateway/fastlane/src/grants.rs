//! Grants: what the Python gateway lets the fast lane serve for one bearer token, asked for
//! at `POST {gateway}/_fastlane/grant` and cached by token until the grant's `valid_until`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use serde::Deserialize;

use crate::config::Config;
use crate::lane::encode_pairs;
use crate::server::HttpClient;

/// The most tokens remembered; when full, the cache starts afresh.
const CAPACITY: usize = 10_000;
/// The longest grant answer read.
const MAX_ANSWER: usize = 1 << 20;

/// The checks of each returned resource a grant asks for (beyond `contained`, always made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// C05: the resource's type is one the token may read (search) or read by id (read).
    pub c05: bool,
    /// C08: the resource is in the patient's compartment and names no other patient.
    pub c08: bool,
    /// C10: the resource carries the token's tenant tag.
    pub c10: bool,
}

/// What the pipeline adds to a search of one type, already encoded as `&`-joined pairs.
#[derive(Debug, Default)]
pub struct Narrowing {
    /// For a search the client did not pin to the patient in context.
    pub narrow: String,
    /// For a search the client pinned (`patient=P`, `subject=Patient/P`).
    pub pinned: String,
}

/// An eligible grant.
#[derive(Debug)]
pub struct Grant {
    pub id: String,
    pub patient: Option<String>,
    pub tenant: Option<String>,
    pub checks: Checks,
    pub read: HashSet<String>,
    pub search: HashMap<String, Narrowing>,
    pub max_count: Option<u64>,
}

/// A token's standing: `Some` grant, or `None` when the lane may not serve it.
pub type Standing = Option<Arc<Grant>>;

#[derive(Deserialize)]
struct Answer {
    eligible: bool,
    valid_until: f64,
    grant: Option<String>,
    patient: Option<String>,
    tenant: Option<String>,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    search: HashMap<String, SearchAnswer>,
    max_count: Option<u64>,
}

#[derive(Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    narrow: Vec<(String, String)>,
    #[serde(default)]
    pinned: Vec<(String, String)>,
}

/// The gateway's answer as (valid_until, standing); None if it is not a grant answer.
pub fn parse_answer(body: &[u8]) -> Option<(f64, Standing)> {
    let answer: Answer = serde_json::from_slice(body).ok()?;
    if !answer.eligible {
        return Some((answer.valid_until, None));
    }
    let id = answer.grant?; // an eligible answer names its grant (the audit record needs it)
    let mut checks = Checks::default();
    for name in &answer.checks {
        match name.as_str() {
            "C05" => checks.c05 = true,
            "C08" => checks.c08 = true,
            "C10" => checks.c10 = true,
            _ => return Some((answer.valid_until, None)), // a check the lane cannot make
        }
    }
    let search = answer
        .search
        .into_iter()
        .map(|(t, s)| {
            let narrowing = Narrowing {
                narrow: encode_pairs(&s.narrow),
                pinned: encode_pairs(&s.pinned),
            };
            (t, narrowing)
        })
        .collect();
    let grant = Grant {
        id,
        patient: answer.patient,
        tenant: answer.tenant,
        checks,
        read: answer.read.into_iter().collect(),
        search,
        max_count: answer.max_count,
    };
    Some((answer.valid_until, Some(Arc::new(grant))))
}

#[derive(Clone)]
struct Entry {
    valid_until: f64,
    standing: Standing,
}

/// Grants by exact token string, eligible or not, until their `valid_until`.
#[derive(Default)]
pub struct Grants {
    map: Mutex<HashMap<String, Entry>>,
}

impl Grants {
    /// The token's standing if known and not expired at `now` (unix seconds).
    pub fn cached(&self, token: &str, now: f64) -> Option<Standing> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(token) {
            Some(entry) if now < entry.valid_until => Some(entry.standing.clone()),
            _ => None,
        }
    }

    pub fn insert(&self, token: &str, valid_until: f64, standing: Standing) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY && !map.contains_key(token) {
            map.clear();
        }
        map.insert(
            token.to_owned(),
            Entry {
                valid_until,
                standing,
            },
        );
    }
}

/// Ask the gateway about `token`; None if it cannot be asked or does not answer a grant.
pub async fn ask(client: &HttpClient, cfg: &Config, token: &str) -> Option<(f64, Standing)> {
    let mut req = Request::new(Either::Right(Full::new(Bytes::copy_from_slice(
        token.as_bytes(),
    ))));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = cfg.grant_uri.clone();
    let headers = req.headers_mut();
    headers.insert("x-fastlane-secret", cfg.secret.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let call = async {
        let resp = client.request(req).await.ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .ok()?;
        Some(body.to_bytes())
    };
    let body = tokio::time::timeout(cfg.upstream_timeout, call)
        .await
        .ok()??;
    parse_answer(&body)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A grant for tests: reads and searches of Observation and Patient, C05+C08+C10.
    pub fn grant(patient: Option<&str>, tenant: Option<&str>) -> Grant {
        let tag = (
            "_tag".to_owned(),
            format!("https://fhirlab.dev/tenant|{}", tenant.unwrap_or("")),
        );
        let mut narrow = vec![tag.clone()];
        if let Some(p) = patient {
            narrow.push(("patient".into(), p.into()));
        }
        let narrowing = || Narrowing {
            narrow: encode_pairs(&narrow),
            pinned: encode_pairs(std::slice::from_ref(&tag)),
        };
        Grant {
            id: "g-1".into(),
            patient: patient.map(str::to_owned),
            tenant: tenant.map(str::to_owned),
            checks: Checks {
                c05: true,
                c08: patient.is_some(),
                c10: tenant.is_some(),
            },
            read: ["Observation", "Patient", "Organization"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            search: [
                ("Observation".to_owned(), narrowing()),
                ("Condition".to_owned(), narrowing()),
                ("Patient".to_owned(), narrowing()),
            ]
            .into_iter()
            .collect(),
            max_count: Some(50),
        }
    }

    #[test]
    fn parses_answers() {
        let body = br#"{"eligible": true, "grant": "g-3", "valid_until": 1796000000.5,
            "patient": "pat-a", "tenant": "tenant-a", "checks": ["C05", "C08", "C10"],
            "read": ["Observation", "Patient"],
            "search": {"Observation": {"narrow": [["_tag", "s|tenant-a"], ["patient", "pat-a"]],
                                       "pinned": [["_tag", "s|tenant-a"]]}},
            "max_count": null}"#;
        let (until, standing) = parse_answer(body).unwrap();
        assert_eq!(until, 1796000000.5);
        let g = standing.unwrap();
        assert_eq!(g.id, "g-3");
        assert_eq!(
            g.checks,
            Checks {
                c05: true,
                c08: true,
                c10: true
            }
        );
        assert_eq!(
            g.search["Observation"].narrow,
            "_tag=s%7Ctenant-a&patient=pat-a"
        );
        assert_eq!(g.search["Observation"].pinned, "_tag=s%7Ctenant-a");
        assert_eq!(g.max_count, None);

        let (until, standing) = parse_answer(br#"{"eligible": false, "valid_until": 5}"#).unwrap();
        assert_eq!((until, standing.is_none()), (5.0, true));
        // a check the lane does not know: not eligible
        let odd = br#"{"eligible": true, "grant": "g", "valid_until": 5, "checks": ["C99"]}"#;
        assert!(parse_answer(odd).unwrap().1.is_none());
        // not a grant answer
        assert!(parse_answer(b"{}").is_none());
        assert!(parse_answer(br#"{"eligible": true, "valid_until": 5}"#).is_none());
        assert!(parse_answer(b"nope").is_none());
    }

    #[test]
    fn cache_expires() {
        let grants = Grants::default();
        grants.insert("t", 100.0, None);
        assert!(matches!(grants.cached("t", 99.0), Some(None)));
        assert!(grants.cached("t", 100.0).is_none());
        assert!(grants.cached("u", 1.0).is_none());
        for i in 0..CAPACITY + 1 {
            grants.insert(&i.to_string(), 100.0, None);
        }
        assert!(grants.map.lock().unwrap().len() <= CAPACITY);
    }
}
