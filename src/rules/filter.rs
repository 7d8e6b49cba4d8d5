//! Declarative pre-filters (`when`, `audience`): checked natively before any script runs,
//! so most events never reach Rhai.

use super::facts::{Fact, Facts};
use super::query::{parse_expr, StateQuery};

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Attr(String),
    Profile(String),
    State(StateQuery),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Num(f64),
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cmp {
    Eq(Lit),
    Ne(Lit),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    In(Vec<Lit>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub operand: Operand,
    pub cmp: Cmp,
    /// The key as written, for messages.
    pub text: String,
}

/// Parses a filter key: `country`, `profile.value_tier`, `count(sms, 24h)`.
pub fn parse_operand(key: &str, profile_only: bool) -> Result<Operand, String> {
    if let Some(q) = parse_expr(key)? {
        if profile_only {
            return Err(format!(
                "{key:?}: audience filters read profile fields only"
            ));
        }
        return Ok(Operand::State(q));
    }
    if profile_only {
        return Ok(Operand::Profile(
            key.trim_start_matches("profile.").to_string(),
        ));
    }
    Ok(match key.strip_prefix("profile.") {
        Some(f) => Operand::Profile(f.to_string()),
        None => Operand::Attr(key.to_string()),
    })
}

fn lit(v: &rhai::Dynamic) -> Result<Lit, String> {
    if let Some(b) = v.clone().try_cast::<bool>() {
        return Ok(Lit::Bool(b));
    }
    if let Some(i) = v.clone().try_cast::<i64>() {
        return Ok(Lit::Num(i as f64));
    }
    if let Some(f) = v.clone().try_cast::<f64>() {
        return Ok(Lit::Num(f));
    }
    if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        return Ok(Lit::Text(s.to_string()));
    }
    Err(format!("{v} is not a number, text or true/false"))
}

/// Parses a filter value: `true`, `"JP"`, `["gold", "platinum"]`, `">= 3"`, `"!= CN"`.
pub fn parse_cmp(v: &rhai::Dynamic) -> Result<Cmp, String> {
    if let Some(arr) = v.clone().try_cast::<rhai::Array>() {
        return arr.iter().map(lit).collect::<Result<_, _>>().map(Cmp::In);
    }
    if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        let t = s.trim();
        for (op, mk) in [
            (">=", Cmp::Ge as fn(f64) -> Cmp),
            ("<=", Cmp::Le),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
        ] {
            if let Some(rest) = t.strip_prefix(op) {
                let n: f64 = rest
                    .trim()
                    .parse()
                    .map_err(|_| format!("{t:?}: after {op} write a number, like \"{op} 3\""))?;
                return Ok(mk(n));
            }
        }
        if let Some(rest) = t.strip_prefix("!=") {
            let rest = rest.trim();
            return Ok(Cmp::Ne(match rest.parse::<f64>() {
                Ok(n) => Lit::Num(n),
                Err(_) => Lit::Text(rest.to_string()),
            }));
        }
        if let Some(rest) = t.strip_prefix("==") {
            return Ok(Cmp::Eq(Lit::Text(rest.trim().to_string())));
        }
    }
    lit(v).map(Cmp::Eq)
}

fn eq(f: &Fact, l: &Lit) -> bool {
    match (f, l) {
        (Fact::Num(a), Lit::Num(b)) => a == b,
        (Fact::Text(a), Lit::Text(b)) => a == b,
        (Fact::Bool(a), Lit::Bool(b)) => a == b,
        _ => false,
    }
}

impl Predicate {
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        let fact = match &self.operand {
            Operand::Attr(a) => facts.attr(a),
            Operand::Profile(p) => facts.profile(p),
            Operand::State(q) => facts.query(q),
        };
        let num = |f: &Fact| match f {
            Fact::Num(n) => Some(*n),
            _ => None,
        };
        match &self.cmp {
            Cmp::Eq(l) => eq(&fact, l),
            Cmp::Ne(l) => !eq(&fact, l),
            Cmp::In(ls) => ls.iter().any(|l| eq(&fact, l)),
            Cmp::Lt(n) => num(&fact).is_some_and(|v| v < *n),
            Cmp::Le(n) => num(&fact).is_some_and(|v| v <= *n),
            Cmp::Gt(n) => num(&fact).is_some_and(|v| v > *n),
            Cmp::Ge(n) => num(&fact).is_some_and(|v| v >= *n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comparisons() {
        assert_eq!(parse_cmp(&">= 3".into()), Ok(Cmp::Ge(3.0)));
        assert_eq!(parse_cmp(&"< 0.5".into()), Ok(Cmp::Lt(0.5)));
        assert_eq!(
            parse_cmp(&"!= CN".into()),
            Ok(Cmp::Ne(Lit::Text("CN".into())))
        );
        assert_eq!(parse_cmp(&true.into()), Ok(Cmp::Eq(Lit::Bool(true))));
        assert_eq!(parse_cmp(&"JP".into()), Ok(Cmp::Eq(Lit::Text("JP".into()))));
        let arr: rhai::Array = vec!["gold".into(), "platinum".into()];
        assert!(matches!(parse_cmp(&arr.into()), Ok(Cmp::In(v)) if v.len() == 2));
        assert!(parse_cmp(&">= lots".into())
            .unwrap_err()
            .contains("write a number"));
    }

    #[test]
    fn parses_operands() {
        assert_eq!(
            parse_operand("country", false),
            Ok(Operand::Attr("country".into()))
        );
        assert_eq!(
            parse_operand("profile.value_tier", false),
            Ok(Operand::Profile("value_tier".into()))
        );
        assert!(matches!(
            parse_operand("count(sms, 24h)", false),
            Ok(Operand::State(_))
        ));
        assert!(parse_operand("count(sms, 24h)", true).is_err());
    }
}
