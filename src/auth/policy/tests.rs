use super::*;

fn actor(is_admin: bool, teams: &[(Uuid, Role)]) -> Actor {
    Actor {
        user_id: Uuid::new_v4(),
        email: "a@example.test".into(),
        name: "A".into(),
        is_admin,
        teams: teams
            .iter()
            .map(|(id, role)| TeamRole {
                team_id: *id,
                slug: TeamSlug::parse("t").unwrap(),
                role: *role,
            })
            .collect(),
    }
}

#[test]
fn every_action_for_every_role() {
    let team = Uuid::new_v4();
    let other = Uuid::new_v4();
    let member = actor(false, &[(team, Role::Member)]);
    let lead = actor(false, &[(team, Role::Lead)]);
    let admin = actor(true, &[]);
    let outsider = actor(false, &[]);
    let someone = Uuid::new_v4();
    // (action, member, lead, admin, outsider)
    let table = [
        (Action::ViewTeams, true, true, true, true),
        (Action::ManageOwnTokens, true, true, true, true),
        (Action::ManageTeams, false, false, true, false),
        (
            Action::ManageMembers { team_id: team },
            false,
            true,
            true,
            false,
        ),
        (
            Action::ManageMembers { team_id: other },
            false,
            false,
            true,
            false,
        ),
        (Action::ViewUsers, false, false, true, false),
        (
            Action::RevokeSessions { user_id: someone },
            false,
            false,
            true,
            false,
        ),
        (Action::ViewAudit, false, false, true, false),
        (Action::ViewOutbox, false, false, true, false),
        (Action::ViewAddressPlan, true, true, true, true),
        (Action::Allocate, true, true, true, true),
        (Action::ManageAddressPlan, false, false, true, false),
        (Action::ReleaseNetworkPrefix, false, false, true, false),
        (Action::ManageProviderAccounts, false, false, true, false),
        (Action::ManageGuardrails, false, false, true, false),
        (Action::ViewNetworks, true, true, true, true),
        (
            Action::ManageNetworks { team_id: team },
            true,
            true,
            true,
            false,
        ),
        (
            Action::ManageNetworks { team_id: other },
            false,
            false,
            true,
            false,
        ),
        (
            Action::Release {
                allocated_by: Some(someone),
            },
            false,
            false,
            true,
            false,
        ),
    ];
    for (action, m, l, a, o) in table {
        assert_eq!(member.can(action), m, "member {action:?}");
        assert_eq!(lead.can(action), l, "lead {action:?}");
        assert_eq!(admin.can(action), a, "admin {action:?}");
        assert_eq!(outsider.can(action), o, "outsider {action:?}");
    }
    assert!(member.can(Action::RevokeSessions {
        user_id: member.user_id
    }));
    assert_eq!(
        outsider.require(Action::ViewAudit).unwrap_err().to_string(),
        "only an admin may do that"
    );
}

fn sides(a: Uuid, b: Uuid, decided_a: bool) -> Vec<SideFacts> {
    vec![
        SideFacts {
            team_id: a,
            team: "payments".into(),
            decided: decided_a,
            requester_member: true,
        },
        SideFacts {
            team_id: b,
            team: "search".into(),
            decided: false,
            requester_member: false,
        },
    ]
}

#[test]
fn connection_actions_follow_role_and_status() {
    use ConnectionAction as A;
    let (pay, search) = (Uuid::new_v4(), Uuid::new_v4());
    let requester = actor(false, &[(pay, Role::Member)]);
    let pay_lead = actor(false, &[(pay, Role::Lead)]);
    let search_member = actor(false, &[(search, Role::Member)]);
    let admin = actor(true, &[]);
    let outsider = actor(false, &[(Uuid::new_v4(), Role::Lead)]);
    let sides = sides(pay, search, false);
    let facts = |status| ConnectionFacts {
        requested_by: requester.user_id,
        status,
        sides: &sides,
    };
    let code = |r: Result<Permit<ConnectionAction>, Error>| match r {
        Ok(_) => 200,
        Err(Error::NotFound(_)) => 404,
        Err(Error::Forbidden(_)) => 403,
        Err(Error::Conflict(_)) => 409,
        Err(other) => panic!("{other}"),
    };
    // (action, status, requester, payments lead, search member, admin, outsider)
    let table = [
        (A::See, Status::Active, 200, 200, 200, 200, 404),
        (A::Approve, Status::PendingApproval, 403, 200, 403, 403, 404),
        (A::Approve, Status::Active, 403, 409, 403, 403, 404),
        (A::Reject, Status::PendingApproval, 403, 200, 403, 403, 404),
        (A::Cancel, Status::PendingApproval, 200, 403, 403, 200, 404),
        (A::Cancel, Status::Active, 409, 403, 403, 409, 404),
        (A::Remove, Status::Active, 200, 200, 403, 200, 404),
        (A::Remove, Status::PendingApproval, 409, 409, 403, 409, 404),
        (A::Retry, Status::Failed, 403, 200, 403, 200, 404),
        (A::Retry, Status::Active, 403, 409, 403, 409, 404),
        (A::Repair, Status::Drifted, 403, 200, 403, 200, 404),
        (A::Repair, Status::PendingApproval, 403, 409, 403, 409, 404),
        (A::SetRepairMode, Status::Active, 403, 200, 403, 200, 404),
        (A::SetRepairMode, Status::Deleted, 403, 409, 403, 409, 404),
        // Renewals: who may ask, and the requester's lead (payments) decides.
        (A::Renew, Status::Active, 200, 200, 403, 200, 404),
        (A::DecideRenewal, Status::Active, 403, 200, 403, 200, 404),
        // Changes: asked while active; decided by a lead of a side only.
        (A::Change, Status::Active, 200, 200, 403, 200, 404),
        (A::Change, Status::Drifted, 409, 409, 403, 409, 404),
        (A::DecideChange, Status::Active, 403, 200, 403, 403, 404),
    ];
    for (action, status, r, l, m, a, o) in table {
        let f = facts(status);
        assert_eq!(
            code(requester.may(action, &f)),
            r,
            "requester {action:?} {status:?}"
        );
        assert_eq!(
            code(pay_lead.may(action, &f)),
            l,
            "lead {action:?} {status:?}"
        );
        assert_eq!(
            code(search_member.may(action, &f)),
            m,
            "member {action:?} {status:?}"
        );
        assert_eq!(
            code(admin.may(action, &f)),
            a,
            "admin {action:?} {status:?}"
        );
        assert_eq!(
            code(outsider.may(action, &f)),
            o,
            "outsider {action:?} {status:?}"
        );
    }
}

#[test]
fn refusals_say_who_may() {
    let (pay, search) = (Uuid::new_v4(), Uuid::new_v4());
    let lead_of_both = actor(false, &[(pay, Role::Lead), (search, Role::Lead)]);
    let member = actor(false, &[(search, Role::Member)]);
    let sides = sides(pay, search, true);
    let mine = ConnectionFacts {
        requested_by: lead_of_both.user_id,
        status: Status::PendingApproval,
        sides: &sides,
    };
    let why = lead_of_both
        .may(ConnectionAction::Approve, &mine)
        .unwrap_err()
        .to_string();
    assert!(
        why.starts_with("you requested this connection, so you cannot approve it"),
        "{why}"
    );
    // payments already decided: only search's lead is named.
    let why = member
        .may(ConnectionAction::Approve, &mine)
        .unwrap_err()
        .to_string();
    assert_eq!(why, "only a lead of search may approve it now");
    // A lead approves only the undecided sides they lead.
    let other = actor(false, &[(pay, Role::Lead), (search, Role::Lead)]);
    let permit = other.may(ConnectionAction::Approve, &mine).unwrap();
    assert_eq!(permit.teams(), [search]);
    let why = actor(false, &[])
        .may_request(&[(pay, "payments"), (search, "search")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        why,
        "only members of payments or search (or an admin) may ask for this: ask one of them to request it"
    );
    assert!(member.may_request(&[(search, "search")]).is_ok());
}
