//! The one authorization policy: may this actor do this action on this object?
//! Pure rules, no I/O; every page, API call and job asks it through
//! [`Actor::require`], which services call before they change or show anything.

use uuid::Uuid;

use crate::domain::connection::{self, Event, Status};
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
    /// Release a prefix from under the network that uses it.
    ReleaseNetworkPrefix,
    /// Register and change provider accounts.
    ManageProviderAccounts,
    /// Change the guardrails (everyone who sees networks may read them).
    ManageGuardrails,
    /// See networks and provider accounts.
    ViewNetworks,
    /// Create, change or delete a network of this team.
    ManageNetworks { team_id: Uuid },
    /// Approve or reject building a network for this team (when its account asks for approval).
    ApproveNetwork { team_id: Uuid },
    /// Confirm or refuse that a team owns the resource a network registers.
    ConfirmOwnership,
    /// See a team's webhook.
    ViewWebhook { team_id: Uuid },
    /// Set or remove a team's webhook.
    ManageWebhook { team_id: Uuid },
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
            Action::ManageNetworks { team_id } | Action::ViewWebhook { team_id } => {
                self.role_in(team_id).is_some()
            }
            Action::ManageWebhook { team_id } | Action::ApproveNetwork { team_id } => {
                self.leads(team_id)
            }
            Action::Release { allocated_by } => allocated_by == Some(self.user_id),
            Action::ManageMembers { team_id } => self.role_in(team_id) == Some(Role::Lead),
            // People may end their own sessions; only admins end other people's.
            Action::RevokeSessions { user_id } => user_id == self.user_id,
            Action::ManageTeams
            | Action::ViewUsers
            | Action::ViewAudit
            | Action::ViewOutbox
            | Action::ManageAddressPlan
            | Action::ReleaseNetworkPrefix
            | Action::ManageProviderAccounts
            | Action::ManageGuardrails
            | Action::ConfirmOwnership => false,
        }
    }

    /// `Ok` when allowed, else the 403 every handler shows the same way,
    /// saying who may.
    pub fn require(&self, action: Action) -> Result<(), Error> {
        if self.can(action) {
            Ok(())
        } else {
            Err(Error::Forbidden(action.who_may().into()))
        }
    }

    fn leads(&self, team_id: Uuid) -> bool {
        self.role_in(team_id) == Some(Role::Lead)
    }

    /// May this person ask for a connection whose sides are `teams`? Members of
    /// a side ask; admins ask for anyone.
    pub fn may_request(&self, teams: &[(Uuid, &str)]) -> Result<Permit<Request>, Error> {
        if self.is_admin || teams.iter().any(|(id, _)| self.role_in(*id).is_some()) {
            return Ok(Permit {
                action: Request,
                teams: teams.iter().map(|(id, _)| *id).collect(),
            });
        }
        Err(Error::Forbidden(format!(
            "only members of {} (or an admin) may ask for this: ask one of them to request it",
            or_list(teams.iter().map(|(_, slug)| *slug))
        )))
    }

    /// May this person do `action` on this connection, in its current status?
    /// `NotFound` for who may not even see it, `Forbidden` (saying who may) for
    /// who may see but not act, then `Conflict` for an action its status rules
    /// out: who may never act hears so whatever the status.
    pub fn may(
        &self,
        action: ConnectionAction,
        c: &ConnectionFacts<'_>,
    ) -> Result<Permit<ConnectionAction>, Error> {
        let requester = c.requested_by == self.user_id;
        let member = c.sides.iter().any(|s| self.role_in(s.team_id).is_some());
        if !(requester || member || self.is_admin) {
            return Err(Error::NotFound("that connection".into()));
        }
        let lead = c.sides.iter().any(|s| self.leads(s.team_id));
        let teams = || or_list(c.sides.iter().map(|s| s.team.as_str()));
        let in_state = |event: Event| {
            connection::transition(c.status, event)
                .map(|_| ())
                .map_err(|r| Error::Conflict(r.0))
        };
        let permit = |teams: Vec<Uuid>| Permit { action, teams };
        use ConnectionAction as A;
        match action {
            A::See => Ok(permit(Vec::new())),
            A::Approve | A::Reject => {
                let verb = if action == A::Approve {
                    "approve"
                } else {
                    "reject"
                };
                if requester {
                    return Err(Error::Forbidden(format!(
                        "you requested this connection, so you cannot {verb} it: a lead of each team involved must{}",
                        if action == A::Reject {
                            " (cancel it instead)"
                        } else {
                            ""
                        }
                    )));
                }
                let undecided: Vec<&SideFacts> = c.sides.iter().filter(|s| !s.decided).collect();
                let mine: Vec<Uuid> = undecided
                    .iter()
                    .filter(|s| self.leads(s.team_id))
                    .map(|s| s.team_id)
                    .collect();
                if mine.is_empty() {
                    let decided: Vec<&str> = c
                        .sides
                        .iter()
                        .filter(|s| s.decided && self.leads(s.team_id))
                        .map(|s| s.team.as_str())
                        .collect();
                    let others = if undecided.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "only a lead of {} may {verb} it now",
                            or_list(undecided.iter().map(|s| s.team.as_str()))
                        )
                    };
                    return Err(Error::Forbidden(
                        match (decided.is_empty(), others.is_empty()) {
                            (true, false) => others,
                            (true, true) => format!("only a lead of {} may {verb} it", teams()),
                            (false, true) => format!(
                                "{} already decided, and so did every other team involved",
                                or_list(decided.into_iter())
                            ),
                            (false, false) => {
                                format!(
                                    "{} already decided; {others}",
                                    or_list(decided.into_iter())
                                )
                            }
                        },
                    ));
                }
                in_state(if action == A::Approve {
                    Event::Approve { all_sides: false }
                } else {
                    Event::Reject
                })?;
                Ok(permit(mine))
            }
            A::Cancel => {
                if !(requester || self.is_admin) {
                    return Err(Error::Forbidden(
                        "only the person who asked for it (or an admin) may cancel it; a lead may reject it"
                            .into(),
                    ));
                }
                in_state(Event::Cancel)?;
                Ok(permit(Vec::new()))
            }
            A::Remove => {
                if !(requester || lead || self.is_admin) {
                    return Err(Error::Forbidden(format!(
                        "only the person who asked for it, a lead of {} or an admin may remove it",
                        teams()
                    )));
                }
                in_state(Event::Deprovision)?;
                Ok(permit(Vec::new()))
            }
            A::Retry | A::Repair | A::SetRepairMode => {
                if !(lead || self.is_admin) {
                    return Err(Error::Forbidden(format!(
                        "only a lead of {} or an admin may {} it",
                        teams(),
                        action.verb()
                    )));
                }
                match action {
                    A::Retry => in_state(Event::Retry)?,
                    A::Repair if !matches!(c.status, Status::Active | Status::Drifted) => {
                        return Err(Error::Conflict(format!(
                            "only an active or drifted connection can be repaired; this one is {}",
                            c.status.label()
                        )));
                    }
                    A::SetRepairMode if c.status.is_final() => {
                        return Err(Error::Conflict(format!(
                            "a connection that is {} is no longer watched",
                            c.status.label()
                        )));
                    }
                    _ => {}
                }
                Ok(permit(Vec::new()))
            }
            A::Renew => {
                if !(requester || lead || self.is_admin) {
                    return Err(Error::Forbidden(format!(
                        "only the person who asked for it, a lead of {} or an admin may renew it",
                        teams()
                    )));
                }
                Ok(permit(Vec::new()))
            }
            A::DecideRenewal => {
                let theirs = renewal_sides(c.sides);
                let led: Vec<Uuid> = theirs
                    .iter()
                    .filter(|s| self.leads(s.team_id))
                    .map(|s| s.team_id)
                    .collect();
                if led.is_empty() && !self.is_admin {
                    return Err(Error::Forbidden(format!(
                        "only a lead of {} (the requester's team) or an admin may decide a renewal",
                        or_list(theirs.iter().map(|s| s.team.as_str()))
                    )));
                }
                Ok(permit(led))
            }
            A::Change => {
                if !(requester || lead || self.is_admin) {
                    return Err(Error::Forbidden(format!(
                        "only the person who asked for it, a lead of {} or an admin may change it",
                        teams()
                    )));
                }
                if c.status != Status::Active {
                    return Err(Error::Conflict(format!(
                        "only an active connection can be changed; this one is {}",
                        c.status.label()
                    )));
                }
                Ok(permit(Vec::new()))
            }
            A::DecideChange => {
                let mine: Vec<Uuid> = c
                    .sides
                    .iter()
                    .filter(|s| self.leads(s.team_id))
                    .map(|s| s.team_id)
                    .collect();
                if mine.is_empty() {
                    return Err(Error::Forbidden(format!(
                        "only a lead of {} may approve or reject a change of it",
                        teams()
                    )));
                }
                Ok(permit(mine))
            }
        }
    }

    /// Whether the page should offer `action` on this connection to this person.
    pub fn offers(&self, action: ConnectionAction, c: &ConnectionFacts<'_>) -> bool {
        self.may(action, c).is_ok()
    }
}

/// The sides whose leads decide a renewal: the requester's own teams, or
/// every side when the requester has left them all.
pub fn renewal_sides(sides: &[SideFacts]) -> Vec<&SideFacts> {
    let theirs: Vec<&SideFacts> = sides.iter().filter(|s| s.requester_member).collect();
    if theirs.is_empty() {
        sides.iter().collect()
    } else {
        theirs
    }
}

/// "a", "a or b", "a, b or c".
fn or_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    names.dedup();
    match names.split_last() {
        None => "the teams involved".into(),
        Some((last, [])) => (*last).into(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl Action {
    /// Who may do this, for the refusal.
    fn who_may(self) -> &'static str {
        match self {
            Action::ManageMembers { .. } => {
                "only a lead of this team or an admin may change its members"
            }
            Action::RevokeSessions { .. } => "only an admin may end other people's sessions",
            Action::Release { .. } => {
                "only the person who took this block or an admin may give it back"
            }
            Action::ManageNetworks { .. } => {
                "only members of the network's team or an admin may change its networks"
            }
            Action::ViewWebhook { .. } => {
                "only members of this team or an admin may see its webhook"
            }
            Action::ApproveNetwork { .. } => {
                "only a lead of the network's team or an admin may approve building it"
            }
            Action::ManageWebhook { .. } => {
                "only a lead of this team or an admin may change its webhook"
            }
            Action::ViewTeams
            | Action::ManageOwnTokens
            | Action::ViewAddressPlan
            | Action::Allocate
            | Action::ViewNetworks => "you must be signed in",
            Action::ManageTeams
            | Action::ViewUsers
            | Action::ViewAudit
            | Action::ViewOutbox
            | Action::ManageAddressPlan
            | Action::ManageProviderAccounts
            | Action::ManageGuardrails => "only an admin may do that",
            Action::ConfirmOwnership => {
                "only an admin may confirm or refuse who owns a registered resource"
            }
            Action::ReleaseNetworkPrefix => {
                "only an admin may release a prefix a network uses: delete the network instead"
            }
        }
    }
}

/// What people do with a connection, each decided by [`Actor::may`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionAction {
    See,
    Approve,
    Reject,
    Cancel,
    Remove,
    Retry,
    Repair,
    SetRepairMode,
    /// Ask to keep it past its expiry.
    Renew,
    /// Approve or reject someone's renewal.
    DecideRenewal,
    /// Ask for other ports, protocol or reason while it is active.
    Change,
    /// Approve or reject a change that lets more through, for one's side.
    DecideChange,
}

impl ConnectionAction {
    fn verb(self) -> &'static str {
        match self {
            ConnectionAction::See => "see",
            ConnectionAction::Approve => "approve",
            ConnectionAction::Reject => "reject",
            ConnectionAction::Cancel => "cancel",
            ConnectionAction::Remove => "remove",
            ConnectionAction::Retry => "retry",
            ConnectionAction::Repair => "repair",
            ConnectionAction::SetRepairMode => "choose how to repair",
            ConnectionAction::Renew => "renew",
            ConnectionAction::DecideRenewal => "decide the renewal of",
            ConnectionAction::Change => "change",
            ConnectionAction::DecideChange => "decide a change of",
        }
    }
}

/// Asking for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request;

/// One side of a connection, as the policy sees it.
#[derive(Clone, Debug)]
pub struct SideFacts {
    pub team_id: Uuid,
    pub team: String,
    /// Its lead already approved or rejected.
    pub decided: bool,
    /// The requester is in this team: its leads decide renewals alone.
    pub requester_member: bool,
}

/// What the policy decides a connection action on.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionFacts<'a> {
    pub requested_by: Uuid,
    pub status: Status,
    pub sides: &'a [SideFacts],
}

/// Proof that the policy allowed `action`: only [`Actor::may`] and
/// [`Actor::may_request`] make one, and the services that change a connection
/// take one, so no change can skip the policy.
#[derive(Debug)]
pub struct Permit<A> {
    action: A,
    /// The teams the permit is for (the sides a lead decides for, the sides of
    /// a request).
    teams: Vec<Uuid>,
}

impl<A: Copy> Permit<A> {
    pub fn action(&self) -> A {
        self.action
    }
    pub fn teams(&self) -> &[Uuid] {
        &self.teams
    }
}

#[cfg(test)]
mod tests;
