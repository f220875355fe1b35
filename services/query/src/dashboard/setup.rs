//! The set-up page at `/`: how to point an OpenTelemetry SDK at Weft, one tab per
//! language, each snippet as a user pastes it (shell commands and code in separate
//! blocks, every variable an SDK needs stated, exporters of signals Weft does not take
//! switched off), for a service name the user types. Below it, "waiting for your first
//! span", which `setup.js` turns into a link to the newest trace by polling
//! `/setup/first-trace`.
//!
//! The page is complete without JavaScript: every language is shown, and the service name
//! is a GET form (`/?service=NAME`). The snippets are tested by running them as the page
//! renders them (`services/e2e/tests/setup_snippets.rs`).

use super::DashboardState;
use super::error::DashboardError;
use super::extract::SignedIn;
use super::render::{Layout, render};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use weft_model::Role;
use weft_storage::clickhouse::{TraceSearch, TraceSort};

/// The service name the snippets show until the user types theirs.
pub const DEFAULT_SERVICE: &str = "my-service";
/// Shown instead of a key when the page is not the one right after sign-up.
pub const KEY_PLACEHOLDER: &str = "YOUR_INGEST_KEY";
/// How far back the newest trace is looked for.
const FIRST_TRACE_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);
/// How far ahead of this clock a trace may start and still count (clients' clocks drift).
const FIRST_TRACE_CLOCK_SKEW: Duration = Duration::from_secs(3600);

pub fn routes() -> Router<Arc<DashboardState>> {
    Router::new()
        .route("/", get(setup_page))
        .route("/setup/first-trace", get(first_trace))
        .route("/static/setup.js", get(script))
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../../frontend/static/setup.js"),
    )
}

/// A service name the snippets can carry unquoted in a shell, a Java property, a Go or
/// Rust string and a JavaScript string alike: letters, digits, `-`, `_` and `.`.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A stretch of a snippet's text: the service name (which `setup.js` rewrites in place
/// when the user types another) or anything else.
pub struct Piece {
    pub text: String,
    pub service: bool,
}

/// One copyable block: the element `<pre data-KIND="LANGUAGE">` whose text its copy
/// button copies.
pub struct Block {
    /// `snippet` (the language's main block, which the acceptance checks read),
    /// `install` or `run`.
    pub kind: &'static str,
    pub caption: &'static str,
    pub pieces: Vec<Piece>,
}

impl Block {
    /// The text as copied, for tests.
    #[cfg(test)]
    fn text(&self) -> String {
        self.pieces.iter().map(|p| p.text.as_str()).collect()
    }
}

/// A language's tab.
pub struct Language {
    pub id: &'static str,
    pub name: &'static str,
    /// A sentence above the blocks.
    pub intro: &'static str,
    pub blocks: Vec<Block>,
    /// What the test suite cannot run, said on the page as in docs/operations.md.
    pub note: Option<&'static str>,
}

/// What the snippets are filled with.
pub struct SnippetValues<'a> {
    pub http_endpoint: &'a str,
    pub key: &'a str,
    pub service: &'a str,
}

/// Fills `template`'s `{http}` and `{key}` and splits it around `{service}`.
fn block(kind: &'static str, caption: &'static str, template: &str, v: &SnippetValues) -> Block {
    let filled = template
        .replace("{http}", v.http_endpoint)
        .replace("{key}", v.key);
    let mut pieces = Vec::new();
    for (i, text) in filled.split("{service}").enumerate() {
        if i > 0 {
            pieces.push(Piece {
                text: v.service.to_owned(),
                service: true,
            });
        }
        if !text.is_empty() {
            pieces.push(Piece {
                text: text.to_owned(),
                service: false,
            });
        }
    }
    Block {
        kind,
        caption,
        pieces,
    }
}

/// The variables every SDK that reads them needs: the HTTP endpoint, its protocol (the
/// Python distro and others default to gRPC, which the HTTP port does not speak), the key,
/// and which signals to export (Weft takes traces and logs, not metrics).
const OTLP_VARIABLES: &str = "OTEL_SERVICE_NAME={service}
OTEL_EXPORTER_OTLP_ENDPOINT={http}
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
OTEL_EXPORTER_OTLP_HEADERS=x-api-key={key}
OTEL_TRACES_EXPORTER=otlp
OTEL_LOGS_EXPORTER=otlp
OTEL_METRICS_EXPORTER=none";

/// [`OTLP_VARIABLES`] as the prefix of one command, a variable a line.
fn command_with_variables(extra: &[&str], command: &str) -> String {
    let mut lines: Vec<String> = OTLP_VARIABLES.lines().map(str::to_owned).collect();
    lines.extend(extra.iter().map(|line| (*line).to_owned()));
    lines.push(command.to_owned());
    lines.join(" \\\n")
}

const NODE_TRACING_JS: &str = "\
// tracing.js: starts OpenTelemetry before your app, configured by the OTEL_* variables.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { getNodeAutoInstrumentations } = require('@opentelemetry/auto-instrumentations-node');

const sdk = new NodeSDK({
  instrumentations: [getNodeAutoInstrumentations()],
});
sdk.start();

// Sends the spans still buffered when the process is asked to stop.
process.on('SIGTERM', () => {
  sdk.shutdown().finally(() => process.exit(0));
});";

const GO_MAIN: &str = "\
package main

import (
\t\"context\"
\t\"log\"

\t\"go.opentelemetry.io/otel\"
\t\"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp\"
\tsdktrace \"go.opentelemetry.io/otel/sdk/trace\"
)

func main() {
\tctx := context.Background()
\t// Reads OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_HEADERS; the provider's
\t// resource reads OTEL_SERVICE_NAME.
\texporter, err := otlptracehttp.New(ctx)
\tif err != nil {
\t\tlog.Fatal(err)
\t}
\tprovider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
\tdefer func() {
\t\t// Sends the spans still buffered before the program exits.
\t\tif err := provider.Shutdown(ctx); err != nil {
\t\t\tlog.Print(err)
\t\t}
\t}()
\totel.SetTracerProvider(provider)

\t_, span := otel.Tracer(\"{service}\").Start(ctx, \"first span\")
\t// your code
\tspan.End()
}";

const RUST_MAIN: &str = "\
use opentelemetry::global;
use opentelemetry::trace::Tracer;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(\"{http}/v1/traces\")
        .with_headers(HashMap::from([(
            \"x-api-key\".to_string(),
            \"{key}\".to_string(),
        )]))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(\"{service}\").build())
        .with_batch_exporter(exporter)
        .build();
    global::set_tracer_provider(provider.clone());

    global::tracer(\"{service}\").in_span(\"first span\", |_cx| {
        // your code
    });

    // Sends the spans still buffered before the program exits.
    provider.shutdown()?;
    Ok(())
}";

/// Every language's tab, in the order of the page.
pub fn languages(v: &SnippetValues) -> Vec<Language> {
    let shell = OTLP_VARIABLES
        .lines()
        .map(|line| format!("export {line}"))
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        Language {
            id: "shell",
            name: "Any SDK",
            intro: "Every OpenTelemetry SDK that reads the standard variables sends traces and logs to Weft with these set in your service's environment.",
            blocks: vec![block("snippet", "Environment", &shell, v)],
            note: None,
        },
        Language {
            id: "python",
            name: "Python",
            intro: "Install the distro and the instrumentations of the libraries your app uses, then start your app under opentelemetry-instrument. The versions are pinned because distro 0.66b2 was released before its instrumentations, which opentelemetry-bootstrap then cannot find.",
            blocks: vec![
                block(
                    "install",
                    "Install",
                    "pip install opentelemetry-distro==0.66b1 opentelemetry-exporter-otlp==1.45.1\nopentelemetry-bootstrap -a install",
                    v,
                ),
                block(
                    "snippet",
                    "Run",
                    &command_with_variables(
                        &["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=true"],
                        "opentelemetry-instrument python app.py",
                    ),
                    v,
                ),
            ],
            note: None,
        },
        Language {
            id: "node",
            name: "Node.js",
            intro: "Install the SDK and the auto-instrumentations, save tracing.js beside your app and load it first.",
            blocks: vec![
                block(
                    "install",
                    "Install",
                    "npm install @opentelemetry/sdk-node @opentelemetry/auto-instrumentations-node",
                    v,
                ),
                block("snippet", "tracing.js", NODE_TRACING_JS, v),
                block(
                    "run",
                    "Run",
                    &command_with_variables(&[], "node --require ./tracing.js app.js"),
                    v,
                ),
            ],
            note: None,
        },
        Language {
            id: "go",
            name: "Go",
            intro: "Add the SDK and the OTLP/HTTP trace exporter, set up the provider in main, and run with the variables.",
            blocks: vec![
                block(
                    "install",
                    "Install",
                    "go get go.opentelemetry.io/otel go.opentelemetry.io/otel/sdk go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp",
                    v,
                ),
                block("snippet", "main.go", GO_MAIN, v),
                block(
                    "run",
                    "Run",
                    "OTEL_SERVICE_NAME={service} \\\nOTEL_EXPORTER_OTLP_ENDPOINT={http} \\\nOTEL_EXPORTER_OTLP_HEADERS=x-api-key={key} \\\ngo run .",
                    v,
                ),
            ],
            note: Some(
                "Weft's test suite does not run this snippet: Go modules cannot be downloaded where it runs.",
            ),
        },
        Language {
            id: "java",
            name: "Java",
            intro: "Download the OpenTelemetry Java agent and start your app with it; it instruments the usual frameworks and libraries.",
            blocks: vec![
                block(
                    "install",
                    "Download",
                    "curl -L -O https://github.com/open-telemetry/opentelemetry-java-instrumentation/releases/latest/download/opentelemetry-javaagent.jar",
                    v,
                ),
                block(
                    "snippet",
                    "Run",
                    "java -javaagent:opentelemetry-javaagent.jar \\
  -Dotel.service.name={service} \\
  -Dotel.exporter.otlp.endpoint={http} \\
  -Dotel.exporter.otlp.protocol=http/protobuf \\
  -Dotel.exporter.otlp.headers=x-api-key={key} \\
  -Dotel.traces.exporter=otlp \\
  -Dotel.logs.exporter=otlp \\
  -Dotel.metrics.exporter=none \\
  -jar app.jar",
                    v,
                ),
            ],
            note: Some(
                "Weft's test suite does not run this snippet: the Java agent cannot be downloaded where it runs.",
            ),
        },
        Language {
            id: "rust",
            name: "Rust",
            intro: "Add the crates (the OTLP exporter sends protobuf over HTTP by default) and set up the provider in main.",
            blocks: vec![
                block(
                    "install",
                    "Install",
                    "cargo add opentelemetry@0.33 opentelemetry_sdk@0.33 opentelemetry-otlp@0.33",
                    v,
                ),
                block("snippet", "src/main.rs", RUST_MAIN, v),
            ],
            note: None,
        },
    ]
}

#[derive(Template)]
#[template(path = "setup.html")]
pub(super) struct SetupPage {
    layout: Layout,
    new_key: Option<String>,
    /// Whether the user's role may create keys (otherwise: ask someone who can).
    manages_keys: bool,
    service: String,
    /// Why the service name in the URL was not used.
    service_error: Option<String>,
    languages: Vec<Language>,
    grpc_endpoint: String,
    http_endpoint: String,
    /// The newest trace when the page was rendered, if any.
    newest_trace: Option<NewestTrace>,
}

/// The newest trace of the organisation, as the waiting panel links to it.
#[derive(serde::Serialize)]
pub(super) struct NewestTrace {
    trace_id: String,
    root_service: String,
    root_name: String,
}

/// The set-up page right after sign-up: the new owner's key, shown once, filled into the
/// snippets.
pub(super) fn setup(state: &DashboardState, layout: Layout, new_key: Option<String>) -> SetupPage {
    page(state, layout, Role::Owner, new_key, DEFAULT_SERVICE)
}

/// The set-up page for `service` (already checked), with `new_key` (or the placeholder)
/// filled into the snippets.
fn page(
    state: &DashboardState,
    layout: Layout,
    role: Role,
    new_key: Option<String>,
    service: &str,
) -> SetupPage {
    let key = new_key.as_deref().unwrap_or(KEY_PLACEHOLDER);
    let languages = languages(&SnippetValues {
        http_endpoint: &state.ingest_http_url,
        key,
        service,
    });
    SetupPage {
        layout,
        manages_keys: role.is_admin(),
        new_key,
        service: service.to_owned(),
        service_error: None,
        languages,
        grpc_endpoint: state.ingest_grpc_url.clone(),
        http_endpoint: state.ingest_http_url.clone(),
        newest_trace: None,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SetupQuery {
    service: Option<String>,
}

/// The set-up page; a viewer, who cannot send data, goes to the traces instead.
async fn setup_page(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
    Query(query): Query<SetupQuery>,
) -> Response {
    if user.role == Role::Viewer {
        return Redirect::to("/traces").into_response();
    }
    let asked = query.service.as_deref().map(str::trim).unwrap_or_default();
    let (service, service_error) = if asked.is_empty() || valid_service_name(asked) {
        let service = if asked.is_empty() {
            DEFAULT_SERVICE
        } else {
            asked
        };
        (service, None)
    } else {
        (
            DEFAULT_SERVICE,
            Some(
                "A service name has 1 to 64 letters, digits, '-', '_' or '.'; the snippets show the default instead."
                    .to_owned(),
            ),
        )
    };
    let mut shown = page(&state, user.layout(&state), user.role, None, service);
    shown.service_error = service_error;
    shown.newest_trace = match newest_trace(&state, &user).await {
        Ok(trace) => trace,
        Err(error) => {
            // The page is useful without it; the script keeps asking.
            tracing::warn!(%error, "could not look up the newest trace");
            None
        }
    };
    render(StatusCode::OK, &shown)
}

async fn newest_trace(
    state: &DashboardState,
    user: &SignedIn,
) -> Result<Option<NewestTrace>, weft_storage::clickhouse::ClickHouseError> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let search = TraceSearch {
        start_unix_nano: now.saturating_sub(FIRST_TRACE_LOOKBACK.as_nanos() as u64),
        end_unix_nano: now.saturating_add(FIRST_TRACE_CLOCK_SKEW.as_nanos() as u64),
        limit: 1,
        sort: TraceSort::Newest,
        ..TraceSearch::default()
    };
    let traces = state.store.tenant(user.tenant).search(&search).await?;
    Ok(traces.into_iter().next().map(|t| NewestTrace {
        trace_id: hex::encode(t.trace_id),
        root_service: t.root_service,
        root_name: t.root_name,
    }))
}

/// The organisation's newest trace of the last 7 days as JSON, `{"trace": null}` until
/// there is one: what the waiting panel polls.
async fn first_trace(
    State(state): State<Arc<DashboardState>>,
    user: SignedIn,
) -> Result<Response, DashboardError> {
    let trace = newest_trace(&state, &user).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "trace": trace })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> SnippetValues<'static> {
        SnippetValues {
            http_endpoint: "http://ingest.example:4318",
            key: "weft_key",
            service: "shop-api",
        }
    }

    #[test]
    fn every_language_has_one_main_snippet_and_the_names_the_checks_use() {
        let ids: Vec<_> = languages(&values()).iter().map(|l| l.id).collect();
        assert_eq!(ids, ["shell", "python", "node", "go", "java", "rust"]);
        for language in languages(&values()) {
            let main = language.blocks.iter().filter(|b| b.kind == "snippet");
            assert_eq!(main.count(), 1, "{}", language.id);
        }
    }

    #[test]
    fn snippets_state_the_protocol_the_key_and_switch_metrics_off() {
        for language in languages(&values()) {
            let text: String = language.blocks.iter().map(Block::text).collect();
            assert!(text.contains("weft_key"), "{}", language.id);
            assert!(text.contains("shop-api"), "{}", language.id);
            assert!(!text.contains("checkout"), "{}", language.id);
            for marker in ["{http}", "{key}", "{service}"] {
                assert!(!text.contains(marker), "{}: {marker}", language.id);
            }
            if ["shell", "python", "node", "java"].contains(&language.id) {
                assert!(
                    text.contains("OTEL_METRICS_EXPORTER=none")
                        || text.contains("otel.metrics.exporter=none"),
                    "{}",
                    language.id
                );
                assert!(text.contains("http/protobuf"), "{}", language.id);
            }
        }
    }

    #[test]
    fn the_service_name_is_marked_wherever_it_appears() {
        let languages = languages(&values());
        let rust = &languages[5].blocks[1];
        let marked = rust.pieces.iter().filter(|p| p.service).count();
        assert_eq!(marked, 2);
        assert!(rust.text().contains("with_service_name(\"shop-api\")"));
        assert!(
            rust.text()
                .contains("\"http://ingest.example:4318/v1/traces\"")
        );
    }

    #[test]
    fn service_names_are_safe_in_every_snippet() {
        for good in ["checkout", "shop-api", "billing_v2", "a.b"] {
            assert!(valid_service_name(good), "{good}");
        }
        for bad in [
            "",
            "my service",
            "a'b",
            "a\"b",
            "$(id)",
            "a\\b",
            &"x".repeat(65),
        ] {
            assert!(!valid_service_name(bad), "{bad}");
        }
    }
}
