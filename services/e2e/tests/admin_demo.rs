//! `weft-admin demo`, as `deploy/up.sh` runs it (the same command line, parsed by the
//! binary's own parser and run in-process): the demo tenant with a key of each scope and
//! an owner who logs in to the dashboard; a second run keeps keys and password.

use clap::Parser;
use weft_e2e::Stack;
use weft_e2e::web::Visitor;
use weft_runtime::config::Env;

async fn demo(stack: &Stack, keys_file: &std::path::Path) -> String {
    let keys_file = keys_file.to_str().expect("utf-8 path");
    let cli = weft_admin::Cli::try_parse_from(["weft-admin", "demo", "--keys-file", keys_file])
        .expect("the command line up.sh uses");
    let env = Env::from_pairs([("WEFT_DATABASE_URL", stack.ns.postgres.url.as_str())]);
    weft_admin::run(cli, &env).await.expect("weft-admin demo");
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
    let (request, trace_id) = weft_e2e::otlp::trace_request(2);
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
