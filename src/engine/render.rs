//! Message and offer-code templates: `{country}`, `{profile.value_tier}`, `{country_name}`.

use rhai::Map;

use crate::rules::{country_name_in, Fact, Facts};

/// Fills `{name}` from the offer's vars, then the event's attributes, then `profile.*`.
/// Unknown names render empty: a message must still go out if an attribute is missing.
pub fn render(template: &str, vars: &Map, facts: &Facts<'_>) -> String {
    if !template.contains('{') {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&lookup(after[..close].trim(), vars, facts));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn lookup(name: &str, vars: &Map, facts: &Facts<'_>) -> String {
    if let Some(v) = vars.get(name) {
        return v.to_string();
    }
    if let Some(field) = name.strip_prefix("profile.") {
        return facts.profile(field).to_text();
    }
    match name {
        "msisdn" => facts.event.msisdn.to_string(),
        "country_name" => {
            let code = facts.attr("country").to_text();
            country_name_in(&code, &facts.profile.language)
                .map(str::to_string)
                .unwrap_or(code)
        }
        _ => match facts.attr(name) {
            Fact::None => String::new(),
            f => f.to_text(),
        },
    }
}
