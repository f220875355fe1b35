//! `weft-admin demo`, as `deploy/up.sh` runs it: the demo tenant with a key of each scope
//! and an owner who logs in to the dashboard; a second run keeps keys and password.

use weft_testkit::Stack;
use weft_testkit::web::Visitor;

async fn demo(stack: &Stack, keys_file: &std::path::Path) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft-admin"))
        .args(["demo", "--keys-file"])
        .arg(keys_file)
        .env("WEFT_DATABASE_URL", &stack.ns.postgres.url)
        .output()
        .await
        .expect("run weft-admin");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(keys_file).unwrap()
}

fn value<'a>(env: &'a str, name: &str) -> &'a str {
    env.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{name} missing from {env}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_account_has_keys_and_a_dashboard_login() {
    let stack = Stack::start().await;
    let dir = std::env::temp_dir().join(format!("weft-demo-{}", stack.ns.name));
    let keys_file = dir.join("demo.env");
    let first = demo(&stack, &keys_file).await;
    assert_eq!(
        demo(&stack, &keys_file).await,
        first,
        "a second run keeps everything"
    );

    let ingest_key = value(&first, "WEFT_DEMO_INGEST_KEY");
    let (request, trace_id) = weft_testkit::otlp::trace_request(2);
    assert_eq!(stack.export(ingest_key, &request).await, 200);
    stack
        .wait_for_trace(value(&first, "WEFT_DEMO_READ_KEY"), &trace_id, 2)
        .await;

    let mut visitor = Visitor::new(&stack);
    let login = visitor
        .log_in(
            value(&first, "WEFT_DEMO_EMAIL"),
            value(&first, "WEFT_DEMO_PASSWORD"),
        )
        .await;
    assert_eq!(login.location.as_deref(), Some("/"), "{}", login.body);
    let keys = visitor.get("/keys").await;
    assert!(keys.body.contains("demo ingest") && keys.body.contains("demo read"));
    assert!(keys.body.contains("<span class=\"role\">owner</span>"));
    std::fs::remove_dir_all(dir).unwrap();
    stack.stop().await;
}
