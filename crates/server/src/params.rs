//! Query-string parsing with errors that name the parameter: repeated and comma-separated lists,
//! unknown parameters rejected.

use chrono::{DateTime, Utc};
use switchboard_core::{Error, ErrorKind};

/// The decoded `name=value` pairs of a query string.
#[derive(Debug, Default)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// Decodes a raw query string.
    pub fn parse(raw: Option<&str>) -> QueryPairs {
        QueryPairs(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// Fails with 422 naming the first parameter not in `known`, or given an empty value.
    pub fn only(&self, known: &[&'static str]) -> Result<&QueryPairs, Error> {
        for (k, v) in &self.0 {
            let Some(name) = known.iter().find(|n| **n == k.as_str()) else {
                return Err(Error::new(
                    ErrorKind::Unprocessable,
                    format!(
                        "unknown query parameter `{k}`; this route accepts: {}",
                        known.join(", ")
                    ),
                )
                .with_code("invalid_parameter"));
            };
            // `status=` or `status=open,` is a mistake, not "any status".
            if v.split(',').any(|item| item.trim().is_empty()) {
                return Err(Error::invalid_parameter(
                    name,
                    format!("`{name}` has an empty value"),
                ));
            }
        }
        Ok(self)
    }

    /// Every value of `name`, repeated or comma-separated, empty items dropped.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The single value of `name`; given twice is 422.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, Error> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(Error::invalid_parameter(
                name,
                format!("`{name}` may be given only once"),
            ));
        }
        Ok(first)
    }

    /// Parses every value of a list parameter with `parse`, naming the bad value.
    pub fn parsed_list<T>(
        &self,
        name: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, Error> {
        self.list(name)
            .into_iter()
            .map(|v| {
                parse(v).ok_or_else(|| {
                    Error::invalid_parameter(
                        name,
                        format!("`{name}` has an unknown value `{v}`; expected {expected}"),
                    )
                })
            })
            .collect()
    }

    /// An integer in `min..=max`, `default` when absent.
    pub fn limit(
        &self,
        name: &'static str,
        min: usize,
        max: usize,
        default: usize,
    ) -> Result<usize, Error> {
        match self.single(name)? {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    Error::invalid_parameter(
                        name,
                        format!("`{name}` must be an integer from {min} to {max}"),
                    )
                }),
        }
    }

    /// An RFC 3339 timestamp.
    pub fn timestamp(&self, name: &'static str) -> Result<Option<DateTime<Utc>>, Error> {
        self.single(name)?
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        Error::invalid_parameter(
                            name,
                            format!(
                                "`{name}` must be an RFC 3339 timestamp, e.g. 2026-01-15T10:30:00Z"
                            ),
                        )
                    })
            })
            .transpose()
    }

    /// `include=raw` (the only value `include` takes).
    pub fn include_raw(&self) -> Result<bool, Error> {
        let values = self.list("include");
        match values.iter().find(|v| **v != "raw") {
            Some(v) => Err(Error::invalid_parameter(
                "include",
                format!("`include` has an unknown value `{v}`; expected raw"),
            )),
            None => Ok(!values.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_singles_limits_and_times() {
        let q = QueryPairs::parse(Some(
            "status=open,resolved&status=closed&limit=5&updated_since=2026-01-01T00:00:00%2B02:00",
        ));
        assert_eq!(q.list("status"), ["open", "resolved", "closed"]);
        assert_eq!(q.limit("limit", 1, 100, 50).ok(), Some(5));
        assert_eq!(
            q.timestamp("updated_since")
                .ok()
                .flatten()
                .map(|t| t.to_rfc3339()),
            Some("2025-12-31T22:00:00+00:00".to_owned())
        );
        assert!(q.only(&["status", "limit"]).is_err());
        let bad = QueryPairs::parse(Some("limit=0&updated_since=yesterday&limit=3"));
        assert_eq!(
            bad.limit("limit", 1, 100, 50).err().map(|e| e.code()),
            Some("invalid_limit")
        );
        assert_eq!(
            bad.timestamp("updated_since").err().map(|e| e.code()),
            Some("invalid_updated_since")
        );
    }
}
