//! The dashboard as a user walks through it over HTTP: sign up, get an ingest key once,
//! send spans with it, log out and in, create and revoke keys (revocation reaches
//! ingest), with CSRF, validation, escaping, login throttling and tenant isolation.

use std::time::Duration;
use weft_e2e::otlp::trace_request;
use weft_e2e::web::Visitor;
use weft_e2e::{Stack, eventually};

async fn export(stack: &Stack, key: &str) -> u16 {
    stack.export(key, &trace_request(2).0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_signs_up_sends_data_and_manages_keys() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);

    // Signed-out pages redirect to the login page.
    assert_eq!(alice.get("/keys").await.location.as_deref(), Some("/login"));

    // Sign-up: CSRF, validation with readable messages, then success.
    let form = alice.get("/signup").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Create your organisation"));
    let token = form.csrf();
    let no_csrf = alice
        .post(
            "/signup",
            &[
                ("email", "a@acme.io"),
                ("organisation", "Acme"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    let weak = alice
        .post(
            "/signup",
            &[
                ("csrf", &token),
                ("email", "a@acme.io"),
                ("organisation", "Acme"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("at least 10 characters"));
    let bad_email = alice
        .post(
            "/signup",
            &[
                ("csrf", &token),
                ("email", "not-an-email"),
                ("organisation", "Acme"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert!(bad_email.body.contains("Enter a valid email address."));
    let long_org = "x".repeat(101);
    let too_long = alice
        .post(
            "/signup",
            &[
                ("csrf", &token),
                ("email", "a@acme.io"),
                ("organisation", &long_org),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert!(too_long.body.contains("at most 100 characters"));

    let onboarding = alice
        .sign_up("alice@acme.io", "<script>alert(1)</script> Labs")
        .await;
    assert_eq!(onboarding.status, 200, "{}", onboarding.body);
    assert!(
        onboarding.body.contains("&#60;script&#62;alert(1)"),
        "organisation name escaped"
    );
    assert!(!onboarding.body.contains("<script>alert(1)"));
    let ingest_key = onboarding.shown("new-key");
    assert!(ingest_key.starts_with("weft_"));
    assert!(onboarding.body.contains(&format!(
        "OTEL_EXPORTER_OTLP_HEADERS=x-api-key={ingest_key}"
    )));
    for language in ["shell", "python", "node", "go", "java", "rust"] {
        // Node.js and Go read the key from the variables of their run command.
        let shown = match language {
            "node" | "go" => onboarding.snippet("run", language),
            _ => onboarding.snippet("snippet", language),
        };
        assert!(shown.contains(&ingest_key), "{language} snippet");
    }
    assert_eq!(
        export(&stack, &ingest_key).await,
        200,
        "the new key sends data"
    );
    // The key is never shown again.
    assert!(!alice.get("/").await.body.contains(&ingest_key));
    let again = Visitor::new(&stack).sign_up("ALICE@acme.io", "Other").await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("already exists"));

    // A read key made on the keys page reads what the ingest key sent.
    let keys = alice.get("/keys").await;
    assert_eq!(keys.status, 200);
    let created = alice
        .post(
            "/keys",
            &[
                ("csrf", &keys.csrf()),
                ("name", "grafana"),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(created.status, 200);
    let read_key = created.shown("new-key");
    let (request, trace_id) = trace_request(3);
    assert_eq!(stack.export(&ingest_key, &request).await, 200);
    stack.wait_for_trace(&read_key, &trace_id, 3).await;
    let bad_scope = alice
        .post(
            "/keys",
            &[("csrf", &keys.csrf()), ("name", "x"), ("scope", "admin")],
        )
        .await;
    assert_eq!(bad_scope.status, 400);
    assert!(
        bad_scope
            .body
            .contains("Choose the scope ingest, read or write.")
    );
    assert_eq!(
        alice
            .post(
                "/keys",
                &[("csrf", "forged"), ("name", "x"), ("scope", "read")]
            )
            .await
            .status,
        403
    );

    // Log lines count apart from spans: three JSON lines, one of them unreadable.
    let lines = "{\"msg\":\"charged\"}\n{\"msg\":\"shipped\"}\nnot json\n";
    let response = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &ingest_key)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Usage shows what was sent: 2 + 3 spans, all accepted; 3 log lines, 1 rejected, and
    // the bytes of the body.
    let spans = concat!(
        r#"<td class="num group" data-label="Spans received">5</td>"#,
        r#"<td class="num" data-label="Spans accepted">5</td>"#,
        r#"<td class="num" data-label="Spans rejected">0</td>"#,
    );
    let logs = format!(
        concat!(
            r#"<td class="num group" data-label="Log records received">3</td>"#,
            r#"<td class="num" data-label="Log records accepted">2</td>"#,
            r#"<td class="num" data-label="Log records rejected">1</td>"#,
            r#"<td class="num" data-label="Log bytes accepted" title="{0} bytes">{0} B</td>"#,
        ),
        lines.len()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = alice.get("/usage").await;
        if page.status == 200 && page.body.contains(spans) && page.body.contains(&logs) {
            assert!(page.body.contains(">Log records</th>"), "{}", page.body);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "usage never showed 5 spans and 3 log lines: {}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Log out, fail to log in, log in.
    let page = alice.get("/keys").await;
    let out = alice.post("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.location.as_deref(), Some("/login?notice=logged-out"));
    assert_eq!(alice.get("/keys").await.location.as_deref(), Some("/login"));
    let login = alice.get("/login?notice=logged-out").await;
    assert!(login.body.contains("You are logged out."));
    let token = login.csrf();
    let wrong = alice
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("email", "alice@acme.io"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong email or password."));
    let unknown = alice
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("email", "nobody@acme.io"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert!(
        unknown.body.contains("Wrong email or password."),
        "no hint whether the account exists"
    );
    let ok = alice
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("email", "alice@acme.io"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")));

    // Revoking the ingest key on the keys page stops it at ingest within 5 seconds.
    let keys = alice.get("/keys").await;
    assert!(keys.body.contains("default ingest") && keys.body.contains("grafana"));
    let revoke_ingest = keys
        .actions("/keys/")
        .into_iter()
        .next()
        .expect("a revoke button");
    let revoked = alice.post(&revoke_ingest, &[("csrf", &keys.csrf())]).await;
    assert_eq!(revoked.location.as_deref(), Some("/keys"));
    eventually(
        "ingest to refuse the revoked key",
        Duration::from_secs(5),
        || async { (export(&stack, &ingest_key).await == 401).then_some(()) },
    )
    .await;
    assert!(alice.get("/keys").await.body.contains("revoked"));

    // Another organisation cannot touch Alice's keys, and forged sessions go nowhere.
    let mut mallory = Visitor::new(&stack);
    mallory.sign_up("mallory@evil.io", "Evil").await;
    let mallory_keys = mallory.get("/keys").await;
    assert!(!mallory_keys.body.contains("grafana"));
    let read_key_path = alice
        .get("/keys")
        .await
        .actions("/keys/")
        .into_iter()
        .next()
        .expect("grafana's revoke button");
    let stolen = mallory
        .post(&read_key_path, &[("csrf", &mallory_keys.csrf())])
        .await;
    assert_eq!(stolen.status, 404);
    let mut forger = Visitor::new(&stack);
    forger.cookies.insert(
        "weft_session".into(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".into(),
    );
    assert_eq!(
        forger.get("/keys").await.location.as_deref(),
        Some("/login")
    );

    // Repeated failed logins are slowed down.
    let mut guesser = Visitor::new(&stack);
    let token = guesser.get("/login").await.csrf();
    for _ in 0..5 {
        let page = guesser
            .post(
                "/login",
                &[
                    ("csrf", &token),
                    ("email", "mallory@evil.io"),
                    ("password", "guess guess guess"),
                ],
            )
            .await;
        assert_eq!(page.status, 401);
    }
    let throttled = guesser
        .post(
            "/login",
            &[
                ("csrf", &token),
                ("email", "mallory@evil.io"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.body.contains("Too many failed attempts"));
    stack.stop().await;
}
