//! A synthetic fleet for benchmarks: 2,000 agents in 50 teams, 300 resources and
//! 10,000 policies, and random requests against them. Shared by the policy-only
//! benchmark (`decide_bench`) and the full decision-path benchmark in `warden-bench`.

use warden_policy::{AgentFacts, PolicySource, Request, RequestContext, ResourceFacts, SessionFacts};

pub const AGENTS: usize = 2_000;
pub const TEAMS: usize = 50;
pub const RESOURCES: usize = 300;
pub const PERMITS_PER_AGENT: usize = 4;
pub const RULES_PER_RESOURCE: usize = 5;
pub const FORBIDS_PER_TEAM: usize = 9;
pub const REQUESTS: usize = 200_000;
pub const WARMUP_REQUESTS: usize = 20_000;

pub const INTENTS: [&str; 40] = [
    "ticket.create",
    "ticket.read",
    "ticket.update",
    "ticket.delete",
    "ticket.comment",
    "db.read:sanitized",
    "db.read:raw",
    "db.write",
    "db.schema:migrate",
    "db.admin:grant",
    "payment.create",
    "payment.refund",
    "payment.read",
    "git.read",
    "git.push",
    "git.merge",
    "git.branch:delete",
    "deploy.staging",
    "deploy.prod",
    "deploy.rollback",
    "policy.read",
    "policy.update",
    "budget.update",
    "credential.rotate",
    "secrets.read",
    "email.send",
    "slack.post",
    "http.get",
    "http.post",
    "file.read",
    "file.write",
    "file.delete",
    "search.web",
    "crm.read",
    "crm.update",
    "k8s.scale",
    "k8s.exec",
    "k8s.logs:read",
    "calendar.read",
    "calendar.write",
];
pub const GROUPS: [&str; 12] = [
    "ticket", "db", "db.read", "payment", "git", "deploy", "file", "crm", "k8s", "calendar", "http", "policy",
];
pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];
pub const PLANES: [&str; 3] = ["data", "control", "maintenance"];
pub const DATA_CLASSES: [&str; 4] = ["public", "internal", "confidential", "restricted"];

/// SplitMix64: small, fast, and replayable from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

pub fn agent_environment(agent: usize) -> &'static str {
    ENVIRONMENTS[agent % 3]
}

pub fn team(agent: usize) -> usize {
    agent % TEAMS
}

pub fn resource(index: usize) -> ResourceFacts {
    ResourceFacts {
        id: format!("res_{index:03}"),
        plane: PLANES[index % 3].to_owned(),
        environment: ENVIRONMENTS[(index / 3) % 3].to_owned(),
        data_class: DATA_CLASSES[(index / 9) % 4].to_owned(),
    }
}

/// Per-agent permits; returns the intents each agent is permitted by name, which
/// most generated requests then use (agents mostly do what they are meant to do).
pub fn agent_permits(rng: &mut Rng, sources: &mut Vec<PolicySource>) -> Vec<Vec<&'static str>> {
    let conditions = [
        "resource.environment == principal.agent.environment",
        "resource.data_class != \"restricted\"",
        "context.budget_tool_calls_left > 0 && principal.agent.status == \"active\"",
        "resource.plane == \"data\" && context.hour_utc >= 6 && context.hour_utc < 22",
    ];
    let mut permitted = vec![Vec::new(); AGENTS];
    for (agent, named) in permitted.iter_mut().enumerate() {
        for n in 0..PERMITS_PER_AGENT {
            let action = if n == 0 {
                format!("action in Warden::Action::\"{}\"", rng.pick(&GROUPS))
            } else {
                let intent = rng.pick(&INTENTS);
                named.push(intent);
                format!("action == Warden::Action::\"{intent}\"")
            };
            let text = format!(
                "permit (principal in Warden::Agent::\"agt_{agent:04}\", {action}, resource) when {{ {} }};",
                rng.pick(&conditions)
            );
            sources.push(PolicySource { id: format!("agent/agt_{agent:04}/{n}"), text });
        }
    }
    permitted
}

pub fn resource_rules(rng: &mut Rng, sources: &mut Vec<PolicySource>) {
    for index in 0..RESOURCES {
        for n in 0..RULES_PER_RESOURCE {
            let scope = format!("resource == Warden::Resource::\"res_{index:03}\"");
            let text = match n {
                0 => format!(
                    "forbid (principal, action in Warden::Action::\"db\", {scope}) unless {{ principal.agent.owner == \"team-{:02}\" }};",
                    index % TEAMS
                ),
                1 => format!(
                    "@decision(\"confirm\") permit (principal, action == Warden::Action::\"{}\", {scope}) when {{ context.writes < 100 }};",
                    rng.pick(&INTENTS)
                ),
                2 => format!(
                    "forbid (principal, action, {scope}) when {{ context.argument_destinations.contains(\"evil-{index}.example\") }};"
                ),
                3 => format!(
                    "@decision(\"approve\") forbid (principal, action in Warden::Action::\"{}\", {scope}) when {{ context.bytes > 1000000 }};",
                    rng.pick(&GROUPS)
                ),
                _ => format!(
                    "permit (principal, action == Warden::Action::\"{}\", {scope}) when {{ principal.agent.owner == \"team-{:02}\" }};",
                    rng.pick(&INTENTS),
                    rng.below(TEAMS)
                ),
            };
            sources.push(PolicySource { id: format!("resource/res_{index:03}/{n}"), text });
        }
    }
}

pub fn team_forbids(rng: &mut Rng, sources: &mut Vec<PolicySource>) {
    let conditions = [
        "resource.environment == \"prod\"",
        "resource.data_class == \"restricted\"",
        "resource.plane == \"control\"",
        "context.in_flight > 20",
    ];
    for team in 0..TEAMS {
        for n in 0..FORBIDS_PER_TEAM {
            let action = if n % 3 == 0 {
                format!("action in Warden::Action::\"{}\"", rng.pick(&GROUPS))
            } else {
                format!("action == Warden::Action::\"{}\"", rng.pick(&INTENTS))
            };
            let text = format!(
                "forbid (principal in Warden::Owner::\"team-{team:02}\", {action}, resource) when {{ {} }};",
                rng.pick(&conditions)
            );
            sources.push(PolicySource { id: format!("team/team-{team:02}/{n}"), text });
        }
    }
}

pub fn global_policies(sources: &mut Vec<PolicySource>) {
    let texts = [
        "@decision(\"approve\") @reason(\"risk above 0.7\") forbid (principal, action, resource) when { context.risk_permille > 700 };",
        "@decision(\"confirm\") forbid (principal, action, resource) when { context.risk_permille > 400 };",
        "forbid (principal, action, resource) when { context.self_governance };",
        "forbid (principal, action, resource) unless { principal.agent.status == \"active\" };",
        "forbid (principal, action, resource) when { context.budget_tool_calls_left <= 0 };",
        "@decision(\"approve\") forbid (principal, action in Warden::Action::\"deploy\", resource) when { resource.environment == \"prod\" };",
        "@decision(\"approve\") forbid (principal, action == Warden::Action::\"db.read:raw\", resource) when { resource.data_class == \"restricted\" };",
        "@decision(\"confirm\") forbid (principal, action in [Warden::Action::\"ticket.delete\", Warden::Action::\"file.delete\"], resource);",
        "forbid (principal, action in Warden::Action::\"policy\", resource) unless { context.hour_utc >= 8 && context.hour_utc < 18 };",
        "@shadow(\"true\") forbid (principal, action == Warden::Action::\"http.post\", resource) when { context.arguments like \"*password*\" };",
    ];
    for n in 0..50 {
        let text = texts[n % texts.len()];
        let text = if n < texts.len() {
            text.to_owned()
        } else {
            // Variants of the same rules scoped to one intent each.
            text.replace(
                "(principal, action,",
                &format!("(principal, action == Warden::Action::\"{}\",", INTENTS[n % INTENTS.len()]),
            )
        };
        sources.push(PolicySource { id: format!("global/{n}"), text });
    }
}

/// A request of a random agent: 80% for an intent it is permitted by name.
pub fn request(rng: &mut Rng, permitted: &[Vec<&'static str>]) -> Request {
    let agent = rng.below(AGENTS);
    let intent = match rng.below(5) {
        0 => rng.pick(&INTENTS),
        _ => rng.pick(&permitted[agent]),
    };
    let risk_permille = if rng.below(10) == 0 { rng.below(1001) as u16 } else { 0 };
    Request {
        agent: AgentFacts {
            id: format!("agt_{agent:04}"),
            owner: format!("team-{:02}", team(agent)),
            environment: agent_environment(agent).to_owned(),
            status: "active".to_owned(),
            scopes: vec!["tickets".to_owned(), "db".to_owned()],
        },
        session: SessionFacts {
            id: format!("sess_{agent:04}_{}", rng.below(8)),
            purpose: "triage".to_owned(),
        },
        intent: intent.to_owned(),
        resource: resource(rng.below(RESOURCES)),
        context: RequestContext {
            tool_calls: rng.below(500) as u64,
            writes: rng.below(120) as u64,
            bytes: rng.below(2_000_000) as u64,
            in_flight: rng.below(25) as u64,
            budget_tool_calls_left: rng.below(1_000) as u64,
            budget_writes_left: rng.below(100) as u64,
            budget_bytes_left: rng.below(10_000_000) as u64,
            now_unix_s: 1_776_000_000 + rng.below(86_400) as i64,
            risk_permille,
            self_governance: rng.below(100) == 0,
            arguments: r#"{"query":"select id, status from orders where id = 42"}"#.to_owned(),
            argument_destinations: vec!["db.internal".to_owned()],
        },
    }
}

/// The intent catalogue, the 10,000 policies and, per agent, the intents it is
/// permitted by name.
pub fn build(seed: u64) -> (Vec<String>, Vec<PolicySource>, Vec<Vec<&'static str>>, Rng) {
    let mut rng = Rng(seed);
    let intents: Vec<String> = INTENTS.iter().map(|&intent| intent.to_owned()).collect();
    let mut sources = Vec::new();
    let permitted = agent_permits(&mut rng, &mut sources);
    resource_rules(&mut rng, &mut sources);
    team_forbids(&mut rng, &mut sources);
    global_policies(&mut sources);
    (intents, sources, permitted, rng)
}
