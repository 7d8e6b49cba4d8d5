//! Who is calling and what they may do and see: principal, role, permission and data scope.
//!
//! Plain data with no HTTP or storage in it, so the engine's ports (`ports::LineScope`) and the
//! HTTP features can both name a principal without the engine depending on `auth`. How a
//! credential becomes a principal, and the HTTP check `Principal::require`, stay in `auth`.

use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoEnumIterator, IntoStaticStr};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, EnumIter,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Marketer,
    RegionHead,
    TeamLead,
    AccountManager,
    Agent,
    /// Systems: event sources, channel gateways.
    System,
    /// An enterprise customer's administrator (sees only their enterprise).
    EnterpriseAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketer => "marketer",
            Role::RegionHead => "region_head",
            Role::TeamLead => "team_lead",
            Role::AccountManager => "account_manager",
            Role::Agent => "agent",
            Role::System => "system",
            Role::EnterpriseAdmin => "enterprise_admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// Actions guarded by role. Data scope is checked separately, per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Permission {
    IngestEvents,
    ReadRecommendations,
    RespondToOffers,
    /// Correcting an answer recorded wrongly (answers are otherwise final).
    CorrectAnswers,
    ReadRules,
    ManageRules,
    ReadEngineStats,
    ReadCustomers,
    WriteCustomers,
    ManageCatalog,
    ManageCampaigns,
    ApproveCampaigns,
    ManageOpportunities,
    ManageContracts,
    RaiseServiceRequests,
    ApproveServiceRequests,
    ManageRetention,
    ManageKnowledge,
    ManageUsers,
    ReadAudit,
    ReadStatistics,
    SendMessages,
    /// An enterprise's group SMS to its members.
    MessageMembers,
}

impl Permission {
    /// The name clients see (`manage_campaigns`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The roles that have it, in declaration order.
    pub fn roles(self) -> Vec<Role> {
        Role::iter().filter(|r| r.allows(self)).collect()
    }
}

impl Role {
    /// Every permission this role has, in declaration order.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::iter().filter(|p| self.allows(*p)).collect()
    }

    /// The permission matrix. Kept as one match so it can be read and reviewed at a glance.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match self {
            Admin => true,
            System => matches!(
                p,
                IngestEvents | ReadRecommendations | RespondToOffers | ReadCustomers | SendMessages
            ),
            Marketer => matches!(
                p,
                ReadRecommendations
                    | ReadRules
                    | ManageRules
                    | ReadEngineStats
                    | ReadCustomers
                    | ManageCatalog
                    | ManageCampaigns
                    | ManageKnowledge
                    | ReadStatistics
                    | SendMessages
            ),
            RegionHead | TeamLead => matches!(
                p,
                ReadRecommendations
                    | RespondToOffers
                    | ReadRules
                    | ReadEngineStats
                    | ReadCustomers
                    | WriteCustomers
                    | ApproveCampaigns
                    | ManageOpportunities
                    | ManageContracts
                    | RaiseServiceRequests
                    | ApproveServiceRequests
                    | ManageRetention
                    | ReadStatistics
                    | ReadAudit
                    | SendMessages
                    | MessageMembers
                    | CorrectAnswers
            ),
            AccountManager => matches!(
                p,
                ReadRecommendations
                    | RespondToOffers
                    | ReadCustomers
                    | WriteCustomers
                    | ManageOpportunities
                    | ManageContracts
                    | RaiseServiceRequests
                    | ManageRetention
                    | SendMessages
                    | MessageMembers
            ),
            Agent => matches!(
                p,
                ReadRecommendations | RespondToOffers | ReadCustomers | RaiseServiceRequests
            ),
            EnterpriseAdmin => matches!(
                p,
                ReadCustomers | WriteCustomers | RaiseServiceRequests | MessageMembers
            ),
        }
    }
}

/// Whom a principal may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    All,
    Region(String),
    Team(String),
    /// Only customers whose account manager is this user.
    Own(String),
    /// Only this enterprise customer and its members.
    Enterprise(String),
}

/// An authenticated caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub scope: Scope,
}
