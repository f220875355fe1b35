//! Trace search with every filter, sort and page, and "what is different", through the
//! real stack: traces sent as OTLP to ingest, stored by the sampler, read back through
//! the JSON API and the dashboard's pages. Each filter must return exactly the traces it
//! should; paging through every order must neither skip nor repeat a trace; an attribute
//! planted on the slow traces only must be ranked first among load. The search form's
//! filters are also filled in through a real browser (`frontend/e2e/search-flow.mjs`),
//! and "what is different" is used there too (`difference-flow.mjs`).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::collections::BTreeSet;
use std::time::Duration;
use weft_e2e::otlp::{now_ns, random_id, string_attribute};
use weft_e2e::web::Visitor;
use weft_e2e::{Stack, eventually};
use weft_model::{KeyScope, TenantId};

const MS: u64 = 1_000_000;

/// One span of a planned trace, timed from the trace's start.
struct Step {
    service: &'static str,
    name: &'static str,
    kind: i32,
    start_ms: u64,
    ms: u64,
    error: bool,
    attributes: Vec<(&'static str, String)>,
}

fn step(service: &'static str, name: &'static str, kind: i32, start_ms: u64, ms: u64) -> Step {
    Step {
        service,
        name,
        kind,
        start_ms,
        ms,
        error: false,
        attributes: Vec::new(),
    }
}

/// A trace: the first step is the root, the others its children; every service's
/// resource carries `resource` besides `service.name`.
fn trace(
    trace_id: [u8; 16],
    start: u64,
    resource: &[(&str, &str)],
    steps: Vec<Step>,
) -> ExportTraceServiceRequest {
    let root_id = random_id::<8>();
    let mut resources: Vec<(&str, ResourceSpans)> = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        let position = match resources.iter().position(|(s, _)| *s == step.service) {
            Some(position) => position,
            None => {
                let mut attributes = vec![string_attribute("service.name", step.service)];
                attributes.extend(resource.iter().map(|(k, v)| string_attribute(k, v)));
                resources.push((
                    step.service,
                    ResourceSpans {
                        resource: Some(Resource {
                            attributes,
                            ..Default::default()
                        }),
                        scope_spans: vec![ScopeSpans::default()],
                        schema_url: String::new(),
                    },
                ));
                resources.len() - 1
            }
        };
        let begin = start + step.start_ms * MS;
        let span_id = if i == 0 { root_id } else { random_id::<8>() };
        resources[position].1.scope_spans[0].spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: if i == 0 { Vec::new() } else { root_id.to_vec() },
            name: step.name.to_owned(),
            kind: step.kind,
            start_time_unix_nano: begin,
            end_time_unix_nano: begin + step.ms * MS,
            attributes: step
                .attributes
                .iter()
                .map(|(k, v)| string_attribute(k, v))
                .collect(),
            status: step.error.then(|| Status {
                code: 2,
                message: "failed".to_owned(),
            }),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: resources.into_iter().map(|(_, r)| r).collect(),
    }
}

fn with(mut step: Step, attributes: &[(&'static str, &str)], error: bool) -> Step {
    step.attributes = attributes
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    step.error = error;
    step
}

/// The trace ids of a search answer, in order.
fn ids(body: &serde_json::Value) -> Vec<String> {
    body["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("no traces in {body}"))
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A signed-in owner of a new organisation, its ingest key and a read key.
async fn organisation(stack: &Stack, email: &str) -> (Visitor, TenantId, String, String) {
    let mut visitor = Visitor::new(stack);
    let ingest = visitor.sign_up(email, "Shop").await.shown("new-key");
    let accounts = &stack.ns.accounts;
    let user = accounts.user_by_email(email).await.unwrap().unwrap().id;
    let tenant = TenantId::new(accounts.memberships(user).await.unwrap()[0].tenant_id);
    let read = accounts
        .create_api_key(tenant, "read", KeyScope::Read)
        .await
        .unwrap()
        .secret;
    (visitor, tenant, ingest, read)
}

/// Every page of `query` (with `limit`), following `next_cursor` to the end.
async fn every_page(stack: &Stack, key: &str, query: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/traces?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = stack.query_get(&path, key).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = ids(&body);
        assert!(page.len() <= limit, "{path}");
        pages.push(page);
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 50, "paging never ends: {pages:?}");
    }
}

/// The six traces the filters are tried on (hex ids), all within the last minute.
struct Planted {
    slow: String,
    fast: String,
    medium: String,
    consumer: String,
    producer: String,
    batch: String,
}

/// Sends five traces through ingest (each filter has one it finds and some it does not)
/// and writes a sixth as the sampler writes a trace kept one in four by a rule; returns
/// once all nine spans are searchable.
async fn plant_filter_traces(stack: &Stack, tenant: TenantId, ingest: &str, read: &str) -> Planted {
    let now = now_ns();
    let ago = |s: u64| now - s * 1_000 * MS;
    let (slow, fast, medium, consumer, producer, batch) = (
        random_id::<16>(),
        random_id::<16>(),
        random_id::<16>(),
        random_id::<16>(),
        random_id::<16>(),
        random_id::<16>(),
    );
    let requests = [
        // 900 ms, two errors, a client call and a 5 ms cache read; eu.
        trace(
            slow,
            ago(50),
            &[("region", "eu")],
            vec![
                with(
                    step("web", "GET /checkout", 2, 0, 900),
                    &[("http.status_code", "500"), ("retries", "3")],
                    true,
                ),
                with(step("web", "charge", 3, 100, 600), &[], true),
                step("cache", "cache get", 1, 20, 5),
            ],
        ),
        // 50 ms; us.
        trace(
            fast,
            ago(40),
            &[("region", "us")],
            vec![with(
                step("web", "GET /home", 2, 0, 50),
                &[("http.status_code", "200"), ("retries", "0")],
                false,
            )],
        ),
        // 300 ms, one error, an internal child with a cache miss; eu.
        trace(
            medium,
            ago(30),
            &[("region", "eu")],
            vec![
                with(
                    step("web", "GET /cart", 2, 0, 300),
                    &[("http.status_code", "404")],
                    true,
                ),
                with(
                    step("web", "render", 1, 20, 250),
                    &[("cache", "miss")],
                    false,
                ),
            ],
        ),
        // A 200 ms consumer; us.
        trace(
            consumer,
            ago(20),
            &[("region", "us")],
            vec![with(
                step("worker", "process order", 5, 0, 200),
                &[("retries", "1.5")],
                false,
            )],
        ),
        // A 20 ms producer whose retries is not a number; ap.
        trace(
            producer,
            ago(10),
            &[("region", "ap")],
            vec![with(
                step("web", "publish", 4, 0, 20),
                &[("retries", "many")],
                false,
            )],
        ),
    ];
    for request in &requests {
        assert_eq!(stack.export(ingest, request).await, 200);
    }
    // A trace kept one in four by a rule, written as the sampler writes such traces.
    let start = ago(45);
    let kept = weft_storage::clickhouse::SpanRow {
        tenant_id: tenant.as_uuid(),
        trace_id: batch,
        span_id: random_id::<8>(),
        parent_span_id: [0; 8],
        trace_state: String::new(),
        service_name: "batch".into(),
        name: "nightly job".into(),
        kind: 0,
        start_time: (start / 1_000_000_000) as u32,
        start_time_unix_nano: start,
        duration_ns: 100 * MS,
        status_code: 0,
        status_message: String::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        attribute_keys: vec![],
        attribute_values: vec![],
        resource_keys: vec!["service.name".to_owned()].into(),
        resource_values: vec!["batch".to_owned()].into(),
        event_times_unix_nano: vec![],
        event_names: vec![],
        event_attributes: vec![],
        link_trace_ids: vec![],
        link_span_ids: vec![],
        link_attributes: vec![],
        sample_rate: 4.0,
        sampled_by: "keep a quarter".to_owned(),
    };
    stack
        .ns
        .store
        .insert_spans(std::slice::from_ref(&kept))
        .await
        .unwrap();
    eventually("every trace stored", Duration::from_secs(30), || async {
        let (_, body) = stack
            .query_get("/api/v1/traces?lookback=15m&limit=100", read)
            .await;
        let spans: u64 = body["traces"]
            .as_array()?
            .iter()
            .map(|t| t["span_count"].as_u64().unwrap_or(0))
            .sum();
        (spans == 9).then_some(())
    })
    .await;
    let hex = |id: &[u8; 16]| hex::encode(id);
    Planted {
        slow: hex(&slow),
        fast: hex(&fast),
        medium: hex(&medium),
        consumer: hex(&consumer),
        producer: hex(&producer),
        batch: hex(&batch),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_search_filter_sort_and_page() {
    let stack = Stack::start().await;
    let (mut alice, tenant, ingest, read) = organisation(&stack, "alice@filters.io").await;
    let Planted {
        slow,
        fast,
        medium,
        consumer,
        producer,
        batch,
    } = plant_filter_traces(&stack, tenant, &ingest, &read).await;

    // Every filter, alone and together, by exactly the traces it should find.
    let newest = vec![&producer, &consumer, &medium, &fast, &batch, &slow];
    for (query, expected) in [
        ("", newest.clone()),
        ("kind=consumer", vec![&consumer]),
        ("kind=client", vec![&slow]),
        ("kind=internal", vec![&medium, &slow]),
        ("kind=unspecified", vec![&batch]),
        (
            "kind=server,consumer",
            vec![&consumer, &medium, &fast, &slow],
        ),
        ("kind=all", newest.clone()),
        ("attr=region%3Deu", vec![&medium, &slow]),
        ("attr=region!%3Deu", vec![&producer, &consumer, &fast]),
        ("attr=cache+exists", vec![&medium]),
        ("attr=http.status_code+exists", vec![&medium, &fast, &slow]),
        ("attr=retries%3E1", vec![&consumer, &slow]),
        ("attr=retries%3E%3D3", vec![&slow]),
        ("attr=retries%3C1.5", vec![&fast]),
        ("attr=retries%3C%3D1.5", vec![&consumer, &fast]),
        ("attr=retries%3Dmany", vec![&producer]),
        (
            "attr=http.status_code%3E%3D400&attr=region%3Deu",
            vec![&medium, &slow],
        ),
        ("attr=retries%3E1&attr=region%3Dus", vec![&consumer]),
        ("attr=service.name%3Dworker", vec![&consumer]),
        ("max_duration=10ms", vec![&slow]),
        ("max_trace_duration=60ms", vec![&producer, &fast]),
        ("min_trace_duration=250ms", vec![&medium, &slow]),
        (
            "min_trace_duration=250ms&max_trace_duration=500ms",
            vec![&medium],
        ),
        ("min_duration=550ms&max_trace_duration=1s", vec![&slow]),
        ("sampled_by=keep+a+quarter", vec![&batch]),
        ("sampled_by=another+rule", vec![]),
        ("error=true&kind=internal", vec![]),
        ("error=true&kind=client", vec![&slow]),
        (
            "service=web&attr=region!%3Dus",
            vec![&producer, &medium, &slow],
        ),
    ] {
        let path = format!("/api/v1/traces?lookback=15m&{query}");
        let (status, body) = stack.query_get(&path, &read).await;
        assert_eq!(status, 200, "{query}: {body}");
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&body), expected, "{query}");
    }

    // The sorts, and the sample rate and rule of each result.
    let longest = vec![&slow, &medium, &consumer, &batch, &fast, &producer];
    let most_errors = vec![&slow, &medium, &producer, &consumer, &fast, &batch];
    for (sort, expected) in [
        ("newest", &newest),
        ("longest", &longest),
        ("errors", &most_errors),
    ] {
        let (_, body) = stack
            .query_get(&format!("/api/v1/traces?lookback=15m&sort={sort}"), &read)
            .await;
        let expected: Vec<String> = expected.iter().map(|t| (*t).clone()).collect();
        assert_eq!(ids(&body), expected, "sort={sort}");
        assert!(body["next_cursor"].is_null(), "one page holds them all");
        let sampled = body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["trace_id"] == batch.as_str())
            .unwrap();
        assert_eq!(sampled["sample_rate"], 4.0);
        assert_eq!(sampled["sampled_by"], "keep a quarter");

        // Paging by any page size neither skips nor repeats a trace.
        for limit in [1, 2, 4] {
            let pages =
                every_page(&stack, &read, &format!("lookback=15m&sort={sort}"), limit).await;
            let flat: Vec<String> = pages.iter().flatten().cloned().collect();
            assert_eq!(flat, expected, "sort={sort} limit={limit}: {pages:?}");
            assert_eq!(
                pages.len(),
                expected.len().div_ceil(limit),
                "sort={sort} limit={limit}"
            );
        }
    }
    let filtered = every_page(
        &stack,
        &read,
        "lookback=15m&attr=region!%3Deu&sort=longest",
        1,
    )
    .await;
    assert_eq!(
        filtered.concat(),
        [consumer.clone(), fast.clone(), producer.clone()]
    );

    // A page sent while new traces arrive continues where it was: the cursor holds the
    // window, so the newer trace appears on no later page.
    let (_, first) = stack
        .query_get("/api/v1/traces?lookback=15m&limit=3", &read)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let late = random_id::<16>();
    let late_request = trace(late, now_ns(), &[], vec![step("web", "late", 2, 0, 1)]);
    assert_eq!(stack.export(&ingest, &late_request).await, 200);
    stack.wait_for_trace(&read, &hex::encode(late), 1).await;
    let (_, second) = stack
        .query_get(
            &format!("/api/v1/traces?lookback=15m&limit=3&cursor={cursor}"),
            &read,
        )
        .await;
    let mut seen: BTreeSet<String> = ids(&first).into_iter().collect();
    seen.extend(ids(&second));
    assert_eq!(ids(&second), [fast.clone(), batch.clone(), slow.clone()]);
    assert_eq!(seen.len(), 6);

    // Invalid filters are refused naming the parameter.
    for (query, needle) in [
        ("kind=sever", "invalid kind \"sever\""),
        (
            "attr=retries%3Elots",
            "invalid attr \"retries>lots\": expected a number after >",
        ),
        ("attr=novalue", "invalid attr \"novalue\""),
        (
            "min_trace_duration=long",
            "invalid min_trace_duration \"long\"",
        ),
        (
            "min_trace_duration=2s&max_trace_duration=1s",
            "min_trace_duration must not exceed max_trace_duration",
        ),
        (
            "sort=random",
            "invalid sort \"random\": expected newest, longest or errors",
        ),
        ("cursor=garbage", "invalid cursor \"garbage\""),
        (
            &format!("sort=errors&cursor={cursor}"),
            "invalid cursor: it continues a search sorted by newest, not by errors",
        ),
        ("colour=red", "invalid parameter \"colour\""),
    ] {
        let (status, body) = stack
            .query_get(&format!("/api/v1/traces?{query}"), &read)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with(needle), "{query}: {error}");
    }

    // The page: each filter in the form and in the URL, the sample rate column, paging.
    let page = alice
        .get("/traces?lookback=15m&kind=server&attr=retries%3E1&min_trace_duration=100ms&sort=errors")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let rows: Vec<&str> = page
        .body
        .split("<tr")
        .filter_map(|row| row.split("data-href=\"/traces/").nth(1))
        .map(|rest| &rest[..32])
        .collect();
    assert_eq!(rows, [slow.as_str()]);
    for field in [
        "<option value=\"server\" selected>Server</option>",
        "name=\"attr\" value=\"retries&#62;1\"",
        "name=\"min_trace_duration\" value=\"100ms\"",
        "<option value=\"errors\" selected>Most errors first</option>",
        "most errors first",
        "Sample rate</th>",
    ] {
        assert!(page.body.contains(field), "{field}");
    }
    let sampled = alice
        .get("/traces?lookback=15m&sampled_by=keep+a+quarter")
        .await;
    assert!(
        sampled
            .body
            .contains("<td class=\"num rate\" title=\"kept by keep a quarter\">4<small>keep a quarter</small></td>"),
        "{}",
        sampled.body
    );
    let first = alice.get("/traces?lookback=15m&limit=2&sort=longest").await;
    let next = first
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .expect("a next page link")
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert!(next.contains("cursor=longest."), "{next}");
    let second = alice.get(&next).await;
    assert_eq!(second.status, 200);
    let rows: Vec<String> = second
        .body
        .split("<tr")
        .filter_map(|row| row.split("data-href=\"/traces/").nth(1))
        .map(|rest| rest[..32].to_owned())
        .collect();
    assert_eq!(rows, [consumer.clone(), batch.clone()]);
    assert!(second.body.contains("← First page"));
    let bad = alice.get("/traces?attr=retries%3Elots").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Invalid attr"), "{}", bad.body);

    // Another organisation's search finds none of it.
    let other = stack.ns.tenant("other").await;
    let (_, body) = stack
        .query_get("/api/v1/traces?lookback=15m&sort=errors", &other.read_key)
        .await;
    assert!(ids(&body).is_empty());
    stack.stop().await;
}

/// Load with a slow, planted attribute: `normal` ordinary traces (20–200 ms, spread over
/// three regions and four routes) and `slow` traces of 1.5 s and more that alone carry
/// `app.region=eu-slow` on their resource; every seventh ordinary trace fails with
/// `payment.provider=flaky` on its failing span. Returns the slow traces' ids.
async fn send_load(stack: &Stack, key: &str, normal: usize, slow: usize) -> Vec<String> {
    send_load_with_ids(stack, key, normal, slow, random_id::<16>).await
}

/// Waits until the search of the last 15 minutes finds `traces` traces.
async fn wait_stored(stack: &Stack, read: &str, traces: usize) {
    eventually("the load stored", Duration::from_secs(60), || async {
        let (_, body) = stack
            .query_get("/api/v1/traces?lookback=15m&limit=1000", read)
            .await;
        (ids(&body).len() == traces).then_some(())
    })
    .await;
}

/// Trace ids as AWS X-Ray makes them: the time in seconds in the leading 4 bytes, then
/// random bytes.
fn xray_id() -> [u8; 16] {
    let mut id = random_id::<16>();
    id[..4].copy_from_slice(&((now_ns() / 1_000_000_000) as u32).to_be_bytes());
    id
}

/// [`send_load`] with trace ids from `trace_ids`.
async fn send_load_with_ids(
    stack: &Stack,
    key: &str,
    normal: usize,
    slow: usize,
    mut trace_ids: impl FnMut() -> [u8; 16],
) -> Vec<String> {
    const REGIONS: [&str; 3] = ["us-east", "us-west", "eu-west"];
    const ROUTES: [&str; 4] = ["/cart", "/checkout", "/search", "/home"];
    let now = now_ns();
    let mut slow_ids = Vec::new();
    let mut batch = Vec::new();
    for i in 0..normal + slow {
        let trace_id = trace_ids();
        let start = now - (60_000 - i as u64 * 200) * MS;
        let is_slow = i % ((normal + slow) / slow) == 3 && slow_ids.len() < slow;
        let region = if is_slow {
            "eu-slow"
        } else {
            REGIONS[i % REGIONS.len()]
        };
        let route = ROUTES[i % ROUTES.len()];
        let ms = if is_slow {
            1_500 + i as u64 % 400
        } else {
            20 + (i as u64 * 37) % 180
        };
        let fails = !is_slow && i % 7 == 0;
        let user = format!("user-{i}");
        let mut steps = vec![with(
            step("frontend", "HTTP GET", 2, 0, ms),
            &[("http.route", route), ("user.id", user.as_str())],
            false,
        )];
        steps.push(with(
            step("payments", "charge", 3, 2, ms / 2),
            &[(
                "payment.provider",
                if fails {
                    "flaky"
                } else {
                    ["stripe", "adyen"][i % 2]
                },
            )],
            fails,
        ));
        batch.push(trace(
            trace_id,
            start,
            &[("app.region", region), ("deployment.environment", "prod")],
            steps,
        ));
        if is_slow {
            slow_ids.push(hex::encode(trace_id));
        }
    }
    assert_eq!(slow_ids.len(), slow);
    for chunk in batch.chunks(25) {
        let request = ExportTraceServiceRequest {
            resource_spans: chunk
                .iter()
                .flat_map(|r| r.resource_spans.clone())
                .collect(),
        };
        assert_eq!(stack.export(key, &request).await, 200);
    }
    slow_ids
}

/// Groups larger than the sample: the baseline is read as a sample of trace ids (a range
/// of the id space), and for ids whose leading bytes are the time (AWS X-Ray), where a
/// range holds none of them, as a sample of id hashes. Either way the planted value
/// ranks first, over about as many traces as asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_difference_ranks_the_planted_attribute_first() {
    let stack = Stack::start().await;
    const SAMPLE: u64 = 40;
    let sampling = stack
        .start_query_with(|config| {
            config.clickhouse.read_limits.difference_sample_traces = SAMPLE;
        })
        .await;
    let (normal, slow) = (240, 12);
    for (email, xray) in [("random@ids.io", false), ("xray@ids.io", true)] {
        let (_, _, ingest, read) = organisation(&stack, email).await;
        if xray {
            send_load_with_ids(&stack, &ingest, normal, slow, xray_id).await;
        } else {
            send_load(&stack, &ingest, normal, slow).await;
        }
        wait_stored(&stack, &read, normal + slow).await;
        let answer = stack
            .http
            .get(sampling.url("/api/v1/traces/difference?lookback=15m&selection=slow&threshold=1s"))
            .header("x-api-key", &read)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["baseline_traces"], normal as u64, "{body}");
        assert_eq!(
            body["sampled_selected_traces"], slow as u64,
            "a group under the sample size is read whole: {body}"
        );
        // 240 traces sampled to about 40: binomial, standard deviation about 6, so this
        // band is more than four of them wide on either side.
        let sampled = body["sampled_baseline_traces"].as_u64().unwrap();
        assert!(
            (15..=70).contains(&sampled),
            "{email}: {sampled} baseline traces read of {normal} for a sample of {SAMPLE}: {body}"
        );
        let first = &body["values"][0];
        assert_eq!(
            (first["key"].as_str(), first["value"].as_str()),
            (Some("app.region"), Some("eu-slow")),
            "{email}: {body}"
        );
        assert_eq!(first["baseline_share"], 0.0, "{body}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_different_ranks_the_planted_attribute_first() {
    let stack = Stack::start().await;
    let (mut alice, _, ingest, read) = organisation(&stack, "alice@bubble.io").await;
    let (normal, slow) = (240, 12);
    send_load(&stack, &ingest, normal, slow).await;
    wait_stored(&stack, &read, normal + slow).await;

    // The slow ones: their region, and nothing as different.
    let (status, body) = stack
        .query_get(
            "/api/v1/traces/difference?lookback=15m&selection=slow&threshold=1s",
            &read,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["selected_traces"], slow as u64);
    assert_eq!(body["baseline_traces"], normal as u64);
    assert_eq!(
        (
            &body["sampled_selected_traces"],
            &body["sampled_baseline_traces"]
        ),
        (&body["selected_traces"], &body["baseline_traces"]),
        "groups this small are read whole"
    );
    let first = &body["values"][0];
    assert_eq!(
        (first["key"].as_str(), first["value"].as_str()),
        (Some("app.region"), Some("eu-slow")),
        "{body}"
    );
    assert_eq!(first["selected_share"], 1.0);
    assert_eq!(first["baseline_share"], 0.0);
    assert_eq!(first["selected_traces"], slow as u64);
    let second = body["values"][1]["difference"].as_f64().unwrap_or(0.0);
    assert!(second < 0.5, "nothing else stands out as much: {body}");
    assert_eq!(
        body["high_cardinality_keys"],
        serde_json::json!(["user.id"]),
        "a key with a value per trace is named, not compared"
    );
    assert!(
        body["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["key"] != "deployment.environment"),
        "a value every trace has is not different"
    );

    // The failing ones: the flaky provider. A region of the scatter: the slow ones again.
    let (_, errors) = stack
        .query_get(
            "/api/v1/traces/difference?lookback=15m&selection=errors",
            &read,
        )
        .await;
    assert_eq!(
        (
            errors["values"][0]["key"].as_str(),
            errors["values"][0]["value"].as_str()
        ),
        (Some("payment.provider"), Some("flaky")),
        "{errors}"
    );
    let (_, region) = stack
        .query_get(
            "/api/v1/traces/difference?lookback=15m&selection=region&selected_min_duration=1.2s&selected_max_duration=5s",
            &read,
        )
        .await;
    assert_eq!(region["selected_traces"], slow as u64);
    assert_eq!(region["values"][0]["value"], "eu-slow", "{region}");
    // The search's filters narrow both groups.
    let (_, narrowed) = stack
        .query_get(
            "/api/v1/traces/difference?lookback=15m&attr=http.route%3D%2Fcart&selection=slow&threshold=1s",
            &read,
        )
        .await;
    let (_, cart) = stack
        .query_get(
            "/api/v1/traces?lookback=15m&limit=1000&attr=http.route%3D%2Fcart",
            &read,
        )
        .await;
    let cart = ids(&cart).len() as u64;
    let (selected, baseline) = (
        narrowed["selected_traces"].as_u64().unwrap(),
        narrowed["baseline_traces"].as_u64().unwrap(),
    );
    assert_eq!(selected + baseline, cart, "{narrowed}");
    assert!(selected > 0 && selected < slow as u64, "{narrowed}");

    for (query, needle) in [
        ("lookback=15m", "missing selection"),
        ("selection=slow", "missing threshold"),
        ("selection=slow&threshold=soon", "invalid threshold"),
        ("selection=region", "selection=region needs"),
        ("selection=errors&attr=x%3Elots", "invalid attr"),
    ] {
        let (status, body) = stack
            .query_get(&format!("/api/v1/traces/difference?{query}"), &read)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }

    // The page: linked from the search, the planted value first with its bars, linking
    // to the search narrowed to it.
    let search = alice.get("/traces?lookback=15m&limit=50").await;
    assert!(
        search
            .body
            .contains("href=\"/traces/difference?lookback=15m&#38;limit=50&amp;selection=errors\""),
        "{}",
        search.body
    );
    let page = alice
        .get("/traces/difference?lookback=15m&selection=slow&threshold=1s")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("What is different about traces slower than 1s")
    );
    assert!(page.body.contains(&format!("{slow} selected traces")));
    let first = page.body.split("<li>").nth(1).expect("a ranked value");
    assert!(
        first.contains("<span class=\"k\">app.region</span> = <span class=\"v\">eu-slow</span>"),
        "{first}"
    );
    assert!(
        first.contains("href=\"/traces?lookback=15m&#38;attr=app.region%3Deu-slow\""),
        "{first}"
    );
    assert!(
        first.contains("<i style=\"width:100.0%\"></i><b>100%</b>"),
        "{first}"
    );
    assert!(
        first.contains("<i style=\"width:0.0%\"></i><b>0%</b>"),
        "{first}"
    );
    assert!(page.body.contains("<code>user.id</code>"));
    let narrowed = alice
        .get("/traces?lookback=15m&attr=app.region%3Deu-slow&limit=100")
        .await;
    assert_eq!(narrowed.body.matches("data-href=\"/traces/").count(), slow);
    let bad = alice
        .get("/traces/difference?lookback=15m&selection=slow")
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Missing threshold"), "{}", bad.body);

    // Another organisation compares nothing of it.
    let other = stack.ns.tenant("other").await;
    let (status, body) = stack
        .query_get(
            "/api/v1/traces/difference?lookback=15m&selection=slow&threshold=1s",
            &other.read_key,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["selected_traces"].as_u64(),
            body["values"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("search");
    let stack = Stack::start().await;
    let email = "frank@filters.io";
    let (_, tenant, ingest, read) = organisation(&stack, email).await;
    let planted = plant_filter_traces(&stack, tenant, &ingest, &read).await;
    let traces = serde_json::json!({
        "slow": planted.slow,
        "fast": planted.fast,
        "medium": planted.medium,
        "consumer": planted.consumer,
        "producer": planted.producer,
        "batch": planted.batch,
    });
    weft_e2e::browser::run_flow(
        &root,
        "search-flow.mjs",
        &[
            ("WEFT_QUERY_URL", format!("http://{}", stack.query)),
            ("WEFT_EMAIL", email.to_owned()),
            ("WEFT_PASSWORD", weft_e2e::web::PASSWORD.to_owned()),
            ("WEFT_TRACES", traces.to_string()),
            ("WEFT_SCREENSHOTS", screenshots.display().to_string()),
            ("WEFT_CHROMIUM", chromium),
        ],
    )
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_different_in_a_browser() {
    let weft_e2e::browser::BrowserRun {
        root,
        chromium,
        screenshots,
    } = weft_e2e::browser::BrowserRun::prepare("difference");
    let stack = Stack::start().await;
    let email = "erin@bubble.io";
    let (_, _, ingest, read) = organisation(&stack, email).await;
    let (normal, slow) = (240, 12);
    send_load(&stack, &ingest, normal, slow).await;
    wait_stored(&stack, &read, normal + slow).await;
    weft_e2e::browser::run_flow(
        &root,
        "difference-flow.mjs",
        &[
            ("WEFT_QUERY_URL", format!("http://{}", stack.query)),
            ("WEFT_EMAIL", email.to_owned()),
            ("WEFT_PASSWORD", weft_e2e::web::PASSWORD.to_owned()),
            ("WEFT_SLOW_TRACES", slow.to_string()),
            ("WEFT_SCREENSHOTS", screenshots.display().to_string()),
            ("WEFT_CHROMIUM", chromium),
        ],
    )
    .await;
    stack.stop().await;
}

/// Plants `spans` spans (five per trace, over the last hour) for `tenant` straight into
/// the namespace's tables, as the load generator's shop would write them: three regions,
/// four routes, three payment providers, a user id per trace (high cardinality); every
/// fiftieth trace lasts 2 s and alone has `app.region=eu-slow`, and every fifteenth fails
/// in its `flaky` payment span.
async fn plant_spans(stack: &Stack, tenant: TenantId, spans: u64) {
    let traces = spans / 5;
    let trace_id = "toFixedString(concat(reinterpretAsString(toUInt64(t + 1)), 'wbd'), 16)";
    let start = format!("toUInt32(now()) - 3550 + intDiv(t * 3500, {traces})");
    let slow = "t % 50 = 7";
    let duration = format!("if({slow}, 2000000000, (20 + t % 200) * 1000000)");
    stack
        .clickhouse_sql(&format!(
            "INSERT INTO spans (tenant_id, trace_id, span_id, parent_span_id, service_name, name, \
             kind, start_time, start_time_unix_nano, duration_ns, status_code, attribute_keys, \
             attribute_values, resource_keys, resource_values, sample_rate) \
             SELECT toUUID('{tenant}'), {trace_id}, \
             toFixedString(reinterpretAsString(toUInt64(number + 1)), 8), \
             if(k = 0, toFixedString('', 8), toFixedString(reinterpretAsString(toUInt64(t * 5 + 1)), 8)), \
             ['frontend', 'cart', 'payments', 'db', 'cache'][k + 1] AS service, \
             ['GET /checkout', 'reserve', 'charge', 'SELECT', 'get'][k + 1], if(k = 0, 2, 3), \
             toDateTime({start}), toUInt64({start}) * 1000000000 + k * 1000000, \
             intDiv({duration}, k + 1), if(t % 15 = 2 AND k = 2, 2, 0), \
             ['http.route', 'user.id', 'payment.provider'], \
             [['/cart', '/checkout', '/search', '/home'][t % 4 + 1], concat('user-', toString(t)), \
              ['stripe', 'adyen', 'flaky'][t % 3 + 1]], \
             ['service.name', 'app.region', 'deployment.environment'], \
             [service, if({slow}, 'eu-slow', ['us-east', 'us-west', 'eu-west'][t % 3 + 1]), 'prod'], 1 \
             FROM (SELECT number, intDiv(number, 5) AS t, number % 5 AS k FROM numbers({spans}))"
        ))
        .await;
    stack
        .clickhouse_sql(&format!(
            "INSERT INTO trace_index (tenant_id, trace_id, start_time, start_time_unix_nano, \
             end_time_unix_nano, root_service, root_name, span_count, error_count, service_names) \
             SELECT toUUID('{tenant}'), {trace_id}, toDateTime({start}), \
             toUInt64({start}) * 1000000000, toUInt64({start}) * 1000000000 + {duration}, \
             'frontend', 'GET /checkout', 5, if(t % 15 = 2, 1, 0), \
             ['frontend', 'cart', 'payments', 'db', 'cache'] \
             FROM (SELECT number AS t FROM numbers({traces}))"
        ))
        .await;
}

/// The "what is different" answer at scale, through the stack's query service: plants
/// `WEFT_BENCH_SPANS` spans (default 3 million) in the last hour and prints the time of
/// ten answers for the slow traces and ten for the failing ones (the figures of
/// docs/benchmarks.md). It checks the answer, never the time. Run it alone:
/// `cargo test -p weft-e2e --test explorer_search -- --ignored --nocapture difference_at_scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: plants millions of spans"]
async fn difference_at_scale() {
    let spans: u64 = std::env::var("WEFT_BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000_000);
    let stack = Stack::start().await;
    let tenant = stack.ns.tenant("bench").await;
    let planted = std::time::Instant::now();
    plant_spans(&stack, tenant.id, spans).await;
    println!("planted {spans} spans in {:?}", planted.elapsed());
    for (name, query) in [
        ("slow", "selection=slow&threshold=1s"),
        ("errors", "selection=errors"),
    ] {
        let path = format!("/api/v1/traces/difference?lookback=1h&{query}");
        let mut times = Vec::new();
        for _ in 0..10 {
            let started = std::time::Instant::now();
            let (status, body) = stack.query_get(&path, &tenant.read_key).await;
            times.push(started.elapsed());
            assert_eq!(status, 200, "{body}");
            let first = &body["values"][0];
            let expected = if name == "slow" {
                ("app.region", "eu-slow")
            } else {
                ("payment.provider", "flaky")
            };
            assert_eq!(
                (
                    first["key"].as_str().unwrap(),
                    first["value"].as_str().unwrap()
                ),
                expected,
                "{body}"
            );
            assert_eq!(
                body["high_cardinality_keys"],
                serde_json::json!(["user.id"])
            );
        }
        times.sort();
        println!(
            "difference {name} over {spans} spans: p50 {:?}, max {:?}, load {}",
            times[4],
            times[9],
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
    stack.stop().await;
}
