//! Tenant isolation of the query service. The API: every endpoint, called with another
//! tenant's read key, finds nothing of tenant A's trace (404 where the thing is named,
//! empty lists otherwise), and keys of the wrong scope or none at all are refused. The
//! dashboard: every page and form, used by the owner of another organisation with A's
//! ids, shows nothing of A and changes nothing (404); used by a viewer of A where an
//! admin is needed, 403; without a valid session, the login page. Log lines: every
//! variant of the log search (API and page) finds none of A's lines for another tenant.

use opentelemetry_proto::tonic::resource::v1::Resource;
use weft_e2e::otlp::{span, string_attribute, trace_request};
use weft_e2e::web::{PASSWORD, Page, Visitor};
use weft_e2e::{Stack, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_never_sees_a_trace() {
    let stack = Stack::start().await;
    let a = stack.ns.tenant("tenant-a").await;
    let b = stack.ns.tenant("tenant-b").await;
    let (mut request, trace_id) = trace_request(3);
    // raw-client's first span calls inventory, for the service map.
    let caller = request.resource_spans[0].scope_spans[0].spans[0].clone();
    let mut callee = request.resource_spans[0].clone();
    callee.resource = Some(Resource {
        attributes: vec![string_attribute("service.name", "inventory")],
        ..Default::default()
    });
    let mut call = span(&caller.trace_id, "GET /stock");
    call.parent_span_id = caller.span_id;
    callee.scope_spans[0].spans = vec![call];
    request.resource_spans.push(callee);
    assert_eq!(stack.export(&a.ingest_key, &request).await, 200);
    stack.wait_for_trace(&a.read_key, &trace_id, 4).await;

    let trace_path = format!("/api/v1/traces/{trace_id}");
    let search_path = "/api/v1/traces?service=raw-client&lookback=1h";
    let operations_path = "/api/v1/services/raw-client/operations";
    let series_path = "/api/v1/services/raw-client/series";
    let map_path = "/api/v1/service-map";
    let all_series_path = "/api/v1/services/series?kind=all";
    let difference_path = "/api/v1/traces/difference?lookback=1h&selection=slow&threshold=1ns";
    let compare_path = format!("/api/v1/traces/compare?a={trace_id}&b={trace_id}");

    // Tenant A sees its own data on every endpoint (the control).
    assert_eq!(stack.query_get(&trace_path, &a.read_key).await.0, 200);
    let (_, found) = stack.query_get(search_path, &a.read_key).await;
    assert_eq!(found["traces"][0]["trace_id"], trace_id.as_str());
    let edges = eventually(
        "A's metrics",
        std::time::Duration::from_secs(30),
        || async {
            let (_, map) = stack.query_get(map_path, &a.read_key).await;
            map["edges"].as_array().filter(|e| !e.is_empty()).cloned()
        },
    )
    .await;
    assert_eq!(
        (&edges[0]["caller"], &edges[0]["callee"]),
        (&"raw-client".into(), &"inventory".into())
    );
    let (_, services) = stack.query_get("/api/v1/services", &a.read_key).await;
    let names: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["inventory", "raw-client"]);
    assert_eq!(stack.query_get(operations_path, &a.read_key).await.0, 200);
    assert_eq!(stack.query_get(series_path, &a.read_key).await.0, 200);
    let (_, all_series) = stack.query_get(all_series_path, &a.read_key).await;
    assert_eq!(all_series["services"][1]["service"], "raw-client");
    let (_, difference) = stack.query_get(difference_path, &a.read_key).await;
    assert_eq!(difference["selected_traces"], 1, "{difference}");
    assert!(
        difference["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["value"] == "raw-client"),
        "{difference}"
    );

    let (status, compared) = stack.query_get(&compare_path, &a.read_key).await;
    assert_eq!(status, 200, "{compared}");
    assert_eq!(compared["nodes"][0]["service"], "raw-client", "{compared}");

    // Tenant B sees none of it.
    let (status, body) = stack.query_get(&trace_path, &b.read_key).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], format!("trace {trace_id} not found"));
    let (status, found) = stack.query_get(search_path, &b.read_key).await;
    assert_eq!(
        (status, found["traces"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, found) = stack
        .query_get("/api/v1/traces?lookback=1h", &b.read_key)
        .await;
    assert_eq!(
        (status, found["traces"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, services) = stack.query_get("/api/v1/services", &b.read_key).await;
    assert_eq!(
        (status, services["services"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(stack.query_get(operations_path, &b.read_key).await.0, 404);
    assert_eq!(stack.query_get(series_path, &b.read_key).await.0, 404);
    let (status, all_series) = stack.query_get(all_series_path, &b.read_key).await;
    assert_eq!(
        (status, all_series["services"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, map) = stack.query_get(map_path, &b.read_key).await;
    assert_eq!(
        (status, map["edges"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, difference) = stack.query_get(difference_path, &b.read_key).await;
    assert_eq!(
        (
            status,
            difference["selected_traces"].as_u64(),
            difference["baseline_traces"].as_u64(),
            difference["values"].as_array().map(Vec::len)
        ),
        (200, Some(0), Some(0), Some(0))
    );

    // Comparing A's trace, with itself or with one of B's own, is the same 404 as an
    // unknown trace.
    let (b_request, b_trace) = trace_request(1);
    assert_eq!(stack.export(&b.ingest_key, &b_request).await, 200);
    stack.wait_for_trace(&b.read_key, &b_trace, 1).await;
    for path in [
        compare_path.clone(),
        format!("/api/v1/traces/compare?a={b_trace}&b={trace_id}"),
        format!("/api/v1/traces/compare?a={trace_id}&b={b_trace}"),
    ] {
        let (status, body) = stack.query_get(&path, &b.read_key).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(
            body["error"],
            format!("trace {trace_id} not found"),
            "{path}"
        );
    }

    // Keys: an ingest key cannot read, a missing or unknown key is unauthenticated.
    for path in [
        trace_path.as_str(),
        search_path,
        "/api/v1/services",
        operations_path,
        series_path,
        all_series_path,
        map_path,
        difference_path,
        compare_path.as_str(),
    ] {
        assert_eq!(stack.query_get(path, &a.ingest_key).await.0, 403, "{path}");
        assert_eq!(
            stack
                .query_get(path, "weft_0000000000000000000000000000000000000001")
                .await
                .0,
            401,
            "{path}"
        );
        let status = stack
            .http
            .get(stack.query_url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{path}");
    }

    // Bad ids and parameters are 400 with a message.
    let (status, body) = stack.query_get("/api/v1/traces/not-hex", &a.read_key).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid trace id"));
    assert_eq!(
        stack
            .query_get(
                "/api/v1/traces/00000000000000000000000000000000",
                &a.read_key
            )
            .await
            .0,
        400
    );
    assert_eq!(
        stack
            .query_get("/api/v1/traces?limit=5000", &a.read_key)
            .await
            .0,
        400
    );
    stack.stop().await;
}

/// The organisation's pages a signed-in user can open.
const PAGES: [&str; 5] = ["/", "/keys", "/members", "/usage", "/account"];

/// Every form of A's pages that needs an admin, with fields that would be valid.
fn admin_actions(keys: &Page, members: &Page) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    // Alice is the only owner, so her row offers nothing; the forms exist all the same.
    let alice = members.member_id("alice@acme.io");
    let owner = [
        format!("/members/{alice}/role"),
        format!("/members/{alice}/remove"),
    ];
    let viewer = members.row_actions("vic@acme.io", "/members/");
    let mut actions = vec![
        (
            "/keys".to_owned(),
            vec![("name", "sneaky"), ("scope", "read")],
        ),
        (
            "/members/invite".to_owned(),
            vec![("email", "eve@evil.io"), ("role", "admin")],
        ),
        (
            "/organisation/delete".to_owned(),
            vec![("name", "Acme Secret Labs")],
        ),
    ];
    for action in owner.iter().chain(&viewer) {
        let fields = if action.ends_with("/role") {
            vec![("role", "admin")]
        } else {
            vec![]
        };
        actions.push((action.clone(), fields));
    }
    for action in keys
        .actions("/keys/")
        .into_iter()
        .chain(members.actions("/invitations/"))
    {
        actions.push((action, vec![]));
    }
    actions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_or_form_reaches_another_organisation() {
    let stack = Stack::start().await;
    // Organisation A: Alice owns it, Vic views it, it has keys, an open invitation and
    // usage.
    let mut alice = Visitor::new(&stack);
    let setup = alice.sign_up("alice@acme.io", "Acme Secret Labs").await;
    let ingest_key = setup.shown("new-key");
    let keys = alice.get("/keys").await;
    alice
        .submit(
            &keys,
            "/keys",
            &[("name", "acme-reader"), ("scope", "read")],
        )
        .await;
    let members = alice.get("/members").await;
    let invited = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "vic@acme.io"), ("role", "viewer")],
        )
        .await;
    let vic_link = &invited.invitation_path();
    let mut vic = Visitor::new(&stack);
    let form = vic.get(vic_link).await;
    assert_eq!(
        vic.submit(&form, vic_link, &[("password", PASSWORD)])
            .await
            .status,
        303
    );
    let members = alice.get("/members").await;
    alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "pending@acme.io"), ("role", "member")],
        )
        .await;
    assert_eq!(stack.export(&ingest_key, &trace_request(4).0).await, 200);
    let a_keys = alice.get("/keys").await;
    let a_members = alice.get("/members").await;
    let actions = admin_actions(&a_keys, &a_members);
    assert_eq!(actions.len(), 3 + 2 + 2 + 2 + 1, "{actions:?}");
    let alice_id = a_members.member_id("alice@acme.io").parse().unwrap();
    let acme_id = stack.ns.accounts.memberships(alice_id).await.unwrap()[0].tenant_id;
    let secrets = [
        "Acme Secret Labs",
        "acme-reader",
        "alice@acme.io",
        "vic@acme.io",
        "pending@acme.io",
    ];

    // Mallory owns organisation B: she sees none of A and every A id is a 404.
    let mut mallory = Visitor::new(&stack);
    mallory.sign_up("mallory@evil.io", "Evil").await;
    for path in PAGES {
        let page = mallory.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        for secret in secrets {
            assert!(!page.body.contains(secret), "{path} shows {secret}");
        }
    }
    let b_page = mallory.get("/members").await;
    for (action, fields) in &actions {
        let answer = mallory.submit(&b_page, action, fields).await;
        let expected = if action == "/keys" || action == "/members/invite" {
            200 // acts on B, not on A
        } else if action == "/organisation/delete" {
            400 // about B, whose name is not A's
        } else {
            404
        };
        assert_eq!(answer.status, expected, "mallory POST {action}");
        for secret in secrets {
            assert!(!answer.body.contains(secret), "{action} shows {secret}");
        }
    }
    // The confirmation pages of A's keys and members are the same 404 as unknown ids.
    let confirmations: Vec<&String> = actions
        .iter()
        .map(|(action, _)| action)
        .filter(|a| a.starts_with("/keys/") || a.ends_with("/remove"))
        .collect();
    assert_eq!(confirmations.len(), 2 + 2, "{confirmations:?}");
    for path in &confirmations {
        let page = mallory.get(path).await;
        assert_eq!(page.status, 404, "mallory GET {path}");
        for secret in secrets {
            assert!(!page.body.contains(secret), "{path} shows {secret}");
        }
    }
    // Her account page and the deletion page name only her own organisation.
    let deletion = mallory.get("/organisation/delete").await;
    assert_eq!(deletion.status, 200);
    assert!(deletion.body.contains("Delete Evil?"));
    let switched = mallory
        .submit(
            &b_page,
            "/switch",
            &[("organisation", &acme_id.to_string())],
        )
        .await;
    assert_eq!(switched.status, 404);

    // The trace explorer: A's trace and its download are the same 404 for Mallory as an
    // unknown trace, and her search finds nothing of A.
    let (explored, explored_id) = trace_request(2);
    assert_eq!(stack.export(&ingest_key, &explored).await, 200);
    let a_trace = format!("/traces/{explored_id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while alice.get(&a_trace).await.status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "alice never saw {a_trace}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for path in [
        a_trace.clone(),
        format!("{a_trace}/download"),
        format!("/traces/compare?a={explored_id}&b={explored_id}"),
        format!("/traces/compare?a={explored_id}"),
    ] {
        let page = mallory.get(&path).await;
        assert_eq!(page.status, 404, "mallory GET {path}");
        assert!(
            !page.body.contains("raw-client"),
            "{path} shows A's service"
        );
    }
    let searched = mallory.get("/traces?lookback=7d").await;
    assert_eq!(searched.status, 200);
    assert!(!searched.body.contains(&explored_id));
    assert!(searched.body.contains("No traces yet"));
    // The set-up page's waiting panel: Alice's names A's newest trace, Mallory's none,
    // and Mallory's set-up page links to nothing of A.
    let newest: serde_json::Value =
        serde_json::from_str(&alice.get("/setup/first-trace").await.body).unwrap();
    assert!(newest["trace"]["trace_id"].is_string(), "{newest}");
    let foreign = mallory.get("/setup/first-trace").await;
    assert_eq!(foreign.status, 200);
    assert_eq!(foreign.body, r#"{"trace":null}"#);
    let b_setup = mallory.get("/").await;
    assert!(b_setup.body.contains("Waiting for your first span"));
    assert!(
        !b_setup.body.contains("/traces/"),
        "mallory's set-up page links a trace"
    );
    let different = "/traces/difference?lookback=1h&selection=slow&threshold=1ns";
    assert!(alice.get(different).await.body.contains("raw-client"));
    let compared = mallory.get(different).await;
    assert_eq!(compared.status, 200);
    assert!(
        compared
            .body
            .contains("No trace of this search is selected")
    );
    assert!(!compared.body.contains("raw-client"), "A's values");
    // The services pages and the map: A's service is the same 404 as an unknown one,
    // and the lists of Mallory's organisation are empty.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !alice
        .get("/services")
        .await
        .body
        .contains("/services/raw-client?")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "alice never saw raw-client on /services"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(alice.get("/services/raw-client").await.status, 200);
    let foreign = mallory.get("/services/raw-client").await;
    assert_eq!(foreign.status, 404);
    assert!(
        foreign
            .body
            .contains("No spans from raw-client in this range")
    );
    for path in ["/services?lookback=7d", "/map?lookback=7d"] {
        let page = mallory.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains("No services yet"), "{path}");
        assert!(
            !page.body.contains("raw-client"),
            "{path} shows A's service"
        );
    }
    // Alert rules: the form's service picker lists only the organisation's services,
    // and A's rule is the same 404 as an unknown one, to read and to save.
    let rule_fields = [
        ("kind", "latency"),
        ("name", "acme secret p99"),
        ("service", "raw-client"),
        ("percentile", "p99"),
        ("threshold", "800"),
        ("threshold_unit", "ms"),
        ("window", "5"),
        ("window_unit", "min"),
        ("for", "0"),
        ("for_unit", "min"),
        ("repeat", "1"),
        ("repeat_unit", "h"),
    ];
    let a_alerts = alice.get("/alerts?kind=latency").await;
    assert!(a_alerts.body.contains("<option>raw-client</option>"));
    let created = alice.submit(&a_alerts, "/alerts", &rule_fields).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let a_rule = created.location.clone().unwrap();
    let b_alerts = mallory.get("/alerts?kind=latency").await;
    assert!(
        !b_alerts.body.contains("raw-client") && !b_alerts.body.contains("acme secret"),
        "mallory's rule form offers A's service or lists A's rule"
    );
    let page = mallory.get(&a_rule).await;
    assert_eq!(page.status, 404, "mallory GET {a_rule}");
    assert!(!page.body.contains("acme secret"));
    let saved = mallory.submit(&b_alerts, &a_rule, &rule_fields).await;
    assert_eq!(saved.status, 404, "mallory POST {a_rule}");
    // Mallory's own rule on A's service is refused: it sent her nothing.
    let refused = mallory.submit(&b_alerts, "/alerts", &rule_fields).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("id=\"error-service\">no spans of service")
    );

    // Vic views A: every page, no admin action (leaving is his own business).
    let vic_page = vic.get("/members").await;
    for path in PAGES {
        let page = vic.get(path).await;
        if path == "/" {
            // A viewer cannot send data: the set-up page sends them to the traces.
            assert_eq!(page.location.as_deref(), Some("/traces"));
        } else {
            assert_eq!(page.status, 200, "{path}");
        }
    }
    let vic_leaves = a_members.row_actions("vic@acme.io", "/members/")[1].clone();
    for (action, fields) in actions.iter().filter(|(action, _)| *action != vic_leaves) {
        let answer = vic.submit(&vic_page, action, fields).await;
        assert_eq!(answer.status, 403, "viewer POST {action}");
        assert!(answer.body.contains("Not allowed"), "{action}");
        // Nor is he shown the confirmation step of any of them.
        if action.starts_with("/keys/") || action.ends_with("/remove") {
            assert_eq!(vic.get(action).await.status, 403, "viewer GET {action}");
        }
    }
    assert_eq!(vic.get("/organisation/delete").await.status, 403);

    // Nothing of A changed.
    assert_eq!(alice.get("/keys").await.body, a_keys.body);
    assert_eq!(alice.get("/members").await.body, a_members.body);
    assert_eq!(stack.export(&ingest_key, &trace_request(1).0).await, 200);

    // Without a valid session every page and form leads to the login page.
    let mut stranger = Visitor::new(&stack);
    let mut forged = Visitor::new(&stack);
    forged.cookies.insert(
        "weft_session".into(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".into(),
    );
    for visitor in [&mut stranger, &mut forged] {
        for path in PAGES {
            assert_eq!(
                visitor.get(path).await.location.as_deref(),
                Some("/login"),
                "{path}"
            );
        }
        for (action, fields) in &actions {
            let answer = visitor.post(action, fields).await;
            assert_eq!(answer.location.as_deref(), Some("/login"), "POST {action}");
        }
    }
    assert_eq!(alice.get("/members").await.body, a_members.body);
    for path in [
        "/traces",
        a_trace.as_str(),
        "/traces?lookback=7d",
        "/traces/difference?selection=errors",
        "/traces/compare",
        "/services",
        "/services/raw-client",
        "/map",
        "/setup/first-trace",
    ] {
        assert_eq!(
            stranger.get(path).await.location.as_deref(),
            Some("/login"),
            "{path}"
        );
    }
    stack.stop().await;
}

/// Sends A's log lines under a trace: one OTLP record and one JSON line, each naming a
/// secret only A may read.
async fn send_secret_logs(stack: &Stack, ingest_key: &str, trace_id: &str, span_id: &str) {
    let lines = format!(
        "{{\"level\":\"error\",\"msg\":\"secret-json-line for A\",\"service\":\"vault\",\"tenant_secret\":\"s3cr3t\",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}\n"
    );
    let response = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", ingest_key)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let otlp = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "vault"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()),
            "severityNumber": 17,
            "severityText": "ERROR",
            "body": {"stringValue": "secret-otlp-line for A"},
            "attributes": [{"key": "tenant_secret", "value": {"stringValue": "s3cr3t"}}],
            "traceId": trace_id,
            "spanId": span_id
        }]}]
    }]});
    let response = stack
        .http
        .post(stack.ingest_url("/v1/logs"))
        .header("x-api-key", ingest_key)
        .header("content-type", "application/json")
        .body(otlp.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_never_sees_a_log_line() {
    let stack = Stack::start().await;
    let a = stack.ns.tenant("tenant-a").await;
    let b = stack.ns.tenant("tenant-b").await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span_id = "00f067aa0ba902b7";
    send_secret_logs(&stack, &a.ingest_key, trace_id, span_id).await;
    let searches = [
        "/api/v1/logs".to_owned(),
        "/api/v1/logs?lookback=7d".to_owned(),
        format!("/api/v1/logs?trace_id={trace_id}"),
        format!("/api/v1/logs?trace_id={trace_id}&group=span"),
        format!("/api/v1/logs?span_id={span_id}"),
        "/api/v1/logs?service=vault".to_owned(),
        "/api/v1/logs?q=secret".to_owned(),
        "/api/v1/logs?severity=error".to_owned(),
        "/api/v1/logs?attr=tenant_secret%3Ds3cr3t".to_owned(),
    ];
    // A sees its lines through every search (the control)...
    eventually(
        "A's two lines",
        std::time::Duration::from_secs(30),
        || async {
            let (_, page) = stack.query_get(&searches[0], &a.read_key).await;
            (page["logs"].as_array().map(Vec::len) == Some(2)).then_some(())
        },
    )
    .await;
    for path in &searches {
        let (status, page) = stack.query_get(path, &a.read_key).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(page["logs"].as_array().map(Vec::len), Some(2), "A: {path}");
    }
    // ...and B none of them, not even as a count.
    for path in &searches {
        let (status, page) = stack.query_get(path, &b.read_key).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(page["logs"].as_array().map(Vec::len), Some(0), "B: {path}");
        let counted: u64 = page["histogram"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|bucket| bucket["count"].as_u64().unwrap())
            .sum();
        assert_eq!(counted, 0, "B's histogram counts A's lines: {path}");
        assert!(!page.to_string().contains("s3cr3t"), "{path}");
        if path.contains("group=span") {
            assert_eq!(page["spans"].as_array().map(Vec::len), Some(0));
        }
    }
    // An ingest key cannot read logs; no key or an unknown one is unauthenticated.
    assert_eq!(stack.query_get(&searches[0], &a.ingest_key).await.0, 403);
    assert_eq!(
        stack
            .query_get(
                &searches[0],
                "weft_0000000000000000000000000000000000000001"
            )
            .await
            .0,
        401
    );
    // A read key cannot send logs.
    let response = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &a.read_key)
        .body("{\"msg\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The logs page: Alice's organisation sees its lines; Mallory's, with A's ids and
    // words in the URL, sees none; without a session, the login page.
    let mut alice = Visitor::new(&stack);
    let alice_key = alice
        .sign_up("alice@acme.io", "Acme Secret Labs")
        .await
        .shown("new-key");
    send_secret_logs(&stack, &alice_key, trace_id, span_id).await;
    let mut mallory = Visitor::new(&stack);
    mallory.sign_up("mallory@evil.io", "Evil").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !alice.get("/logs").await.body.contains("secret-otlp-line") {
        assert!(
            std::time::Instant::now() < deadline,
            "alice never saw her lines"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pages = [
        "/logs".to_owned(),
        "/logs?lookback=7d".to_owned(),
        format!("/logs?trace_id={trace_id}"),
        format!("/logs?span_id={span_id}"),
        "/logs?service=vault&severity=error&q=secret&attr=tenant_secret%3Ds3cr3t".to_owned(),
    ];
    for path in &pages {
        let own = alice.get(path).await;
        assert_eq!(own.status, 200, "alice {path}");
        assert!(own.body.contains("secret-json-line"), "alice {path}");
        let page = mallory.get(path).await;
        assert_eq!(page.status, 200, "mallory {path}");
        assert!(
            !page.body.contains("secret-"),
            "mallory {path} shows A's lines"
        );
        if !path.contains("s3cr3t") {
            assert!(!page.body.contains("s3cr3t"), "mallory {path}");
        }
        assert!(page.body.contains("No lines match"), "mallory {path}");
    }
    let mut stranger = Visitor::new(&stack);
    for path in &pages {
        assert_eq!(
            stranger.get(path).await.location.as_deref(),
            Some("/login"),
            "{path}"
        );
    }
    stack.stop().await;
}

/// Alerting across organisations: B's keys find none of A's rules, channels, silences,
/// states or deliveries (lists empty, named ones 404, A's ids refused in B's rules), and
/// B's spans never move A's rules, even with A's service and operation names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_never_sees_edits_or_triggers_alert_rules() {
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};
    use weft_model::KeyScope;

    let stack = Stack::start().await;
    let a = stack.ns.tenant("tenant-a").await;
    let b = stack.ns.tenant("tenant-b").await;
    let write = |tenant: weft_model::TenantId| {
        let accounts = stack.ns.accounts.clone();
        async move {
            accounts
                .create_api_key(tenant, "write", KeyScope::Write)
                .await
                .unwrap()
                .secret
        }
    };
    let (a_key, b_key) = (write(a.id).await, write(b.id).await);
    // A receiver of Slack messages, by path.
    type Received = Arc<Mutex<Vec<(String, Value)>>>;
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/{path}",
            axum::routing::post(
                |axum::extract::State(received): axum::extract::State<Received>,
                 axum::extract::Path(path): axum::extract::Path<String>,
                 axum::Json(body): axum::Json<Value>| async move {
                    received.lock().unwrap().push((path, body));
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let call = |method: reqwest::Method, path: String, key: String, body: Option<Value>| {
        let http = stack.http.clone();
        let url = stack.query_url(&path);
        async move {
            let mut request = http.request(method, url).header("x-api-key", key);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    use reqwest::Method;

    // Both organisations have a service called raw-client; B also has b-only.
    let (request, _) = trace_request(1);
    assert_eq!(stack.export(&a.ingest_key, &request).await, 200);
    let (mut request, _) = trace_request(1);
    let mut b_only = request.resource_spans[0].clone();
    b_only.resource = Some(Resource {
        attributes: vec![string_attribute("service.name", "b-only")],
        ..Default::default()
    });
    request.resource_spans.push(b_only);
    assert_eq!(stack.export(&b.ingest_key, &request).await, 200);
    for (tenant, service) in [(&a, "raw-client"), (&b, "b-only")] {
        eventually(service, std::time::Duration::from_secs(30), || async {
            let (_, body) = stack.query_get("/api/v1/services", &tenant.read_key).await;
            body.to_string().contains(service).then_some(())
        })
        .await;
    }
    let channel = |key: String, path: &str| {
        call(
            Method::POST,
            "/api/v1/alerts/channels".into(),
            key,
            Some(
                json!({"name": "slack", "target": {"kind": "slack", "webhook_url": format!("http://{receiver}/{path}")}}),
            ),
        )
    };
    let (status, a_channel) = channel(a_key.clone(), "a").await;
    assert_eq!(status, 201);
    let a_channel = a_channel["id"].as_str().unwrap().to_owned();
    let (status, a_rule) = call(
        Method::POST,
        "/api/v1/alerts/rules".into(),
        a_key.clone(),
        Some(json!({"name": "slow", "condition": {"kind": "span_duration", "service": "raw-client", "threshold_ms": 100}, "channels": [a_channel]})),
    )
    .await;
    assert_eq!(status, 201, "{a_rule}");
    let a_rule = a_rule["id"].as_str().unwrap().to_owned();

    // B sees none of it, changes none of it, and cannot point at it.
    for path in ["rules", "channels", "silences", "deliveries", "states"] {
        let (status, body) = call(
            Method::GET,
            format!("/api/v1/alerts/{path}"),
            b.read_key.clone(),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body[path], json!([]), "{path}: {body}");
    }
    let rule_json = json!({"name": "x", "condition": {"kind": "span_duration", "service": "b-only", "threshold_ms": 1}});
    let named = [
        (Method::GET, format!("/api/v1/alerts/rules/{a_rule}"), None),
        (
            Method::PUT,
            format!("/api/v1/alerts/rules/{a_rule}"),
            Some(rule_json.clone()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/alerts/rules/{a_rule}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/alerts/rules/{a_rule}/mute"),
            Some(json!({"until": "2099-01-01T00:00:00Z"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/alerts/channels/{a_channel}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/alerts/channels/{a_channel}/test"),
            None,
        ),
    ];
    for (method, path, body) in named {
        let (status, answer) = call(method.clone(), path.clone(), b_key.clone(), body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let (status, answer) = call(
        Method::POST,
        "/api/v1/alerts/rules".into(),
        b_key.clone(),
        Some(json!({"name": "x", "condition": {"kind": "span_duration", "service": "b-only", "threshold_ms": 1}, "channels": [a_channel]})),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("channels[0]")),
        "{answer}"
    );
    let (status, answer) = call(
        Method::POST,
        "/api/v1/alerts/silences".into(),
        b_key.clone(),
        Some(json!({"rule_id": a_rule, "ends_at": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("rule_id")),
        "{answer}"
    );
    // A rule of A's service name in B is refused (B's raw-client is B's own, and known).
    let (status, b_channel) = channel(b_key.clone(), "b").await;
    assert_eq!(status, 201);
    let (status, _) = call(
        Method::POST,
        "/api/v1/alerts/rules".into(),
        b_key.clone(),
        Some(json!({"name": "b slow", "condition": {"kind": "span_duration", "service": "b-only", "threshold_ms": 100}, "channels": [b_channel["id"]]})),
    )
    .await;
    assert_eq!(status, 201);

    // One message of B with slow spans of raw-client (A's rule's service) and b-only:
    // B's rule fires, so the message was checked — and A's rule did not move.
    let (mut request, _) = trace_request(1);
    for span in &mut request.resource_spans[0].scope_spans[0].spans {
        span.end_time_unix_nano = span.start_time_unix_nano + 500_000_000;
    }
    let mut b_only = request.resource_spans[0].clone();
    b_only.resource = Some(Resource {
        attributes: vec![string_attribute("service.name", "b-only")],
        ..Default::default()
    });
    request.resource_spans.push(b_only);
    assert_eq!(stack.export(&b.ingest_key, &request).await, 200);
    eventually("B's alert", std::time::Duration::from_secs(30), || async {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|(path, _)| path == "b")
            .then_some(())
    })
    .await;
    let (_, a_rule_now) = call(
        Method::GET,
        format!("/api/v1/alerts/rules/{a_rule}"),
        a.read_key.clone(),
        None,
    )
    .await;
    assert_eq!(a_rule_now["state"], "ok", "{a_rule_now}");
    assert!(received.lock().unwrap().iter().all(|(path, _)| path == "b"));
    stack.stop().await;
}
