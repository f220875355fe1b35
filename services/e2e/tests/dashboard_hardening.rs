//! The dashboard under the probes of a security review: parallel password guessing against
//! one account (no attempt beyond the limit is checked, a correct password racing the
//! guesses does not slip through), floods of unknown emails (bounded hashing, 429 past the
//! bound, the service keeps answering), unknown and known emails throttled alike, sign-up
//! and login limited per client address, logout and "log out everywhere" ending sessions
//! on the server, security headers on every page, and invitation links built from
//! `WEFT_PUBLIC_URL` whatever the request's `Host` says.

use futures::future::join_all;
use reqwest::header::HeaderMap;
use std::collections::{BTreeSet, HashMap};
use weft_e2e::web::{PASSWORD, Page, Visitor};
use weft_e2e::{Namespace, Stack, StackOptions};
use weft_storage::postgres::Attempt;

/// Logs in once per `(email, password)`, all at the same moment, each from its own login
/// form; returns the answers in the same order.
async fn parallel_logins(stack: &Stack, attempts: &[(&str, &str)]) -> Vec<Page> {
    let mut visitors = Vec::new();
    for _ in attempts {
        let mut visitor = Visitor::new(stack);
        let csrf = visitor.get("/login").await.csrf();
        visitors.push((visitor, csrf));
    }
    join_all(visitors.iter_mut().zip(attempts).map(
        |((visitor, csrf), (email, password))| async move {
            visitor
                .post(
                    "/login",
                    &[
                        ("csrf", csrf.as_str()),
                        ("email", email),
                        ("password", password),
                    ],
                )
                .await
        },
    ))
    .await
}

/// An HTTP client that shows redirects rather than following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A form body, as a browser sends it.
fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn statuses(pages: &[Page]) -> Vec<u16> {
    pages.iter().map(|page| page.status).collect()
}

/// A stack whose per-address budget does not get in the way of tests about accounts.
fn generous_addresses() -> StackOptions {
    StackOptions {
        password_attempts_per_address: 10_000,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_stop_at_the_limit() {
    let stack = Stack::start_with(Namespace::create().await, generous_addresses()).await;
    Visitor::new(&stack).sign_up("alice@acme.io", "Acme").await;

    // Twenty guesses at once at a fresh account: five are checked, the rest wait.
    let guesses = parallel_logins(&stack, &[("alice@acme.io", "guess guess guess"); 20]).await;
    let checked = guesses.iter().filter(|page| page.status != 429).count();
    assert_eq!(checked, 5, "{:?}", statuses(&guesses));
    assert!(
        guesses.iter().all(|page| matches!(page.status, 401 | 429)),
        "{:?}",
        statuses(&guesses)
    );
    let refused = guesses.iter().find(|page| page.status == 429).unwrap();
    assert!(refused.body.contains("Try again in"), "{}", refused.body);
    assert_eq!(failures(&stack, "alice@acme.io").await, Some(5));
    stack.stop().await;
}

/// The failures counted on `email`.
async fn failures(stack: &Stack, email: &str) -> Option<i32> {
    sqlx::query_scalar("SELECT failures FROM login_failures WHERE email = $1")
        .bind(email)
        .fetch_optional(stack.ns.accounts.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_racing_guesses_does_not_slip_past_the_limit() {
    let stack = Stack::start_with(Namespace::create().await, generous_addresses()).await;
    Visitor::new(&stack).sign_up("bob@acme.io", "Bob's").await;

    // Four wrong guesses, then nineteen guesses and the right password at once: only one
    // of the twenty is checked, and the right password gets in only if it was that one.
    for _ in 0..4 {
        let page = Visitor::new(&stack)
            .log_in("bob@acme.io", "not bob's password")
            .await;
        assert_eq!(page.status, 401);
    }
    let mut race = vec![("bob@acme.io", "not bob's password"); 19];
    race.insert(7, ("bob@acme.io", PASSWORD));
    let answers = parallel_logins(&stack, &race).await;
    let checked: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].status != 429)
        .collect();
    assert_eq!(checked.len(), 1, "{:?}", statuses(&answers));
    if checked == [7] {
        assert_eq!(
            answers[7].status, 303,
            "the right password, checked, gets in"
        );
        assert_eq!(
            failures(&stack, "bob@acme.io").await,
            None,
            "and clears the count"
        );
    } else {
        assert_eq!(answers[7].status, 429, "{:?}", statuses(&answers));
        assert_eq!(failures(&stack, "bob@acme.io").await, Some(5));
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_emails_is_bounded_and_the_service_keeps_answering() {
    let options = StackOptions {
        password_hashing_concurrency: 2,
        password_hashing_queue: 2,
        ..generous_addresses()
    };
    let stack = Stack::start_with(Namespace::create().await, options).await;
    let emails: Vec<String> = (0..40).map(|i| format!("nobody{i}@nowhere.io")).collect();
    let attempts: Vec<(&str, &str)> = emails
        .iter()
        .map(|email| (email.as_str(), "some password"))
        .collect();
    let (answers, health) = tokio::join!(parallel_logins(&stack, &attempts), async {
        stack
            .http
            .get(stack.query_url("/healthz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(health.ok(), Some(200), "health answers during the flood");
    let codes = statuses(&answers);
    assert!(
        codes.iter().all(|code| matches!(code, 401 | 429)),
        "{codes:?}"
    );
    let busy = codes.iter().filter(|&&code| code == 429).count();
    assert!(busy >= 40 - 4, "at most 2 running and 2 waiting: {codes:?}");
    // The bound is per moment, not a lockout: the next visitor is served normally.
    let mut visitor = Visitor::new(&stack);
    assert_eq!(visitor.get("/login").await.status, 200);
    let later = visitor.log_in("nobody0@nowhere.io", "some password").await;
    assert_eq!(later.status, 401, "{}", later.body);
    stack.stop().await;
}

/// The message of a login answer, without what the visitor typed.
fn login_error(page: &Page) -> String {
    page.body
        .split("class=\"error\"")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no error on the page: {}", page.body))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_known_emails_are_answered_alike() {
    let stack = Stack::start_with(Namespace::create().await, generous_addresses()).await;
    Visitor::new(&stack).sign_up("alice@acme.io", "Acme").await;
    // Side by side, so that both reach their limit at the same moment.
    let pair = [
        ("alice@acme.io", "guess guess guess"),
        ("nobody@acme.io", "guess guess guess"),
    ];
    for _ in 0..5 {
        let answers = parallel_logins(&stack, &pair).await;
        assert_eq!(statuses(&answers), [401, 401]);
        assert_eq!(login_error(&answers[0]), login_error(&answers[1]));
    }
    let answers = parallel_logins(&stack, &pair).await;
    let (known, unknown) = (&answers[0], &answers[1]);
    assert_eq!((known.status, unknown.status), (429, 429));
    assert_eq!(login_error(known), login_error(unknown));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_and_login_are_limited_per_client_address() {
    let options = StackOptions {
        password_attempts_per_address: 4,
        trusted_proxies: "127.0.0.1".to_owned(),
        ..Default::default()
    };
    let stack = Stack::start_with(Namespace::create().await, options).await;
    let mut alice = Visitor::new(&stack);
    assert_eq!(alice.sign_up("alice@acme.io", "Acme").await.status, 200);
    for email in ["a@nowhere.io", "b@nowhere.io", "c@nowhere.io"] {
        assert_eq!(
            Visitor::new(&stack)
                .log_in(email, "some password")
                .await
                .status,
            401
        );
    }
    // The budget of 127.0.0.1 is spent, on logins and sign-ups alike.
    let login = Visitor::new(&stack)
        .log_in("d@nowhere.io", "some password")
        .await;
    assert_eq!(login.status, 429, "{}", login.body);
    let sign_up = Visitor::new(&stack).sign_up("eve@evil.io", "Evil").await;
    assert_eq!(sign_up.status, 429, "{}", sign_up.body);
    // A client behind the trusted proxy has its own budget.
    let mut visitor = Visitor::new(&stack);
    let login_form = visitor.get("/login").await;
    let cookie = format!("weft_csrf={}", visitor.cookies["weft_csrf"]);
    let behind_proxy = no_redirects()
        .post(stack.query_url("/login"))
        .header("cookie", cookie)
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", login_form.csrf().as_str()),
            ("email", "alice@acme.io"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(behind_proxy.status(), 303, "signed in");
    stack.stop().await;
}

async fn invite_bob(alice: &mut Visitor) -> String {
    let members = alice.get("/members").await;
    alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "bob@acme.io"), ("role", "member")],
        )
        .await
        .invitation_path()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_ends_the_session_on_the_server() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;

    // The cookie and CSRF token of a session that logged out open nothing.
    let keys = alice.get("/keys").await;
    let stolen = alice.cookies.clone();
    let out = alice.submit(&keys, "/logout", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/login?notice=logged-out"));
    let mut thief = Visitor::new(&stack);
    thief.cookies = stolen;
    assert_eq!(thief.get("/keys").await.location.as_deref(), Some("/login"));
    let create = thief
        .submit(
            &keys,
            "/keys",
            &[("name", "after logout"), ("scope", "read")],
        )
        .await;
    assert_eq!(
        create.location.as_deref(),
        Some("/login"),
        "{}",
        create.body
    );
    assert_eq!(alice.log_in("alice@acme.io", PASSWORD).await.status, 303);
    assert!(!alice.get("/keys").await.body.contains("after logout"));

    // "Log out everywhere" ends every session of the user, on every device.
    let mut laptop = Visitor::new(&stack);
    assert_eq!(laptop.log_in("alice@acme.io", PASSWORD).await.status, 303);
    let home = alice.get("/").await;
    assert!(home.body.contains("action=\"/logout/everywhere\""));
    let everywhere = alice.submit(&home, "/logout/everywhere", &[]).await;
    assert_eq!(
        everywhere.location.as_deref(),
        Some("/login?notice=logged-out")
    );
    for visitor in [&mut alice, &mut laptop] {
        assert_eq!(visitor.get("/").await.location.as_deref(), Some("/login"));
    }

    // Removal from the organisation ends the sessions there for good: the old cookie
    // does not come back to life when the member is invited again.
    let mut alice = Visitor::new(&stack);
    assert_eq!(alice.log_in("alice@acme.io", PASSWORD).await.status, 303);
    let link = invite_bob(&mut alice).await;
    let mut bob = Visitor::new(&stack);
    let form = bob.get(&link).await;
    bob.submit(&form, &link, &[("password", PASSWORD)]).await;
    assert_eq!(bob.get("/members").await.status, 200);
    let members = alice.get("/members").await;
    let remove = format!("/members/{}/remove", members.member_id("bob@acme.io"));
    alice.submit(&members, &remove, &[]).await;
    let old_session = bob.cookies.clone();
    assert_eq!(
        bob.get("/members").await.location.as_deref(),
        Some("/login?notice=removed")
    );
    let link = invite_bob(&mut alice).await;
    let mut bob_again = Visitor::new(&stack);
    let form = bob_again.get(&link).await;
    assert_eq!(
        bob_again
            .submit(&form, &link, &[("password", PASSWORD)])
            .await
            .status,
        303
    );
    let mut old = Visitor::new(&stack);
    old.cookies = old_session;
    assert_eq!(
        old.get("/members").await.location.as_deref(),
        Some("/login?notice=removed")
    );
    stack.stop().await;
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// A page fetched with its headers.
struct Fetched {
    what: String,
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn fetch(
    stack: &Stack,
    cookies: &HashMap<String, String>,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Fetched {
    let http = no_redirects();
    let cookie = cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let url = stack.query_url(path);
    let request = if method == "POST" {
        http.post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(self::form(fields))
    } else {
        http.get(url)
    };
    let response = request.header("cookie", cookie).send().await.unwrap();
    Fetched {
        what: format!("{method} {path}"),
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

fn header<'a>(fetched: &'a Fetched, name: &str) -> &'a str {
    fetched
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} ({}) sends no {name}", fetched.what, fetched.status))
}

fn assert_page_headers(fetched: &Fetched) {
    let what = &fetched.what;
    assert_eq!(header(fetched, "content-security-policy"), CSP, "{what}");
    assert_eq!(header(fetched, "x-frame-options"), "DENY", "{what}");
    assert_eq!(
        header(fetched, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert!(
        matches!(
            header(fetched, "referrer-policy"),
            "same-origin" | "no-referrer"
        ),
        "{what}"
    );
    if !fetched.what.starts_with("GET /static/") {
        assert!(
            header(fetched, "cache-control").contains("no-store"),
            "{what}"
        );
    }
}

/// The same-site links of a page.
fn links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|link| link.starts_with('/') && !link.starts_with("//"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_sends_the_security_headers() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    let setup = alice.sign_up("alice@acme.io", "Acme").await;
    let ingest_key = setup.shown("new-key");
    let cookies = alice.cookies.clone();

    // Every page reachable from the navigation, signed in and signed out.
    let mut seen = BTreeSet::new();
    let mut next: Vec<(HashMap<String, String>, String)> = ["/", "/login", "/signup"]
        .into_iter()
        .flat_map(|path| {
            [
                (cookies.clone(), path.to_owned()),
                (HashMap::new(), path.to_owned()),
            ]
        })
        .collect();
    while let Some((jar, path)) = next.pop() {
        if seen.len() >= 200 || !seen.insert((jar.is_empty(), path.clone())) {
            continue;
        }
        let page = fetch(&stack, &jar, "GET", &path, &[]).await;
        assert_page_headers(&page);
        for link in links(&page.body) {
            next.push((jar.clone(), link));
        }
    }
    let signed_in: BTreeSet<&str> = seen
        .iter()
        .filter(|(anonymous, _)| !anonymous)
        .map(|(_, path)| path.as_str())
        .collect();
    for page in ["/", "/keys", "/members", "/usage", "/static/weft.css"] {
        assert!(
            signed_in.contains(page),
            "{page} not reached: {signed_in:?}"
        );
    }

    // Pages that show a secret once, answers to forms, error pages and the API.
    let keys = alice.get("/keys").await;
    let csrf = keys.csrf();
    let new_key = fetch(
        &stack,
        &cookies,
        "POST",
        "/keys",
        &[("csrf", &csrf), ("name", "reader"), ("scope", "read")],
    )
    .await;
    assert!(new_key.body.contains("id=\"new-key\""));
    let invited = fetch(
        &stack,
        &cookies,
        "POST",
        "/members/invite",
        &[
            ("csrf", &csrf),
            ("email", "bob@acme.io"),
            ("role", "member"),
        ],
    )
    .await;
    assert!(invited.body.contains("id=\"invitation-link\""));
    let invitation = Page {
        status: invited.status,
        location: None,
        body: invited.body.clone(),
    }
    .invitation_path();
    let read_key = Page {
        status: new_key.status,
        location: None,
        body: new_key.body.clone(),
    }
    .shown("new-key");
    let anonymous = HashMap::new();
    let mut answers = vec![
        new_key,
        invited,
        fetch(&stack, &anonymous, "GET", &invitation, &[]).await,
        fetch(
            &stack,
            &anonymous,
            "GET",
            &format!("/invite/{}", "0".repeat(64)),
            &[],
        )
        .await,
        fetch(&stack, &cookies, "POST", "/keys", &[("csrf", "forged")]).await,
        fetch(&stack, &anonymous, "GET", "/keys", &[]).await,
        fetch(&stack, &anonymous, "GET", "/no/such/page", &[]).await,
        fetch(&stack, &anonymous, "POST", "/login", &[("csrf", "forged")]).await,
    ];
    let members = alice.get("/members").await;
    answers.push(
        fetch(
            &stack,
            &cookies,
            "POST",
            &format!("/members/{}/remove", uuid::Uuid::new_v4()),
            &[("csrf", &members.csrf())],
        )
        .await,
    );
    for answer in &answers {
        assert_page_headers(answer);
    }

    // The JSON API: not sniffed, not stored, with a key or without.
    let http = &stack.http;
    for (key, status) in [
        (read_key.as_str(), 200),
        (ingest_key.as_str(), 403),
        ("", 401),
    ] {
        let response = http
            .get(stack.query_url("/api/v1/services"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{status}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("no-store"),
            "{status}"
        );
    }
    stack.stop().await;
}

/// Invites `email` with a forged `Host` header; returns the link shown.
async fn invite_with_host(stack: &Stack, alice: &mut Visitor, email: &str, host: &str) -> String {
    let members = alice.get("/members").await;
    let cookie = alice
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let response = no_redirects()
        .post(stack.query_url("/members/invite"))
        .header("cookie", cookie)
        .header("host", host)
        .header("x-forwarded-host", host)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", members.csrf().as_str()),
            ("email", email),
            ("role", "member"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Page {
        status: 200,
        location: None,
        body: response.text().await.unwrap(),
    }
    .shown("invitation-link")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_links_use_the_public_url_whatever_the_host_header_says() {
    // The test stack's public URL is where its query replica listens.
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;
    let link = invite_with_host(&stack, &mut alice, "bob@acme.io", "evil.example").await;
    let expected = format!("http://{}/invite/", stack.query);
    assert!(link.starts_with(&expected), "{link}");
    stack.stop().await;

    // Configured: WEFT_PUBLIC_URL.
    let options = StackOptions {
        public_url: Some("https://weft.example.com".to_owned()),
        ..Default::default()
    };
    let stack = Stack::start_with(Namespace::create().await, options).await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;
    let link = invite_with_host(&stack, &mut alice, "bob@acme.io", "evil.example:8080").await;
    let token = link
        .strip_prefix("https://weft.example.com/invite/")
        .unwrap_or_else(|| panic!("{link}"));
    assert_eq!(token.len(), 64);
    // The link works where the dashboard really is.
    let opened = Visitor::new(&stack).get(&format!("/invite/{token}")).await;
    assert_eq!(opened.status, 200);
    stack.stop().await;
}

/// Moves the counts of `table` back in time by `secs`, as if that much time had passed.
async fn age(ns: &Namespace, table: &str, column: &str, secs: f64) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET {column} = {column} - make_interval(secs => $1)"
    )))
    .bind(secs)
    .execute(ns.accounts.pool())
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_make_each_attempt_wait_twice_as_long() {
    let ns = Namespace::create().await;
    let db = &ns.accounts;
    for _ in 0..5 {
        assert_eq!(
            db.reserve_login_attempt("Bob@acme.io").await.unwrap(),
            Attempt::Granted
        );
    }
    for wait in [1, 2, 4, 8, 16, 32, 64, 128, 256, 256] {
        let attempt = db.reserve_login_attempt("bob@ACME.io").await.unwrap();
        assert_eq!(attempt, Attempt::WaitSecs(wait));
        age(&ns, "login_failures", "last_attempt_at", wait as f64 - 0.5).await;
        let attempt = db.reserve_login_attempt("bob@acme.io").await.unwrap();
        assert_eq!(attempt, Attempt::WaitSecs(1), "not yet after {wait}");
        age(&ns, "login_failures", "last_attempt_at", 0.6).await;
        let attempt = db.reserve_login_attempt("bob@acme.io").await.unwrap();
        assert_eq!(attempt, Attempt::Granted, "after {wait}");
    }
    // A match clears the count; so does a day without attempts.
    db.clear_login_failures("BOB@acme.io").await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            db.reserve_login_attempt("bob@acme.io").await.unwrap(),
            Attempt::Granted
        );
    }
    age(&ns, "login_failures", "last_attempt_at", 86_401.0).await;
    for _ in 0..5 {
        assert_eq!(
            db.reserve_login_attempt("bob@acme.io").await.unwrap(),
            Attempt::Granted
        );
    }

    // An address bucket of 3 that gains one attempt every 10 s.
    let refill = std::time::Duration::from_secs(10);
    for _ in 0..3 {
        let attempt = db
            .take_address_attempt("192.0.2.1", 3, refill)
            .await
            .unwrap();
        assert_eq!(attempt, Attempt::Granted);
    }
    let attempt = db
        .take_address_attempt("192.0.2.1", 3, refill)
        .await
        .unwrap();
    assert_eq!(attempt, Attempt::WaitSecs(10));
    let other = db
        .take_address_attempt("192.0.2.2", 3, refill)
        .await
        .unwrap();
    assert_eq!(other, Attempt::Granted, "each address has its own");
    age(&ns, "login_address_budgets", "updated_at", 6.0).await;
    let attempt = db
        .take_address_attempt("192.0.2.1", 3, refill)
        .await
        .unwrap();
    assert_eq!(attempt, Attempt::WaitSecs(4));
    age(&ns, "login_address_budgets", "updated_at", 4.0).await;
    let attempt = db
        .take_address_attempt("192.0.2.1", 3, refill)
        .await
        .unwrap();
    assert_eq!(attempt, Attempt::Granted);

    // Counts that no longer change an answer are deleted.
    age(&ns, "login_address_budgets", "updated_at", 31.0).await;
    db.forget_stale_login_attempts(refill * 3).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM login_address_budgets")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    ns.teardown().await;
}
