//! Which requests the fast lane serves itself ("eligible"), and what it asks HAPI for them.
//!
//! A request is first judged on its own (method, headers, path, query syntax: `candidate`),
//! then against the token's grant (`upstream_uri`). Any `None` here means "not ours": the
//! request goes to the Python gateway unchanged.

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Uri, Version};

use crate::config::{Config, Kind};
use crate::grants::Grant;

/// Types the fast lane never serves: envelopes, and content no check of it reads.
const NOT_SERVED: [&str; 5] = [
    "Binary",
    "Bundle",
    "OperationOutcome",
    "Parameters",
    "CapabilityStatement",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Search,
}

impl Interaction {
    /// The name the audit record uses.
    pub fn name(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Search => "search-type",
        }
    }
}

/// A request that may be served here if its token's grant allows it.
#[derive(Debug)]
pub struct Candidate<'a> {
    pub token: &'a str,
    pub host: &'a HeaderValue,
    pub request_id: Option<&'a HeaderValue>,
    /// The Content-Type the answer is served with (`config.accept[Accept or ""]`).
    pub content_type: &'a HeaderValue,
    pub path: &'a str,
    /// The raw query ("" when there is none).
    pub query: &'a str,
    pub interaction: Interaction,
    pub resource_type: &'a str,
    /// The id of a read ("" for a search).
    pub id: &'a str,
    /// A search's parameters, in order, as sent (they hold no escapes).
    pub params: Vec<(&'a str, &'a str)>,
}

/// The request, judged before its token is looked at.
pub fn candidate<'a>(cfg: &'a Config, parts: &'a Parts) -> Option<Candidate<'a>> {
    if parts.method != Method::GET || parts.version != Version::HTTP_11 {
        return None;
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        return None; // absolute-form request target: the gateway decides
    }
    let head = request_head(&parts.headers)?;
    let content_type = cfg.accept.get(head.accept)?;
    let path = parts.uri.path();
    let (resource_type, id) = parse_path(&cfg.base_path, path)?;
    if NOT_SERVED.contains(&resource_type) || cfg.kind(resource_type) == Kind::Unknown {
        return None;
    }
    let (interaction, query, params) = match (id, parts.uri.query()) {
        (Some(_), Some(_)) => return None, // a read with a query (even a bare '?')
        (Some(_), None) => (Interaction::Read, "", Vec::new()),
        (None, query) => {
            let query = query.unwrap_or("");
            (Interaction::Search, query, parse_query(query)?)
        }
    };
    Some(Candidate {
        token: head.token,
        host: head.host,
        request_id: head.request_id,
        content_type,
        path,
        query,
        interaction,
        resource_type,
        id: id.unwrap_or(""),
        params,
    })
}

/// What the request's headers tell the lane.
#[derive(Debug)]
struct Head<'a> {
    token: &'a str,
    host: &'a HeaderValue,
    request_id: Option<&'a HeaderValue>,
    /// The Accept value, "" when there is none.
    accept: &'a str,
}

/// Only known headers, each at most once, a bearer token, a Host; else None.
fn request_head(headers: &HeaderMap) -> Option<Head<'_>> {
    let mut seen = 0u8;
    let (mut token, mut host, mut request_id, mut accept) = (None, None, None, "");
    for (name, value) in headers {
        let bit = match name.as_str() {
            "host" => 1,
            "authorization" => 2,
            "accept" => 4,
            "accept-encoding" => 8,
            "user-agent" => 16,
            "connection" => 32,
            "x-request-id" => 64,
            "content-length" => 128,
            _ => return None,
        };
        if seen & bit != 0 {
            return None; // a header sent twice
        }
        seen |= bit;
        match bit {
            1 => host = Some(value),
            2 => token = Some(bearer(value.to_str().ok()?)?),
            4 => accept = value.to_str().ok()?,
            64 => {
                if !is_request_id(value.as_bytes()) {
                    return None;
                }
                request_id = Some(value);
            }
            128 if value.as_bytes() != b"0" => return None,
            _ => {}
        }
    }
    Some(Head {
        token: token?,
        host: host?,
        request_id,
        accept,
    })
}

/// The token of `Authorization: <scheme> <token>` when the scheme is Bearer (any case), as
/// gateway/fhir_endpoint.py `bearer` reads it: split at the first space, token trimmed.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `{base}/{T}` (None for the id) or `{base}/{T}/{id}`, raw: no escapes, no trailing '/'.
pub fn parse_path<'a>(base: &str, path: &'a str) -> Option<(&'a str, Option<&'a str>)> {
    let rest = path.strip_prefix(base)?.strip_prefix('/')?;
    match rest.split_once('/') {
        None => is_type(rest).then_some((rest, None)),
        Some((t, id)) => (is_type(t) && is_id(id)).then_some((t, Some(id))),
    }
}

/// `^[A-Z][A-Za-z]{1,63}$`
pub fn is_type(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=64).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b.iter().all(u8::is_ascii_alphabetic)
}

/// `^[A-Za-z0-9\-.]{1,64}$` (a FHIR id)
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// `^[A-Za-z0-9\-._]{1,128}$`
fn is_request_id(b: &[u8]) -> bool {
    (1..=128).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

/// `^[a-z][a-z0-9\-]{0,63}$`
fn is_param_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// `^[A-Za-z0-9\-._~:|/,]{1,256}$`: nothing that decodes to something else ('%', '+').
fn is_param_value(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'-' | b'.' | b'_' | b'~' | b':' | b'|' | b'/' | b',')
        })
}

/// A search's raw query as `name=value` pairs, each of the plain shape the lane serves, at
/// most one `_count` (1 to 4 digits); None for anything else. "" is no parameters.
pub fn parse_query(query: &str) -> Option<Vec<(&str, &str)>> {
    let mut params = Vec::new();
    if query.is_empty() {
        return Some(params);
    }
    let mut counted = false;
    for part in query.split('&') {
        let (name, value) = part.split_once('=')?;
        if !is_param_value(value) {
            return None; // also refuses a second '=' (not in the value's alphabet)
        }
        if name == "_count" {
            if counted || value.len() > 4 || !value.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            counted = true;
        } else if !is_param_name(name) {
            return None;
        }
        params.push((name, value));
    }
    Some(params)
}

/// What HAPI is asked for `cand` under `grant`; None if the grant does not cover it.
pub fn upstream_uri(cfg: &Config, grant: &Grant, cand: &Candidate<'_>) -> Option<Uri> {
    let t = cand.resource_type;
    let url = match cand.interaction {
        Interaction::Read => {
            if !grant.read.contains(t) {
                return None;
            }
            if t == "Patient" && grant.patient.as_deref().is_some_and(|p| p != cand.id) {
                return None; // another patient, asked by id
            }
            format!("{}/{}/{}", cfg.upstream, t, cand.id)
        }
        Interaction::Search => {
            let query = upstream_query(cfg, grant, t, &cand.params)?;
            if query.is_empty() {
                format!("{}/{}", cfg.upstream, t)
            } else {
                format!("{}/{}?{}", cfg.upstream, t, query)
            }
        }
    };
    url.parse().ok()
}

/// The query HAPI gets for a search of `t`: the client's pairs in order, then what the
/// pipeline adds (the grant's narrowing; its `pinned` form when the client pinned the search
/// to the patient in context). Encoded as Python's `urlencode` does (`quote_plus`).
pub fn upstream_query(
    cfg: &Config,
    grant: &Grant,
    t: &str,
    params: &[(&str, &str)],
) -> Option<String> {
    let narrowing = grant.search.get(t)?;
    let patient = grant.patient.as_deref();
    if t == "Patient" && patient.is_some() {
        return None; // the pipeline pins Patient searches by `_id`: left to the gateway
    }
    let links = cfg.compartment_params.get(t);
    let mut pinned = false;
    let mut out = String::with_capacity(64 + narrowing.narrow.len().max(narrowing.pinned.len()));
    for &(name, value) in params {
        if name == "_count" {
            if let Some(max) = grant.max_count {
                // 1 to 4 digits (parse_query): always a number
                if value.parse::<u64>().ok()? > max {
                    return None;
                }
            }
        } else {
            let in_links = links.is_some_and(|l| l.contains(name));
            let p = patient;
            let is_ref = p.is_some() && value.strip_prefix("Patient/") == p;
            if in_links {
                // one of the type's compartment links: served here only as a pin to the patient
                // in context (`Patient/P`, or a bare `P` under the name `patient`)
                let bare = name == "patient" && Some(value) == p;
                if p.is_none() || t == "Patient" || !(is_ref || bare) {
                    return None;
                }
                pinned = true;
            } else if name == "patient" {
                // not a compartment link of this type (`Observation?patient=`): the gateway still
                // checks it names no other patient, and narrows the search as if unpinned
                if !(is_ref || (p.is_some() && Some(value) == p)) {
                    return None;
                }
            } else if value.contains("Patient") {
                return None; // a patient named elsewhere (a chain, an identifier): the gateway's
            }
        }
        if !out.is_empty() {
            out.push('&');
        }
        quote_plus(name, &mut out);
        out.push('=');
        quote_plus(value, &mut out);
    }
    let added = if pinned {
        &narrowing.pinned
    } else {
        &narrowing.narrow
    };
    if !added.is_empty() {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(added);
    }
    Some(out)
}

/// Python's `urllib.parse.quote_plus` (UTF-8; `A-Za-z0-9_.-~` kept, ' ' as '+', the rest
/// `%XX` in uppercase hex), appended to `out`.
pub fn quote_plus(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// `name=value&...`, each quoted with `quote_plus` (a grant's narrowing, encoded once).
pub fn encode_pairs(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        quote_plus(name, &mut out);
        out.push('=');
        quote_plus(value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample;
    use crate::grants::tests::grant;
    use http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    const OK: [(&str, &str); 2] = [("host", "gw.example"), ("authorization", "Bearer tok")];

    fn cand_of<'a>(cfg: &'a Config, p: &'a Parts) -> Option<Candidate<'a>> {
        candidate(cfg, p)
    }

    #[test]
    fn quote_plus_matches_python() {
        let mut out = String::new();
        quote_plus("https://fhirlab.dev/tenant|tenant-a", &mut out);
        assert_eq!(out, "https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ctenant-a");
        out.clear();
        quote_plus("a b~_.-,é", &mut out);
        assert_eq!(out, "a+b~_.-%2C%C3%A9");
        let pairs = [
            ("_tag".to_owned(), "s|x".to_owned()),
            ("patient".into(), "p 1".into()),
        ];
        assert_eq!(encode_pairs(&pairs), "_tag=s%7Cx&patient=p+1");
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bEaReR   abc  "), Some("abc"));
        assert_eq!(bearer("Bearer  "), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/fhir", "/fhir/Observation"),
            Some(("Observation", None))
        );
        assert_eq!(
            parse_path("/fhir", "/fhir/Observation/o-1.2"),
            Some(("Observation", Some("o-1.2")))
        );
        assert_eq!(parse_path("/fhir", "/fhir/Observation/"), None);
        assert_eq!(parse_path("/fhir", "/fhir/Observation/a/"), None);
        assert_eq!(parse_path("/fhir", "/fhir/Observation/a/_history/1"), None);
        assert_eq!(parse_path("/fhir", "/fhir/Observation/a%2Fb"), None);
        assert_eq!(parse_path("/fhir", "/fhir/observation/a"), None);
        assert_eq!(parse_path("/fhir", "/fhirX/Observation"), None);
        assert_eq!(parse_path("/fhir", "/fhir/O"), None);
        assert_eq!(parse_path("", "/Patient/p"), Some(("Patient", Some("p"))));
        let long = format!("/fhir/Observation/{}", "a".repeat(65));
        assert_eq!(parse_path("/fhir", &long), None);
    }

    #[test]
    fn queries() {
        assert_eq!(parse_query(""), Some(vec![]));
        assert_eq!(
            parse_query("code=http://loinc.org|1234-5&_count=10"),
            Some(vec![("code", "http://loinc.org|1234-5"), ("_count", "10")])
        );
        assert_eq!(parse_query("code"), None);
        assert_eq!(parse_query("code="), None);
        assert_eq!(parse_query("code=a=b"), None);
        assert_eq!(parse_query("code=a%20b"), None);
        assert_eq!(parse_query("code=a+b"), None);
        assert_eq!(parse_query("a=1&"), None);
        assert_eq!(parse_query("_count=12345"), None);
        assert_eq!(parse_query("_count=1&_count=2"), None);
        assert_eq!(parse_query("_count=x"), None);
        assert_eq!(parse_query("_sort=date"), None);
        assert_eq!(parse_query("Code=1"), None);
        assert_eq!(parse_query("code:exact=1"), None);
        assert_eq!(parse_query(&format!("code={}", "a".repeat(257))), None);
    }

    #[test]
    fn request_headers() {
        let cfg = sample();
        let p = parts("/fhir/Observation/o1", &OK);
        let c = cand_of(&cfg, &p).unwrap();
        assert_eq!(
            (c.token, c.interaction, c.id),
            ("tok", Interaction::Read, "o1")
        );
        assert_eq!(c.content_type, "application/fhir+json;charset=utf-8");
        let with = |extra: &[(&str, &str)]| {
            let mut h = OK.to_vec();
            h.extend_from_slice(extra);
            parts("/fhir/Observation/o1", &h)
        };
        assert!(cand_of(&cfg, &with(&[("x-foo", "1")])).is_none());
        assert!(cand_of(&cfg, &with(&[("content-length", "0")])).is_some());
        assert!(cand_of(&cfg, &with(&[("content-length", "3")])).is_none());
        assert!(cand_of(&cfg, &with(&[("x-request-id", "abc-1.2_3")])).is_some());
        assert!(cand_of(&cfg, &with(&[("x-request-id", "a b")])).is_none());
        assert!(cand_of(&cfg, &with(&[("authorization", "Bearer other")])).is_none());
        assert!(cand_of(&cfg, &parts("/fhir/Observation/o1", &[("host", "h")])).is_none());
        let no_host = parts("/fhir/Observation/o1", &[("authorization", "Bearer t")]);
        assert!(cand_of(&cfg, &no_host).is_none());
    }

    #[test]
    fn accept_table() {
        let cfg = sample();
        let accept = |v: &str| {
            let mut h = OK.to_vec();
            h.push(("accept", v));
            let p = parts("/fhir/Observation/o1", &h);
            cand_of(&cfg, &p).map(|c| c.content_type.to_str().unwrap().to_owned())
        };
        assert_eq!(
            accept("application/json").as_deref(),
            Some("application/json;charset=utf-8")
        );
        assert_eq!(
            accept("*/*").as_deref(),
            Some("application/fhir+json;charset=utf-8")
        );
        assert_eq!(accept("application/fhir+xml"), None);
        assert_eq!(accept("application/json, */*"), None);
        let mut h = OK.to_vec();
        h.extend([("accept", "*/*"), ("accept", "*/*")]);
        assert!(cand_of(&cfg, &parts("/fhir/Observation/o1", &h)).is_none());
    }

    #[test]
    fn targets() {
        let cfg = sample();
        let ok = |uri: &str| cand_of(&cfg, &parts(uri, &OK)).is_some();
        assert!(ok("/fhir/Observation"));
        assert!(ok("/fhir/Observation?"));
        assert!(ok("/fhir/Organization/x"));
        assert!(!ok("/fhir/Observation/o1?"));
        assert!(!ok("/fhir/Observation/o1?_format=json"));
        assert!(!ok("/fhir/Bundle/b1")); // never served, though a NEVER type
        assert!(!ok("/fhir/Widget/w1")); // unknown type
        assert!(!ok("/fhir/metadata"));
        assert!(!ok("/other/Observation"));
        let mut head = parts("/fhir/Observation/o1", &OK);
        head.method = Method::HEAD;
        assert!(cand_of(&cfg, &head).is_none());
        let mut old = parts("/fhir/Observation/o1", &OK);
        old.version = Version::HTTP_10;
        assert!(cand_of(&cfg, &old).is_none());
    }

    fn search(cfg: &Config, grant: &Grant, uri: &str) -> Option<String> {
        let p = parts(uri, &OK);
        let c = cand_of(cfg, &p)?;
        upstream_uri(cfg, grant, &c).map(|u| u.to_string())
    }

    #[test]
    fn reads_under_a_grant() {
        let cfg = sample();
        let g = grant(Some("pat-a"), Some("tenant-a"));
        assert_eq!(
            search(&cfg, &g, "/fhir/Observation/o1").as_deref(),
            Some("http://127.0.0.1:9/fhir/Observation/o1")
        );
        assert!(search(&cfg, &g, "/fhir/Patient/pat-a").is_some());
        assert!(search(&cfg, &g, "/fhir/Patient/pat-b").is_none());
        assert!(search(&cfg, &g, "/fhir/Encounter/e1").is_none()); // not in grant.read
        let open = grant(None, Some("tenant-a"));
        assert!(search(&cfg, &open, "/fhir/Patient/pat-b").is_some());
    }

    #[test]
    fn searches_under_a_grant() {
        let cfg = sample();
        let g = grant(Some("pat-a"), Some("tenant-a"));
        let base = "http://127.0.0.1:9/fhir/Observation";
        let narrow = "_tag=https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ctenant-a&patient=pat-a";
        let pinned = "_tag=https%3A%2F%2Ffhirlab.dev%2Ftenant%7Ctenant-a";
        let s = |q: &str| search(&cfg, &g, &format!("/fhir/Observation{q}"));
        assert_eq!(s("").unwrap(), format!("{base}?{narrow}"));
        assert_eq!(
            s("?code=a|b&_count=50").unwrap(),
            format!("{base}?code=a%7Cb&_count=50&{narrow}")
        );
        assert!(s("?_count=51").is_none()); // over max_count
        assert_eq!(
            s("?subject=Patient/pat-a&code=x").unwrap(),
            format!("{base}?subject=Patient%2Fpat-a&code=x&{pinned}")
        );
        // `patient` is not one of Observation's compartment links: checked, but no pin
        assert_eq!(
            s("?patient=pat-a").unwrap(),
            format!("{base}?patient=pat-a&{narrow}")
        );
        assert_eq!(
            s("?patient=Patient/pat-a").unwrap(),
            format!("{base}?patient=Patient%2Fpat-a&{narrow}")
        );
        // where it is a link (Condition), a bare id or a reference pins
        let c = |q: &str| search(&cfg, &g, &format!("/fhir/Condition{q}"));
        let cbase = "http://127.0.0.1:9/fhir/Condition";
        assert_eq!(
            c("?patient=pat-a").unwrap(),
            format!("{cbase}?patient=pat-a&{pinned}")
        );
        assert_eq!(
            c("?patient=Patient/pat-a").unwrap(),
            format!("{cbase}?patient=Patient%2Fpat-a&{pinned}")
        );
        assert!(c("?asserter=pat-a").is_none()); // a bare id pins only under `patient`
        assert!(s("?subject=pat-a").is_none()); // a link that is not a pin
        assert!(s("?subject=Patient/pat-b").is_none());
        assert!(s("?patient=pat-b").is_none());
        assert!(s("?performer=Practitioner/x").is_none()); // a link, not a pin
        assert!(s("?code=Patient").is_none()); // "Patient" outside a pin
        assert!(s("?subject:Patient=x").is_none());
        // Patient searches with a patient in context are the gateway's
        assert!(search(&cfg, &g, "/fhir/Patient?name=x").is_none());
        // a type the grant has no search for
        assert!(search(&cfg, &g, "/fhir/Encounter").is_none());
        // without a patient in context, any patient link goes to the gateway
        let open = grant(None, Some("tenant-a"));
        let so = |q: &str| search(&cfg, &open, &format!("/fhir/Observation{q}"));
        assert!(so("?patient=pat-a").is_none());
        assert!(so("?subject=Patient/pat-a").is_none());
        assert!(so("?code=x").is_some());
        assert!(search(&cfg, &open, "/fhir/Patient?name=x").is_some());
        assert!(search(&cfg, &open, "/fhir/Patient?link=Patient/x").is_none());
    }
}
