//! Checks of HAPI's answer and of every resource in it, as the Python gateway makes them
//! (gateway/screen.py, gateway/stages/{compartment,tenant}.py, labcore/patient_compartment.py).
//! Any failure means the answer is not served here (the request falls back to the gateway).

use std::sync::LazyLock;

use http::header::{CONTENT_ENCODING, CONTENT_LOCATION, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, StatusCode};
use regex::Regex;

use crate::config::{Config, Kind};
use crate::grants::Grant;
use crate::json::{Json, Object, get, get_str};
use crate::lane::{Candidate, Interaction, is_id};

/// `_PATIENT_REFERENCE` of labcore/patient_compartment.py, anchored (Python's `fullmatch`).
static PATIENT_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]+(?:/[^?#]*?)?/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$",
    )
    .expect("the patient reference pattern compiles")
});

/// What an answer that passed every check held (for the event).
#[derive(Debug, PartialEq, Eq)]
pub struct Served {
    pub result_count: usize,
    /// Sorted, unique: the patients whose compartment a served resource is in.
    pub patients: Vec<String>,
}

/// HAPI's status and headers: a 200 with one JSON content type, not encoded, and a `Location`
/// or `Content-Location` only where it points at the resource a read asked for (the gateway
/// keeps those; anything else it words itself).
pub fn head_ok(
    cfg: &Config,
    status: StatusCode,
    headers: &HeaderMap,
    cand: &Candidate<'_>,
) -> bool {
    if status != StatusCode::OK {
        return false;
    }
    for name in [LOCATION, CONTENT_LOCATION] {
        if !headers
            .get_all(name)
            .iter()
            .all(|v| points_at_asked(v, cand))
        {
            return false;
        }
    }
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let (Some(content_type), None) = (types.next(), types.next()) else {
        return false;
    };
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !cfg
        .json_media_types
        .iter()
        .any(|m| m.eq_ignore_ascii_case(media))
    {
        return false;
    }
    encoding(headers).is_some()
}

/// How HAPI's body is encoded: `Some(false)` as is, `Some(true)` gzip (asked for: unencoded,
/// HAPI writes an answer in a hundred small segments, each a wake-up and a read here); None
/// for anything else, or more than one encoding.
pub fn encoding(headers: &HeaderMap) -> Option<bool> {
    let mut all = headers.get_all(CONTENT_ENCODING).iter();
    let (first, None) = (all.next(), all.next()) else {
        return None;
    };
    let Some(first) = first else {
        return Some(false);
    };
    let kind = first.to_str().ok()?.trim();
    if kind.eq_ignore_ascii_case("identity") {
        Some(false)
    } else if kind.eq_ignore_ascii_case("gzip") || kind.eq_ignore_ascii_case("x-gzip") {
        Some(true)
    } else {
        None
    }
}

/// A gzip body inflated, at most `limit` bytes; None if it is broken or longer.
///
/// The output is sized once from the gzip trailer (ISIZE) and inflated in one call by
/// libdeflate, with one decompressor per thread: no stream buffers, no per-answer allocation of
/// inflate state (flate2's reader took three times the CPU for a read's 800 bytes). Only the
/// first gzip member is inflated, and only if its length is the trailer's: what is checked is
/// exactly what is served.
pub fn gunzip(body: &[u8], limit: usize) -> Option<Vec<u8>> {
    thread_local! {
        static INFLATE: std::cell::RefCell<libdeflater::Decompressor> =
            std::cell::RefCell::new(libdeflater::Decompressor::new());
    }
    let trailer: [u8; 4] = body.get(body.len().checked_sub(4)?..)?.try_into().ok()?;
    let size = usize::try_from(u32::from_le_bytes(trailer)).ok()?;
    if size > limit {
        return None;
    }
    let mut out = vec![0u8; size];
    let inflated = INFLATE.with(|d| d.borrow_mut().gzip_decompress(body, &mut out).ok())?;
    (inflated == size).then_some(out)
}

/// Does a location point at the resource a read asked for? As the gateway reads it: the path
/// before any `?`, without a `/_history/<vid>` tail, ends with `/<type>/<id>`.
pub fn points_at_asked(value: &http::HeaderValue, cand: &Candidate<'_>) -> bool {
    if cand.interaction != Interaction::Read {
        return false;
    }
    let Ok(text) = value.to_str() else {
        return false;
    };
    let path = text.split('?').next().unwrap_or("");
    let path = match path.rfind("/_history/") {
        Some(at) => &path[..at],
        None => path,
    };
    let Some(head) = path.strip_suffix(cand.id) else {
        return false;
    };
    let Some(head) = head.strip_suffix('/') else {
        return false;
    };
    let Some(head) = head.strip_suffix(cand.resource_type) else {
        return false;
    };
    head.ends_with('/') || head.is_empty()
}

/// HAPI's body for `cand`: the resource asked for, or a search Bundle of plain matches of the
/// type; every resource passing the grant's checks. None on any doubt.
pub fn body_ok(cfg: &Config, grant: &Grant, cand: &Candidate<'_>, body: &[u8]) -> Option<Served> {
    if memchr::memmem::find(body, b"\"OperationOutcome\"").is_some() {
        return None; // an error or a warning: the gateway words those
    }
    let value = Json::parse(body)?;
    let answer = value.as_object()?;
    let t = cand.resource_type;
    let mut patients: Vec<&str> = Vec::new();
    let result_count = match cand.interaction {
        Interaction::Read => {
            if get_str(answer, "resourceType") != Some(t) || get_str(answer, "id") != Some(cand.id)
            {
                return None;
            }
            let allowed = grant.read.contains(t);
            resource_ok(cfg, grant, answer, t, allowed, &mut patients).then_some(1)?
        }
        Interaction::Search => {
            if get_str(answer, "resourceType") != Some("Bundle") {
                return None;
            }
            let entries = match get(answer, "entry") {
                None => &[][..], // no match
                Some(Json::Array(entries)) => entries.as_slice(),
                Some(_) => return None,
            };
            let allowed = grant.search.contains_key(t);
            for entry in entries {
                let entry = entry.as_object()?;
                let resource = get(entry, "resource")?.as_object()?;
                if get_str(resource, "resourceType") != Some(t) || !is_match(entry) {
                    return None; // an include, an outcome, another type: the gateway's
                }
                if !resource_ok(cfg, grant, resource, t, allowed, &mut patients) {
                    return None;
                }
            }
            entries.len()
        }
    };
    patients.sort_unstable();
    patients.dedup();
    Some(Served {
        result_count,
        patients: patients.into_iter().map(str::to_owned).collect(),
    })
}

/// A Bundle entry's `search.mode` is absent or "match".
fn is_match(entry: &Object<'_>) -> bool {
    match get(entry, "search") {
        None => true,
        Some(Json::Object(search)) => match get(search, "mode") {
            None => true,
            Some(mode) => mode.as_str() == Some("match"),
        },
        Some(_) => false,
    }
}

/// One returned resource of type `t` (already checked), under the grant's checks; its
/// compartment patients are added to `patients`. `allowed`: `t` is a type the grant covers
/// for this interaction (C05).
pub fn resource_ok<'a>(
    cfg: &Config,
    grant: &Grant,
    resource: &'a Object<'_>,
    t: &str,
    allowed: bool,
    patients: &mut Vec<&'a str>,
) -> bool {
    // a contained resource is someone the checks below cannot see (whatever the grant says)
    match get(resource, "contained") {
        None => {}
        Some(Json::Array(contained)) if contained.is_empty() => {}
        Some(_) => return false,
    }
    let checks = grant.checks;
    if checks.c05 && !allowed {
        return false;
    }
    if checks.c10 {
        let Some(tenant) = grant.tenant.as_deref() else {
            return false;
        };
        if tenant_of(cfg, resource) != Some(tenant) {
            return false;
        }
    }
    let first = patients.len();
    compartment_patient_ids(cfg, t, resource, patients);
    if checks.c08 {
        let Some(patient) = grant.patient.as_deref() else {
            return false;
        };
        match cfg.kind(t) {
            Kind::Unknown => return false,
            Kind::In if !patients[first..].contains(&patient) => return false,
            Kind::In | Kind::Never => {}
        }
        if names_other_patient(resource, patient) {
            return false;
        }
    }
    true
}

/// The tenant a resource is tagged with: the first `meta.tag` of the tenant system decides.
pub fn tenant_of<'a>(cfg: &Config, resource: &'a Object<'_>) -> Option<&'a str> {
    let Some(Json::Array(tags)) = get(get(resource, "meta")?.as_object()?, "tag") else {
        return None;
    };
    let tag = tags
        .iter()
        .filter_map(Json::as_object)
        .find(|tag| get_str(tag, "system") == Some(cfg.tenant_tag_system.as_str()))?;
    get_str(tag, "code")
}

/// The patient id a reference names (`Patient/x`, `<base>/Patient/x[/_history/v]`), or None.
pub fn patient_id(reference: &str) -> Option<&str> {
    // most references (a practitioner, an organization) are told apart without the regex
    memchr::memmem::find(reference.as_bytes(), b"Patient/")?;
    if !PATIENT_REFERENCE.is_match(reference) {
        return None;
    }
    // The id is then found from the end (no capture search needed): neither it nor a version
    // holds a '/', and the segment before the id is "Patient", never "_history".
    let mut segments = reference.rsplit('/');
    let last = segments.next()?;
    match segments.next() {
        Some("_history") => segments.next(),
        _ => Some(last),
    }
}

/// `compartment_patient_ids`: the patients whose compartment `resource` (of type `t`) is in,
/// appended to `out` (unsorted, maybe repeated).
pub fn compartment_patient_ids<'a>(
    cfg: &Config,
    t: &str,
    resource: &'a Object<'_>,
    out: &mut Vec<&'a str>,
) {
    let Some(paths) = cfg.compartment_paths.get(t) else {
        return;
    };
    if paths.is_empty() {
        return;
    }
    if t == "Patient"
        && let Some(id) = get_str(resource, "id").filter(|id| is_id(id))
    {
        out.push(id);
    }
    for path in paths {
        walk(resource, path, out);
    }
}

/// The `reference`s at `path` below `node`, through objects and the objects of arrays (an
/// array inside an array is not walked, as in Python's `_reference_strings`).
fn walk<'a>(node: &'a Object<'_>, path: &[String], out: &mut Vec<&'a str>) {
    let Some((segment, rest)) = path.split_first() else {
        if let Some(id) = get_str(node, "reference").and_then(patient_id) {
            out.push(id);
        }
        return;
    };
    match get(node, segment) {
        Some(Json::Object(child)) => walk(child, rest, out),
        Some(Json::Array(items)) => {
            for item in items {
                if let Json::Object(child) = item {
                    walk(child, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// Does any `reference` anywhere in `value` name a patient other than `patient`
/// (`referenced_patient_ids(resource) - {patient}` not empty)?
pub fn names_other_patient(resource: &Object<'_>, patient: &str) -> bool {
    if let Some(id) = get_str(resource, "reference").and_then(patient_id)
        && id != patient
    {
        return true;
    }
    resource.iter().any(|(_, v)| value_names_other(v, patient))
}

fn value_names_other(value: &Json<'_>, patient: &str) -> bool {
    match value {
        Json::Object(object) => names_other_patient(object, patient),
        Json::Array(items) => items.iter().any(|v| value_names_other(v, patient)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample;
    use crate::grants::tests::grant;
    use http::HeaderValue;
    use serde_json::json;

    use serde_json::Value;

    /// `f` on `v` as the lane parses it.
    fn on<R>(v: &Value, f: impl FnOnce(&Object<'_>) -> R) -> R {
        let text = serde_json::to_vec(v).unwrap();
        let json = Json::parse(&text).unwrap();
        f(json.as_object().unwrap())
    }

    #[test]
    fn patient_references() {
        assert_eq!(patient_id("Patient/p-1"), Some("p-1"));
        assert_eq!(patient_id("Patient/p-1/_history/3"), Some("p-1"));
        assert_eq!(patient_id("http://h:8080/fhir/Patient/p.1"), Some("p.1"));
        assert_eq!(patient_id("urn+x.y-z://h/Patient/p"), Some("p"));
        assert_eq!(patient_id("http://h/Patient/a/Patient/b"), Some("b"));
        assert_eq!(patient_id("https://h/Patient/a/_history/1"), Some("a"));
        assert_eq!(patient_id("Patient/a/_history/"), None);
        assert_eq!(patient_id("Patient/"), None);
        assert_eq!(patient_id("#p1"), None);
        assert_eq!(patient_id("urn:uuid:1234"), None);
        assert_eq!(patient_id("Patient?identifier=x"), None);
        assert_eq!(patient_id("Practitioner/x"), None);
        assert_eq!(patient_id("xPatient/a"), None);
        assert_eq!(patient_id("/Patient/a"), None);
        assert_eq!(patient_id("Patient/a\n"), None);
        assert_eq!(patient_id("http://h?q/Patient/a"), None);
        assert_eq!(patient_id(&format!("Patient/{}", "a".repeat(65))), None);
        assert_eq!(patient_id("http://h/_history/Patient/a"), Some("a"));
        assert_eq!(patient_id("http://h/Patient/_history/_history/1"), None);
        assert_eq!(patient_id("Patient/_history/_history/1"), None);
        assert_eq!(patient_id("Patient/a/_history/1/_history/2"), None);
        // the id taken from the end is the regex's own group 1
        let cases = [
            "Patient/x",
            "Patient/x/_history/1",
            "a://b/Patient/x",
            "a://b/c/Patient/x/_history/v",
            "a://b/Patient/Patient/x",
            "a://b/_history/Patient/x",
            "a://b/Patient/_history/1",
            "a://b//Patient/x",
            "a://b/Patient/x/_history/_history",
            "Patient/x/y",
            "a:/b/Patient/x",
        ];
        for case in cases {
            let group = PATIENT_REFERENCE
                .captures(case)
                .map(|c| c.get(1).unwrap().as_str());
            assert_eq!(patient_id(case), group, "{case}");
        }
    }

    #[test]
    fn compartments() {
        let cfg = sample();
        let ids = |t: &str, v: Value| {
            on(&v, |r| {
                let mut out = Vec::new();
                compartment_patient_ids(&cfg, t, r, &mut out);
                out.sort_unstable();
                out.dedup();
                out.into_iter().map(str::to_owned).collect::<Vec<_>>()
            })
        };
        let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/a"},
            "performer": [{"reference": "Patient/b"}, {"reference": "Practitioner/x"}, "odd"]});
        assert_eq!(ids("Observation", obs), ["a", "b"]);
        let enc = json!({"resourceType": "Encounter",
            "participant": [{"individual": {"reference": "http://h/fhir/Patient/c"}},
                            [{"individual": {"reference": "Patient/nested"}}]]});
        assert_eq!(ids("Encounter", enc), ["c"]);
        let pat = json!({"resourceType": "Patient", "id": "p",
            "link": [{"other": {"reference": "Patient/q"}}], "generalPractitioner": [{"reference": "Patient/z"}]});
        assert_eq!(ids("Patient", pat), ["p", "q"]);
        let bad_id = json!({"resourceType": "Patient", "id": "p/x"});
        assert!(ids("Patient", bad_id).is_empty());
        let org = json!({"resourceType": "Organization", "partOf": {"reference": "Patient/a"}});
        assert!(ids("Organization", org).is_empty());
    }

    #[test]
    fn other_patients() {
        let other = |v: Value| on(&v, |r| names_other_patient(r, "a"));
        assert!(!other(json!({"subject": {"reference": "Patient/a"},
            "extension": [{"valueReference": {"reference": "Patient/a/_history/2"}}]})));
        assert!(other(json!({"subject": {"reference": "Patient/a"},
            "x": [[{"deep": {"reference": "http://h/Patient/b"}}]]})));
        assert!(other(json!({"reference": "Patient/b"})));
        // escaped text is read as what it stands for
        let text = br#"{"subject": {"reference": "Patient\/b"}}"#;
        assert!(names_other_patient(
            Json::parse(text).unwrap().as_object().unwrap(),
            "a"
        ));
    }

    #[test]
    fn tenants() {
        let cfg = sample();
        let tenant = |v: Value| on(&v, |r| tenant_of(&cfg, r).map(str::to_owned));
        let tag = |tags: Value| tenant(json!({"meta": {"tag": tags}}));
        let sys = "https://fhirlab.dev/tenant";
        let first = json!([{"system": "x", "code": "b"}, "odd", {"system": sys, "code": "a"},
                           {"system": sys, "code": "b"}]);
        assert_eq!(tag(first).as_deref(), Some("a"));
        assert_eq!(
            tag(json!([{"system": sys, "code": 1}, {"system": sys, "code": "a"}])),
            None
        );
        assert_eq!(tag(json!({"system": sys, "code": "a"})), None);
        assert_eq!(tenant(json!({"meta": []})), None);
        assert_eq!(tenant(json!({})), None);
    }

    fn obs(subject: &str, tenant: &str) -> Value {
        json!({"resourceType": "Observation", "id": "o1",
               "meta": {"tag": [{"system": "https://fhirlab.dev/tenant", "code": tenant}]},
               "subject": {"reference": subject}})
    }

    #[test]
    fn resources() {
        let cfg = sample();
        let check = |g: &Grant, v: Value, t: &str, allowed: bool| {
            on(&v, |r| resource_ok(&cfg, g, r, t, allowed, &mut Vec::new()))
        };
        let g = grant(Some("a"), Some("t"));
        let ok = |v: Value, t: &str| check(&g, v, t, true);
        assert!(ok(obs("Patient/a", "t"), "Observation"));
        assert!(!ok(obs("Patient/b", "t"), "Observation"));
        assert!(!ok(obs("Patient/a", "u"), "Observation"));
        let mut two = obs("Patient/a", "t");
        two["performer"] = json!([{"reference": "Patient/b"}]);
        assert!(!ok(two, "Observation"));
        let mut note = obs("Patient/a", "t");
        note["note"] = json!([{"authorReference": {"reference": "Patient/b"}}]);
        assert!(!ok(note, "Observation")); // outside the compartment paths, still another patient
        let mut contained = obs("Patient/a", "t");
        contained["contained"] = json!([{"resourceType": "Practitioner"}]);
        assert!(!ok(contained.clone(), "Observation"));
        contained["contained"] = json!([]);
        assert!(ok(contained.clone(), "Observation"));
        contained["contained"] = json!({});
        assert!(!ok(contained, "Observation"));
        let org = json!({"resourceType": "Organization", "id": "o",
            "meta": {"tag": [{"system": "https://fhirlab.dev/tenant", "code": "t"}]}});
        assert!(ok(org.clone(), "Organization")); // never in a compartment: no patient needed
        assert!(!ok(org, "Widget")); // unknown type
        // C10 without a tenant, C08 without a patient: fail
        let mut no_tenant = grant(Some("a"), None);
        no_tenant.checks.c10 = true;
        assert!(!check(
            &no_tenant,
            obs("Patient/a", "t"),
            "Observation",
            true
        ));
        let mut no_patient = grant(None, Some("t"));
        no_patient.checks.c08 = true;
        assert!(!check(
            &no_patient,
            obs("Patient/a", "t"),
            "Observation",
            true
        ));
        // C05
        assert!(!check(&g, obs("Patient/a", "t"), "Observation", false));
        // without C08, any patient's resource of the tenant
        no_patient.checks.c08 = false;
        assert!(check(
            &no_patient,
            obs("Patient/zz", "t"),
            "Observation",
            true
        ));
    }

    #[test]
    fn heads() {
        let cfg = sample();
        let value = HeaderValue::from_static("x");
        let read = cand("Observation", "o1", Interaction::Read, &value);
        let find = cand("Observation", "", Interaction::Search, &value);
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json;charset=UTF-8"),
        );
        assert!(head_ok(&cfg, StatusCode::OK, &h, &read));
        assert!(!head_ok(&cfg, StatusCode::CREATED, &h, &read));
        let mut e = h.clone();
        e.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
        assert!(head_ok(&cfg, StatusCode::OK, &e, &read));
        e.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(head_ok(&cfg, StatusCode::OK, &e, &read));
        e.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(!head_ok(&cfg, StatusCode::OK, &e, &read));
        e.append(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!head_ok(&cfg, StatusCode::OK, &e, &read));
        let mut l = h.clone();
        l.insert(CONTENT_LOCATION, HeaderValue::from_static("/x"));
        assert!(!head_ok(&cfg, StatusCode::OK, &l, &read));
        // a location naming the resource read (any base, any version) is the gateway's too
        for at in [
            "http://gw/fhir/Observation/o1/_history/2",
            "Observation/o1",
            "/fhir/Observation/o1?x=1",
        ] {
            let mut l = h.clone();
            l.insert(CONTENT_LOCATION, HeaderValue::from_static(at));
            assert!(head_ok(&cfg, StatusCode::OK, &l, &read), "{at}");
            assert!(!head_ok(&cfg, StatusCode::OK, &l, &find), "{at}");
        }
        for at in [
            "http://gw/fhir/Observation/xo1",
            "/fhir/Observation/o12",
            "/fhir/Patient/o1",
        ] {
            let mut l = h.clone();
            l.insert(LOCATION, HeaderValue::from_static(at));
            assert!(!head_ok(&cfg, StatusCode::OK, &l, &read), "{at}");
        }
        let mut two = h.clone();
        two.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!head_ok(&cfg, StatusCode::OK, &two, &read));
        let mut xml = HeaderMap::new();
        xml.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+xml"),
        );
        assert!(!head_ok(&cfg, StatusCode::OK, &xml, &read));
        assert!(!head_ok(&cfg, StatusCode::OK, &HeaderMap::new(), &read));
    }

    #[test]
    fn gzip_bodies() {
        let zipped = gzip(b"{\"resourceType\":\"Patient\"}");
        assert_eq!(
            gunzip(&zipped, 1 << 20).as_deref(),
            Some(&b"{\"resourceType\":\"Patient\"}"[..])
        );
        assert!(gunzip(&zipped, 10).is_none()); // longer than the limit
        assert!(gunzip(&zipped[..zipped.len() - 4], 1 << 20).is_none()); // cut short
        assert!(gunzip(b"not gzip", 1 << 20).is_none());
        assert!(gunzip(b"", 1 << 20).is_none());
        let mut wrong_size = zipped.clone();
        let at = wrong_size.len() - 4;
        wrong_size[at] += 1; // the trailer's length says one byte more
        assert!(gunzip(&wrong_size, 1 << 20).is_none());
        let mut two = zipped.clone();
        two.extend_from_slice(&gzip(b"{}"));
        assert!(gunzip(&two, 1 << 20).is_none()); // a second member
        let big = vec![b' '; 100_000];
        assert_eq!(gunzip(&gzip(&big), 1 << 20), Some(big));
    }

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::fastest());
        let mut out = vec![0; c.gzip_compress_bound(data.len())];
        let n = c.gzip_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn cand<'a>(
        t: &'a str,
        id: &'a str,
        interaction: Interaction,
        h: &'a HeaderValue,
    ) -> Candidate<'a> {
        Candidate {
            token: "tok",
            host: h,
            request_id: None,
            content_type: h,
            path: "/",
            query: "",
            interaction,
            resource_type: t,
            id,
            params: Vec::new(),
        }
    }

    #[test]
    fn bodies() {
        let cfg = sample();
        let g = grant(Some("a"), Some("t"));
        let h = HeaderValue::from_static("x");
        let read = cand("Observation", "o1", Interaction::Read, &h);
        let body = |v: Value| serde_json::to_vec(&v).unwrap();
        let served = body_ok(&cfg, &g, &read, &body(obs("Patient/a", "t"))).unwrap();
        assert_eq!(
            served,
            Served {
                result_count: 1,
                patients: vec!["a".into()]
            }
        );
        let other = cand("Observation", "o2", Interaction::Read, &h);
        assert!(body_ok(&cfg, &g, &other, &body(obs("Patient/a", "t"))).is_none());
        assert!(body_ok(&cfg, &g, &read, b"[1]").is_none());
        assert!(body_ok(&cfg, &g, &read, b"{").is_none());
        let mut warned = obs("Patient/a", "t");
        warned["extension"] = json!([{"url": "x", "valueCode": "OperationOutcome"}]);
        assert!(body_ok(&cfg, &g, &read, &body(warned)).is_none());

        let search = cand("Observation", "", Interaction::Search, &h);
        let bundle = |entries: Value| {
            body(json!({"resourceType": "Bundle", "type": "searchset", "entry": entries}))
        };
        let e = |v: Value| json!({"resource": v, "search": {"mode": "match"}});
        let ok = body_ok(
            &cfg,
            &g,
            &search,
            &bundle(json!([e(obs("Patient/a", "t")), {"resource": obs("Patient/a", "t")}])),
        );
        assert_eq!(
            ok.unwrap(),
            Served {
                result_count: 2,
                patients: vec!["a".into()]
            }
        );
        let empty = body(json!({"resourceType": "Bundle", "type": "searchset", "total": 0}));
        assert_eq!(body_ok(&cfg, &g, &search, &empty).unwrap().result_count, 0);
        assert!(
            body_ok(
                &cfg,
                &g,
                &search,
                &bundle(json!([e(obs("Patient/b", "t"))]))
            )
            .is_none()
        );
        let include = json!({"resource": obs("Patient/a", "t"), "search": {"mode": "include"}});
        assert!(body_ok(&cfg, &g, &search, &bundle(json!([include]))).is_none());
        let org = json!({"resource": {"resourceType": "Organization"}});
        assert!(body_ok(&cfg, &g, &search, &bundle(json!([org]))).is_none());
        assert!(body_ok(&cfg, &g, &search, &bundle(json!({}))).is_none());
        assert!(body_ok(&cfg, &g, &search, &bundle(json!([{}]))).is_none());
        assert!(body_ok(&cfg, &g, &search, &body(obs("Patient/a", "t"))).is_none());
    }
}
