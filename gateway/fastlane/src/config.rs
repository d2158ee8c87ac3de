//! The configuration file the Python gateway writes for the fast lane, read once at start.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, Uri};
use serde::Deserialize;

/// Where a resource type stands with respect to the R4 Patient compartment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Can be in a Patient compartment (a key of `compartment_paths`).
    In,
    /// An R4 type that never is (`never_in_compartment`).
    Never,
    /// Anything else: not a type the checks know, never served here.
    Unknown,
}

/// The file as written (see the module's docstring in gateway/fast_lane.py, `lane_config`).
#[derive(Deserialize)]
struct File {
    listen: String,
    gateway: String,
    upstream: String,
    base_path: String,
    secret: String,
    #[serde(default = "one")]
    threads: usize,
    #[serde(default = "sixty")]
    upstream_timeout_s: f64,
    compartment_paths: HashMap<String, Vec<Vec<String>>>,
    compartment_params: HashMap<String, Vec<String>>,
    never_in_compartment: Vec<String>,
    json_media_types: Vec<String>,
    accept: HashMap<String, String>,
    upstream_accept: String,
    tenant_tag_system: String,
}

fn one() -> usize {
    1
}

fn sixty() -> f64 {
    60.0
}

/// The configuration, checked and in the shapes the request path looks things up in.
pub struct Config {
    pub listen: SocketAddr,
    /// The Python gateway's base URL, without a trailing '/' (relays append the raw path).
    pub gateway: String,
    /// `{gateway}/_fastlane/grant`, parsed once.
    pub grant_uri: Uri,
    /// HAPI's FHIR base, without a trailing '/'.
    pub upstream: String,
    /// The FHIR base path clients use ("/fhir"), without a trailing '/'.
    pub base_path: String,
    pub secret: HeaderValue,
    pub threads: usize,
    pub upstream_timeout: Duration,
    pub compartment_paths: HashMap<String, Vec<Vec<String>>>,
    pub compartment_params: HashMap<String, HashSet<String>>,
    pub never_in_compartment: HashSet<String>,
    /// Lowercased media types (no parameters) accepted as JSON from HAPI.
    pub json_media_types: Vec<String>,
    /// The client's exact Accept value ("" = none) -> the Content-Type served.
    pub accept: HashMap<String, HeaderValue>,
    pub upstream_accept: HeaderValue,
    pub tenant_tag_system: String,
}

impl Config {
    pub fn load(path: &str) -> Result<Config, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read config {path}: {e}"))?;
        Config::from_json(&text).map_err(|e| format!("bad config {path}: {e}"))
    }

    pub fn from_json(text: &str) -> Result<Config, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let listen = file
            .listen
            .parse()
            .map_err(|_| format!("listen {:?} is not an address:port", file.listen))?;
        let gateway = http_base("gateway", &file.gateway)?;
        let upstream = http_base("upstream", &file.upstream)?;
        let grant_uri = format!("{gateway}/_fastlane/grant")
            .parse()
            .map_err(|_| format!("gateway {:?} is not a URL", file.gateway))?;
        let base_path = file.base_path.trim_end_matches('/').to_owned();
        if !(base_path.is_empty() || base_path.starts_with('/')) {
            return Err(format!(
                "base_path {:?} must start with '/'",
                file.base_path
            ));
        }
        if !(file.upstream_timeout_s.is_finite() && file.upstream_timeout_s > 0.0) {
            return Err("upstream_timeout_s must be a positive number".into());
        }
        let mut accept = HashMap::with_capacity(file.accept.len());
        for (key, value) in file.accept {
            accept.insert(key, header_value("accept", &value)?);
        }
        Ok(Config {
            listen,
            gateway,
            grant_uri,
            upstream,
            base_path,
            secret: header_value("secret", &file.secret)?,
            threads: file.threads.max(1),
            upstream_timeout: Duration::from_secs_f64(file.upstream_timeout_s),
            compartment_paths: file.compartment_paths,
            compartment_params: file
                .compartment_params
                .into_iter()
                .map(|(t, names)| (t, names.into_iter().collect()))
                .collect(),
            never_in_compartment: file.never_in_compartment.into_iter().collect(),
            json_media_types: file
                .json_media_types
                .iter()
                .map(|m| m.trim().to_ascii_lowercase())
                .collect(),
            accept,
            upstream_accept: header_value("upstream_accept", &file.upstream_accept)?,
            tenant_tag_system: file.tenant_tag_system,
        })
    }

    pub fn kind(&self, resource_type: &str) -> Kind {
        if self.compartment_paths.contains_key(resource_type) {
            Kind::In
        } else if self.never_in_compartment.contains(resource_type) {
            Kind::Never
        } else {
            Kind::Unknown
        }
    }
}

/// An `http://host:port[/path]` base (the connector speaks plain HTTP only), trailing '/' cut.
fn http_base(what: &str, url: &str) -> Result<String, String> {
    let base = url.trim_end_matches('/');
    let uri: Uri = base
        .parse()
        .map_err(|_| format!("{what} {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() || uri.query().is_some() {
        return Err(format!("{what} {url:?} must be an http://host:port URL"));
    }
    Ok(base.to_owned())
}

fn header_value(what: &str, value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value).map_err(|_| format!("{what} {value:?} is not a header value"))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A configuration like the one gateway/fast_lane.py writes (a few types only).
    pub fn sample_json(gateway: &str, upstream: &str) -> String {
        serde_json::json!({
            "listen": "127.0.0.1:0",
            "gateway": gateway,
            "upstream": upstream,
            "base_path": "/fhir",
            "secret": "s3cret",
            "threads": 1,
            "upstream_timeout_s": 5,
            "compartment_paths": {
                "Observation": [["subject"], ["performer"]],
                "Encounter": [["subject"], ["participant", "individual"]],
                "Patient": [["link", "other"]],
                "Condition": [["subject"], ["asserter"]],
            },
            "compartment_params": {
                "Observation": ["subject", "performer"],
                "Encounter": ["patient"],
                "Patient": ["link"],
                "Condition": ["patient", "asserter"],
            },
            "never_in_compartment": ["Organization", "Practitioner", "Bundle", "Binary"],
            "json_media_types": ["application/fhir+json", "application/json", "application/json+fhir"],
            "accept": {
                "": "application/fhir+json;charset=utf-8",
                "*/*": "application/fhir+json;charset=utf-8",
                "application/json": "application/json;charset=utf-8",
                "application/fhir+json": "application/fhir+json;charset=utf-8",
            },
            "upstream_accept": "application/fhir+json",
            "tenant_tag_system": "https://fhirlab.dev/tenant",
        })
        .to_string()
    }

    pub fn sample() -> Config {
        Config::from_json(&sample_json(
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/fhir/",
        ))
        .unwrap()
    }

    #[test]
    fn loads_and_normalises() {
        let cfg = sample();
        assert_eq!(cfg.upstream, "http://127.0.0.1:9/fhir");
        assert_eq!(cfg.grant_uri, "http://127.0.0.1:9/_fastlane/grant");
        assert_eq!(cfg.kind("Observation"), Kind::In);
        assert_eq!(cfg.kind("Organization"), Kind::Never);
        assert_eq!(cfg.kind("Foo"), Kind::Unknown);
        assert_eq!(cfg.upstream_timeout, Duration::from_secs(5));
    }

    #[test]
    fn refuses_bad_files() {
        assert!(Config::from_json("{}").is_err());
        let https = sample_json("https://example.org", "http://127.0.0.1:9/fhir");
        assert!(Config::from_json(&https).is_err());
    }
}
