//! The server serves what its document describes, and nothing more: every documented operation
//! answers, called as the document says, and every method a resource allows is documented there
//! (HEAD and OPTIONS aside: HEAD answers wherever GET does, OPTIONS is DRF's metadata).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, header, send, spawn_app};

/// The methods an operation can be documented for, as they appear in a path item.
const DOCUMENTABLE: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Each documented path with its documented methods (upper case), from the served document.
async fn documented_operations(app: &TestApp) -> (Value, Vec<(String, BTreeSet<String>)>) {
    let document: Value = send(app.anonymous(Method::GET, "/api-docs/openapi.json"))
        .await
        .json()
        .await
        .unwrap();
    let operations = document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .map(|(path, item)| {
            let methods = DOCUMENTABLE
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| method.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect();
    (document, operations)
}

/// `path` with each `{parameter}` replaced by the example the operation documents for it, and
/// the required query parameters, with their examples, after it.
fn example_path(path: &str, operation: &Value) -> String {
    let mut concrete = path.to_owned();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] == "query" && parameter["required"] == true {
            let name = parameter["name"].as_str().unwrap();
            let example = &parameter["example"];
            assert!(
                !example.is_null(),
                "{path}: required parameter {name} has no example"
            );
            let example = example
                .as_str()
                .map_or_else(|| example.to_string(), str::to_owned);
            query.push(format!("{name}={example}"));
        }
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().unwrap();
            let example = &parameter["example"];
            assert!(
                !example.is_null(),
                "{path}: parameter {name} has no example"
            );
            let example = example
                .as_str()
                .map_or_else(|| example.to_string(), str::to_owned);
            concrete = concrete.replace(&format!("{{{name}}}"), &example);
        }
    }
    assert!(
        !concrete.contains('{'),
        "{path}: undocumented path parameter"
    );
    if !query.is_empty() {
        concrete = format!("{concrete}?{}", query.join("&"));
    }
    concrete
}

/// The example of the operation's JSON request body, if it takes one.
fn example_body(document: &Value, operation: &Value) -> Option<Value> {
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return None;
    }
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &document["components"]["schemas"][name]
        }
        None => schema,
    };
    assert!(
        !schema["example"].is_null(),
        "a request body without an example"
    );
    Some(schema["example"].clone())
}

/// Splits an `Allow` header into its methods.
fn allowed(allow: &str) -> BTreeSet<String> {
    allow.split(',').map(|m| m.trim().to_owned()).collect()
}

#[actix_web::test]
async fn every_documented_operation_answers_when_called_as_documented() {
    // Arrange: the readings and device tokens the documented examples name (ids 1 and 2).
    let app = spawn_app().await;
    app.seed_stations(2).await;
    for label in ["one", "two"] {
        let body = serde_json::json!({"label": label, "scopes": ["read"]});
        let response = app.post_json("/tokens/", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (document, operations) = documented_operations(&app).await;
    assert!(operations.len() >= 5, "{operations:?}");

    for (path, methods) in operations {
        for method in methods {
            let operation = &document["paths"][&path][method.to_ascii_lowercase()];
            let target = example_path(&path, operation);
            let mut request = app.admin(Method::from_bytes(method.as_bytes()).unwrap(), &target);
            if let Some(body) = example_body(&document, operation) {
                request = request.json(&body);
            }

            // Act
            let response = send(request).await;

            // Assert: served (a 404 or 405 would mean documented but not routed), and as the
            // document promises.
            let status = response.status();
            assert!(status.is_success(), "{method} {target}: {status}");
            let documented = operation["responses"][status.as_str()].is_object();
            assert!(documented, "{method} {target}: {status} is not documented");
            if let Some(allow) = header(&response, "allow") {
                assert!(
                    allowed(&allow).contains(&method),
                    "{method} {target}: Allow {allow}"
                );
            }
        }
    }
}

#[actix_web::test]
async fn every_method_a_documented_path_allows_is_documented() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;
    let (document, operations) = documented_operations(&app).await;
    let undocumented_but_served = |documented: &BTreeSet<String>| {
        let mut extra = BTreeSet::from(["OPTIONS".to_owned()]);
        if documented.contains("GET") {
            extra.insert("HEAD".to_owned());
        }
        extra
    };

    for (path, documented) in operations {
        let any_operation = document["paths"][&path]
            .as_object()
            .and_then(|item| item.values().next())
            .unwrap();
        let target = example_path(&path, any_operation);

        // Act: OPTIONS is answered by API resources, and refused with `Allow` by the probes.
        let response = send(app.admin(Method::OPTIONS, &target)).await;

        // Assert
        let allow = header(&response, "allow").unwrap_or_else(|| panic!("{target}: no Allow"));
        let mut expected = documented.clone();
        expected.extend(undocumented_but_served(&documented));
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            expected.remove("OPTIONS");
        }
        assert_eq!(allowed(&allow), expected, "{target}");

        // Every other method is refused: no route answers it undocumented.
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::TRACE,
        ] {
            if expected.contains(method.as_str()) {
                continue;
            }
            let response = send(app.admin(method.clone(), &target)).await;
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {target}"
            );
        }
    }
}
