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
    /// Write drafts of rule changes, check them and try them on events.
    EditRules,
    /// Publish drafts as a new rule version (never one's own change) and roll back.
    PublishRules,
    ReadEngineStats,
    /// Rejected raw events of every customer: roles that see all customers.
    ReadDeadLetters,
    /// Record samples of live events and read them back: raw events of every subscriber, so
    /// roles that see all customers.
    CaptureEvents,
    ReadCustomers,
    /// A customer's contacts, consents and enterprise members. An enterprise admin holds it
    /// for their own enterprise; it does not let them change the customer record itself.
    WriteCustomers,
    /// Records the operator owns: customer attributes, create, delete and import, parties,
    /// accounts, lines, products and loyalty. Operator staff only, never an enterprise admin.
    WriteOperatorRecords,
    ManageCatalog,
    /// Read segments and campaigns: those who plan, approve or measure them.
    ReadCampaigns,
    ManageCampaigns,
    ApproveCampaigns,
    ManageOpportunities,
    ManageContracts,
    RaiseServiceRequests,
    ApproveServiceRequests,
    /// Change a request type's approval steps and SLA.
    ManageWorkflows,
    ManageRetention,
    ManageKnowledge,
    ManageUsers,
    /// Run a scheduled job now (service-request escalation, contract reminders).
    RunJobs,
    ReadAudit,
    ReadStatistics,
    SendMessages,
    /// An enterprise's group SMS to its members.
    MessageMembers,
    /// Mint a customer's portal session: the portal backend's system key (and admins).
    MintPortalSessions,
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

    /// What it lets one do, in a line (`GET /auth/roles`).
    pub fn description(self) -> &'static str {
        use Permission::*;
        match self {
            IngestEvents => "send events to the engine",
            ReadRecommendations => "read offers decided for subscribers",
            RespondToOffers => "record a subscriber's answer to an offer",
            CorrectAnswers => "correct a final answer recorded wrongly (audited)",
            ReadRules => "read the loaded rules",
            ManageRules => "reload the rules",
            EditRules => "write, check and try drafts of rule changes",
            PublishRules => {
                "publish others' rule drafts as a new version (never one's own) and roll back"
            }
            ReadEngineStats => "read engine counters and the SMS outbox",
            ReadDeadLetters => "read rejected raw events of every customer",
            CaptureEvents => "record samples of live events of every customer and read them",
            ReadCustomers => "read customers in scope and their records",
            WriteCustomers => {
                "change a customer's contacts, consents and enterprise members (not the customer record)"
            }
            WriteOperatorRecords => {
                "create, change, delete and import customers; parties, accounts, lines, products and loyalty"
            }
            ManageCatalog => "change the product catalog",
            ReadCampaigns => "read segments and campaigns",
            ManageCampaigns => "plan, submit and launch campaigns; change segments",
            ApproveCampaigns => "approve or reject campaigns",
            ManageOpportunities => "work sales opportunities",
            ManageContracts => "work agreements (contracts)",
            RaiseServiceRequests => "raise service requests and record interactions",
            ApproveServiceRequests => "approve service requests at one's own approval step",
            ManageWorkflows => "change service-request approval steps and SLAs",
            ManageRetention => "work retention cases",
            ManageKnowledge => "edit the knowledge base and announcements",
            ManageUsers => "manage users, teams and regions",
            RunJobs => "run escalation and contract reminders now",
            ReadAudit => "read the audit trail",
            ReadStatistics => "read statistics",
            SendMessages => "send messages to customers",
            MessageMembers => "send an enterprise's group SMS to its members",
            MintPortalSessions => "mint a customer's portal session",
        }
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
                IngestEvents
                    | ReadRecommendations
                    | RespondToOffers
                    | ReadCustomers
                    | SendMessages
                    | MintPortalSessions
            ),
            Marketer => matches!(
                p,
                ReadRecommendations
                    | ReadRules
                    | ManageRules
                    | EditRules
                    | PublishRules
                    | ReadEngineStats
                    | ReadDeadLetters
                    | CaptureEvents
                    | ReadCustomers
                    | ManageCatalog
                    | ReadCampaigns
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
                    | WriteOperatorRecords
                    | ReadCampaigns
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
                    | WriteOperatorRecords
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The permissions added to name refusals that used to be role checks in the handlers:
    /// each is held by exactly the roles those checks let through, so nobody gained or lost.
    #[test]
    fn named_permissions_match_the_checks_they_replace() {
        use Permission::*;
        for r in Role::iter() {
            assert_eq!(
                r.allows(WriteOperatorRecords),
                r.allows(WriteCustomers) && r != Role::EnterpriseAdmin,
                "{r:?}"
            );
            assert_eq!(
                r.allows(ReadCampaigns),
                [ManageCampaigns, ApproveCampaigns, ReadStatistics]
                    .iter()
                    .any(|p| r.allows(*p)),
                "{r:?}"
            );
            // Dead letters: `ReadEngineStats` with an all-customers scope, which only admins and
            // marketers always have.
            assert_eq!(
                r.allows(ReadDeadLetters),
                matches!(r, Role::Admin | Role::Marketer),
                "{r:?}"
            );
            // Captured events are raw events of every subscriber, like dead letters.
            assert_eq!(r.allows(CaptureEvents), r.allows(ReadDeadLetters), "{r:?}");
            assert_eq!(r.allows(ManageWorkflows), r == Role::Admin, "{r:?}");
            assert_eq!(r.allows(RunJobs), r == Role::Admin, "{r:?}");
            assert_eq!(
                r.allows(MintPortalSessions),
                matches!(r, Role::Admin | Role::System),
                "{r:?}"
            );
        }
    }

    #[test]
    fn an_enterprise_admin_may_not_write_operator_records() {
        let ps = Role::EnterpriseAdmin.permissions();
        assert!(ps.contains(&Permission::WriteCustomers));
        assert!(!ps.contains(&Permission::WriteOperatorRecords));
        assert_eq!(
            Permission::WriteOperatorRecords.roles(),
            [
                Role::Admin,
                Role::RegionHead,
                Role::TeamLead,
                Role::AccountManager
            ]
        );
    }
}
