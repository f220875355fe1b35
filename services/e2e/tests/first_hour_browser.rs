//! A new user's first hour in a real browser: `frontend/e2e/first-hour-flow.mjs` drives
//! Debian's chromium through playwright-core at 1280 px and at 390 px from sign-up to the
//! first span (sent with the variables the set-up page shows) and the waiting panel turning
//! into a link to its trace, then checks that no page of the navigation scrolls sideways.
//! Screenshots in light and dark mode land in `.weft/test-output/browser/first-hour`.

use std::time::Instant;
use weft_e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_hour_from_sign_up_to_the_first_trace_at_1280_and_390_px() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("first-hour");

    let stack = Stack::start().await;
    let started = Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e/first-hour-flow.mjs"))
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
        "first-hour-flow.mjs failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
    stack.stop().await;
}
