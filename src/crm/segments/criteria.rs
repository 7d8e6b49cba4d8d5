//! The segment criteria language: a small JSON document, validated strictly and compiled to
//! bound SQL over `lines l JOIN customers c`. Field and history names come from whitelists;
//! every value reaches SQL as a bound argument.
//!
//! ```json
//! {"all": [
//!   {"field": "value_tier", "op": "in", "value": ["gold", "platinum"]},
//!   {"field": "churn_score", "op": ">=", "value": 0.5},
//!   {"any": [{"field": "region_id", "op": "=", "value": "r1"}, {"not": {"field": "plan", "op": "=", "value": "basic_39"}}]},
//!   {"field": "tenure_months", "op": ">=", "value": 12},
//!   {"history": "accepted_offers_90d", "op": ">=", "value": 1}
//! ]}
//! ```
//! Errors name the criterion path, e.g. `criteria.all[1].value`.

use serde_json::{Map, Value};

use crate::http::ApiError;
use crate::store::Sql;

const MAX_DEPTH: usize = 5;
const MAX_LEAVES: usize = 100;
const MAX_LIST: usize = 100;
const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Text,
    Int,
    Float,
    /// Months since the line was activated (30-day months, as the engine's profile counts).
    Tenure,
}

/// `(name, kind, column)`: the fields a criterion may test.
const FIELDS: &[(&str, Kind, &str)] = &[
    ("value_tier", Kind::Text, "c.value_tier"),
    ("segment", Kind::Text, "c.segment"),
    ("customer_type", Kind::Text, "c.customer_type"),
    ("region_id", Kind::Text, "c.region_id"),
    ("account_manager_id", Kind::Text, "c.account_manager_id"),
    // The account manager's team (政企 teams run their own campaigns).
    (
        "team_id",
        Kind::Text,
        "(SELECT tu.team_id FROM users tu WHERE tu.id = c.account_manager_id)",
    ),
    ("credit_class", Kind::Text, "c.credit_class"),
    ("industry", Kind::Text, "c.industry"),
    ("language", Kind::Text, "c.language"),
    ("home_country", Kind::Text, "c.home_country"),
    ("preferred_channel", Kind::Text, "c.preferred_channel"),
    ("customer_status", Kind::Text, "c.status"),
    ("plan", Kind::Text, "l.plan"),
    ("churn_score", Kind::Float, "c.churn_score"),
    ("arpu_cents", Kind::Int, "c.arpu_cents"),
    ("loyalty_points", Kind::Int, "c.loyalty_points"),
    ("tenure_months", Kind::Tenure, "l.activated_at"),
];

/// `(name, outcome, days)`: counts of the line's offer responses in a trailing window.
const HISTORY: &[(&str, &str, i64)] = &[
    ("accepted_offers_30d", "accepted", 30),
    ("accepted_offers_90d", "accepted", 90),
    ("declined_offers_30d", "declined", 30),
    ("declined_offers_90d", "declined", 90),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            _ => return None,
        })
    }
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::In | Op::NotIn => unreachable!("lists compile separately"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    Float(f64),
    List(Vec<Val>),
}

/// A validated criteria tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Field {
        kind: Kind,
        column: &'static str,
        op: Op,
        value: Val,
    },
    History {
        outcome: &'static str,
        days: i64,
        op: Op,
        count: i64,
    },
}

fn err(path: &str, msg: impl Into<String>) -> ApiError {
    ApiError::field(path, msg)
}

/// Validates a criteria document; errors name the offending path under `root`.
pub fn parse(v: &Value, root: &str) -> Result<Node, ApiError> {
    let mut leaves = 0;
    parse_node(v, root, 0, &mut leaves)
}

fn only_keys(m: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), ApiError> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(
                &format!("{path}.{k}"),
                format!("unknown key; expected {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn parse_node(v: &Value, path: &str, depth: usize, leaves: &mut usize) -> Result<Node, ApiError> {
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let m = v.as_object().ok_or_else(|| {
        err(
            path,
            "must be an object: {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}} or a criterion",
        )
    })?;
    for (key, ctor) in [
        ("all", Node::All as fn(Vec<Node>) -> Node),
        ("any", Node::Any),
    ] {
        if let Some(list) = m.get(key) {
            only_keys(m, path, &[key])?;
            let p = format!("{path}.{key}");
            let items = list
                .as_array()
                .ok_or_else(|| err(&p, "must be an array of criteria"))?;
            if items.is_empty() {
                return Err(err(&p, "must not be empty"));
            }
            let nodes = items
                .iter()
                .enumerate()
                .map(|(i, c)| parse_node(c, &format!("{p}[{i}]"), depth + 1, leaves))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(ctor(nodes));
        }
    }
    if let Some(inner) = m.get("not") {
        only_keys(m, path, &["not"])?;
        let n = parse_node(inner, &format!("{path}.not"), depth + 1, leaves)?;
        return Ok(Node::Not(Box::new(n)));
    }
    *leaves += 1;
    if *leaves > MAX_LEAVES {
        return Err(err(path, format!("more than {MAX_LEAVES} criteria")));
    }
    let op_path = format!("{path}.op");
    let op_text = m
        .get("op")
        .ok_or_else(|| err(&op_path, "required"))?
        .as_str()
        .ok_or_else(|| err(&op_path, "must be a string"))?;
    let op = Op::parse(op_text)
        .ok_or_else(|| err(&op_path, "must be one of =, !=, in, not_in, >, >=, <, <="))?;
    let value_path = format!("{path}.value");
    let value = m.get("value").ok_or_else(|| err(&value_path, "required"))?;
    if let Some(h) = m.get("history") {
        only_keys(m, path, &["history", "op", "value"])?;
        let hp = format!("{path}.history");
        let name = h.as_str().ok_or_else(|| err(&hp, "must be a string"))?;
        let (_, outcome, days) = HISTORY.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
            let names: Vec<&str> = HISTORY.iter().map(|(n, _, _)| *n).collect();
            err(&hp, format!("must be one of {}", names.join(", ")))
        })?;
        if !matches!(op, Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le) {
            return Err(err(&op_path, "history counts take =, >, >=, < or <="));
        }
        let count = value
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| err(&value_path, "must be a non-negative integer"))?;
        return Ok(Node::History {
            outcome,
            days: *days,
            op,
            count,
        });
    }
    let fp = format!("{path}.field");
    let Some(f) = m.get("field") else {
        return Err(err(
            path,
            "must name a \"field\" or a \"history\" (or combine criteria with all / any / not)",
        ));
    };
    only_keys(m, path, &["field", "op", "value"])?;
    let name = f.as_str().ok_or_else(|| err(&fp, "must be a string"))?;
    let (_, kind, column) = FIELDS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = FIELDS.iter().map(|(n, _, _)| *n).collect();
        err(&fp, format!("must be one of {}", names.join(", ")))
    })?;
    let ordered = matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le);
    match kind {
        Kind::Text if ordered => {
            return Err(err(&op_path, format!("{name} takes =, !=, in or not_in")))
        }
        Kind::Tenure if !ordered => {
            return Err(err(&op_path, "tenure_months takes >, >=, < or <="))
        }
        _ => {}
    }
    let one = |v: &Value, p: &str| -> Result<Val, ApiError> {
        match kind {
            Kind::Text => {
                let s = v.as_str().ok_or_else(|| err(p, "must be a string"))?;
                if s.chars().count() > MAX_TEXT {
                    return Err(err(p, format!("must be at most {MAX_TEXT} characters")));
                }
                Ok(Val::Text(s.to_string()))
            }
            Kind::Int => v
                .as_i64()
                .map(Val::Int)
                .ok_or_else(|| err(p, "must be an integer")),
            Kind::Tenure => v
                .as_i64()
                .filter(|n| (0..=1200).contains(n))
                .map(Val::Int)
                .ok_or_else(|| err(p, "must be an integer between 0 and 1200")),
            Kind::Float => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Val::Float)
                .ok_or_else(|| err(p, "must be a number")),
        }
    };
    let value = if matches!(op, Op::In | Op::NotIn) {
        let items = value
            .as_array()
            .ok_or_else(|| err(&value_path, "must be an array"))?;
        if items.is_empty() || items.len() > MAX_LIST {
            return Err(err(
                &value_path,
                format!("must hold 1 to {MAX_LIST} values"),
            ));
        }
        Val::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| one(v, &format!("{value_path}[{i}]")))
                .collect::<Result<_, _>>()?,
        )
    } else {
        one(value, &value_path)?
    };
    Ok(Node::Field {
        kind: *kind,
        column,
        op,
        value,
    })
}

fn bind_val(sql: &mut Sql, v: &Val) {
    match v {
        Val::Text(s) => sql.bind(s.as_str()),
        Val::Int(i) => sql.bind(*i),
        Val::Float(f) => sql.bind(*f),
        Val::List(_) => unreachable!("lists bind item by item"),
    };
}

fn cutoff(now: chrono::DateTime<chrono::Utc>, days: i64) -> String {
    crate::store::ts_text(now - chrono::Duration::days(days))
}

/// Appends the condition (in parentheses) for `node`, with every value bound.
pub fn push(sql: &mut Sql, node: &Node, now: chrono::DateTime<chrono::Utc>) {
    match node {
        Node::All(items) | Node::Any(items) => {
            let joiner = if matches!(node, Node::All(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push("(");
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    sql.push(joiner);
                }
                push(sql, n, now);
            }
            sql.push(")");
        }
        Node::Not(inner) => {
            // A comparison with NULL is unknown; `not` treats unknown as false-then-negated, so
            // "not industry = finance" keeps customers without an industry.
            sql.push("(NOT COALESCE(");
            push(sql, inner, now);
            sql.push(", 0 = 1))");
        }
        Node::History {
            outcome,
            days,
            op,
            count,
        } => {
            sql.push("((SELECT COUNT(*) FROM offer_responses h WHERE h.msisdn = l.msisdn AND h.outcome = ")
                .bind(*outcome)
                .push(" AND h.responded_at >= ")
                .bind(cutoff(now, *days))
                .push(") ")
                .push(op.sql())
                .push(" ")
                .bind(*count)
                .push(")");
        }
        Node::Field {
            kind,
            column,
            op,
            value,
        } => {
            let op = *op;
            if *kind == Kind::Tenure {
                // tenure >= n  <=>  activated at or before now - n months.
                let Val::Int(n) = value else {
                    unreachable!("tenure values are integers")
                };
                let (months, cmp) = match op {
                    Op::Ge => (*n, "<="),
                    Op::Gt => (n + 1, "<="),
                    Op::Lt => (*n, ">"),
                    Op::Le => (n + 1, ">"),
                    _ => unreachable!("validated"),
                };
                sql.push("(")
                    .push(column)
                    .push(" ")
                    .push(cmp)
                    .push(" ")
                    .bind(cutoff(now, months * 30))
                    .push(")");
                return;
            }
            match (op, value) {
                (Op::In | Op::NotIn, Val::List(items)) => {
                    if op == Op::NotIn {
                        sql.push("(").push(column).push(" IS NULL OR ");
                    } else {
                        sql.push("(");
                    }
                    sql.push(column).push(if op == Op::NotIn {
                        " NOT IN ("
                    } else {
                        " IN ("
                    });
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        bind_val(sql, v);
                    }
                    sql.push("))");
                }
                (Op::Ne, v) => {
                    sql.push("(")
                        .push(column)
                        .push(" IS NULL OR ")
                        .push(column)
                        .push(" <> ");
                    bind_val(sql, v);
                    sql.push(")");
                }
                (op, v) => {
                    sql.push("(")
                        .push(column)
                        .push(" ")
                        .push(op.sql())
                        .push(" ");
                    bind_val(sql, v);
                    sql.push(")");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_grammar_names_every_field_and_history() {
        use utoipa::PartialSchema;
        let doc = serde_json::to_string(&super::super::Criteria::schema()).unwrap();
        for (name, _, _) in FIELDS {
            assert!(
                doc.contains(name),
                "field {name} is missing from the Criteria schema"
            );
        }
        for (name, _, _) in HISTORY {
            assert!(
                doc.contains(name),
                "history {name} is missing from the Criteria schema"
            );
        }
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::BadRequest { field: Some(f), .. } => f,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn compiles_to_bound_sql() {
        let n = parse(
            &json!({"all": [
                {"field": "value_tier", "op": "in", "value": ["gold", "platinum"]},
                {"field": "churn_score", "op": ">=", "value": 0.5},
                {"field": "region_id", "op": "=", "value": "r1' OR 1=1"},
                {"field": "tenure_months", "op": ">=", "value": 12},
                {"history": "accepted_offers_90d", "op": ">=", "value": 1}
            ]}),
            "criteria",
        )
        .unwrap();
        let mut sql = Sql::new("WHERE ");
        push(&mut sql, &n, chrono::Utc::now());
        assert!(!sql.text.contains("OR 1=1"), "{}", sql.text);
        assert!(
            sql.text.contains("c.value_tier IN ($1, $2)"),
            "{}",
            sql.text
        );
        assert_eq!(sql.args.len(), 8);
    }

    #[test]
    fn errors_name_the_path() {
        let e = parse(
            &json!({"all": [{"field": "value_tier", "op": "=", "value": "gold"}, {"field": "password", "op": "=", "value": "x"}]}),
            "criteria",
        )
        .unwrap_err();
        assert_eq!(field_of(e), "criteria.all[1].field");
        let e = parse(
            &json!({"any": [{"field": "churn_score", "op": ">=", "value": "high"}]}),
            "criteria",
        )
        .unwrap_err();
        assert_eq!(field_of(e), "criteria.any[0].value");
        let e = parse(
            &json!({"all": [{"field": "value_tier", "op": ">", "value": "gold"}]}),
            "criteria",
        )
        .unwrap_err();
        assert_eq!(field_of(e), "criteria.all[0].op");
        let e = parse(&json!({"all": []}), "criteria").unwrap_err();
        assert_eq!(field_of(e), "criteria.all");
        let e = parse(
            &json!({"not": {"history": "spend", "op": ">=", "value": 1}}),
            "criteria",
        )
        .unwrap_err();
        assert_eq!(field_of(e), "criteria.not.history");
        let e = parse(
            &json!({"all": [{"field": "plan", "op": "=", "value": "x", "sql": "1"}]}),
            "criteria",
        )
        .unwrap_err();
        assert_eq!(field_of(e), "criteria.all[0].sql");
    }
}
