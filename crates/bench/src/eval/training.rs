//! Where each persona's training traffic comes from: the profiles written for the
//! personas of the converted attack sets (from their tool inventories, never from
//! the test traces), or the train-split trajectories of a pooled role (a BFCL
//! role's calls to its APIs, a τ²-bench domain's calls); and one session of normal
//! work drawn from either.

use crate::behavior::Rng;

use super::data::{Step, Trajectory, step};

/// One tool in a persona profile: intent, resource pattern, destination pattern
/// (`{n}` and `{d}` drawn from a pool of `pool`; a destination is new to everyone
/// with probability `fresh`).
pub(super) type Tool = (&'static str, &'static str, &'static str, usize, f64);

/// Training profiles for the personas of the converted attack sets. Written from
/// each persona's tool inventory and ordinary duties, not from the test traces.
pub(super) const PROFILES: &[(&str, &[&[Tool]], Tool)] = &[
    (
        "research-assistant",
        &[
            &[
                ("web.fetch_url", "web:site{d}.example", "host:site{d}.example", 60, 0.25),
                ("read_file", "file:notes/topic{n}.md", "", 40, 0.0),
                ("send_email", "mail:outbound", "email:team{d}.acme.example", 5, 0.0),
            ],
            &[
                ("search_web", "web:search", "host:search.example", 1, 0.0),
                ("web.fetch_url", "web:site{d}.example", "host:site{d}.example", 60, 0.25),
                ("write_file", "file:notes/topic{n}.md", "", 40, 0.0),
            ],
        ],
        ("read_file", "file:papers/archive{n}.pdf", "", 30, 0.0),
    ),
    (
        "inbox-assistant",
        &[
            &[
                ("read_email", "mailbox:inbox", "", 1, 0.0),
                ("lookup_order", "orders", "", 1, 0.0),
                ("send_email", "mail:outbound", "email:customer{d}.example", 300, 0.3),
            ],
            &[
                ("read_email", "mailbox:inbox", "", 1, 0.0),
                ("archive_email", "mailbox:inbox", "", 1, 0.0),
                ("read_email", "mailbox:inbox", "", 1, 0.0),
            ],
            &[
                ("read_email", "mailbox:inbox", "", 1, 0.0),
                ("read_file", "file:templates/reply{n}.md", "", 12, 0.0),
                ("send_email", "mail:outbound", "email:customer{d}.example", 300, 0.3),
            ],
        ],
        ("calendar.read", "calendar", "", 1, 0.0),
    ),
    (
        "coding-agent",
        &[
            &[
                ("read_file", "file:src/module{n}.rs", "", 80, 0.0),
                ("write_file", "file:src/module{n}.rs", "", 80, 0.0),
                ("shell.cargo.test", "shell:cargo", "", 1, 0.0),
                ("shell.git.diff", "shell:git", "", 1, 0.0),
            ],
            &[
                ("shell.git.status", "shell:git", "", 1, 0.0),
                ("shell.git.add", "shell:git", "", 1, 0.0),
                ("shell.git.commit", "shell:git", "", 1, 0.0),
                ("shell.git.push", "shell:git", "host:github.com", 1, 0.0),
            ],
            &[
                ("shell.ls", "file:./services/svc{n}", "", 20, 0.0),
                ("shell.cat", "file:./services/svc{n}/README.md", "", 20, 0.0),
                ("shell.grep", "file:./services/svc{n}", "", 20, 0.0),
            ],
            &[
                ("shell.python3", "file:scripts/tool{n}.py", "", 15, 0.0),
                ("shell.bash", "file:scripts/run{n}.sh", "", 10, 0.0),
                ("shell.tail", "file:logs/app{n}.log", "", 4, 0.0),
            ],
            &[
                ("shell.curl", "web:api.github.com", "host:api.github.com", 1, 0.0),
                ("shell.jq", "shell:jq", "", 1, 0.0),
                ("shell.npm.install", "shell:npm", "host:registry.npmjs.org", 1, 0.0),
            ],
            &[
                ("sql.select", "db:table{n}", "", 12, 0.0),
                ("sql.delete", "db:sessions", "", 1, 0.0),
                ("shell.rm", "file:./build/tmp{n}", "", 5, 0.0),
                ("shell.mkdir", "file:./build/out{n}", "", 5, 0.0),
            ],
        ],
        ("shell.docker.ps", "shell:docker", "", 1, 0.0),
    ),
    (
        "support-agent",
        &[
            &[
                ("search_tickets", "tickets", "", 1, 0.0),
                ("crm.lookup_customer", "customer:CX-{n}", "", 90_000, 0.0),
                ("send_message", "mail:outbound", "email:client{d}.example", 400, 0.35),
                ("crm.resolve_ticket", "tickets", "", 1, 0.0),
            ],
            &[
                ("get_ticket", "tickets", "", 1, 0.0),
                ("crm.lookup_customer", "customer:CX-{n}", "", 90_000, 0.0),
                ("crm.resolve_ticket", "tickets", "", 1, 0.0),
            ],
            &[
                ("search_tickets", "tickets", "", 1, 0.0),
                ("search_tickets", "tickets", "", 1, 0.0),
                ("get_ticket", "tickets", "", 1, 0.0),
            ],
        ],
        ("crm.update_customer", "customer:CX-{n}", "", 90_000, 0.0),
    ),
    (
        "cloud-ops-agent",
        &[
            &[
                ("shell.az.vm.list", "shell:az", "", 1, 0.0),
                ("shell.az.monitor.metrics.list", "shell:az", "", 1, 0.0),
                ("shell.kubectl.get.pods", "cloud:k8s-prod", "", 1, 0.0),
                ("shell.kubectl.logs", "cloud:k8s-prod", "", 1, 0.0),
            ],
            &[
                ("shell.az.group.list", "shell:az", "", 1, 0.0),
                ("shell.az.role.assignment.list", "shell:az", "", 1, 0.0),
                ("shell.az.storage.account.list", "shell:az", "", 1, 0.0),
            ],
            &[
                ("shell.kubectl.rollout.restart", "cloud:k8s-prod", "", 1, 0.0),
                ("shell.kubectl.get.pods", "cloud:k8s-prod", "", 1, 0.0),
            ],
        ],
        ("shell.az.network.vnet.list", "shell:az", "", 1, 0.0),
    ),
    (
        "ide-assistant",
        &[
            &[
                ("read_file", "file:src/app{n}.ts", "", 60, 0.0),
                ("write_file", "file:src/app{n}.ts", "", 60, 0.0),
                ("shell.npm.test", "shell:npm", "", 1, 0.0),
            ],
            &[
                ("read_file", "file:package.json", "", 1, 0.0),
                ("read_file", "file:config/app.json", "", 1, 0.0),
                ("write_file", "file:config/app.json", "", 1, 0.0),
            ],
        ],
        ("read_file", "file:docs/guide{n}.md", "", 10, 0.0),
    ),
    (
        "executive-assistant",
        &[
            &[
                ("read_document", "docs", "", 1, 0.0),
                ("calendar.read", "calendar", "", 1, 0.0),
                ("send_email", "mail:outbound", "email:partner{d}.example", 80, 0.2),
            ],
            &[
                ("calendar.write", "calendar", "", 1, 0.0),
                ("write_memory", "memory:standing", "", 1, 0.0),
                ("read_document", "docs", "", 1, 0.0),
            ],
        ],
        ("search_web", "web:search", "host:search.example", 1, 0.0),
    ),
    (
        "payments-agent",
        &[
            &[
                ("payments.read_invoice", "payments:invoices", "", 1, 0.0),
                ("payments.request_approval", "payments:approvals", "", 1, 0.0),
                ("payments.wire_transfer", "payments:wire", "account:VENDOR{d}", 120, 0.15),
            ],
            &[
                ("payments.read_invoice", "payments:invoices", "", 1, 0.0),
                ("payments.list_payments", "payments:wire", "", 1, 0.0),
            ],
        ],
        ("payments.refund", "payments:wire", "account:VENDOR{d}", 120, 0.0),
    ),
    (
        "orchestrator",
        &[
            &[
                ("vector_search", "kb:vectors", "", 1, 0.0),
                ("vector_search", "kb:vectors", "", 1, 0.0),
                ("delegate_task", "agents", "", 1, 0.0),
                ("get_quote", "orders", "", 1, 0.0),
            ],
            &[("vector_search", "kb:vectors", "", 1, 0.0), ("create_order", "orders", "", 1, 0.0)],
        ],
        ("kb.reindex", "kb:vectors", "", 1, 0.0),
    ),
    (
        // CodeIPI's agent: `bash` and `python` in a small Python repository at
        // /workspace, fixing a reported bug and running the tests. Written from that
        // tool inventory and the benign samples' task descriptions (never from the
        // injected text or the held-out steps), in the calls `convert_codeipi.py` maps
        // bash lines to: files read with `cat` and written with `tee`, paths under
        // /workspace, the tests run as `cd /workspace && python -m pytest tests/ -q`.
        "codeipi:python-dev",
        &[
            // Fix a bug: look, read the module and its test, rewrite the module, test.
            &[
                ("shell.ls", "file:/workspace", "", 1, 0.0),
                ("shell.cat", "file:/workspace/src/module{n}.py", "", 40, 0.0),
                ("shell.cat", "file:/workspace/tests/test_module{n}.py", "", 40, 0.0),
                ("shell.tee", "file:/workspace/src/module{n}.py", "", 40, 0.0),
                ("shell.cd", "file:/workspace", "", 1, 0.0),
                ("shell.python", "file:tests/", "", 1, 0.0),
            ],
            // Reproduce the report with `python -c` (the reports give one-line
            // reproductions), add a regression test, test.
            &[
                ("shell.cat", "file:/workspace/src/module{n}.py", "", 40, 0.0),
                ("shell.python", "shell:python", "", 1, 0.0),
                ("shell.tee", "file:/workspace/tests/test_module{n}.py", "", 40, 0.0),
                ("shell.cd", "file:/workspace", "", 1, 0.0),
                ("shell.python", "file:tests/", "", 1, 0.0),
            ],
            // Find one's way: the README, the project file, a search of the sources.
            &[
                ("shell.ls", "file:/workspace/src", "", 1, 0.0),
                ("shell.cat", "file:/workspace/README.md", "", 1, 0.0),
                ("shell.cat", "file:/workspace/pyproject.toml", "", 1, 0.0),
                ("shell.grep", "file:/workspace/src", "", 1, 0.0),
            ],
            // Review the change.
            &[("shell.git.status", "shell:git", "", 1, 0.0), ("shell.git.diff", "shell:git", "", 1, 0.0)],
            // Set the project up (`pip install -e .`, `pip install -r requirements.txt`:
            // no path or URL in the line, so `shell:pip`), then test.
            &[
                ("shell.pip", "shell:pip", "", 1, 0.0),
                ("shell.cd", "file:/workspace", "", 1, 0.0),
                ("shell.python", "file:tests/", "", 1, 0.0),
            ],
            // Run a module as a script (`python /workspace/src/setup_db.py`).
            &[
                ("shell.cat", "file:/workspace/src/module{n}.py", "", 40, 0.0),
                ("shell.python", "file:/workspace/src/module{n}.py", "", 40, 0.0),
            ],
        ],
        // The eval's other tool, `python`, which the bash-only work above never uses;
        // mapped as `convert.py` maps a tool it has no rule for.
        ("python", "tool:python", "", 1, 0.0),
    ),
];

pub(super) fn instantiate(rng: &mut Rng, tool: &Tool, offset_ms: i64) -> Step {
    let (intent, resource, destination, pool, fresh) = *tool;
    let n = rng.skewed(pool.max(1));
    let d = if rng.chance(fresh) { 1_000_000 + rng.below(1_000_000_000) } else { rng.skewed(pool.max(1)) };
    let fill = |p: &str| p.replace("{n}", &n.to_string()).replace("{d}", &d.to_string());
    let destination = (!destination.is_empty()).then(|| fill(destination));
    step(intent, &fill(resource), destination, offset_ms)
}

/// Where training traffic for a persona comes from.
pub(super) enum Source<'a> {
    /// Train-split trajectories of the persona's role: BFCL ones restricted to the
    /// role's APIs, or a τ²-bench domain's.
    Pool(Vec<Vec<Step>>),
    /// A profile's tasks.
    Profile(&'a [&'a [Tool]]),
}

pub(super) fn bfcl_apis(persona: &str) -> Vec<String> {
    persona.strip_prefix("bfcl:").map(|r| r.split('+').map(|a| format!("{a}.")).collect()).unwrap_or_default()
}

/// The steps of `t` that are the pooled persona's own work: for a BFCL role, the calls
/// to its APIs in any BFCL trajectory; for a τ²-bench domain (`tau2:retail`), every
/// call of that domain's trajectories.
pub(super) fn role_steps<'t>(persona: &str, t: &'t Trajectory) -> Vec<&'t Step> {
    if persona.starts_with("bfcl:") {
        if !t.source.starts_with("bfcl") {
            return Vec::new();
        }
        let apis = bfcl_apis(persona);
        t.steps.iter().filter(|s| apis.iter().any(|a| s.intent.starts_with(a))).collect()
    } else if t.persona == persona {
        t.steps.iter().collect()
    } else {
        Vec::new()
    }
}

pub(super) fn training_source<'a>(persona: &str, trajectories: &[Trajectory]) -> Source<'a> {
    if let Some((_, tasks, _)) = PROFILES.iter().find(|(p, _, _)| *p == persona) {
        return Source::Profile(tasks);
    }
    let pool = trajectories
        .iter()
        .filter(|t| t.train)
        .map(|t| role_steps(persona, t).into_iter().cloned().collect::<Vec<_>>())
        .filter(|s: &Vec<Step>| !s.is_empty())
        .collect();
    Source::Pool(pool)
}

/// One session of normal work: a few tasks, calls 5–40 s apart.
pub(super) fn session(rng: &mut Rng, source: &Source<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut offset = 0i64;
    for _ in 0..1 + rng.below(3) {
        let task: Vec<Step> = match source {
            Source::Pool(pool) => pool.get(rng.below(pool.len())).cloned().unwrap_or_default(),
            Source::Profile(tasks) => tasks
                .get(rng.below(tasks.len()))
                .map(|tools| tools.iter().map(|t| instantiate(rng, t, 0)).collect())
                .unwrap_or_default(),
        };
        for mut s in task {
            offset += 5_000 + rng.below(35_000) as i64;
            s.offset_ms = offset;
            steps.push(s);
        }
        offset += 30_000 + rng.below(120_000) as i64;
    }
    steps
}
