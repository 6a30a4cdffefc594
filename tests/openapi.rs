//! The committed spec is what the code generates; regenerate with
//! `cargo run -- openapi > openapi/openapi.json`.

#[test]
fn committed_spec_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi/openapi.json exists");
    let committed: serde_json::Value = serde_json::from_str(&committed).expect("valid JSON");
    let generated = switchboard_server::api::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_response_has_a_description_and_every_operation_an_id() {
    let spec = switchboard_server::api::openapi_json();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/v1/conversations"));
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            for (status, response) in op["responses"].as_object().expect("responses") {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
}

#[test]
fn every_error_code_in_the_source_is_in_the_spec() {
    let spec = switchboard_server::api::openapi_json();
    let listed: Vec<String> = spec
        .pointer("/components/schemas/Problem/properties/code/enum")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .expect("Problem.code is an enum");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/crates");
    let mut stack = vec![std::path::PathBuf::from(root)];
    let mut missing = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for part in text.split("with_code(\"").skip(1) {
                    let code = part.split('"').next().unwrap_or_default();
                    if !listed.iter().any(|c| c == code) {
                        missing.push(format!("{code} ({})", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "codes missing from the spec: {missing:?}"
    );
}

#[test]
fn the_change_feed_is_in_the_spec() {
    let spec = switchboard_server::api::openapi_json();
    let stream = &spec["paths"]["/v1/events/stream"]["get"]["responses"]["200"]["content"];
    assert!(stream["text/event-stream"].is_object(), "{stream}");
    let page = &spec["components"]["schemas"]["EventList"]["properties"];
    assert_eq!(page["data"]["items"]["$ref"], "#/components/schemas/Event");
    let delivery = &spec["webhooks"]["event"]["post"];
    assert_eq!(
        delivery["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Event",
        "a webhook delivers the same Event"
    );
    let codes = spec
        .pointer("/components/schemas/Problem/properties/code/enum")
        .expect("codes");
    for code in ["cursor_expired", "invalid_cursor", "invalid_type"] {
        assert!(
            codes
                .as_array()
                .is_some_and(|c| c.iter().any(|v| v == code)),
            "{code}"
        );
    }
}
