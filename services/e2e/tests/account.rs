//! Account basics through the real stack: a forgotten password reset through a real
//! SMTP server (aiosmtpd) with a link that works once and expires, changing the password
//! (other sessions end, this one stays), passwords refused by the strength estimator and
//! the common-password list with the reason, deleting an organisation (every PostgreSQL
//! row and ClickHouse row of it gone, nothing of another one touched, its keys refused at
//! once), and the confirmation steps and sole-owner rules of the members and keys pages.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use weft_e2e::otlp::{now_ns, random_id, request, span, string_attribute, trace_request};
use weft_e2e::smtp::SmtpServer;
use weft_e2e::web::{PASSWORD, Page, Visitor};
use weft_e2e::{Stack, StackOptions, eventually};
use weft_model::{KeyScope, TenantId};
use weft_storage::clickhouse::TENANT_TABLES;

const NEW_PASSWORD: &str = "violet tandem quarry lantern";

/// A stack whose query replicas send email through `smtp`.
async fn stack_with_smtp(smtp: &SmtpServer, options: StackOptions) -> Stack {
    let port = smtp.port;
    let mut stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let replica = stack
        .start_query_with(|config| {
            config.smtp.host = "127.0.0.1".to_owned();
            config.smtp.port = port;
            config.smtp.tls = weft_query::SmtpTls::None;
            config.smtp.from = "Weft <accounts@weft.example>".to_owned();
        })
        .await;
    stack.query = stack.keep(replica);
    stack
}

/// The reset link in an email, as a path on the dashboard.
fn reset_path(message: &Value) -> String {
    let text = message["text"].as_str().expect("a plain text part");
    let start = text.find("/password/reset/").expect("a reset link");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

async fn request_reset(stack: &Stack, email: &str) -> Page {
    let mut visitor = Visitor::new(stack);
    let form = visitor.get("/password/forgot").await;
    assert_eq!(form.status, 200, "{}", form.body);
    visitor
        .submit(&form, "/password/forgot", &[("email", email)])
        .await
}

/// Sets `password` through the reset link at `path`; returns the answer.
async fn set_password(stack: &Stack, path: &str, password: &str, again: &str) -> Page {
    let mut visitor = Visitor::new(stack);
    let form = visitor.get(path).await;
    if form.status != 200 {
        return form;
    }
    visitor
        .submit(
            &form,
            path,
            &[("new_password", password), ("confirm", again)],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_by_email_once_and_before_the_link_expires() {
    let mut smtp = SmtpServer::start().await;
    let stack = stack_with_smtp(&smtp, StackOptions::default()).await;
    let mut alice = Visitor::new(&stack);
    assert_eq!(alice.sign_up("alice@acme.io", "Acme").await.status, 200);
    let mut bob = Visitor::new(&stack);
    assert_eq!(bob.sign_up("bob@bob.io", "Bob's").await.status, 200);

    // The login page links to the request page.
    assert!(
        Visitor::new(&stack)
            .get("/login")
            .await
            .body
            .contains("href=\"/password/forgot\"")
    );
    // The answer is the same for an address without an account, which gets no email:
    // the first email the server receives is Alice's.
    let unknown = request_reset(&stack, "nobody@acme.io").await;
    let known = request_reset(&stack, "alice@acme.io").await;
    assert_eq!((unknown.status, known.status), (200, 200));
    assert_eq!(
        unknown.body.replace("nobody@acme.io", "EMAIL"),
        known.body.replace("alice@acme.io", "EMAIL"),
        "the answer does not tell whether an account has the email"
    );
    assert!(known.body.contains("within 1 hour"), "{}", known.body);
    let message = smtp.next_message().await;
    assert_eq!(message["rcpt_tos"], json!(["alice@acme.io"]));
    assert_eq!(message["subject"], "Reset your Weft password");
    assert_eq!(message["from"], "Weft <accounts@weft.example>");
    assert!(
        message["html"]
            .as_str()
            .unwrap()
            .contains("/password/reset/")
    );
    let path = reset_path(&message);
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{}{path}", stack.query_url(""))),
        "the link is absolute, on the public URL"
    );

    // A bad input is refused with the reason; the link still works afterwards.
    let invalid = request_reset(&stack, "not an email").await;
    assert_eq!(invalid.status, 400);
    let differ = set_password(&stack, &path, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(differ.status, 400);
    assert!(differ.body.contains("The two passwords differ"));
    let weak = set_password(&stack, &path, "password123", "password123").await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("most common passwords"), "{}", weak.body);
    let own = set_password(&stack, &path, "alice@acme.io!", "alice@acme.io!").await;
    assert_eq!(own.status, 400);
    assert!(own.body.contains("Leave out your email"), "{}", own.body);

    // The new password is set; every session of Alice ends; the old password is gone.
    assert_eq!(alice.get("/keys").await.status, 200);
    let done = set_password(&stack, &path, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/login?notice=password-reset")
    );
    assert_eq!(alice.get("/keys").await.location.as_deref(), Some("/login"));
    let mut fresh = Visitor::new(&stack);
    assert_eq!(fresh.log_in("alice@acme.io", PASSWORD).await.status, 401);
    assert_eq!(
        fresh
            .log_in("alice@acme.io", NEW_PASSWORD)
            .await
            .location
            .as_deref(),
        Some("/")
    );
    // Bob's account is untouched.
    assert_eq!(bob.get("/keys").await.status, 200);

    // The link works once.
    let again = Visitor::new(&stack).get(&path).await;
    assert_eq!(again.status, 404);
    assert!(again.body.contains("This link is not valid"));
    let replay = set_password(
        &stack,
        &path,
        "another fine long phrase",
        "another fine long phrase",
    )
    .await;
    assert_eq!(replay.status, 404);
    // A token of the right shape that was never issued, and garbage, are the same.
    for path in [
        format!("/password/reset/{}", "ab".repeat(32)),
        "/password/reset/..%2f".to_owned(),
    ] {
        assert_eq!(Visitor::new(&stack).get(&path).await.status, 404, "{path}");
    }

    // A link expires: on a replica whose links last a second, it is refused after it.
    let short = stack
        .start_query_with(|config| {
            config.smtp.host = "127.0.0.1".to_owned();
            config.smtp.port = smtp.port;
            config.smtp.tls = weft_query::SmtpTls::None;
            config.password_reset_ttl = Duration::from_secs(1);
        })
        .await;
    let mut visitor = Visitor::at(&short.url(""));
    let form = visitor.get("/password/forgot").await;
    let sent = visitor
        .submit(&form, "/password/forgot", &[("email", "alice@acme.io")])
        .await;
    assert_eq!(sent.status, 200);
    assert!(sent.body.contains("within 1 second"), "{}", sent.body);
    let message = smtp.next_message().await;
    let expiring = reset_path(&message);
    assert_eq!(
        Visitor::new(&stack).get(&expiring).await.status,
        200,
        "valid at first"
    );
    eventually("the link to expire", Duration::from_secs(10), || async {
        (Visitor::new(&stack).get(&expiring).await.status == 404).then_some(())
    })
    .await;
    short.stop().await;

    // Three links per account and hour: the fourth request sends nothing (the next email
    // the server receives is Bob's), and answers as ever.
    assert_eq!(request_reset(&stack, "alice@acme.io").await.status, 200);
    assert_eq!(
        smtp.next_message().await["rcpt_tos"],
        json!(["alice@acme.io"])
    );
    let refused = request_reset(&stack, "alice@acme.io").await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("If an account uses"));
    assert_eq!(request_reset(&stack, "bob@bob.io").await.status, 200);
    assert_eq!(smtp.next_message().await["rcpt_tos"], json!(["bob@bob.io"]));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_request_page_says_so_and_sends_nothing() {
    let stack = Stack::start().await;
    let mut visitor = Visitor::new(&stack);
    let page = visitor.get("/password/forgot").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("cannot send email"), "{}", page.body);
    assert!(!page.body.contains("action=\"/password/forgot\""));
    stack.stop().await;
}

/// Changes the password on the account page; returns the answer.
async fn change(visitor: &mut Visitor, current: &str, new: &str, again: &str) -> Page {
    let page = visitor.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    visitor
        .submit(
            &page,
            "/account/password",
            &[
                ("current", current),
                ("new_password", new),
                ("confirm", again),
            ],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_needs_the_current_one_and_ends_every_other_session() {
    let stack = Stack::start().await;
    let mut laptop = Visitor::new(&stack);
    assert_eq!(laptop.sign_up("alice@acme.io", "Acme").await.status, 200);
    let mut phone = Visitor::new(&stack);
    assert_eq!(phone.log_in("alice@acme.io", PASSWORD).await.status, 303);
    let account = laptop.get("/account").await;
    assert!(account.body.contains("alice@acme.io"));
    assert!(laptop.get("/").await.body.contains("href=\"/account\""));

    let wrong = change(&mut laptop, "not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Your current password is not right"));
    let differ = change(&mut laptop, PASSWORD, NEW_PASSWORD, "violet tandem").await;
    assert_eq!(differ.status, 400);
    assert!(differ.body.contains("differ"));
    let weak = change(&mut laptop, PASSWORD, "aaaaaaaaaaaaaa", "aaaaaaaaaaaaaa").await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("too easy to guess"), "{}", weak.body);
    let same = change(&mut laptop, PASSWORD, PASSWORD, PASSWORD).await;
    assert_eq!(same.status, 400);
    // Nothing changed so far: both sessions live, the old password works.
    assert_eq!(phone.get("/keys").await.status, 200);

    let changed = change(&mut laptop, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(changed.body.contains("Your password is changed"));
    assert_eq!(laptop.get("/keys").await.status, 200, "this session stays");
    assert_eq!(
        phone.get("/keys").await.location.as_deref(),
        Some("/login"),
        "the other session ended"
    );
    let mut fresh = Visitor::new(&stack);
    assert_eq!(fresh.log_in("alice@acme.io", PASSWORD).await.status, 401);
    assert_eq!(
        fresh.log_in("alice@acme.io", NEW_PASSWORD).await.status,
        303
    );
    // A form without the session's CSRF token changes nothing.
    let forged = fresh
        .post(
            "/account/password",
            &[
                ("csrf", "forged"),
                ("current", NEW_PASSWORD),
                ("new_password", "x"),
                ("confirm", "x"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused_at_sign_up_and_invitation_with_the_reason() {
    let stack = Stack::start().await;
    let mut visitor = Visitor::new(&stack);
    for (password, reason) in [
        ("short", "at least 10 characters"),
        ("qwertyuiop", "most common passwords"),
        ("Password123", "most common passwords"),
        ("abcdefghijklm", "too easy to guess"),
        (
            "acmewidgets99",
            "Leave out your email and organisation name",
        ),
    ] {
        let csrf = visitor.get("/signup").await.csrf();
        let page = visitor
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("email", "ops@acmewidgets.io"),
                    ("organisation", "Acme Widgets"),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{password}");
        assert!(page.body.contains(reason), "{password}: {}", page.body);
        // The reason says how to do better, too.
        assert!(page.body.contains("make a strong password"), "{password}");
    }
    assert!(
        stack
            .ns
            .accounts
            .user_by_email("ops@acmewidgets.io")
            .await
            .unwrap()
            .is_none()
    );

    // An invitation is accepted only with a strong password as well.
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;
    let members = alice.get("/members").await;
    let invited = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "bob@acme.io"), ("role", "member")],
        )
        .await;
    let link = invited.invitation_path();
    let mut bob = Visitor::new(&stack);
    let form = bob.get(&link).await;
    let weak = bob
        .submit(&form, &link, &[("password", "1234567890")])
        .await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("most common passwords"), "{}", weak.body);
    let strong = bob
        .submit(&form, &link, &[("password", NEW_PASSWORD)])
        .await;
    assert_eq!(strong.location.as_deref(), Some("/"), "{}", strong.body);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_and_removing_a_member_are_confirmed_first_and_a_sole_owner_is_offered_nothing_that_fails()
 {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;

    // The key's button opens a confirmation page; only its form revokes.
    let keys = alice.get("/keys").await;
    let revoke = keys.row_actions("default ingest", "/keys/")[0].clone();
    assert!(
        keys.body
            .contains(&format!("<form method=\"get\" action=\"{revoke}\""))
    );
    let confirm = alice.get(&revoke).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm
            .body
            .contains("Revoke the key \u{201c}default ingest\u{201d}?")
    );
    assert!(
        confirm
            .body
            .contains(&format!("<form method=\"post\" action=\"{revoke}\""))
    );
    assert!(confirm.body.contains("href=\"/keys\">Cancel"));
    assert!(
        !alice.get("/keys").await.body.contains("revoked"),
        "nothing revoked yet"
    );
    let revoked = alice.submit(&confirm, &revoke, &[]).await;
    assert_eq!(revoked.location.as_deref(), Some("/keys"));
    assert!(alice.get("/keys").await.body.contains("revoked"));
    // A revoked key has nothing left to confirm.
    assert_eq!(alice.get(&revoke).await.status, 404);

    // Alice is the only owner: no role to change, no leaving, and the server says why
    // if asked anyway.
    let members = alice.get("/members").await;
    let alice_id = members.member_id("alice@acme.io");
    assert!(members.row_actions("alice@acme.io", "/members/").is_empty());
    assert!(members.body.contains("only owner"));
    let sole = alice.get(&format!("/members/{alice_id}/remove")).await;
    assert_eq!(sole.status, 409);
    assert!(sole.body.contains("An organisation needs an owner"));

    // Bob joins; removing him is confirmed first.
    let invited = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "bob@acme.io"), ("role", "member")],
        )
        .await;
    let link = invited.invitation_path();
    let mut bob = Visitor::new(&stack);
    let form = bob.get(&link).await;
    bob.submit(&form, &link, &[("password", NEW_PASSWORD)])
        .await;
    let members = alice.get("/members").await;
    let bob_id = members.member_id("bob@acme.io");
    let bob_actions = members.row_actions("bob@acme.io", "/members/");
    assert_eq!(
        bob_actions,
        [
            format!("/members/{bob_id}/role"),
            format!("/members/{bob_id}/remove")
        ]
    );
    let confirm = alice.get(&format!("/members/{bob_id}/remove")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Remove bob@acme.io from Acme?"));
    assert_eq!(bob.get("/keys").await.status, 200, "not removed yet");
    // Bob may leave himself, confirmed as well.
    let leave = bob.get(&format!("/members/{bob_id}/remove")).await;
    assert!(leave.body.contains("Leave Acme?"), "{}", leave.body);
    // Bob, a member, is not offered removing Alice.
    assert_eq!(
        bob.get(&format!("/members/{alice_id}/remove")).await.status,
        403
    );

    // With a second owner, both owners are offered role changes and leaving again.
    alice
        .submit(
            &members,
            &format!("/members/{bob_id}/role"),
            &[("role", "owner")],
        )
        .await;
    let members = alice.get("/members").await;
    assert_eq!(members.row_actions("alice@acme.io", "/members/").len(), 2);
    assert!(!members.body.contains("only owner"));
    let removed = alice
        .submit(&confirm, &format!("/members/{bob_id}/remove"), &[])
        .await;
    assert_eq!(removed.location.as_deref(), Some("/members"));
    assert_eq!(
        bob.get("/keys").await.location.as_deref(),
        Some("/login?notice=removed")
    );
    stack.stop().await;
}

/// Rows of `tenant` in every PostgreSQL table with a `tenant_id` column, and in
/// `tenants`; the erasure record (which holds only the id, for the sweep) is left out.
async fn postgres_rows(stack: &Stack, tenant: TenantId) -> BTreeMap<String, i64> {
    let pool = stack.ns.accounts.pool();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name = 'tenant_id' \
         AND table_name <> 'tenant_erasures' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() >= 14, "{tables:?}");
    let mut rows = BTreeMap::new();
    for table in tables {
        // The names come from the catalogue of the database itself.
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(tenant.as_uuid())
        .fetch_one(pool)
        .await
        .unwrap();
        rows.insert(table, count);
    }
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE id = $1")
        .bind(tenant.as_uuid())
        .fetch_one(pool)
        .await
        .unwrap();
    rows.insert("tenants".to_owned(), tenants);
    rows
}

/// Rows of `tenant` in every ClickHouse table of tenant data.
async fn clickhouse_rows(stack: &Stack, tenant: TenantId) -> BTreeMap<&'static str, u64> {
    let mut rows = BTreeMap::new();
    for table in TENANT_TABLES {
        let count = stack
            .clickhouse_sql(&format!(
                "SELECT count() FROM {table} WHERE tenant_id = toUUID('{tenant}')"
            ))
            .await;
        rows.insert(table, count.trim().parse().unwrap());
    }
    rows
}

/// An organisation with data in every table: an owner (Visitor), a viewer, an open
/// invitation, keys, spans and logs, an alert rule that fired with its delivery.
struct Organisation {
    owner: Visitor,
    tenant: TenantId,
    ingest_key: String,
    read_key: String,
}

async fn organisation(stack: &Stack, email: &str, name: &str) -> Organisation {
    let mut owner = Visitor::new(stack);
    let setup = owner.sign_up(email, name).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let ingest_key = setup.shown("new-key");
    let user = stack
        .ns
        .accounts
        .user_by_email(email)
        .await
        .unwrap()
        .unwrap();
    let tenant = TenantId::new(stack.ns.accounts.memberships(user.id).await.unwrap()[0].tenant_id);
    let read_key = stack
        .ns
        .accounts
        .create_api_key(tenant, "read", KeyScope::Read)
        .await
        .unwrap()
        .secret;
    let write_key = stack
        .ns
        .accounts
        .create_api_key(tenant, "write", KeyScope::Write)
        .await
        .unwrap()
        .secret;
    let members = owner.get("/members").await;
    let domain = email.split('@').nth(1).unwrap();
    owner
        .submit(
            &members,
            "/members/invite",
            &[("email", &format!("later@{domain}")), ("role", "viewer")],
        )
        .await;

    // Spans, with a slow one an alert rule fires on, and log lines.
    let (traces, trace_id) = trace_request(3);
    assert_eq!(stack.export(&ingest_key, &traces).await, 200);
    stack.wait_for_trace(&read_key, &trace_id, 3).await;
    // A call from raw-client to billing, for a service edge.
    let call: [u8; 16] = random_id();
    let mut caller = span(&call, "charge");
    caller.kind = 3;
    let mut callee = span(&call, "POST /charge");
    callee.parent_span_id = caller.span_id.clone();
    let mut calls = request(vec![caller]);
    let mut billing = request(vec![callee]).resource_spans.remove(0);
    billing.resource.as_mut().unwrap().attributes =
        vec![string_attribute("service.name", "billing")];
    calls.resource_spans.push(billing);
    assert_eq!(stack.export(&ingest_key, &calls).await, 200);
    let channel = api(stack, "/api/v1/alerts/channels", &write_key, json!({
        "name": "hook", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/unreachable", "secret": "s3cret-s3cret-s3cret"}
    }))
    .await;
    // `request` names every span's service so.
    let service = "raw-client";
    api(stack, "/api/v1/alerts/rules", &write_key, json!({
        "name": "slow", "condition": {"kind": "span_duration", "service": service, "operation": "slow op", "threshold_ms": 1, "window_seconds": 60},
        "channels": [channel]
    }))
    .await;
    let trace: [u8; 16] = random_id();
    let mut slow = span(&trace, "slow op");
    slow.end_time_unix_nano = slow.start_time_unix_nano + 50_000_000;
    let slow_request = request(vec![slow]);
    let log_line = format!(
        "{{\"time\":{},\"level\":\"info\",\"msg\":\"hello from {name}\",\"service\":\"{service}\"}}\n",
        now_ns() / 1_000_000
    );
    let logged = stack
        .http
        .post(stack.ingest_url("/v1/logs/json"))
        .header("x-api-key", &ingest_key)
        .body(log_line)
        .send()
        .await
        .unwrap();
    assert_eq!(logged.status(), 200);
    eventually(
        &format!("{name}'s alert to fire and be delivered"),
        Duration::from_secs(60),
        || async {
            assert_eq!(stack.export(&ingest_key, &slow_request).await, 200);
            let rows = postgres_rows(stack, tenant).await;
            (rows["alert_events"] > 0 && rows["alert_deliveries"] > 0 && rows["usage_daily"] > 0)
                .then_some(())
        },
    )
    .await;
    eventually(
        &format!("{name}'s rows in every ClickHouse table"),
        Duration::from_secs(30),
        || async {
            clickhouse_rows(stack, tenant)
                .await
                .values()
                .all(|&n| n > 0)
                .then_some(())
        },
    )
    .await;
    Organisation {
        owner,
        tenant,
        ingest_key,
        read_key,
    }
}

async fn api(stack: &Stack, path: &str, key: &str, body: Value) -> String {
    let response = stack
        .http
        .post(stack.query_url(path))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{path}: {body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_organisation_removes_every_row_and_span_of_it_and_nothing_of_another() {
    // Keys are trusted for a minute: only the revocation announcement can make ingest
    // refuse them at once.
    let options = StackOptions {
        key_cache_ttl: Duration::from_secs(60),
        ..StackOptions::default()
    };
    let stack = Stack::start_with(weft_e2e::Namespace::create().await, options).await;
    let mut acme = organisation(&stack, "alice@acme.io", "Acme").await;
    let globex = organisation(&stack, "hank@globex.io", "Globex").await;
    // Every span sent is stored before the counts are taken.
    let bus = weft_bus::Bus::connect(stack.ns.bus.clone()).await.unwrap();
    eventually(
        "the sampler to store every span",
        Duration::from_secs(30),
        || async { (weft_e2e::sampler_backlog(&bus).await == (0, 0)).then_some(()) },
    )
    .await;
    let acme_before = postgres_rows(&stack, acme.tenant).await;
    let globex_before = postgres_rows(&stack, globex.tenant).await;
    let globex_spans = clickhouse_rows(&stack, globex.tenant).await;
    for table in [
        "tenants",
        "memberships",
        "api_keys",
        "sessions",
        "invitations",
        "usage_daily",
        "alert_rules",
        "alert_channels",
        "alert_rule_channels",
        "alert_states",
        "alert_events",
        "alert_deliveries",
    ] {
        assert!(
            acme_before[table] > 0,
            "Acme has rows in {table}: {acme_before:?}"
        );
    }
    // Alice also belongs to Globex, as a viewer: her account outlives Acme.
    let mut hank = globex.owner;
    let members = hank.get("/members").await;
    let invited = hank
        .submit(
            &members,
            "/members/invite",
            &[("email", "alice@acme.io"), ("role", "admin")],
        )
        .await;
    let link = invited.invitation_path();
    let mut alice_at_globex = Visitor::new(&stack);
    let form = alice_at_globex.get(&link).await;
    alice_at_globex
        .submit(&form, &link, &[("password", PASSWORD)])
        .await;
    let globex_before = {
        let mut rows = globex_before;
        *rows.get_mut("memberships").unwrap() += 1;
        *rows.get_mut("sessions").unwrap() += 1;
        rows
    };

    // Only owners are offered and allowed it: Alice, an admin of Globex, is not.
    assert_eq!(
        alice_at_globex.get("/organisation/delete").await.status,
        403
    );
    let account = alice_at_globex.get("/account").await;
    assert!(!account.body.contains("/organisation/delete"));
    let refused = alice_at_globex
        .submit(&account, "/organisation/delete", &[("name", "Globex")])
        .await;
    assert_eq!(refused.status, 403);
    // The name must be typed exactly.
    let account = acme.owner.get("/account").await;
    assert!(account.body.contains("href=\"/organisation/delete\""));
    let page = acme.owner.get("/organisation/delete").await;
    assert_eq!(page.status, 200);
    for typed in ["", "acme", "Globex", "Acme Inc"] {
        let wrong = acme
            .owner
            .submit(&page, "/organisation/delete", &[("name", typed)])
            .await;
        assert_eq!(wrong.status, 400, "{typed:?}");
        assert!(wrong.body.contains("exactly as shown"), "{typed:?}");
    }
    assert_eq!(
        postgres_rows(&stack, acme.tenant).await,
        acme_before,
        "nothing deleted yet"
    );

    let deleted = acme
        .owner
        .submit(&page, "/organisation/delete", &[("name", "Acme")])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    // Alice goes on in Globex, her other organisation.
    assert_eq!(deleted.location.as_deref(), Some("/"));
    let home = acme.owner.get("/keys").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Globex") && !home.body.contains("Acme"));

    // Its keys are refused at once, well within the minute they are cached for.
    eventually(
        "ingest to refuse Acme's key",
        Duration::from_secs(3),
        || async {
            (stack.export(&acme.ingest_key, &trace_request(1).0).await == 401).then_some(())
        },
    )
    .await;
    eventually(
        "query to refuse Acme's read key",
        Duration::from_secs(3),
        || async {
            (stack.query_get("/api/v1/services", &acme.read_key).await.0 == 401).then_some(())
        },
    )
    .await;

    // No row of Acme is left in PostgreSQL; Globex has every row it had.
    // Usage counted at ingest before the deletion and flushed after it is dropped, not
    // refused (and kept, and retried) for ever.
    let late_usage = weft_storage::postgres::UsageDay {
        day: chrono::Utc::now().date_naive(),
        spans_received: 1,
        spans_accepted: 1,
        log_records_received: 1,
        log_records_accepted: 1,
        log_bytes_accepted: 100,
        ..Default::default()
    };
    stack
        .ns
        .accounts
        .add_usage(acme.tenant, late_usage)
        .await
        .unwrap();
    let acme_after = postgres_rows(&stack, acme.tenant).await;
    assert!(acme_after.values().all(|&n| n == 0), "{acme_after:?}");
    // (Alerting may add events and deliveries of Globex meanwhile; none is removed.)
    let globex_after = postgres_rows(&stack, globex.tenant).await;
    for (table, before) in &globex_before {
        assert!(
            globex_after[table] >= *before,
            "Globex lost rows of {table}: {globex_after:?}"
        );
    }
    // ClickHouse applies the deletes in the background.
    eventually(
        "Acme's ClickHouse rows to be erased",
        Duration::from_secs(60),
        || async {
            let rows = clickhouse_rows(&stack, acme.tenant).await;
            rows.values().all(|&n| n == 0).then_some(())
        },
    )
    .await;
    // Span metrics and edges are summed by merges, so only theirs may shrink, never to 0.
    let globex_after = clickhouse_rows(&stack, globex.tenant).await;
    for table in ["spans", "trace_index", "logs"] {
        assert_eq!(globex_after[table], globex_spans[table], "{table}");
    }
    assert!(globex_after.values().all(|&n| n > 0), "{globex_after:?}");
    let (status, _) = stack.query_get("/api/v1/services", &globex.read_key).await;
    assert_eq!(status, 200);

    // Hank deletes Globex: his account and Alice's belonged to nothing else now, and go
    // with it.
    let page = hank.get("/organisation/delete").await;
    let gone = hank
        .submit(&page, "/organisation/delete", &[("name", "Globex")])
        .await;
    assert_eq!(
        gone.location.as_deref(),
        Some("/login?notice=organisation-deleted")
    );
    assert!(
        hank.get("/login?notice=organisation-deleted")
            .await
            .body
            .contains("and so is your account")
    );
    for email in ["hank@globex.io", "alice@acme.io"] {
        assert!(
            stack
                .ns
                .accounts
                .user_by_email(email)
                .await
                .unwrap()
                .is_none(),
            "{email}"
        );
    }
    // The email may sign up again.
    assert_eq!(
        Visitor::new(&stack)
            .sign_up("hank@globex.io", "Globex 2")
            .await
            .status,
        200
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_a_deleted_organisation_stored_late_are_swept_too() {
    let mut stack = Stack::start().await;
    // A replica that sweeps every 200 ms, as every replica does every minute.
    let sweeping = stack
        .start_query_with(|config| config.erasure_sweep_interval = Duration::from_millis(200))
        .await;
    stack.query = stack.keep(sweeping);
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;
    let user = stack
        .ns
        .accounts
        .user_by_email("alice@acme.io")
        .await
        .unwrap()
        .unwrap();
    let tenant = stack.ns.accounts.memberships(user.id).await.unwrap()[0].tenant_id;
    let page = alice.get("/organisation/delete").await;
    let deleted = alice
        .submit(&page, "/organisation/delete", &[("name", "Acme")])
        .await;
    assert_eq!(deleted.status, 303);

    // A log line of Acme stored after the deletion, as a sampler still draining the bus
    // would store it.
    let late = format!(
        "INSERT INTO logs (tenant_id, time, time_unix_nano, body) \
         VALUES (toUUID('{tenant}'), now(), {}, 'stored late')",
        now_ns()
    );
    stack.clickhouse_sql(&late).await;
    let count = format!("SELECT count() FROM logs WHERE tenant_id = toUUID('{tenant}')");
    assert_eq!(stack.clickhouse_sql(&count).await.trim(), "1");
    eventually(
        "the sweep to erase the late line",
        Duration::from_secs(30),
        || async { (stack.clickhouse_sql(&count).await.trim() == "0").then_some(()) },
    )
    .await;
    stack.stop().await;
}
