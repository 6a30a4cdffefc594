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
