//! The TMF637 product status lifecycle and the moves allowed between statuses.

pub const STATUSES: &[&str] = &[
    "created",
    "pendingActive",
    "active",
    "suspended",
    "pendingTerminate",
    "terminated",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LifecycleError {
    #[error("unknown status {0:?}")]
    Unknown(String),
    #[error("cannot go from {from} to {to}")]
    NotAllowed { from: String, to: String },
}

/// Statuses reachable from `from` in one step.
pub fn next(from: &str) -> &'static [&'static str] {
    match from {
        "created" => &["pendingActive", "active", "terminated"],
        "pendingActive" => &["active", "terminated"],
        "active" => &["suspended", "pendingTerminate", "terminated"],
        "suspended" => &["active", "pendingTerminate", "terminated"],
        "pendingTerminate" => &["active", "terminated"],
        _ => &[],
    }
}

pub fn check(from: &str, to: &str) -> Result<(), LifecycleError> {
    if !STATUSES.contains(&to) {
        return Err(LifecycleError::Unknown(to.to_string()));
    }
    if next(from).contains(&to) {
        Ok(())
    } else {
        Err(LifecycleError::NotAllowed {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_is_final_and_suspension_needs_activity() {
        assert!(check("created", "pendingActive").is_ok());
        assert!(check("active", "suspended").is_ok());
        assert!(check("suspended", "active").is_ok());
        assert!(check("pendingTerminate", "terminated").is_ok());
        assert!(matches!(
            check("created", "suspended"),
            Err(LifecycleError::NotAllowed { .. })
        ));
        assert!(check("terminated", "active").is_err());
        assert_eq!(
            check("active", "gone"),
            Err(LifecycleError::Unknown("gone".into()))
        );
    }
}
