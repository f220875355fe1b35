//! The set-up page and the dashboard's shell over plain HTTP (what a browser without
//! JavaScript gets): the snippets for a service name given in the URL, a refused name,
//! the waiting panel, the HTML 404 page for unknown paths (JSON under `/api/`), and the
//! favicon with its long cache lifetime.

use weft_e2e::Stack;
use weft_e2e::web::{Page, Visitor};

const LANGUAGES: [&str; 6] = ["shell", "python", "node", "go", "java", "rust"];

/// What a language's tab says that depends on the service name: its main block, and for
/// Node.js (whose tracing.js reads the variables) its run command.
fn service_text(page: &Page, language: &str) -> String {
    let mut text = page.snippet("snippet", language);
    if language == "node" {
        text.push_str(&page.snippet("run", language));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_set_up_page_follows_the_service_name_and_unknown_paths_are_a_404_page() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    let signed_up = alice.sign_up("alice@acme.io", "Acme").await;
    let key = signed_up.shown("new-key");
    for language in LANGUAGES {
        let snippet = service_text(&signed_up, language);
        assert!(snippet.contains("my-service"), "{language}: {snippet}");
    }

    // Later visits show the placeholder, never the key, for the name in the URL.
    let page = alice.get("/?service=billing-api").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(&key));
    assert!(page.body.contains("Waiting for your first span"));
    for language in LANGUAGES {
        let snippet = service_text(&page, language);
        assert!(snippet.contains("billing-api"), "{language}: {snippet}");
        assert!(!snippet.contains("my-service"), "{language}: {snippet}");
    }
    let python = page.snippet("snippet", "python");
    assert!(
        python.contains("OTEL_SERVICE_NAME=billing-api \\\n"),
        "{python}"
    );
    assert!(python.contains("OTEL_EXPORTER_OTLP_HEADERS=x-api-key=YOUR_INGEST_KEY \\\n"));
    assert!(python.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"));
    assert!(python.contains("OTEL_METRICS_EXPORTER=none"));
    // Install commands and code are separate blocks.
    let node = page.snippet("snippet", "node");
    assert!(!node.contains("npm install"), "{node}");
    assert!(page.snippet("install", "node").starts_with("npm install "));

    // A name the snippets could not carry safely is refused, and the default shown.
    let refused = alice.get("/?service=%24%28rm%20-rf%29").await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("A service name has 1 to 64 letters"));
    assert!(
        refused
            .snippet("snippet", "shell")
            .contains("OTEL_SERVICE_NAME=my-service\n")
    );
    assert!(!refused.body.contains("rm -rf"));

    // Unknown paths: the HTML page with the header for a signed-in user, the plain one
    // for anyone else; JSON under /api.
    let missing = alice.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("<h1>Page not found</h1>"));
    assert!(missing.body.contains("<code>/no/such/page</code>"));
    assert!(missing.body.contains("<span class=\"role\">owner</span>"));
    let mut stranger = Visitor::new(&stack);
    let missing = stranger.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("<h1>Page not found</h1>"));
    assert!(missing.body.contains("href=\"/login\""));
    assert!(!missing.body.contains("class=\"role\""));
    let api = stranger.get("/api/v1/no-such-endpoint").await;
    assert_eq!(api.status, 404);
    let body: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(body["error"], "no such endpoint: /api/v1/no-such-endpoint");
    // Known routes keep their own answers.
    assert_eq!(stranger.get("/").await.location.as_deref(), Some("/login"));
    assert_eq!(
        stranger.get("/setup/first-trace").await.location.as_deref(),
        Some("/login")
    );

    // The favicon, linked from every page.
    assert!(
        page.body
            .contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">")
    );
    let icon = reqwest::get(stack.query_url("/static/favicon.svg"))
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        icon.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(icon.text().await.unwrap().starts_with("<svg "));
    stack.stop().await;
}
