//! Fuzzes the filter parser: no input may panic or overflow the stack; whatever parses must
//! print canonically, reparse to the same tree, compile and evaluate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimkit::filter::{sort_resources, SortSpec};
use scimkit::{filter::Filter, schema::SchemaRegistry};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    // Default limits, then limits lifted as far as a host could lift them.
    let _ = Filter::parse(&input);
    let Ok(filter) = Filter::parse_with_limits(&input, usize::MAX, usize::MAX) else {
        return;
    };
    let text = filter.to_string();
    let again = Filter::parse_with_limits(&text, usize::MAX, usize::MAX);
    assert_eq!(again.as_ref().ok(), Some(&filter), "{text}");

    let registry = SchemaRegistry::default();
    let Some(users) = registry.user() else { return };
    let doc = serde_json::json!({
        "userName": "bjensen",
        "emails": [{"type": "work", "value": "b@example.com", "primary": true}],
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
        "active": true
    });
    if let Ok(compiled) = filter.compile(users, false) {
        let _ = compiled.matches(&doc);
    }
    let _ = filter.compile(users, true);
    if let Ok(spec) = SortSpec::parse(&input, Some("descending")) {
        let mut docs = vec![doc.clone(), serde_json::json!({})];
        sort_resources(users, &spec, &mut docs);
    }
});
