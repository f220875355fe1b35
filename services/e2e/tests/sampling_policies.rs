//! Sampling policies as teams change them: through the JSON API with write keys (read
//! and ingest keys refused, bad policies refused naming the field, every change
//! announced to the samplers, other organisations out of reach), the dry run over
//! stored traces with exact counts per rule, and the dashboard's `/sampling` page for
//! each role.

use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft_bus::{Bus, PolicyChanged};
use weft_e2e::otlp::{random_id, request, span, string_attribute, trace_request};
use weft_e2e::web::{PASSWORD, Page, Visitor};
use weft_e2e::{Stack, eventually};
use weft_model::{KeyScope, TenantId};

/// A request to the sampling API with `key`: status and JSON body.
async fn call(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<String>,
) -> (u16, Value) {
    let mut request = stack
        .http
        .request(method, stack.query_url(path))
        .header("x-api-key", key);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("sampling request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_policy(stack: &Stack, key: &str) -> (u16, Value) {
    call(
        stack,
        reqwest::Method::GET,
        "/api/v1/sampling/policy",
        key,
        None,
    )
    .await
}

async fn put_policy(stack: &Stack, key: &str, body: &str) -> (u16, Value) {
    call(
        stack,
        reqwest::Method::PUT,
        "/api/v1/sampling/policy",
        key,
        Some(body.to_owned()),
    )
    .await
}

async fn delete_policy(stack: &Stack, key: &str) -> (u16, Value) {
    call(
        stack,
        reqwest::Method::DELETE,
        "/api/v1/sampling/policy",
        key,
        None,
    )
    .await
}

async fn dry_run(stack: &Stack, key: &str, body: &str) -> (u16, Value) {
    call(
        stack,
        reqwest::Method::POST,
        "/api/v1/sampling/dry-run",
        key,
        Some(body.to_owned()),
    )
    .await
}

async fn write_key(stack: &Stack, tenant: TenantId) -> String {
    stack
        .ns
        .accounts
        .create_api_key(tenant, "write", KeyScope::Write)
        .await
        .expect("create a write key")
        .secret
}

/// Policy announcements on the stack's bus, from now on (the server has the
/// subscription before this returns).
async fn policy_changes(stack: &Stack) -> (Bus, weft_bus::ControlSubscription<PolicyChanged>) {
    let bus = Bus::connect(stack.ns.bus.clone()).await.expect("bus");
    let changes = bus.subscribe::<PolicyChanged>().await.expect("subscribe");
    bus.client().flush().await.expect("flush the subscription");
    (bus, changes)
}

/// The next policy announcement, within a few seconds.
async fn announced(changes: &mut weft_bus::ControlSubscription<PolicyChanged>) -> PolicyChanged {
    tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("a PolicyChanged announcement within 5 s")
        .expect("the subscription is open")
}

const HEALTH_DROP: &str = r#"{
  "rules": [
    {"name": "drop health checks", "action": "drop",
     "conditions": [{"field": "root.http.route", "op": "=", "value": "/healthz"}]},
    {"name": "keep errors", "conditions": [{"field": "status", "op": "=", "value": "error"}]},
    {"name": "keep a quarter", "probability": 0.25}
  ],
  "max_kept_spans_per_second": 500
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_keys_replace_and_reset_the_policy_and_every_change_is_announced() {
    let stack = Stack::start().await;
    let acme = stack.ns.tenant("acme").await;
    let globex = stack.ns.tenant("globex").await;
    let acme_write = write_key(&stack, acme.id).await;
    let globex_write = write_key(&stack, globex.id).await;
    let (_bus, mut changes) = policy_changes(&stack).await;

    // A new organisation samples with the default, readable with a read or a write key.
    let (status, body) = get_policy(&stack, &acme.read_key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_default"], true);
    assert_eq!(body["updated_at"], Value::Null);
    let names: Vec<&str> = body["policy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep errors", "keep slow", "keep 10% of the rest"]);
    assert_eq!(body["policy"]["rules"][2]["probability"], 0.1);
    assert_eq!(get_policy(&stack, &acme_write).await, (status, body));

    // Only a write key changes it; read and ingest keys are refused, as are no key and
    // a made-up one.
    let (status, body) = put_policy(&stack, &acme.read_key, HEALTH_DROP).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("scope read"),
        "{body}"
    );
    assert_eq!(
        put_policy(&stack, &acme.ingest_key, HEALTH_DROP).await.0,
        403
    );
    assert_eq!(delete_policy(&stack, &acme.read_key).await.0, 403);
    assert_eq!(get_policy(&stack, &acme.ingest_key).await.0, 403);
    let (status, _) = call(
        &stack,
        reqwest::Method::PUT,
        "/api/v1/sampling/policy",
        "",
        Some(HEALTH_DROP.into()),
    )
    .await;
    assert_eq!(status, 401);
    let forged = format!("weft_{}", "0".repeat(40));
    assert_eq!(put_policy(&stack, &forged, HEALTH_DROP).await.0, 401);

    let (status, stored) = put_policy(&stack, &acme_write, HEALTH_DROP).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["is_default"], false);
    assert!(stored["updated_at"].as_str().is_some(), "{stored}");
    let sent: Value = serde_json::from_str(HEALTH_DROP).unwrap();
    assert_eq!(stored["policy"]["rules"][0]["action"], "drop");
    assert_eq!(stored["policy"]["max_kept_spans_per_second"], 500);
    assert_eq!(
        stored["policy"]["rules"][0]["conditions"],
        sent["rules"][0]["conditions"]
    );
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged { tenant_id: acme.id }
    );
    assert_eq!(
        get_policy(&stack, &acme.read_key).await,
        (200, stored.clone())
    );

    // Bad policies: 400, the message and its own member naming the field; nothing stored.
    let many_rules = json!({
        "rules": (0..51).map(|i| json!({"name": format!("r{i}")})).collect::<Vec<_>>()
    })
    .to_string();
    for (policy, field, says) in [
        (
            r#"{"rules": [{"name": "a", "colour": "red"}]}"#,
            "rules[0].colour",
            "unknown field `colour`",
        ),
        (
            r#"{"rules": [{"name": "a"}, {"name": "b", "conditions": [{"field": "db.statement", "op": "matches", "value": "(unclosed"}]}]}"#,
            "rules[1].conditions[0].value",
            "not a valid regular expression",
        ),
        (
            r#"{"rules": [{"name": "a", "probability": 1.5}]}"#,
            "rules[0].probability",
            "must be between 0 and 1, not 1.5",
        ),
        (
            r#"{"rules": [{"name": "slow", "conditions": [{"field": "duration_ms", "op": ">", "value": 90000000}]}]}"#,
            "rules[0].conditions[0].value",
            "a duration is between 0 and 86400000 ms",
        ),
        ("keep everything, please", "policy", "expected"),
        ("", "policy", "EOF"),
        (&many_rules, "rules", "at most 50 rules"),
    ] {
        let (status, body) = put_policy(&stack, &acme_write, policy).await;
        assert_eq!(status, 400, "{policy}: {body}");
        assert_eq!(body["field"], field, "{policy}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{field}: ")) && error.contains(says),
            "{policy}: {error}"
        );
    }
    // Past 64 KiB the body is not read at all.
    let huge = format!(r#"{{"rules": [{{"name": "{}"}}]}}"#, "x".repeat(70 * 1024));
    let (status, body) = put_policy(&stack, &acme_write, &huge).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 65536 bytes")
    );
    assert_eq!(get_policy(&stack, &acme.read_key).await.1, stored);

    // Another organisation's write key sees and changes only its own policy.
    let (status, theirs) = get_policy(&stack, &globex_write).await;
    assert_eq!((status, &theirs["is_default"]), (200, &json!(true)));
    let keep_all = r#"{"rules": [{"name": "keep all"}]}"#;
    assert_eq!(put_policy(&stack, &globex_write, keep_all).await.0, 200);
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged {
            tenant_id: globex.id
        }
    );
    assert_eq!(delete_policy(&stack, &globex_write).await.0, 200);
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged {
            tenant_id: globex.id
        }
    );
    assert_eq!(get_policy(&stack, &acme.read_key).await.1, stored);

    // A write key reads what a read key reads, and never sends data.
    let (status, _) = stack.query_get("/api/v1/traces", &acme_write).await;
    assert_eq!(status, 200);
    assert_eq!(stack.export(&acme_write, &trace_request(1).0).await, 403);

    // DELETE goes back to the default, announced too.
    let (status, reset) = delete_policy(&stack, &acme_write).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["is_default"], true);
    assert_eq!(reset["policy"]["rules"][0]["name"], "keep errors");
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged { tenant_id: acme.id }
    );
    assert_eq!(get_policy(&stack, &acme.read_key).await, (200, reset));
    stack.stop().await;
}

/// A span of `trace_id` that started `ago_ms` before now and lasted `duration_ms`.
fn timed(trace_id: &[u8; 16], name: &str, ago_ms: u64, duration_ms: u64) -> Span {
    let mut s = span(trace_id, name);
    s.start_time_unix_nano = weft_e2e::otlp::now_ns() - ago_ms * 1_000_000;
    s.end_time_unix_nano = s.start_time_unix_nano + duration_ms * 1_000_000;
    s
}

fn child_of(parent: &Span, mut child: Span) -> Span {
    child.parent_span_id = parent.span_id.clone();
    child
}

/// Traces of four kinds: four failing (two spans), three slow (three spans, the root
/// 1.5 s), two health checks (one span) and four ordinary requests (one span).
fn shop_traffic() -> Vec<Span> {
    let mut spans = Vec::new();
    for _ in 0..4 {
        let id = random_id::<16>();
        let root = timed(&id, "POST /checkout", 3_000, 40);
        let mut charge = child_of(&root, timed(&id, "charge card", 2_990, 20));
        charge.status = Some(Status {
            code: 2,
            message: "card declined".into(),
        });
        spans.extend([root, charge]);
    }
    for _ in 0..3 {
        let id = random_id::<16>();
        let root = timed(&id, "GET /search", 4_000, 1_500);
        let query = child_of(&root, timed(&id, "query index", 3_900, 1_200));
        let render = child_of(&root, timed(&id, "render", 2_600, 50));
        spans.extend([root, query, render]);
    }
    for _ in 0..2 {
        let id = random_id::<16>();
        let mut health = timed(&id, "GET /healthz", 2_000, 1);
        health
            .attributes
            .push(string_attribute("http.route", "/healthz"));
        spans.push(health);
    }
    for _ in 0..4 {
        let id = random_id::<16>();
        spans.push(timed(&id, "GET /", 2_500, 12));
    }
    spans
}

/// Per rule: name, traces examined, and the estimates of traces matched, traces kept
/// and spans kept.
fn rule_lines(run: &Value) -> Vec<(String, u64, f64, f64, f64)> {
    run["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["traces_examined"].as_u64().unwrap(),
                r["traces_matched"].as_f64().unwrap(),
                r["traces_kept"].as_f64().unwrap(),
                r["spans_kept"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_what_each_rule_would_keep_of_the_last_hour() {
    let stack = Stack::start().await;
    let shop = stack.ns.tenant("shop").await;
    let other = stack.ns.tenant("other").await;
    let write = write_key(&stack, shop.id).await;
    // Every trace is kept while the test sends, whatever the samplers' default.
    let keep_all = r#"{"rules": [{"name": "keep all"}]}"#;
    assert_eq!(put_policy(&stack, &write, keep_all).await.0, 200);

    assert_eq!(
        stack
            .export(&shop.ingest_key, &request(shop_traffic()))
            .await,
        200
    );
    let candidate = r#"{"rules": [
        {"name": "drop health checks", "action": "drop",
         "conditions": [{"field": "root.http.route", "op": "=", "value": "/healthz"}]},
        {"name": "keep errors", "conditions": [{"field": "status", "op": "=", "value": "error"}]},
        {"name": "keep slow", "conditions": [{"field": "duration_ms", "op": ">", "value": 1000}]},
        {"name": "keep half of the rest", "probability": 0.5}
    ], "max_kept_spans_per_second": 100}"#;
    // Stored once the index holds 13 traces and the metrics 23 spans.
    let run = eventually(
        "the shop's traces stored",
        Duration::from_secs(30),
        || async {
            let (status, body) = dry_run(&stack, &shop.read_key, candidate).await;
            assert_eq!(status, 200, "{body}");
            let run = body["dry_run"].clone();
            (run["traces_examined"] == 13 && run["spans_received"] == 23).then_some(run)
        },
    )
    .await;
    assert_eq!(
        rule_lines(&run),
        [
            ("drop health checks".into(), 2, 2.0, 0.0, 0.0),
            ("keep errors".into(), 4, 4.0, 4.0, 8.0),
            ("keep slow".into(), 3, 3.0, 3.0, 9.0),
            ("keep half of the rest".into(), 4, 4.0, 2.0, 2.0),
        ]
    );
    assert_eq!(run["rules"][0]["action"], "drop");
    assert_eq!(run["rules"][3]["probability"], 0.5);
    assert_eq!(run["rules"][1]["spans_matched"], 8.0);
    assert_eq!(run["unmatched"]["traces_examined"], 0);
    assert_eq!(run["truncated"], false);
    assert_eq!(run["traces_stored"], 13);
    assert_eq!(run["max_traces_examined"], 2000);
    assert_eq!(run["spans_represented"], 23);
    assert_eq!(run["traces_kept"], 9.0);
    assert_eq!(run["spans_kept"], 19.0);
    let ratio = run["keep_ratio"].as_f64().unwrap();
    assert!((ratio - 19.0 / 23.0).abs() < 1e-9, "{ratio}");
    assert_eq!(run["over_rate_cap"], false);
    assert_eq!(run["max_kept_spans_per_second"], 100);

    // An empty body runs the current policy; the write key may dry-run too.
    let (status, body) = dry_run(&stack, &write, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy"]["rules"][0]["name"], "keep all");
    assert_eq!(
        rule_lines(&body["dry_run"]),
        [("keep all".into(), 13, 13.0, 13.0, 23.0)]
    );
    assert_eq!(body["dry_run"]["keep_ratio"], 1.0);

    // Traces no rule matches are dropped.
    let (_, body) = dry_run(
        &stack,
        &shop.read_key,
        r#"{"rules": [{"name": "errors only", "conditions": [{"field": "status", "op": "=", "value": "error"}]}]}"#,
    )
    .await;
    assert_eq!(body["dry_run"]["unmatched"]["traces_examined"], 9);
    assert_eq!(body["dry_run"]["spans_kept"], 8.0);

    // A candidate is validated like a saved policy; ingest keys may not dry-run.
    let (status, body) = dry_run(
        &stack,
        &shop.read_key,
        r#"{"rules": [{"name": "x", "conditions": [{"field": "kind", "op": "=", "value": "serverish"}]}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "rules[0].conditions[0].value");
    assert_eq!(dry_run(&stack, &shop.ingest_key, "").await.0, 403);

    // The dry run's reads carry the read limits: past them, 400 as for a search.
    let strict = stack
        .start_query_with(|config| config.clickhouse.read_limits.max_rows_to_read = 1)
        .await;
    let response = stack
        .http
        .post(strict.url("/api/v1/sampling/dry-run"))
        .header("x-api-key", &shop.read_key)
        .body(candidate)
        .send()
        .await
        .expect("dry run on the strict replica");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("too expensive"),
        "{body}"
    );
    strict.stop().await;

    // Another organisation's dry run sees none of the shop's traces.
    let (status, body) = dry_run(&stack, &other.read_key, candidate).await;
    assert_eq!(status, 200);
    assert_eq!(body["dry_run"]["traces_examined"], 0);
    assert_eq!(body["dry_run"]["spans_received"], 0);
    assert_eq!(body["dry_run"]["keep_ratio"], Value::Null);
    stack.stop().await;
}

/// `traces` traces of `tenant` in the trace index only (no spans), each of `spans`
/// spans kept with sample rate `rate`, as an operator would plant them.
async fn plant_index(stack: &Stack, tenant: TenantId, traces: u32, spans: u32, rate: u32) {
    stack
        .clickhouse_sql(&format!(
            "INSERT INTO trace_index (tenant_id, trace_id, start_time, start_time_unix_nano, \
             end_time_unix_nano, root_service, root_name, span_count, error_count, service_names, \
             sample_rate, sampled_by) SELECT toUUID('{tenant}'), \
             toFixedString(concat(reinterpretAsString(number + 1), 'weft-busy-h'), 16), now(), \
             toUInt64(now()) * 1000000000 + number, toUInt64(now()) * 1000000000 + number + 5, \
             'planted', 'GET /', {spans}, 0, ['planted'], {rate}, 'keep some' FROM numbers({traces})"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_of_a_busy_hour_examines_the_newest_traces_and_scales_up() {
    let stack = Stack::start().await;
    let keep_all = r#"{"rules": [{"name": "keep all"}]}"#;

    // 2 500 traces kept 1 in 2: the newest 2 000 are examined, standing for 4 000
    // traces, scaled up by the hour's 5 000 weighted spans over their 4 000.
    let busy = stack.ns.tenant("busy").await;
    plant_index(&stack, busy.id, 2_500, 1, 2).await;
    let (status, body) = dry_run(&stack, &busy.read_key, keep_all).await;
    assert_eq!(status, 200, "{body}");
    let run = &body["dry_run"];
    assert_eq!(
        (
            &run["traces_examined"],
            &run["truncated"],
            &run["traces_stored"]
        ),
        (&json!(2000), &json!(true), &json!(2500))
    );
    assert_eq!(
        rule_lines(run),
        [("keep all".into(), 2000, 5000.0, 5000.0, 5000.0)]
    );
    assert_eq!(run["spans_represented"], 5000);
    // No span metrics were planted: the ratio is over what the stored traces stand for.
    assert_eq!(
        (&run["spans_received"], &run["keep_ratio"]),
        (&json!(0), &json!(1.0))
    );

    // 150 traces of 1 000 spans: 100 000 spans are examined, the newest 100 traces.
    let wide = stack.ns.tenant("wide").await;
    plant_index(&stack, wide.id, 150, 1_000, 1).await;
    let (status, body) = dry_run(&stack, &wide.read_key, keep_all).await;
    assert_eq!(status, 200, "{body}");
    let run = &body["dry_run"];
    assert_eq!(
        (&run["traces_examined"], &run["truncated"]),
        (&json!(100), &json!(true))
    );
    assert_eq!(
        rule_lines(run),
        [("keep all".into(), 100, 150.0, 150.0, 150_000.0)]
    );
    stack.stop().await;
}

async fn invite(owner: &mut Visitor, stack: &Stack, email: &str, role: &str) -> Visitor {
    let members = owner.get("/members").await;
    let invited = owner
        .submit(
            &members,
            "/members/invite",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let link = invited.invitation_path();
    let mut visitor = Visitor::new(stack);
    let form = visitor.get(&link).await;
    let joined = visitor
        .submit(&form, &link, &[("password", PASSWORD)])
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    visitor
}

/// The text of the policy editor on a page.
fn editor_text(page: &Page) -> String {
    let start = page.body.find("name=\"policy\"").expect("an editor");
    let text = &page.body[start..];
    let text = &text[text.find('>').unwrap() + 1..];
    text[..text.find("</textarea>").unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampling_page_shows_everyone_the_policy_and_lets_admins_change_it() {
    let stack = Stack::start().await;
    let (_bus, mut changes) = policy_changes(&stack).await;
    let mut alice = Visitor::new(&stack);
    let ingest_key = alice
        .sign_up("alice@acme.io", "Acme")
        .await
        .shown("new-key");
    let alice_user = stack
        .ns
        .accounts
        .user_by_email("alice@acme.io")
        .await
        .unwrap()
        .expect("alice");
    let tenant =
        TenantId::new(stack.ns.accounts.memberships(alice_user.id).await.unwrap()[0].tenant_id);

    // The owner sees the default as a table of rules, and the editor.
    let page = alice.get("/sampling").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("href=\"/sampling\" aria-current=\"page\"")
    );
    assert!(
        page.body
            .contains("<span class=\"badge neutral\">default</span>")
    );
    for shown in [
        "keep errors",
        "<code>status = &#34;error&#34;</code>",
        "<code>duration_ms &#62; 1000</code>",
        "10 %",
        "1 in 10",
        "No rate cap",
        "action=\"/sampling\"",
        "formaction=\"/sampling/dry-run\"",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(editor_text(&page).contains("&#34;keep 10% of the rest&#34;"));
    // The default cannot be reset to itself.
    assert!(!page.body.contains("action=\"/sampling/reset\""));

    // Viewers and members read the policy, see no editor and are refused every change.
    let mut bob = invite(&mut alice, &stack, "bob@acme.io", "viewer").await;
    let mut carol = invite(&mut alice, &stack, "carol@acme.io", "member").await;
    for visitor in [&mut bob, &mut carol] {
        let page = visitor.get("/sampling").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("keep errors"));
        assert!(!page.body.contains("<textarea"));
        assert!(!page.body.contains("action=\"/sampling"));
        assert!(
            page.body
                .contains("Owners and admins change the sampling policy.")
        );
        let csrf = page.csrf();
        for path in ["/sampling", "/sampling/dry-run", "/sampling/reset"] {
            let refused = visitor
                .post(path, &[("csrf", &csrf), ("policy", HEALTH_DROP)])
                .await;
            assert_eq!(refused.status, 403, "{path}");
            assert!(refused.body.contains("change the sampling policy"));
        }
    }
    assert!(alice.get("/sampling").await.body.contains("default</span>"));

    // An admin gets the field named above the editor, with the text as submitted.
    let mut dave = invite(&mut alice, &stack, "dave@acme.io", "admin").await;
    let page = dave.get("/sampling").await;
    let bad = r#"{"rules": [{"name": "<b>all</b>", "probability": 1.5}]}"#;
    let refused = dave.submit(&page, "/sampling", &[("policy", bad)]).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains(
            "<code class=\"field\">rules[0].probability</code>: must be between 0 and 1, not 1.5"
        ),
        "{}",
        refused.body
    );
    assert!(editor_text(&refused).contains("&#60;b&#62;all&#60;/b&#62;"));
    assert!(!refused.body.contains("<b>all</b>"));
    assert_eq!(
        dave.post("/sampling", &[("csrf", "forged"), ("policy", HEALTH_DROP)])
            .await
            .status,
        403
    );

    // Traces to try texts on; every trace is kept while they arrive, whatever the
    // samplers' default, by a policy saved with an API key.
    let keys = alice.get("/keys").await;
    assert!(
        keys.body
            .contains("<option value=\"write\">write: change configuration</option>")
    );
    assert!(
        keys.body
            .contains("Write keys change the sampling policy through the API")
    );
    let created = alice
        .submit(&keys, "/keys", &[("name", "terraform"), ("scope", "write")])
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("New write key"));
    let write = created.shown("new-key");
    assert!(alice.get("/keys").await.body.contains("<td>write</td>"));
    let keep_all = r#"{"rules": [{"name": "keep all"}]}"#;
    assert_eq!(put_policy(&stack, &write, keep_all).await.0, 200);
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged { tenant_id: tenant }
    );
    assert!(
        dave.get("/sampling")
            .await
            .body
            .contains("Saved with an API key on ")
    );
    assert_eq!(
        stack.export(&ingest_key, &request(shop_traffic())).await,
        200
    );

    // A dry run of the text, without saving it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let tried = loop {
        let page = dave.get("/sampling").await;
        let tried = dave
            .submit(&page, "/sampling/dry-run", &[("policy", HEALTH_DROP)])
            .await;
        assert_eq!(tried.status, 200, "{}", tried.body);
        // The metrics are written just after the traces.
        if tried.body.contains("Estimated from 13 stored traces")
            && tried.body.contains("<dd>11.3 of 23</dd>")
        {
            break tried;
        }
        assert!(
            Instant::now() < deadline,
            "the dry run never saw 13 traces: {}",
            tried.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(tried.body.contains("Dry run of the text below"));
    // Health checks dropped, errors kept (8 spans), a quarter of the other 7 traces
    // (13 spans): 8 + 3.25 of 23 spans, shown to a tenth.
    assert!(
        tried.body.contains("<dd id=\"keep-ratio\">48.9 %</dd>"),
        "{}",
        tried.body
    );
    assert!(tried.body.contains("<dd>11.3 of 23</dd>"), "{}", tried.body);
    assert!(
        tried
            .body
            .contains("<td class=\"num\" data-label=\"Traces kept\">1.8</td>")
    );
    assert!(editor_text(&tried).contains("drop health checks"));
    assert!(
        tried.body.contains("<strong>keep all</strong>"),
        "not saved"
    );
    assert!(!tried.body.contains("<code>root.http.route"), "not saved");

    // Saving: the table shows the new rules, who saved them, and the samplers are told.
    let page = dave.get("/sampling").await;
    let saved = dave
        .submit(&page, "/sampling", &[("policy", HEALTH_DROP)])
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("Saved. The samplers apply it"));
    assert!(
        saved
            .body
            .contains("<span class=\"badge on\">custom</span>")
    );
    assert!(saved.body.contains("Saved by dave@acme.io on "));
    assert!(
        saved
            .body
            .contains("<code>root.http.route = &#34;/healthz&#34;</code>")
    );
    assert!(saved.body.contains("<span class=\"badge off\">drop</span>"));
    assert!(saved.body.contains("25 %") && saved.body.contains("1 in 4"));
    assert!(
        saved
            .body
            .contains("at most <strong>500</strong> kept spans per second")
    );
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged { tenant_id: tenant }
    );
    // Everyone sees it; the API returns what the page saved.
    assert!(
        bob.get("/sampling")
            .await
            .body
            .contains("drop health checks")
    );
    let (_, through_api) = get_policy(&stack, &write).await;
    assert_eq!(
        through_api["policy"]["rules"][0]["name"],
        "drop health checks"
    );

    // Reset, behind a confirmation, back to the default, announced.
    let page = dave.get("/sampling").await;
    assert!(page.body.contains("<summary>Reset to default…</summary>"));
    let reset = dave.submit(&page, "/sampling/reset", &[]).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert!(reset.body.contains("Back to the default policy."));
    assert!(
        reset
            .body
            .contains("<span class=\"badge neutral\">default</span>")
    );
    assert_eq!(
        announced(&mut changes).await,
        PolicyChanged { tenant_id: tenant }
    );
    assert_eq!(get_policy(&stack, &write).await.1["is_default"], true);
    stack.stop().await;
}
