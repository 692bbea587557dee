//! The machine interface. `/api/v1` stays valid when `/api/v2` arrives.

pub mod v1;
