//! The one authorization policy: may this actor do this action on this object?
//! Pure rules, no I/O; every page, API call and job asks it through
//! [`Actor::require`], which services call before they change or show anything.

use uuid::Uuid;

use crate::domain::team::{Role, TeamSlug};
use crate::error::Error;

/// One of the actor's team memberships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamRole {
    pub team_id: Uuid,
    pub slug: TeamSlug,
    pub role: Role,
}

/// Who is acting: a signed-in person, or a script with one of their tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub teams: Vec<TeamRole>,
}

/// Everything the policy decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// List teams and see a team's members (directory information).
    ViewTeams,
    /// Create or delete teams.
    ManageTeams,
    /// Add, change or remove members of one team.
    ManageMembers { team_id: Uuid },
    /// See all users and their sessions.
    ViewUsers,
    /// End every session of a user.
    RevokeSessions { user_id: Uuid },
    /// Read the audit log.
    ViewAudit,
    /// Read the development outbox (it holds everyone's mail).
    ViewOutbox,
    /// Create, list and revoke one's own API tokens.
    ManageOwnTokens,
    /// See the address plan: pools, allocations, free space.
    ViewAddressPlan,
    /// Create and change pools (the plan's structure).
    ManageAddressPlan,
    /// Take a prefix from a pool.
    Allocate,
    /// Give back a prefix someone took.
    Release { allocated_by: Option<Uuid> },
    /// Register and change provider accounts.
    ManageProviderAccounts,
    /// See networks and provider accounts.
    ViewNetworks,
    /// Create, change or delete a network of this team.
    ManageNetworks { team_id: Uuid },
}

impl Actor {
    pub fn role_in(&self, team_id: Uuid) -> Option<Role> {
        self.teams
            .iter()
            .find(|t| t.team_id == team_id)
            .map(|t| t.role)
    }

    pub fn can(&self, action: Action) -> bool {
        if self.is_admin {
            return true;
        }
        match action {
            Action::ViewTeams
            | Action::ManageOwnTokens
            | Action::ViewAddressPlan
            | Action::ViewNetworks
            | Action::Allocate => true,
            Action::ManageNetworks { team_id } => self.role_in(team_id).is_some(),
            Action::Release { allocated_by } => allocated_by == Some(self.user_id),
            Action::ManageMembers { team_id } => self.role_in(team_id) == Some(Role::Lead),
            // People may end their own sessions; only admins end other people's.
            Action::RevokeSessions { user_id } => user_id == self.user_id,
            Action::ManageTeams
            | Action::ViewUsers
            | Action::ViewAudit
            | Action::ViewOutbox
            | Action::ManageAddressPlan
            | Action::ManageProviderAccounts => false,
        }
    }

    /// `Ok` when allowed, else the 403 every handler shows the same way.
    pub fn require(&self, action: Action) -> Result<(), Error> {
        if self.can(action) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
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
            (Action::ManageProviderAccounts, false, false, true, false),
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
            Error::Forbidden.to_string()
        );
    }
}
