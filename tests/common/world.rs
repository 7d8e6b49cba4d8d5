//! A small organisation with one user of every role and customers spread over managers,
//! teams, regions and an enterprise hierarchy: the fixture for scope and permission tests.
//!
//! Regions East and West; team T1 (East) has am1 and am2, team T2 (West) has am3. `lead`
//! leads T1, `head` heads East, `agent` works East, `mk` is a marketer, `gateway` a system, `entadmin`
//! administers enterprise `ent` (which has child `ent-child`). Lines 8613900001001..3 belong
//! to c1..c3.

use serde_json::{json, Value};

use super::{Actor, TestApp};

pub struct World {
    pub am1: Actor,
    pub am2: Actor,
    pub am3: Actor,
    pub lead: Actor,
    pub head: Actor,
    pub agent: Actor,
    pub marketer: Actor,
    pub ent_admin: Actor,
    pub system: Actor,
    /// am1 / East, am2 / East, am3 / West.
    pub c1: String,
    pub c2: String,
    pub c3: String,
    pub ent: String,
    pub ent_child: String,
    pub other_ent: String,
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

pub async fn world(t: &TestApp) -> World {
    let east = t.region("East").await;
    let west = t.region("West").await;
    let t1 = t.team("T1", &east).await;
    let t2 = t.team("T2", &west).await;
    let am1 = t
        .user(
            "am1",
            "account_manager",
            json!({"team_id": t1, "region_id": east}),
        )
        .await;
    let am2 = t
        .user(
            "am2",
            "account_manager",
            json!({"team_id": t1, "region_id": east}),
        )
        .await;
    let am3 = t
        .user(
            "am3",
            "account_manager",
            json!({"team_id": t2, "region_id": west}),
        )
        .await;
    let lead = t.user("lead", "team_lead", json!({"team_id": t1})).await;
    let head = t
        .user("head", "region_head", json!({"region_id": east}))
        .await;
    let agent = t.user("agent", "agent", json!({"region_id": east})).await;
    let marketer = t.user("mk", "marketer", json!({})).await;
    let system = t.user("gateway", "system", json!({})).await;
    let c1 = id(&t
        .customer(
            "c1",
            json!({"account_manager_id": am1.id, "region_id": east}),
        )
        .await);
    let c2 = id(&t
        .customer(
            "c2",
            json!({"account_manager_id": am2.id, "region_id": east}),
        )
        .await);
    let c3 = id(&t
        .customer(
            "c3",
            json!({"account_manager_id": am3.id, "region_id": west}),
        )
        .await);
    let ent = id(&t
        .customer(
            "ent",
            json!({"customer_type": "enterprise", "account_manager_id": am1.id, "region_id": east}),
        )
        .await);
    let ent_child = id(&t.customer("ent-child", json!({"customer_type": "enterprise", "parent_customer_id": ent, "account_manager_id": am1.id, "region_id": east})).await);
    let other_ent = id(&t
        .customer(
            "other-ent",
            json!({"customer_type": "enterprise", "account_manager_id": am3.id, "region_id": west}),
        )
        .await);
    let ent_admin = t
        .user(
            "entadmin",
            "enterprise_admin",
            json!({"enterprise_customer_id": ent}),
        )
        .await;
    t.line(&c1, "8613900001001").await;
    t.line(&c2, "8613900001002").await;
    t.line(&c3, "8613900001003").await;
    World {
        am1,
        am2,
        am3,
        lead,
        head,
        agent,
        marketer,
        ent_admin,
        system,
        c1,
        c2,
        c3,
        ent,
        ent_child,
        other_ent,
    }
}
