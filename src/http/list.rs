//! List query strings (`?limit=&offset=&sort=&q=&<filter>=`) parsed against an endpoint's
//! whitelist into [`ListParams`]; anything unknown is a 400 naming the parameter.

use std::collections::HashMap;

use crate::http::ApiError;
use crate::store::{like_pattern, Arg, FilterKind, ListParams, ListSpec, DEFAULT_LIMIT, MAX_LIMIT};

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::field(name, "must be an integer"))
        })
        .transpose()
}

impl ListParams {
    /// Only `?limit=&offset=`, for a list held in memory in its own order ([`Page::of`]);
    /// anything else is a 400 naming it. Lists read from SQL name their order in a
    /// [`ListSpec`] and use [`ListParams::parse`].
    ///
    /// [`Page::of`]: crate::store::Page::of
    pub fn paging(q: &HashMap<String, String>) -> Result<ListParams, ApiError> {
        const IN_MEMORY: ListSpec = ListSpec {
            filters: &[],
            sorts: &[],
            default_sort: "",
            tiebreak: "",
        };
        ListParams::parse(&IN_MEMORY, q)
    }

    /// Parses and validates against `spec`; unknown parameters are rejected so typos don't
    /// silently return everything.
    pub fn parse(spec: &ListSpec, q: &HashMap<String, String>) -> Result<ListParams, ApiError> {
        ListParams::parse_with_search(spec, &[], q)
    }

    /// Like [`ListParams::parse`], also accepting `?q=`: a case-insensitive substring search
    /// over the text columns `search`.
    pub fn parse_with_search(
        spec: &ListSpec,
        search_columns: &'static [&'static str],
        q: &HashMap<String, String>,
    ) -> Result<ListParams, ApiError> {
        let limit = int_param(q, "limit")?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = int_param(q, "offset")?.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::field("offset", "must not be negative"));
        }
        let order_by = match q.get("sort").map(String::as_str) {
            None | Some("") => format!("{}, {}", spec.default_sort, spec.tiebreak),
            Some(_) if spec.sorts.is_empty() => {
                return Err(ApiError::field("sort", "this list has one order"));
            }
            Some(s) => {
                let (name, dir) = match s.strip_prefix('-') {
                    Some(n) => (n, "DESC"),
                    None => (s, "ASC"),
                };
                let col = spec
                    .sorts
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, c)| *c)
                    .ok_or_else(|| {
                        let names: Vec<&str> = spec.sorts.iter().map(|(n, _)| *n).collect();
                        ApiError::field("sort", format!("must be one of {}", names.join(", ")))
                    })?;
                format!("{col} {dir}, {}", spec.tiebreak)
            }
        };
        let mut filters = Vec::new();
        let mut search = None;
        let mut keys: Vec<&String> = q.keys().collect();
        keys.sort();
        for key in keys {
            if matches!(key.as_str(), "limit" | "offset" | "sort") {
                continue;
            }
            let raw = &q[key];
            if key == "q" && !search_columns.is_empty() {
                search = Some((search_columns, like_pattern(raw)));
                continue;
            }
            let (col, op, kind) = resolve_filter(spec, key)?;
            // `a,b` on an equality filter means either; ranges take one value.
            let values: Vec<&str> = if op == "=" {
                raw.split(',').map(str::trim).collect()
            } else {
                vec![raw.as_str()]
            };
            let args = values
                .iter()
                .map(|v| filter_value(key, kind, v))
                .collect::<Result<Vec<_>, _>>()?;
            let op = if args.len() > 1 { "IN" } else { op };
            filters.push((col, op, args));
        }
        Ok(ListParams {
            limit,
            offset,
            order_by,
            filters,
            search,
        })
    }
}

fn filter_value(key: &str, kind: FilterKind, raw: &str) -> Result<Arg, ApiError> {
    Ok(match kind {
        FilterKind::Text => Arg::Text(raw.to_string()),
        FilterKind::Int => {
            Arg::Int(raw.parse().map_err(|_| {
                ApiError::field(key, "must be an integer (or a comma-separated list)")
            })?)
        }
        FilterKind::Float => {
            Arg::Float(raw.parse().map_err(|_| {
                ApiError::field(key, "must be a number (or a comma-separated list)")
            })?)
        }
    })
}

/// A filter by exact name, or `<numeric filter>_min` / `_max` for a range.
fn resolve_filter(
    spec: &ListSpec,
    key: &str,
) -> Result<(&'static str, &'static str, FilterKind), ApiError> {
    if let Some((_, col, kind)) = spec.filters.iter().find(|(n, _, _)| *n == key) {
        return Ok((col, "=", *kind));
    }
    let range = [("_min", ">="), ("_max", "<=")]
        .into_iter()
        .find_map(|(suffix, op)| key.strip_suffix(suffix).map(|base| (base, op)));
    if let Some((base, op)) = range {
        let numeric = spec
            .filters
            .iter()
            .find(|(n, _, k)| *n == base && !matches!(k, FilterKind::Text));
        if let Some((_, col, kind)) = numeric {
            return Ok((col, op, *kind));
        }
    }
    Err(ApiError::field(key, "is not a filter of this list"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Sql;

    const SPEC: ListSpec = ListSpec {
        filters: &[
            ("status", "c.status", FilterKind::Text),
            ("churn_score", "c.churn_score", FilterKind::Float),
        ],
        sorts: &[("name", "c.name")],
        default_sort: "c.created_at",
        tiebreak: "c.id",
    };

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The customers query with `p`'s filters applied.
    fn filtered(p: &ListParams) -> Sql {
        let mut sql = Sql::new("customers c WHERE 1=1");
        p.push_filters(&mut sql);
        sql
    }

    #[test]
    fn sorts_only_whitelisted_columns() {
        let p = ListParams::parse(&SPEC, &q(&[("sort", "-name")])).unwrap();
        assert_eq!(p.order_by, "c.name DESC, c.id");
        let err = ListParams::parse(&SPEC, &q(&[("sort", "name; DROP TABLE x")])).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { field: Some(f), .. } if f == "sort"));
    }

    #[test]
    fn rejects_unknown_filters_and_bad_limits() {
        let err = ListParams::parse(&SPEC, &q(&[("colour", "red")])).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { field: Some(f), .. } if f == "colour"));
        assert!(ListParams::parse(&SPEC, &q(&[("limit", "501")])).is_err());
        assert!(ListParams::parse(&SPEC, &q(&[("limit", "0")])).is_err());
        let p = ListParams::parse(&SPEC, &q(&[])).unwrap();
        assert_eq!((p.limit, p.offset), (50, 0));
    }

    #[test]
    fn filters_become_bound_values() {
        let p = ListParams::parse(&SPEC, &q(&[("status", "x' OR 1=1")])).unwrap();
        let sql = filtered(&p);
        assert_eq!(sql.text, "customers c WHERE 1=1 AND c.status = $1");
        assert_eq!(sql.args, vec![Arg::Text("x' OR 1=1".into())]);
    }

    #[test]
    fn a_comma_list_means_any_of_them() {
        let p = ListParams::parse(&SPEC, &q(&[("status", "active, suspended")])).unwrap();
        let sql = filtered(&p);
        assert_eq!(sql.text, "customers c WHERE 1=1 AND c.status IN ($1, $2)");
        assert_eq!(
            sql.args,
            vec![Arg::Text("active".into()), Arg::Text("suspended".into())]
        );
        let err = ListParams::parse(&SPEC, &q(&[("churn_score", "0.1,x")])).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { field: Some(f), .. } if f == "churn_score"));
    }

    #[test]
    fn ranges_on_numbers_and_escaped_search() {
        let p = ListParams::parse_with_search(
            &SPEC,
            &["c.name"],
            &q(&[("churn_score_min", "0.5"), ("q", "50%_off")]),
        )
        .unwrap();
        assert!(
            ListParams::parse(&SPEC, &q(&[("q", "x")])).is_err(),
            "q needs columns"
        );
        let sql = filtered(&p);
        assert_eq!(
            sql.text,
            "customers c WHERE 1=1 AND c.churn_score >= $1 AND (LOWER(c.name) LIKE $2 ESCAPE '\\')"
        );
        assert_eq!(sql.args[1], Arg::Text("%50\\%\\_off%".into()));
        assert!(ListParams::parse(&SPEC, &q(&[("status_min", "a")])).is_err());
    }
}
