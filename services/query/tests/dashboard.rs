//! The dashboard as a user walks through it over HTTP: sign up, get an ingest key once,
//! send spans with it, log out and in, create and revoke keys (revocation reaches
//! ingest), with CSRF, validation, escaping, login throttling and tenant isolation.

use std::collections::HashMap;
use std::time::Duration;
use weft_testkit::otlp::trace_request;
use weft_testkit::{Stack, eventually};

/// A cookie-keeping client that does not follow redirects, like a browser's network log.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(stack: &Stack) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: stack.query_url(""),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }
}

/// The value of the first `name="csrf"` hidden input.
fn csrf(page: &Page) -> String {
    let start = page
        .body
        .find("name=\"csrf\" value=\"")
        .expect("a csrf field")
        + 19;
    page.body[start..].split('"').next().unwrap().to_owned()
}

/// The key shown once on a page.
fn shown_key(page: &Page) -> String {
    let start = page
        .body
        .find("id=\"new-key\">")
        .expect("a new key on the page")
        + 13;
    page.body[start..].split('<').next().unwrap().to_owned()
}

fn revoke_paths(page: &Page) -> Vec<String> {
    page.body
        .match_indices("action=\"/keys/")
        .map(|(i, _)| page.body[i + 8..].split('"').next().unwrap().to_owned())
        .collect()
}

async fn sign_up(browser: &mut Browser, email: &str, organisation: &str) -> Page {
    let form = browser.get("/signup").await;
    let token = csrf(&form);
    browser
        .post(
            "/signup",
            &[
                ("csrf", &token),
                ("email", email),
                ("organisation", organisation),
                ("password", "correct horse battery"),
            ],
        )
        .await
}

async fn export(stack: &Stack, key: &str) -> u16 {
    stack.export(key, &trace_request(2).0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_signs_up_sends_data_and_manages_keys() {
    let stack = Stack::start().await;
    let mut alice = Browser::new(&stack);

    // Signed-out pages redirect to the login page.
    assert_eq!(alice.get("/keys").await.location.as_deref(), Some("/login"));

    // Sign-up: CSRF, validation with readable messages, then success.
    let form = alice.get("/signup").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Create your organisation"));
    let token = csrf(&form);
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

    let onboarding = sign_up(
        &mut alice,
        "alice@acme.io",
        "<script>alert(1)</script> Labs",
    )
    .await;
    assert_eq!(onboarding.status, 200, "{}", onboarding.body);
    assert!(
        onboarding.body.contains("&#60;script&#62;alert(1)"),
        "organisation name escaped"
    );
    assert!(!onboarding.body.contains("<script>alert(1)"));
    let ingest_key = shown_key(&onboarding);
    assert!(ingest_key.starts_with("weft_"));
    assert!(onboarding.body.contains(&format!(
        "OTEL_EXPORTER_OTLP_HEADERS=x-api-key={ingest_key}"
    )));
    for language in ["Node.js", "Python", "Go", "Java", "Rust"] {
        assert!(
            onboarding.body.contains(&format!("<h2>{language}</h2>")),
            "{language} snippet"
        );
    }
    assert_eq!(
        export(&stack, &ingest_key).await,
        200,
        "the new key sends data"
    );
    // The key is never shown again.
    assert!(!alice.get("/").await.body.contains(&ingest_key));
    let again = sign_up(&mut Browser::new(&stack), "ALICE@acme.io", "Other").await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("already exists"));

    // A read key made on the keys page reads what the ingest key sent.
    let keys = alice.get("/keys").await;
    assert_eq!(keys.status, 200);
    let created = alice
        .post(
            "/keys",
            &[
                ("csrf", &csrf(&keys)),
                ("name", "grafana"),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(created.status, 200);
    let read_key = shown_key(&created);
    let (request, trace_id) = trace_request(3);
    assert_eq!(stack.export(&ingest_key, &request).await, 200);
    stack.wait_for_trace(&read_key, &trace_id, 3).await;
    let bad_scope = alice
        .post(
            "/keys",
            &[("csrf", &csrf(&keys)), ("name", "x"), ("scope", "admin")],
        )
        .await;
    assert_eq!(bad_scope.status, 400);
    assert!(bad_scope.body.contains("Choose the scope ingest or read."));
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

    // Usage shows what was sent: 2 + 3 spans, all accepted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = alice.get("/usage").await;
        if page.status == 200 && page.body.contains("<td>5</td><td>5</td><td>0</td>") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "usage never showed 5 spans: {}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Log out, fail to log in, log in.
    let page = alice.get("/keys").await;
    let out = alice.post("/logout", &[("csrf", &csrf(&page))]).await;
    assert_eq!(out.location.as_deref(), Some("/login?notice=logged-out"));
    assert_eq!(alice.get("/keys").await.location.as_deref(), Some("/login"));
    let login = alice.get("/login?notice=logged-out").await;
    assert!(login.body.contains("You are logged out."));
    let token = csrf(&login);
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
    let revoke_ingest = revoke_paths(&keys)
        .into_iter()
        .next()
        .expect("a revoke button");
    let revoked = alice.post(&revoke_ingest, &[("csrf", &csrf(&keys))]).await;
    assert_eq!(revoked.location.as_deref(), Some("/keys"));
    eventually(
        "ingest to refuse the revoked key",
        Duration::from_secs(5),
        || async { (export(&stack, &ingest_key).await == 401).then_some(()) },
    )
    .await;
    assert!(alice.get("/keys").await.body.contains("revoked"));

    // Another organisation cannot touch Alice's keys, and forged sessions go nowhere.
    let mut mallory = Browser::new(&stack);
    sign_up(&mut mallory, "mallory@evil.io", "Evil").await;
    let mallory_keys = mallory.get("/keys").await;
    assert!(!mallory_keys.body.contains("grafana"));
    let read_key_path = revoke_paths(&alice.get("/keys").await)
        .into_iter()
        .next()
        .expect("grafana's revoke button");
    let stolen = mallory
        .post(&read_key_path, &[("csrf", &csrf(&mallory_keys))])
        .await;
    assert_eq!(stolen.status, 404);
    let mut forger = Browser::new(&stack);
    forger.cookies.insert(
        "weft_session".into(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".into(),
    );
    assert_eq!(
        forger.get("/keys").await.location.as_deref(),
        Some("/login")
    );

    // Repeated failed logins are slowed down.
    let mut guesser = Browser::new(&stack);
    let token = csrf(&guesser.get("/login").await);
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
