//! What a browser test needs before it drives Debian's chromium through playwright-core:
//! the workspace root, the browser, the npm package, and an empty screenshot folder of
//! its own under `.weft/test-output/browser/<flow>`, so flows running side by side never
//! wipe each other's screenshots.

use std::path::{Path, PathBuf};

pub struct BrowserRun {
    pub root: PathBuf,
    pub chromium: String,
    pub screenshots: PathBuf,
}

impl BrowserRun {
    /// Checks that chromium (`WEFT_CHROMIUM`, default `/usr/bin/chromium`) and
    /// playwright-core are installed, and empties `flow`'s screenshot folder so no
    /// screenshot of an earlier run passes for one of this run.
    pub fn prepare(flow: &str) -> BrowserRun {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../"))
            .canonicalize()
            .expect("workspace root");
        let chromium =
            std::env::var("WEFT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "{chromium} is missing: run deploy/test.sh, which installs chromium"
        );
        let playwright = root.join("frontend/e2e/node_modules/playwright-core");
        assert!(
            playwright.is_dir(),
            "{} is missing: run deploy/test.sh, which installs it",
            playwright.display()
        );
        let screenshots = root.join(".weft/test-output/browser").join(flow);
        let _ = std::fs::remove_dir_all(&screenshots);
        std::fs::create_dir_all(&screenshots).expect("create the screenshot directory");
        BrowserRun {
            root,
            chromium,
            screenshots,
        }
    }
}

/// Runs the flow `frontend/e2e/{flow}` with node and `env`, failing the test with the
/// flow's output when it fails; prints that output when it passes.
pub async fn run_flow(root: &Path, flow: &str, env: &[(&str, String)]) {
    let started = std::time::Instant::now();
    let output = tokio::process::Command::new("node")
        .arg(root.join("frontend/e2e").join(flow))
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{flow} failed ({}) after {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        started.elapsed()
    );
    println!("{stdout}");
}
