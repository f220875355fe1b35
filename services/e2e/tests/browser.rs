//! The dashboard in a real browser: `frontend/e2e/signup-flow.mjs` drives Debian's chromium
//! through playwright-core from sign-up to a revoked key, sending spans with the SDK app
//! configured by the lines the set-up page shows. Screenshots of every page land in
//! `.weft/test-output/browser/signup`.

use std::time::Instant;
use weft_e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_signs_up_sends_traces_and_revokes_the_key_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("signup");

    let stack = Stack::start().await;
    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e/signup-flow.mjs"))
        .current_dir(&root)
        .env("WEFT_QUERY_URL", format!("http://{}", stack.query))
        .env("WEFT_OTEL_CLIENT", env!("CARGO_BIN_EXE_otel-env-client"))
        .env("WEFT_SCREENSHOTS", &screenshots)
        .env("WEFT_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "signup-flow.mjs failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
    stack.stop().await;
}
