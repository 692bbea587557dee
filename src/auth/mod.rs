//! Authentication and authorization: the identity provider, secrets, and the policy.

pub mod oidc;
pub mod policy;
pub mod secrets;
