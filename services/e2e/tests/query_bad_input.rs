//! Bad input on the dashboard's forms and sessions: empty and overlong fields, wrong
//! values, script tags (escaped on output), CSRF tokens missing, forged or replayed from
//! another session, forged and expired session tokens, and bodies that are not forms.
//! Each gets a clear answer and the service keeps serving.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use weft_e2e::Stack;
use weft_e2e::web::{PASSWORD, Visitor};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_and_sessions_refuse_bad_input_clearly() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    alice.sign_up("alice@acme.io", "Acme").await;

    // Fields: empty, too long, unknown values.
    let keys = alice.get("/keys").await;
    let long_name = "k".repeat(201);
    for (fields, message) in [
        (
            vec![("name", ""), ("scope", "read")],
            "at most 200 characters",
        ),
        (
            vec![("name", "   "), ("scope", "read")],
            "at most 200 characters",
        ),
        (
            vec![("name", long_name.as_str()), ("scope", "read")],
            "at most 200 characters",
        ),
        (
            vec![("name", "x")],
            "Choose the scope ingest, read or write.",
        ),
        (
            vec![("name", "x"), ("scope", "42")],
            "Choose the scope ingest, read or write.",
        ),
    ] {
        let page = alice.submit(&keys, "/keys", &fields).await;
        assert_eq!(page.status, 400, "{fields:?}");
        assert!(page.body.contains(message), "{fields:?}: {}", page.body);
    }
    let members = alice.get("/members").await;
    let long_email = format!("{}@acme.io", "a".repeat(320));
    for (fields, message) in [
        (
            vec![("email", ""), ("role", "member")],
            "Enter a valid email address",
        ),
        (
            vec![("email", long_email.as_str()), ("role", "member")],
            "Enter a valid email address",
        ),
        (vec![("email", "x@acme.io")], "Choose the role"),
        (
            vec![("email", "x@acme.io"), ("role", "ADMIN")],
            "Choose the role",
        ),
    ] {
        let page = alice.submit(&members, "/members/invite", &fields).await;
        assert_eq!(page.status, 400, "{fields:?}");
        assert!(page.body.contains(message), "{fields:?}: {}", page.body);
    }
    let bad_login = alice.log_in("", "").await;
    assert_eq!(bad_login.status, 400);
    assert!(bad_login.body.contains("Enter your email and password."));

    // Script tags are shown as text, wherever they come back.
    let script = "<script>alert(1)</script>";
    let created = alice
        .submit(&keys, "/keys", &[("name", script), ("scope", "read")])
        .await;
    assert_eq!(created.status, 200);
    let invited = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", &format!("{script}@acme.io")), ("role", "viewer")],
        )
        .await;
    assert_eq!(invited.status, 200);
    for page in [alice.get("/keys").await, alice.get("/members").await] {
        assert!(!page.body.contains(script), "{}", page.body);
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
        );
    }

    // CSRF: missing, forged, from another user's session, or from an earlier session of
    // the same user are all refused, and nothing happens.
    let mut bob = Visitor::new(&stack);
    let bob_page = bob.sign_up("bob@bob.io", "Bob").await;
    let earlier = alice.get("/keys").await;
    let out = alice.submit(&earlier, "/logout", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/login?notice=logged-out"));
    assert_eq!(alice.log_in("alice@acme.io", PASSWORD).await.status, 303);
    for csrf in [
        String::new(),
        "00".repeat(32),
        bob_page.csrf(),
        earlier.csrf(),
    ] {
        let page = alice
            .post(
                "/keys",
                &[("csrf", &csrf), ("name", "csrf"), ("scope", "read")],
            )
            .await;
        assert_eq!(page.status, 403, "csrf {csrf:?}");
        assert!(page.body.contains("This form has expired"));
    }
    let login_form = Visitor::new(&stack).get("/login").await;
    let replayed_pre_session = alice
        .post(
            "/login",
            &[
                ("csrf", &login_form.csrf()),
                ("email", "alice@acme.io"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        replayed_pre_session.status, 403,
        "bound to another visitor's cookie"
    );
    assert!(!alice.get("/keys").await.body.contains(">csrf<"));

    // Session tokens: expired, signed with another secret, unsigned, or garbage.
    let session = alice.cookies["weft_session"].clone();
    let payload = session.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let sign = |claims: &serde_json::Value, secret: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let mut expired_claims = claims.clone();
    expired_claims["iat"] = json!(now() - 7200);
    expired_claims["exp"] = json!(now() - 3600);
    let expired = sign(&expired_claims, stack.session_secret().as_bytes());
    let foreign = sign(&claims, b"another secret of at least 32 bytes!");
    let unsigned = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    for (token, target) in [
        (expired, "/login?notice=expired"),
        (foreign, "/login"),
        (unsigned, "/login"),
        ("garbage".to_owned(), "/login"),
    ] {
        let mut visitor = Visitor::new(&stack);
        visitor.cookies.insert("weft_session".into(), token.clone());
        let page = visitor.get("/keys").await;
        assert_eq!(page.location.as_deref(), Some(target), "{token}");
        assert!(
            !visitor.cookies.contains_key("weft_session"),
            "the bad cookie is cleared"
        );
    }
    let notice = Visitor::new(&stack).get("/login?notice=expired").await;
    assert!(notice.body.contains("Your session expired. Log in again."));

    // Bodies that are not forms get a clear 4xx, and the service goes on.
    let response = stack
        .http
        .post(stack.query_url("/keys"))
        .header("cookie", format!("weft_session={session}"))
        .json(&json!({"name": "json", "scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = stack
        .http
        .post(stack.query_url("/signup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 3 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(alice.get("/keys").await.status, 200);
    stack.stop().await;
}
