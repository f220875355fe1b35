//! Members and roles as a team uses them: invitations for new and existing accounts,
//! role changes within the rules (admins never touch owners, an organisation keeps an
//! owner), viewers refused everything that needs an admin, switching organisation,
//! removal and leaving ending access at once.

use weft_e2e::Stack;
use weft_e2e::web::{PASSWORD, Visitor};

async fn invite(visitor: &mut Visitor, email: &str, role: &str) -> String {
    let members = visitor.get("/members").await;
    let invited = visitor
        .submit(
            &members,
            "/members/invite",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    invited.invitation_path()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_invites_members_and_manages_their_roles() {
    let stack = Stack::start().await;
    let mut alice = Visitor::new(&stack);
    assert_eq!(alice.sign_up("alice@acme.io", "Acme").await.status, 200);

    // Bad invitations are refused with a readable message.
    let members = alice.get("/members").await;
    assert!(members.body.contains("alice@acme.io") && members.body.contains("(you)"));
    let bad_email = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "bob at acme"), ("role", "viewer")],
        )
        .await;
    assert_eq!(bad_email.status, 400);
    assert!(
        bad_email
            .body
            .contains("Enter a valid email address to invite.")
    );
    let bad_role = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "bob@acme.io"), ("role", "superuser")],
        )
        .await;
    assert_eq!(bad_role.status, 400);
    assert!(
        bad_role
            .body
            .contains("Choose the role owner, admin, member or viewer.")
    );
    let self_invite = alice
        .submit(
            &members,
            "/members/invite",
            &[("email", "ALICE@acme.io"), ("role", "viewer")],
        )
        .await;
    assert_eq!(self_invite.status, 409);
    assert!(self_invite.body.contains("already a member"));

    // Bob has no account: the invitation creates it, as a viewer of Acme.
    let bob_link = invite(&mut alice, "bob@acme.io", "viewer").await;
    assert!(alice.get("/members").await.body.contains("bob@acme.io"));
    let mut bob = Visitor::new(&stack);
    let form = bob.get(&bob_link).await;
    assert!(form.body.contains("Join Acme") && form.body.contains("Choose a password"));
    let weak = bob.submit(&form, &bob_link, &[("password", "short")]).await;
    assert_eq!(weak.status, 400);
    assert!(weak.body.contains("at least 10 characters"));
    let joined = bob
        .submit(&form, &bob_link, &[("password", PASSWORD)])
        .await;
    assert_eq!(
        (joined.status, joined.location.as_deref()),
        (303, Some("/"))
    );
    // A viewer cannot send data: the set-up page sends them to the traces.
    let home = bob.get("/").await;
    assert_eq!(home.location.as_deref(), Some("/traces"));
    let home = bob.get("/traces").await;
    assert!(home.body.contains("<span class=\"role\">viewer</span>"));
    assert!(home.body.contains("Acme"));
    let used = Visitor::new(&stack).get(&bob_link).await;
    assert_eq!(used.status, 404);
    assert!(used.body.contains("This invitation is not valid"));

    // A viewer reads but changes nothing.
    let bob_members = bob.get("/members").await;
    assert_eq!(bob_members.status, 200);
    assert!(!bob_members.body.contains("action=\"/members/invite\""));
    assert!(!bob_members.body.contains("<select name=\"role\""));
    let alice_id = alice.get("/members").await.member_id("alice@acme.io");
    let bob_id = alice.get("/members").await.member_id("bob@acme.io");
    let pending = invite(&mut alice, "dave@acme.io", "member").await;
    let invitation_revoke = alice.get("/members").await.actions("/invitations/")[0].clone();
    let bob_keys = bob.get("/keys").await;
    assert!(bob_keys.body.contains("default ingest") && !bob_keys.body.contains("Create a key"));
    let alice_role = format!("/members/{alice_id}/role");
    let alice_remove = format!("/members/{alice_id}/remove");
    // (tenant_isolation tries every other admin action as a viewer.)
    let refused = bob
        .submit(&bob_members, &alice_role, &[("role", "viewer")])
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("Not allowed"));

    // Alice makes Bob an admin: he manages keys and members, but not owners.
    let members = alice.get("/members").await;
    let promoted = alice
        .submit(
            &members,
            &format!("/members/{bob_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(promoted.location.as_deref(), Some("/members"));
    let bob_members = bob.get("/members").await;
    assert!(
        bob_members
            .body
            .contains("<span class=\"role\">admin</span>")
    );
    let created = bob
        .submit(
            &bob_members,
            "/keys",
            &[("name", "bob's reader"), ("scope", "read")],
        )
        .await;
    assert_eq!(created.status, 200);
    for (action, role) in [
        (format!("/members/{bob_id}/role"), "owner"),
        (alice_role.clone(), "member"),
    ] {
        let refused = bob.submit(&bob_members, &action, &[("role", role)]).await;
        assert_eq!(refused.status, 403, "admin may not {action} -> {role}");
    }
    assert_eq!(
        bob.submit(&bob_members, &alice_remove, &[]).await.status,
        403
    );
    let owner_invite = bob
        .submit(
            &bob_members,
            "/members/invite",
            &[("email", "eve@acme.io"), ("role", "owner")],
        )
        .await;
    assert_eq!(owner_invite.status, 403);
    assert!(
        !bob_members
            .body
            .contains(&format!("action=\"{alice_role}\"")),
        "an admin is offered no change to an owner"
    );
    // ... and revokes the open invitation.
    assert_eq!(
        bob.submit(&bob_members, &invitation_revoke, &[])
            .await
            .status,
        303
    );
    assert_eq!(Visitor::new(&stack).get(&pending).await.status, 404);

    // The last owner can neither step down nor leave.
    let members = alice.get("/members").await;
    for (action, fields) in [
        (alice_role.as_str(), vec![("role", "admin")]),
        (alice_remove.as_str(), vec![]),
    ] {
        let refused = alice.submit(&members, action, &fields).await;
        assert_eq!(refused.status, 409, "{action}");
        assert!(refused.body.contains("An organisation needs an owner."));
    }
    let bad_role = alice
        .submit(
            &members,
            &format!("/members/{bob_id}/role"),
            &[("role", "boss")],
        )
        .await;
    assert_eq!(bad_role.status, 400);

    // With Bob as a second owner Alice may step down to admin.
    alice
        .submit(
            &members,
            &format!("/members/{bob_id}/role"),
            &[("role", "owner")],
        )
        .await;
    let stepped_down = alice
        .submit(&members, &alice_role, &[("role", "admin")])
        .await;
    assert_eq!(stepped_down.location.as_deref(), Some("/members"));
    assert!(
        alice
            .get("/")
            .await
            .body
            .contains("<span class=\"role\">admin</span>")
    );

    // Carol already has an account in her own organisation: she logs in to accept, then
    // switches between the two.
    let mut carol = Visitor::new(&stack);
    carol.sign_up("carol@carol.co", "Carol Co").await;
    let carol_link = invite(&mut alice, "carol@carol.co", "member").await;
    let form = carol.get(&carol_link).await;
    assert!(form.body.contains("Your password"));
    let wrong = carol
        .submit(&form, &carol_link, &[("password", "not my password")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong email or password."));
    let joined = carol
        .submit(&form, &carol_link, &[("password", PASSWORD)])
        .await;
    assert_eq!(joined.location.as_deref(), Some("/"));
    let home = carol.get("/").await;
    assert!(home.body.contains("action=\"/switch\""), "a switcher");
    let acme_option = home
        .body
        .split("<option ")
        .find(|option| option.contains("selected") && option.contains("Acme"))
        .expect("Acme is the current organisation");
    let acme_id = acme_option.split('"').nth(1).unwrap().to_owned();
    let carol_co_id = home
        .body
        .split("<option ")
        .find(|option| option.contains("Carol Co"))
        .and_then(|option| option.split('"').nth(1))
        .unwrap()
        .to_owned();
    assert!(home.body.contains("<span class=\"role\">member</span>"));
    let switched = carol
        .submit(&home, "/switch", &[("organisation", &carol_co_id)])
        .await;
    assert_eq!(switched.location.as_deref(), Some("/"));
    let home = carol.get("/").await;
    assert!(home.body.contains("<span class=\"role\">owner</span>"));
    let carol_keys = carol.get("/keys").await;
    assert!(
        !carol_keys.body.contains("bob&#39;s reader") && !carol_keys.body.contains("bob's reader")
    );
    for bogus in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let refused = carol
            .submit(&home, "/switch", &[("organisation", bogus)])
            .await;
        assert_eq!(refused.status, 404, "{bogus}");
    }
    let mut mallory = Visitor::new(&stack);
    let mallory_home = mallory.sign_up("mallory@evil.io", "Evil").await;
    let refused = mallory
        .submit(&mallory_home, "/switch", &[("organisation", &acme_id)])
        .await;
    assert_eq!(
        refused.status, 404,
        "no switching into a stranger's organisation"
    );

    // Removing Carol from Acme ends her access there at once.
    carol
        .submit(&home, "/switch", &[("organisation", &acme_id)])
        .await;
    assert_eq!(carol.get("/members").await.status, 200);
    let members = bob.get("/members").await;
    let removed = bob
        .submit(
            &members,
            &format!("/members/{}/remove", members.member_id("carol@carol.co")),
            &[],
        )
        .await;
    assert_eq!(removed.location.as_deref(), Some("/members"));
    assert_eq!(
        carol.get("/members").await.location.as_deref(),
        Some("/login?notice=removed")
    );
    let back = carol.log_in("carol@carol.co", PASSWORD).await;
    assert_eq!(back.location.as_deref(), Some("/"));
    assert!(carol.get("/").await.body.contains("Carol Co"));

    // Alice leaves: her only organisation, so she is logged out.
    let members = alice.get("/members").await;
    assert!(members.body.contains(">Leave…</button>"));
    let left = alice
        .submit(&members, &format!("/members/{alice_id}/remove"), &[])
        .await;
    assert_eq!(left.location.as_deref(), Some("/login?notice=left"));
    assert!(!bob.get("/members").await.body.contains("alice@acme.io"));
    let again = alice.log_in("alice@acme.io", PASSWORD).await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("belongs to no organisation"));
    stack.stop().await;
}
