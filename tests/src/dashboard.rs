//! The chart's Grafana dashboard and the metrics its queries read, so that each
//! component's tests can check that it exports every metric the dashboard shows.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::crds::repo_path;

/// The dashboard, as the chart ships it.
pub const DASHBOARD: &str = "charts/homestream/dashboards/homestream.json";

/// The dashboard's panel queries and variable queries.
///
/// # Errors
/// When the file cannot be read or is not JSON.
pub fn queries() -> Result<Vec<String>> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(repo_path(DASHBOARD))?)
        .with_context(|| format!("{DASHBOARD} is not JSON"))?;
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let targets = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .filter_map(|target| target["expr"].as_str());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|variable| variable["query"]["query"].as_str());
    Ok(targets.chain(variables).map(str::to_owned).collect())
}

/// The dashboard's queries as Prometheus gets them: Grafana's variables replaced by
/// values they take, a variable's `label_values(selector, label)` by its selector.
///
/// # Errors
/// As [`queries`].
pub fn promql() -> Result<Vec<String>> {
    Ok(queries()?
        .into_iter()
        .map(|query| {
            let query = query
                .replace("$__rate_interval", "5m")
                .replace("$namespace", ".*")
                .replace("$resource", ".*");
            match query
                .strip_prefix("label_values(")
                .and_then(|rest| rest.rsplit_once(','))
            {
                Some((selector, _label)) => selector.to_owned(),
                None => query,
            }
        })
        .collect())
}

/// The `homestream_` metric names the dashboard's queries read.
///
/// # Errors
/// As [`queries`].
pub fn queried_metrics() -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for query in queries()? {
        let mut rest = query.as_str();
        while let Some(start) = rest.find("homestream_") {
            let name: String = rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[start + name.len()..];
            names.insert(name);
        }
    }
    Ok(names)
}

/// The sample names a Prometheus text exposition has series for, from its `# TYPE`
/// lines: a counter's `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge's
/// own name (a family with no series yet still has its `# TYPE` line).
pub fn exported_samples(exposition: &str) -> BTreeSet<String> {
    let mut samples = BTreeSet::new();
    for line in exposition.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            samples.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
        }
    }
    samples
}

/// Checks that `exposition` (a component's `/metrics`, with a series in each labelled
/// family) exports every metric the dashboard reads that `selects` picks out as this
/// component's.
///
/// # Errors
/// When the dashboard cannot be read, reads none of the component's metrics, or reads
/// one the exposition lacks (named in the message).
pub fn check_exported(selects: impl Fn(&str) -> bool, exposition: &str) -> Result<()> {
    let queried: BTreeSet<String> = queried_metrics()?
        .into_iter()
        .filter(|name| selects(name))
        .collect();
    anyhow::ensure!(
        !queried.is_empty(),
        "{DASHBOARD} reads none of these metrics"
    );
    let exported = exported_samples(exposition);
    let missing: Vec<&String> = queried.difference(&exported).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{DASHBOARD} reads {missing:?}, which are not exported:\n{exposition}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_samples_follow_the_metric_types() {
        let exposition = "# HELP a_total A.\n# TYPE a counter\na_total 0\n\
                          # TYPE b histogram\n# TYPE c gauge\n# TYPE d counter\n";
        assert_eq!(
            exported_samples(exposition),
            ["a_total", "b_bucket", "b_count", "b_sum", "c", "d_total"]
                .into_iter()
                .map(str::to_owned)
                .collect()
        );
    }

    /// Needs promtool (from Debian's prometheus package, put in the cache by
    /// `tests/env/install-promtool.sh`, which `tests/env/stack up` runs).
    #[test]
    fn prometheus_parses_every_query_of_the_dashboard() {
        let queries = promql().unwrap();
        assert!(queries.len() > 10, "{queries:?}");
        let rules: Vec<Value> = queries
            .iter()
            .enumerate()
            .map(|(n, expr)| serde_json::json!({ "record": format!("dashboard:query{n}"), "expr": expr }))
            .collect();
        let file = std::env::temp_dir().join(crate::random_name("dashboard-rules"));
        let groups = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
        std::fs::write(&file, serde_yaml::to_string(&groups).unwrap()).unwrap();
        let checked = std::process::Command::new(crate::cache_tool("promtool").unwrap())
            .args(["check", "rules"])
            .arg(&file)
            .output();
        let _ = std::fs::remove_file(&file);
        let checked = checked.unwrap();
        assert!(
            checked.status.success(),
            "{}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }

    #[test]
    fn the_dashboard_reads_every_component_s_metrics() {
        let names = queried_metrics().unwrap();
        for prefix in [
            "homestream_stream_",
            "homestream_scrape_",
            "homestream_reconcile",
        ] {
            assert!(
                names.iter().any(|n| n.starts_with(prefix)),
                "{prefix}: {names:?}"
            );
        }
        let stream = |name: &str| name.starts_with("homestream_stream_");
        let missing = check_exported(stream, "# TYPE homestream_stream_records_in counter\n")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("homestream_stream_records_out_total"),
            "{missing}"
        );
    }
}
