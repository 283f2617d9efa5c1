//! The trajectory file: what one trajectory is, and how a JSONL file of them is
//! read strictly (a bad line is an error naming the line and the field).

use std::collections::BTreeSet;

use super::training::{Source, training_source};
use super::{Args, DATA, DAY_MS};

#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) intent: String,
    pub(super) resource: String,
    pub(super) class: String,
    pub(super) destinations: Vec<String>,
    pub(super) governance: bool,
    /// Offset from the trajectory's start.
    pub(super) offset_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Label {
    Benign,
    Attack,
}

#[derive(Debug, Clone)]
pub(super) struct Trajectory {
    pub(super) source: String,
    pub(super) id: String,
    pub(super) label: Label,
    pub(super) persona: String,
    pub(super) train: bool,
    pub(super) steps: Vec<Step>,
}

/// The trajectories of a JSONL text, one object a line (blank lines skipped), read
/// strictly: a line that is not a trajectory is an error naming the line and the field.
pub(super) fn parse(data: &str) -> Result<Vec<Trajectory>, String> {
    data.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| parse_line(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

pub(super) fn parse_line(line: &str) -> Result<Trajectory, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let text = |key: &str| match v.get(key) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(_) => Err(format!("field `{key}` must be a non-empty string")),
        None => Err(format!("field `{key}` is missing")),
    };
    let label = match text("label")?.as_str() {
        "benign" => Label::Benign,
        "attack" => Label::Attack,
        other => return Err(format!("field `label` must be `benign` or `attack`, not `{other}`")),
    };
    let train = match text("split")?.as_str() {
        "train" => true,
        "test" => false,
        other => return Err(format!("field `split` must be `train` or `test`, not `{other}`")),
    };
    if train && label == Label::Attack {
        return Err("an `attack` cannot be in the `train` split: agents learn from benign work only".into());
    }
    let steps = match v.get("steps") {
        Some(serde_json::Value::Array(steps)) if !steps.is_empty() => steps
            .iter()
            .enumerate()
            .map(|(i, s)| parse_step(s).map_err(|e| format!("steps[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("field `steps` must be a non-empty array".into()),
        None => return Err("field `steps` is missing".into()),
    };
    Ok(Trajectory {
        source: text("source")?,
        id: text("id")?,
        label,
        persona: text("persona")?,
        train,
        steps,
    })
}

pub(super) fn parse_step(s: &serde_json::Value) -> Result<Step, String> {
    let field = |key: &str, required: bool| match s.get(key) {
        Some(serde_json::Value::String(x)) if !(required && x.trim().is_empty()) => Ok(x.clone()),
        None if !required => Ok(String::new()),
        _ => Err(format!("field `{key}` must be a {}string", if required { "non-empty " } else { "" })),
    };
    let destinations = match s.get("dest") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(d)) => d
            .iter()
            .map(|x| x.as_str().filter(|x| !x.is_empty()).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("field `dest` must be an array of non-empty strings")?,
        Some(_) => return Err("field `dest` must be an array of non-empty strings".into()),
    };
    let governance = match s.get("gov") {
        None => false,
        Some(g) => g.as_bool().ok_or("field `gov` must be true or false")?,
    };
    let seconds = match s.get("t") {
        None => 0.0,
        Some(t) => t
            .as_f64()
            .filter(|t| t.is_finite() && (0.0..=DAY_MS as f64 / 1000.0).contains(t))
            .ok_or("field `t` must be the seconds since the trajectory's start, a number from 0 to 86400")?,
    };
    Ok(Step {
        intent: field("intent", true)?,
        resource: field("resource", false)?,
        class: field("class", false)?,
        destinations,
        governance,
        offset_ms: (seconds * 1000.0) as i64,
    })
}

/// The built-in trajectories and those of `--data`: ids unique per source, and every
/// persona with held-out work has training work (or a profile) to learn from.
pub(super) fn load(args: &Args) -> Result<Vec<Trajectory>, String> {
    let mut trajectories = parse(DATA).map_err(|e| format!("the built-in data, {e}"))?;
    if let Some(path) = &args.data {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--data {}: {e}", path.display()))?;
        let extra = parse(&text).map_err(|e| format!("--data {}, {e}", path.display()))?;
        if extra.is_empty() {
            return Err(format!("--data {}: holds no trajectory", path.display()));
        }
        trajectories.extend(extra);
    }
    let mut seen = BTreeSet::new();
    for t in &trajectories {
        if !seen.insert((t.source.as_str(), t.id.as_str(), t.label)) {
            return Err(format!(
                "trajectory `{}` of source `{}` appears twice with label {:?}",
                t.id, t.source, t.label
            ));
        }
    }
    for t in trajectories.iter().filter(|t| !t.train) {
        if let Source::Pool(pool) = training_source(&t.persona, &trajectories)
            && pool.is_empty()
        {
            return Err(format!(
                "persona `{}` (trajectory `{}`) has no `train` trajectory to learn from",
                t.persona, t.id
            ));
        }
    }
    Ok(trajectories)
}

/// The resource class, by the same rules as `data/convert.py` (an operator's table).
pub(super) fn class_of(resource: &str) -> &'static str {
    let name = resource.split_once(':').map_or(resource, |(_, n)| n);
    if resource.starts_with("env:") {
        let upper = name.to_ascii_uppercase();
        let secret = ["KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "DATABASE_URL"];
        if name == "*" || secret.iter().any(|s| upper.contains(s)) {
            return "prod/data/restricted";
        }
    }
    let secret = [".ssh/", "id_rsa", ".aws/credentials", ".pem", ".netrc", "credentials.json"];
    if secret.iter().any(|s| name.contains(s)) || name.ends_with("/.env") || name == ".env" {
        return "prod/data/restricted";
    }
    if ["payments:", "customer:", "cards", "vault:"].iter().any(|p| resource.starts_with(p))
        || ["payroll", "ssn", "finance/"].iter().any(|s| name.contains(s))
    {
        return "prod/data/restricted";
    }
    if ["db:", "account:", "orders", "tickets", "crm"].iter().any(|p| resource.starts_with(p)) {
        return "prod/data/confidential";
    }
    if resource.starts_with("web:") || resource.starts_with("twitter:") {
        return "external/data/public";
    }
    if resource.starts_with("vehicle")
        || resource.starts_with("crontab")
        || ["mcp.json", ".cursor/", ".agent/"].iter().any(|s| name.contains(s))
    {
        return "prod/control/internal";
    }
    "dev/data/internal"
}

pub(super) fn step(intent: &str, resource: &str, destination: Option<String>, offset_ms: i64) -> Step {
    Step {
        intent: intent.to_owned(),
        resource: resource.to_owned(),
        class: class_of(resource).to_owned(),
        destinations: destination.into_iter().collect(),
        governance: false,
        offset_ms,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn class_of_follows_the_converters_rule_for_environment_variables() {
        assert_eq!(super::class_of("env:AWS_SECRET_ACCESS_KEY"), "prod/data/restricted");
        assert_eq!(super::class_of("env:database_url"), "prod/data/restricted");
        assert_eq!(super::class_of("env:*"), "prod/data/restricted");
        assert_eq!(super::class_of("env:HOME"), "dev/data/internal");
    }
}
