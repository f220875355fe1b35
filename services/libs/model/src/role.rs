//! The role of a member in an organisation, and what each role may do. (Alert rules do
//! not exist yet; members will edit them and viewers will not.)
//!
//! | role   | read pages and data | alert rules | sampling policy | API keys, members |
//! |--------|---------------------|-------------|-----------------|-------------------|
//! | owner  | yes                 | yes         | yes             | yes, all          |
//! | admin  | yes                 | yes         | yes             | yes, except owners|
//! | member | yes                 | yes         | no              | no                |
//! | viewer | yes                 | no          | no              | no                |
//!
//! The sampling policy decides what the whole organisation stores, so, like API keys, it
//! is changed by admins ([`Role::is_admin`]).

use crate::IdError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Manages the organisation: API keys, invitations and members.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Whether a member with this role may move someone from `current` to `new`: invite
    /// (`current` is `None`), change a role, or remove (`new` is `None`). Admins manage
    /// everyone but owners, and only owners make owners.
    pub fn may_assign(self, current: Option<Role>, new: Option<Role>) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => current != Some(Role::Owner) && new != Some(Role::Owner),
            Role::Member | Role::Viewer => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| IdError::UnknownRole(s.to_owned()))
    }
}

impl TryFrom<String> for Role {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("superuser".parse::<Role>().is_err());
        assert!("Owner".parse::<Role>().is_err());
    }

    #[test]
    fn who_may_assign_what() {
        use Role::*;
        for current in [None, Some(Owner), Some(Admin), Some(Member), Some(Viewer)] {
            for new in [None, Some(Owner), Some(Admin), Some(Member), Some(Viewer)] {
                assert!(Owner.may_assign(current, new));
                assert!(!Member.may_assign(current, new));
                assert!(!Viewer.may_assign(current, new));
                let admin_may = current != Some(Owner) && new != Some(Owner);
                assert_eq!(
                    Admin.may_assign(current, new),
                    admin_may,
                    "{current:?} -> {new:?}"
                );
            }
        }
        assert!(Owner.is_admin() && Admin.is_admin() && !Member.is_admin() && !Viewer.is_admin());
    }
}
