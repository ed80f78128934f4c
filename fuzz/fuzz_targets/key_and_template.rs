//! Key validation and upstream URL templates: a key the daemon accepts
//! fills exactly one path segment of the upstream URL (no `/`, never `.`
//! or `..`, decoding back to the key); a batch of accepted keys decodes
//! back to the same keys; any template text parses or gives a typed error.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use prewarm_fuzz::datasets;
use prewarm_server::config::{DatasetConfig, KeyProblem};
use prewarm_server::upstream::{Placeholder, UrlTemplate};
use url::Url;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    keys: Vec<&'a str>,
    template: &'a str,
    env_value: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    for ds in datasets().values() {
        let mut accepted = Vec::new();
        for &key in &input.keys {
            if check_key(ds, key) {
                accepted.push(key);
            }
        }
        check_batch(ds, &accepted);
    }
    check_template(&input);
});

/// Checks one key against `ds`; whether it is accepted.
fn check_key(ds: &DatasetConfig, key: &str) -> bool {
    let dot = key == "." || key == "..";
    match ds.key_problem(key) {
        Some(KeyProblem::DotSegment) => assert!(dot, "{key:?}"),
        Some(KeyProblem::Pattern(pattern)) => {
            // The error names the dataset's pattern, and the key fails it.
            let re = regex::Regex::new(&format!("^(?:{pattern})$")).expect("the named pattern compiles");
            assert!(!dot && !re.is_match(key), "{key:?} against {pattern}");
        }
        None => {
            assert!(!dot && ds.key_is_valid(key));
            check_one_segment(ds, key);
        }
    }
    ds.key_is_valid(key)
}

/// The rendered URL has the template's segments with the key as exactly
/// one of them, and the template's query.
fn check_one_segment(ds: &DatasetConfig, key: &str) {
    let rendered = ds.url.render_key(key);
    let with_marker = Url::parse(&ds.url.render_key("KEY")).expect("template URL");
    let url = Url::parse(&rendered).unwrap_or_else(|e| panic!("{key:?}: {rendered}: {e}"));
    let expected: Vec<&str> = with_marker.path_segments().expect("a path").collect();
    let got: Vec<&str> = url.path_segments().expect("a path").collect();
    assert_eq!(got.len(), expected.len(), "{key:?}: {url}");
    let at = expected.iter().position(|s| *s == "KEY").expect("{key}");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        if i != at {
            assert_eq!(g, e, "{key:?}: {url}");
        }
    }
    let segment = got[at];
    assert!(!segment.contains('/') && segment != "." && segment != "..");
    let decoded: Vec<u8> = percent_decode_str(segment).collect();
    assert_eq!(decoded, key.as_bytes(), "{url}");
    assert_eq!(url.query(), with_marker.query(), "{key:?}: {url}");
    assert_eq!(url.fragment(), None, "{key:?}: {url}");
}

/// Accepted keys rendered into the batch URL split back into themselves.
fn check_batch(ds: &DatasetConfig, keys: &[&str]) {
    let Some(batch) = &ds.batch else { return };
    if keys.is_empty() {
        return;
    }
    let url = Url::parse(&batch.url.render_keys(keys)).expect("batch URL");
    let query = url.query().expect("a query");
    let symbols = query
        .split('&')
        .find_map(|p| p.strip_prefix("symbols="))
        .expect("symbols");
    let decoded: Vec<Vec<u8>> = symbols
        .split(',')
        .map(|s| percent_decode_str(s).collect())
        .collect();
    let expected: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    assert_eq!(decoded, expected, "{url}");
}

/// Any template text: a typed error, or a template that renders keys and
/// shows itself as written.
fn check_template(input: &Input<'_>) {
    let env = |name: &str| (name == "API_KEY").then(|| input.env_value.to_string());
    for placeholder in [Placeholder::Key, Placeholder::Keys] {
        let Ok(t) = UrlTemplate::parse(input.template, placeholder, &env) else {
            continue;
        };
        assert_eq!(t.shown(), input.template);
        let rendered = match placeholder {
            Placeholder::Key => t.render_key(input.keys.first().copied().unwrap_or("")),
            Placeholder::Keys => t.render_keys(&input.keys),
        };
        assert!(rendered.starts_with("http://") || rendered.starts_with("https://"));
    }
}
