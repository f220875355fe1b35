//! The set-up page's snippets, run exactly as the page renders them (their text is taken
//! from the page a new user sees right after sign-up, with the key filled in): the
//! generic variables with an SDK that reads them, Python under `opentelemetry-instrument`,
//! Node.js with the SDK and the auto-instrumentations, and Rust with the crates the page
//! names. Each must make a trace arrive that the query API returns, and that the page's
//! "waiting for your first span" panel links to.
//!
//! The packages come from `deploy/lib.sh` (`install_python_snippet`,
//! `install_node_snippet`); the Rust snippet is built in a temporary project with the
//! workspace's locked crate versions, into a shared target directory under
//! `~/.cache/weft`. The Go and Java snippets are not run: Go modules and the Java agent
//! cannot be downloaded where the tests run (docs/operations.md).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use weft_e2e::Stack;
use weft_e2e::web::{Page, Visitor};

/// The service name the page's snippets carry until the user types another.
const SERVICE: &str = "my-service";

fn home() -> String {
    std::env::var("HOME").expect("HOME")
}

fn workspace_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("workspace root")
}

/// A new user's set-up page (key filled in), and a read key of their organisation.
async fn signed_up(stack: &Stack) -> (Visitor, Page, String) {
    let mut visitor = Visitor::new(stack);
    let page = visitor
        .sign_up("first-hour@example.com", "First Hour")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let ingest_key = page.shown("new-key");
    assert!(
        page.snippet("snippet", "shell").contains(&ingest_key),
        "the snippets carry the new key"
    );
    let keys = visitor.get("/keys").await;
    let created = visitor
        .submit(
            &keys,
            "/keys",
            &[("name", "snippet reader"), ("scope", "read")],
        )
        .await;
    let read_key = created.shown("new-key");
    (visitor, page, read_key)
}

/// Polls the query API until a trace of [`SERVICE`] is there, and returns it whole.
async fn wait_for_service_trace(stack: &Stack, read_key: &str, language: &str) -> Value {
    let found = weft_e2e::eventually(
        &format!("{language}: a trace of {SERVICE} in the query API"),
        Duration::from_secs(60),
        || async {
            let (status, body) = stack
                .query_get(
                    &format!("/api/v1/traces?service={SERVICE}&lookback=1h"),
                    read_key,
                )
                .await;
            (status == 200)
                .then(|| body["traces"].as_array().and_then(|t| t.first()).cloned())
                .flatten()
        },
    )
    .await;
    let trace_id = found["trace_id"].as_str().unwrap().to_owned();
    let (status, trace) = stack
        .query_get(&format!("/api/v1/traces/{trace_id}"), read_key)
        .await;
    assert_eq!(status, 200, "{language}: {trace}");
    trace
}

/// The waiting panel's endpoint names the newest trace, which is the one that arrived.
async fn panel_links_to(visitor: &mut Visitor, trace_id: &str) {
    let page = visitor.get("/setup/first-trace").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(body["trace"]["trace_id"], trace_id, "{body}");
    let setup = visitor.get("/").await;
    assert!(
        setup.body.contains(&format!("href=\"/traces/{trace_id}\"")),
        "the set-up page links to the trace once it is there"
    );
}

/// Runs `script` with bash in `dir`, `path_first` ahead on PATH; fails with its output.
async fn run_bash(language: &str, dir: &Path, path_first: &Path, script: &str) {
    let path = format!(
        "{}:{}",
        path_first.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new("bash")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run bash");
    assert!(
        output.status.success(),
        "{language}: the snippet failed ({})\n--- script\n{script}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The packages an install line names after `install`/`add`, without version suffixes.
fn packages_named(line: &str, verb: &str) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == verb)
        .unwrap_or_else(|| panic!("no `{verb}` in {line:?}"));
    words[at + 1..]
        .iter()
        .filter(|w| !w.starts_with('-'))
        .map(|w| {
            // `@scope/name@1.2` and `name@1.2` lose the version; `@scope/name` keeps its @.
            match w[1..].find('@') {
                Some(i) => w[..i + 1].to_owned(),
                None => (*w).to_owned(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_variables_make_an_sdk_that_reads_them_send_a_trace() {
    // Said in the test output, so nobody takes a green run for more than it is.
    println!(
        "setup_snippets: the Go and Java snippets are not run: Go modules and the Java agent cannot be downloaded here"
    );
    let stack = Stack::start().await;
    let (mut visitor, page, read_key) = signed_up(&stack).await;
    let shell = page.snippet("snippet", "shell");
    let dir = tempdir("shell");
    // The exports, then an application instrumented with opentelemetry-rust configured
    // only by the environment (it reads the protocol, endpoint, headers and service name).
    let client = env!("CARGO_BIN_EXE_otel-env-client");
    run_bash("shell", &dir, &dir, &format!("{shell}\n{client}\n")).await;
    let trace = wait_for_service_trace(&stack, &read_key, "shell").await;
    assert_eq!(trace["root_service"], SERVICE);
    assert_eq!(trace["root_name"], "GET /env");
    panel_links_to(&mut visitor, trace["trace_id"].as_str().unwrap()).await;
    stack.stop().await;
}

/// The virtual environment `deploy/lib.sh` (`install_python_snippet`) installs the
/// page's Python packages into.
fn python_venv() -> PathBuf {
    std::env::var("WEFT_SNIPPET_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(format!("{}/.cache/weft/snippet-python-venv", home())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_snippet_sends_a_trace_under_opentelemetry_instrument() {
    let venv = python_venv();
    let bin = venv.join("bin");
    assert!(
        bin.join("opentelemetry-instrument").exists(),
        "{} has no opentelemetry-instrument: run deploy/test.sh (install_python_snippet)",
        venv.display()
    );
    let stack = Stack::start().await;
    let (mut visitor, page, read_key) = signed_up(&stack).await;

    // What the install block names is what is installed.
    let install = page.snippet("install", "python");
    let pip_line = install.lines().next().unwrap();
    for requirement in packages_named(pip_line, "install") {
        let (package, version) = requirement
            .split_once("==")
            .unwrap_or((requirement.as_str(), ""));
        let shown = tokio::process::Command::new(bin.join("pip"))
            .args(["show", package])
            .output()
            .await
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains(&format!("Version: {version}")),
            "{requirement} is not installed in {}: {shown}",
            venv.display()
        );
    }
    assert!(
        install.contains("opentelemetry-bootstrap -a install"),
        "{install}"
    );

    // An app that calls an HTTP endpoint inside a span of its own: the urllib
    // instrumentation opentelemetry-bootstrap installs makes the call a child span.
    let dir = tempdir("python");
    std::fs::write(
        dir.join("app.py"),
        format!(
            "import logging, urllib.request\n\
             from opentelemetry import trace\n\
             tracer = trace.get_tracer('app')\n\
             with tracer.start_as_current_span('place order'):\n\
             \x20   logging.getLogger('app').warning('order placed')\n\
             \x20   urllib.request.urlopen('{}').read()\n",
            stack.query_url("/healthz")
        ),
    )
    .unwrap();
    let run = page.snippet("snippet", "python");
    assert!(
        run.contains("opentelemetry-instrument python app.py"),
        "{run}"
    );
    run_bash("python", &dir, &bin, &run).await;

    let trace = wait_for_service_trace(&stack, &read_key, "python").await;
    assert_eq!(trace["root_service"], SERVICE);
    assert_eq!(trace["root_name"], "place order");
    let spans = trace["spans"].as_array().unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s["name"].as_str().is_some_and(|n| n.contains("GET"))),
        "the urllib call is a span of the trace: {trace}"
    );
    panel_links_to(&mut visitor, trace["trace_id"].as_str().unwrap()).await;
    stack.stop().await;
}

/// Where `deploy/lib.sh` (`install_node_snippet`) installs the page's Node.js packages,
/// from the lock file of `services/e2e/snippets`.
fn node_modules() -> PathBuf {
    std::env::var("WEFT_SNIPPET_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(format!("{}/.cache/weft/snippet-node", home())))
        .join("node_modules")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_snippet_sends_a_trace_with_the_sdk_and_auto_instrumentations() {
    let modules = node_modules();
    let stack = Stack::start().await;
    let (mut visitor, page, read_key) = signed_up(&stack).await;

    let install = page.snippet("install", "node");
    for package in packages_named(&install, "install") {
        assert!(
            modules.join(&package).join("package.json").exists(),
            "{package} is not in {}: run deploy/test.sh (install_node_snippet)",
            modules.display()
        );
    }

    // The user's project: tracing.js as the page shows it, node_modules from the install,
    // and an HTTP server that serves one request it makes to itself.
    let dir = tempdir("node");
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();
    std::fs::write(dir.join("tracing.js"), page.snippet("snippet", "node")).unwrap();
    std::fs::write(
        dir.join("app.js"),
        "const http = require('http');\n\
         const server = http.createServer((req, res) => res.end('ok'));\n\
         server.listen(0, '127.0.0.1', () => {\n\
         \x20 const { port } = server.address();\n\
         \x20 http.get(`http://127.0.0.1:${port}/checkout`, (res) => res.resume());\n\
         });\n",
    )
    .unwrap();
    let run = page.snippet("run", "node");
    assert!(run.ends_with("node --require ./tracing.js app.js"), "{run}");
    // bash runs the one command in its own process group, so the SIGTERM below reaches
    // node (whose handler in tracing.js flushes) as it would from a process manager.
    let mut app = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&run)
        .current_dir(&dir)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    // The app runs until it is stopped, as a server does; its batch processor exports
    // within seconds, and stopping it with SIGTERM flushes whatever is left.
    let trace = tokio::select! {
        trace = wait_for_service_trace(&stack, &read_key, "node") => trace,
        exited = app.wait() => panic!("node exited early: {exited:?}"),
    };
    let pid = app.id().expect("node still runs").to_string();
    let stopped = tokio::process::Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .status()
        .await
        .unwrap();
    assert!(stopped.success());
    let output = app.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "node: the app did not stop cleanly on SIGTERM ({})\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("404") && !stderr.to_lowercase().contains("error"),
        "node: the SDK logged errors (an exporter Weft does not answer?)\n{stderr}"
    );
    assert_eq!(trace["root_service"], SERVICE);
    let names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("GET")), "{names:?}");
    panel_links_to(&mut visitor, trace["trace_id"].as_str().unwrap()).await;
    stack.stop().await;
}

/// Where the Rust snippet's project is built, shared by every run so it compiles once.
fn rust_target_dir() -> PathBuf {
    std::env::var("WEFT_SNIPPET_CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(format!("{}/.cache/weft/snippet-rust-target", home())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_snippet_sends_a_trace_with_the_crates_it_names() {
    let stack = Stack::start().await;
    let (mut visitor, page, read_key) = signed_up(&stack).await;

    // `cargo add NAME@VERSION…` as a manifest, with the versions the workspace locks
    // (its Cargo.lock is copied in), so the build needs no download after the first.
    let install = page.snippet("install", "rust");
    let mut dependencies = String::new();
    for word in install.split_whitespace().skip(2) {
        let (name, version) = word.split_once('@').unwrap_or((word, "*"));
        dependencies.push_str(&format!("{name} = \"{version}\"\n"));
    }
    let dir = tempdir("rust");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"weft-first-span\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\n{dependencies}"
        ),
    )
    .unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/main.rs"), page.snippet("snippet", "rust")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |offline: bool| {
        let mut command = tokio::process::Command::new(&cargo);
        command
            .args(["run", "--quiet", "-j", "2"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", rust_target_dir())
            .env_remove("RUSTFLAGS")
            .kill_on_drop(true);
        if offline {
            command.arg("--offline");
        }
        command.output()
    };
    let mut output = build(true).await.expect("run cargo");
    if !output.status.success() {
        // The first run on a machine may have crates to fetch.
        output = build(false).await.expect("run cargo");
    }
    assert!(
        output.status.success(),
        "rust: the snippet failed ({})\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = wait_for_service_trace(&stack, &read_key, "rust").await;
    assert_eq!(trace["root_service"], SERVICE);
    assert_eq!(trace["root_name"], "first span");
    panel_links_to(&mut visitor, trace["trace_id"].as_str().unwrap()).await;
    stack.stop().await;
}

/// A fresh directory for one snippet's project, removed at the next run.
fn tempdir(language: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "weft-snippet-{language}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
