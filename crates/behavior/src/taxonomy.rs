//! What actions mean to an attacker: intent families, resource classes, and the
//! declarative table of multi-step chains mapped to MITRE ATT&CK tactics.
//!
//! Names are classified once, when they are first interned, by glob rules
//! ([`Rule`]); the hot path only tests bits.

use std::fmt;

/// A set of [`Family`] bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Families(pub u16);

/// What an action or resource can serve in an attack chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
    /// Listing, searching, enumerating: learning what is there.
    Discovery = 0,
    /// Reading secrets, keys, tokens, credential files.
    CredentialAccess = 1,
    /// Reading sensitive data in bulk (raw tables, exports, payroll).
    Collection = 2,
    /// Running code or commands.
    Execution = 3,
    /// Reaching other hosts, clusters or identities.
    LateralMovement = 4,
    /// Sending data out: email, HTTP posts, uploads, payments.
    Egress = 5,
    /// Deleting, dropping, destroying.
    Impact = 6,
    /// Surviving the session: scheduled jobs, standing memory, installed servers.
    Persistence = 7,
    /// Granting roles or permissions.
    PrivilegeEscalation = 8,
    /// Blinding oversight: audit logs, telemetry, hooks.
    DefenseEvasion = 9,
    /// Changing policy, budgets, baselines or credentials.
    Governance = 10,
    /// The resource holds sensitive data (restricted, secret).
    Sensitive = 11,
    /// The intent only reads: a resource's persistence, evasion or impact families do
    /// not apply to it (reading a crontab is not persistence), nor do the privilege
    /// escalation or governance its name suggests (listing roles grants nothing).
    ReadOnly = 12,
    /// The intent's name also says it changes something (`grant`, `create`, `update`…):
    /// it is not read-only whatever else its name matches (`iam.grant_read`,
    /// `budget.update`).
    Mutating = 13,
    /// The resource holds content from outside the organization (web pages, inbound
    /// mail): what an injected instruction rides in on.
    Untrusted = 14,
    /// The resource governs how systems run (the production control plane: agent
    /// tool configuration, schedulers, devices): dangerous to change, not to read,
    /// so a read-only intent does not take it (reading a crontab changes nothing).
    Control = 15,
}

impl Family {
    /// Every family, in bit order.
    pub const ALL: [Family; 16] = [
        Family::Discovery,
        Family::CredentialAccess,
        Family::Collection,
        Family::Execution,
        Family::LateralMovement,
        Family::Egress,
        Family::Impact,
        Family::Persistence,
        Family::PrivilegeEscalation,
        Family::DefenseEvasion,
        Family::Governance,
        Family::Sensitive,
        Family::ReadOnly,
        Family::Mutating,
        Family::Untrusted,
        Family::Control,
    ];

    /// The family's name as written in rules.
    pub fn name(self) -> &'static str {
        match self {
            Family::Discovery => "discovery",
            Family::CredentialAccess => "credential_access",
            Family::Collection => "collection",
            Family::Execution => "execution",
            Family::LateralMovement => "lateral_movement",
            Family::Egress => "egress",
            Family::Impact => "impact",
            Family::Persistence => "persistence",
            Family::PrivilegeEscalation => "privilege_escalation",
            Family::DefenseEvasion => "defense_evasion",
            Family::Governance => "governance",
            Family::Sensitive => "sensitive",
            Family::ReadOnly => "read_only",
            Family::Mutating => "mutating",
            Family::Untrusted => "untrusted",
            Family::Control => "control",
        }
    }
}

impl Families {
    /// No family.
    pub const NONE: Families = Families(0);

    /// The set holding exactly these families.
    pub fn of(families: &[Family]) -> Families {
        Families(families.iter().fold(0, |bits, f| bits | (1 << *f as u16)))
    }

    /// Whether the family is in the set.
    pub fn has(self, family: Family) -> bool {
        self.0 & (1 << family as u16) != 0
    }

    /// Whether the sets share a family.
    pub fn intersects(self, other: Families) -> bool {
        self.0 & other.0 != 0
    }

    /// The union of two sets.
    #[must_use]
    pub fn union(self, other: Families) -> Families {
        Families(self.0 | other.0)
    }

    /// The families of `self` that are also in `other`.
    #[must_use]
    pub fn intersection(self, other: Families) -> Families {
        Families(self.0 & other.0)
    }

    /// The families of `self` that are not in `other`.
    #[must_use]
    pub fn without(self, other: Families) -> Families {
        Families(self.0 & !other.0)
    }

    /// How many families the set holds.
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// Families an unexpected use of weighs heavier: they can hurt on their own.
    pub fn dangerous() -> Families {
        Families::of(&[
            Family::CredentialAccess,
            Family::Execution,
            Family::LateralMovement,
            Family::Impact,
            Family::Persistence,
            Family::PrivilegeEscalation,
            Family::DefenseEvasion,
            Family::Governance,
            Family::Sensitive,
            Family::Control,
        ])
    }

    /// Families of data whose reading taints a session: what is sent after it may
    /// carry it (credentials, bulk or restricted data).
    pub fn sensitive_data() -> Families {
        Families::of(&[Family::CredentialAccess, Family::Collection, Family::Sensitive])
    }

    /// Families a session's data flows are tracked by: sensitive data, and untrusted
    /// content (a send after it may be an injected instruction's).
    pub fn flow() -> Families {
        Families::sensitive_data().union(Families::of(&[Family::Untrusted]))
    }
}

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for family in Family::ALL {
            if self.has(family) {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(family.name())?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// A MITRE ATT&CK (Enterprise) tactic. Agents' tool calls map onto the same tactics
/// as human intrusions; ATLAS reuses these tactics for AI systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tactic {
    /// TA0002.
    Execution,
    /// TA0003.
    Persistence,
    /// TA0004.
    PrivilegeEscalation,
    /// TA0005.
    DefenseEvasion,
    /// TA0006.
    CredentialAccess,
    /// TA0007.
    Discovery,
    /// TA0008.
    LateralMovement,
    /// TA0009.
    Collection,
    /// TA0010.
    Exfiltration,
    /// TA0011.
    CommandAndControl,
    /// TA0040.
    Impact,
}

impl Tactic {
    /// The ATT&CK tactic id, such as `TA0010`.
    pub fn id(self) -> &'static str {
        match self {
            Tactic::Execution => "TA0002",
            Tactic::Persistence => "TA0003",
            Tactic::PrivilegeEscalation => "TA0004",
            Tactic::DefenseEvasion => "TA0005",
            Tactic::CredentialAccess => "TA0006",
            Tactic::Discovery => "TA0007",
            Tactic::LateralMovement => "TA0008",
            Tactic::Collection => "TA0009",
            Tactic::Exfiltration => "TA0010",
            Tactic::CommandAndControl => "TA0011",
            Tactic::Impact => "TA0040",
        }
    }

    /// The tactic's name, such as `Exfiltration`.
    pub fn name(self) -> &'static str {
        match self {
            Tactic::Execution => "Execution",
            Tactic::Persistence => "Persistence",
            Tactic::PrivilegeEscalation => "Privilege Escalation",
            Tactic::DefenseEvasion => "Defense Evasion",
            Tactic::CredentialAccess => "Credential Access",
            Tactic::Discovery => "Discovery",
            Tactic::LateralMovement => "Lateral Movement",
            Tactic::Collection => "Collection",
            Tactic::Exfiltration => "Exfiltration",
            Tactic::CommandAndControl => "Command and Control",
            Tactic::Impact => "Impact",
        }
    }
}

impl fmt::Display for Tactic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id(), self.name())
    }
}

/// What a [`Rule`] is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Intent names (`secrets.read`).
    Intent,
    /// Resource names (`file:~/.ssh/id_rsa`).
    Resource,
    /// Resource classes (`prod/control/restricted`).
    Class,
}

/// One classification rule: names matching `pattern` (a glob where `*` matches any
/// run of characters) belong to `families`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What the pattern is matched against.
    pub target: Target,
    /// The glob, matched against the whole lower-case name.
    pub pattern: String,
    /// The families a match adds.
    pub families: Families,
}

/// One step of a [`Chain`]: an action in the session matching any of `families`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The action (intent, resource or class) must be in one of these families.
    pub families: Families,
    /// The action must also send to a destination the agent has never used.
    pub new_destination: bool,
    /// The tactic this step stands for.
    pub tactic: Tactic,
}

/// A known multi-step attack: its steps, in order, within one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// A short stable id, such as `collect-exfiltrate`.
    pub id: String,
    /// The steps, in order; at most [`crate::limits::CHAIN_STEPS_MAX`].
    pub steps: Vec<Step>,
    /// The score of a completed chain the agent never ran while learning.
    pub score: f32,
}

/// The classification rules and the chain table.
#[derive(Debug, Clone, PartialEq)]
pub struct Taxonomy {
    /// Classification rules; a name gets the union of the families of every match.
    pub rules: Vec<Rule>,
    /// Known chains; at most [`crate::limits::CHAINS_MAX`].
    pub chains: Vec<Chain>,
}

impl Taxonomy {
    /// The families of a name under the rules for `target`.
    pub fn classify(&self, target: Target, name: &str) -> Families {
        let lower = name.to_ascii_lowercase();
        self.rules
            .iter()
            .filter(|rule| rule.target == target && glob(rule.pattern.as_bytes(), lower.as_bytes()))
            .fold(Families::NONE, |acc, rule| acc.union(rule.families))
    }
}

/// Matches a glob with `*` wildcards against the whole text.
///
/// Written by hand: rules are matched once per interned name, and a glob crate
/// would bring path semantics (`/`, `**`, classes) that names do not have.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|c| *c == b'*'))
}

fn rules(target: Target, family: Family, patterns: &[&str]) -> impl Iterator<Item = Rule> {
    patterns.iter().map(move |p| Rule { target, pattern: (*p).to_owned(), families: Families::of(&[family]) })
}

impl Default for Taxonomy {
    /// Rules for the intent vocabulary of PRODUCT.md (`db.read:raw`, `secrets.read`,
    /// `http.post`…), common tool names (`read_file`, `send_email`, `shell.rm`) and
    /// resource classes written `environment/plane/data_class`.
    fn default() -> Self {
        use Family::*;
        use Target::{Class, Intent, Resource};
        let mut all: Vec<Rule> = Vec::new();
        all.extend(rules(
            Intent,
            Discovery,
            &[
                "*.list*",
                "*list_*",
                "*.search*",
                "*search_*",
                "*.describe*",
                "*discover*",
                "shell.ls",
                "shell.find",
                "shell.whoami",
                "shell.id",
                "shell.uname",
                "shell.nc",
                "shell.nmap",
                "*.scan*",
                "*enumerate*",
            ],
        ));
        all.extend(rules(
            Intent,
            CredentialAccess,
            &[
                "secrets.*",
                "secret.*",
                "credential.read*",
                "*get_secret*",
                "*token.read*",
                "vault.*",
                "*password*",
                "*keychain*",
            ],
        ));
        all.extend(rules(
            Intent,
            Collection,
            &["*read:raw*", "*export*", "*dump*", "*download*", "*backup*"],
        ));
        all.extend(rules(
            Intent,
            Execution,
            &["*exec*", "shell.*", "*run_*", "*.run", "*.eval*", "*script*", "*bash*", "*python*", "*curl*"],
        ));
        all.extend(rules(
            Intent,
            LateralMovement,
            &[
                "*ssh*",
                "k8s.exec*",
                "*assume_role*",
                "*impersonat*",
                "*remote*",
                "*.connect*",
                "*delegate*",
                "shell.nc",
                "shell.ssh*",
                "shell.kubectl.exec*",
            ],
        ));
        all.extend(rules(
            Intent,
            Egress,
            &[
                "http.post*",
                "http.put*",
                "*send*",
                "*upload*",
                "*post_*",
                "*.post",
                "*share*",
                "*transfer*",
                "*webhook*",
                "*publish*",
                "*forward*",
                "payment.create*",
                "shell.curl",
                "shell.wget",
            ],
        ));
        all.extend(rules(
            Intent,
            Impact,
            &["*delete*", "*drop*", "*destroy*", "*wipe*", "*truncate*", "shell.rm", "*purge*", "*.remove*"],
        ));
        all.extend(rules(
            Intent,
            Persistence,
            &["*cron*", "*schedule*", "*memory.write*", "*write_memory*", "*startup*", "*autorun*"],
        ));
        all.extend(rules(
            Intent,
            PrivilegeEscalation,
            &[
                "*grant*",
                "*role*",
                "*admin*",
                "*sudo*",
                "*permission*",
                "iam.*",
                "shell.chmod",
                "shell.chown",
            ],
        ));
        all.extend(rules(
            Intent,
            DefenseEvasion,
            &[
                "*disable*",
                "*unset*",
                "*no-verify*",
                "*log*.delete*",
                "*audit*.delete*",
                "*hook*.delete*",
                "*clear_log*",
            ],
        ));
        all.extend(rules(
            Intent,
            Governance,
            &[
                "policy.update*",
                "policy.delete*",
                "policy.create*",
                "budget.update*",
                "baseline.*",
                "credential.rotate*",
                "credential.issue*",
                "agent.update*",
                "session.update*",
            ],
        ));
        all.extend(rules(
            Resource,
            CredentialAccess,
            &[
                "vault:*",
                "secret:*",
                "secrets:*",
                "*.ssh/*",
                "*id_rsa*",
                "*id_ed25519*",
                "*.aws/credentials*",
                "*/.env",
                "*:.env",
                "*.pem",
                "*.key",
                "*kubeconfig*",
                "*.netrc*",
                "*/etc/shadow*",
                "*credentials.json*",
                // Environment variables named for a secret (`env:AWS_SECRET_ACCESS_KEY`,
                // `env:DATABASE_URL`, which holds a password).
                "env:*key*",
                "env:*secret*",
                "env:*token*",
                "env:*passw*",
                "env:*credential*",
                "env:*database_url*",
                // A file named for secrets: a dotfile (`~/.secret`, `.secrets`) or
                // `secrets.<ext>` (`secrets.yaml`, `secrets.json`).
                "*/.secret*",
                "*/secrets.*",
            ],
        ));
        all.extend(rules(
            Intent,
            ReadOnly,
            &[
                "*read*",
                "*get*",
                "*list*",
                "*search*",
                "*lookup*",
                "*view*",
                "*fetch*",
                "*describe*",
                "shell.cat",
                "shell.tail",
                "shell.head",
                "shell.ls",
                "shell.grep",
                "shell.less",
            ],
        ));
        all.extend(rules(
            Intent,
            Mutating,
            &[
                "*grant*",
                "*create*",
                "*update*",
                "*write*",
                "*delete*",
                "*remove*",
                "*.set*",
                "*set_*",
                "*put*",
                "*post*",
                "*install*",
                "*.assign",
                "*assign_*",
                "*_assign*",
                "*.add*",
                "*add_*",
                "*insert*",
                "*drop*",
                "*modify*",
                "*edit*",
                "*patch*",
                "*upload*",
                "*send*",
                "*revoke*",
                "*attach*",
                "*enable*",
                "*disable*",
            ],
        ));
        all.extend(rules(
            Resource,
            Collection,
            &["*payroll*", "*salary*", "*customer*export*", "*ssn*", "*pii*"],
        ));
        all.extend(rules(
            Resource,
            Persistence,
            &["*crontab*", "*mcp.json*", "*.bashrc*", "*.profile*", "*systemd*"],
        ));
        all.extend(rules(Resource, DefenseEvasion, &["*audit*", "*otel*", "*telemetry*", "*.git/hooks*"]));
        all.extend(rules(Class, Sensitive, &["*restricted*", "*secret*"]));
        all.extend(rules(Class, Control, &["prod/control*"]));
        all.extend(rules(Class, Untrusted, &["external/*"]));
        all.extend(rules(Resource, Untrusted, &["web:*", "mailbox:*", "*inbox*"]));
        all.extend(rules(Class, Collection, &["*restricted*"]));
        Taxonomy { rules: all, chains: default_chains() }
    }
}

fn step(families: &[Family], new_destination: bool, tactic: Tactic) -> Step {
    Step { families: Families::of(families), new_destination, tactic }
}

/// The default chain table. Each chain is a path through ATT&CK tactics that an
/// agent's session can walk one allowed call at a time.
pub fn default_chains() -> Vec<Chain> {
    use Family::*;
    let chain = |id: &str, score: f32, steps: Vec<Step>| Chain { id: id.to_owned(), steps, score };
    vec![
        chain(
            "discover-collect-exfiltrate",
            0.9,
            vec![
                step(&[Discovery], false, Tactic::Discovery),
                step(&[Collection, CredentialAccess, Sensitive], false, Tactic::Collection),
                step(&[Egress], true, Tactic::Exfiltration),
            ],
        ),
        chain(
            "collect-exfiltrate",
            0.8,
            vec![
                step(&[Collection, CredentialAccess, Sensitive], false, Tactic::Collection),
                step(&[Egress], true, Tactic::Exfiltration),
            ],
        ),
        chain(
            "credential-lateral-movement",
            0.8,
            vec![
                step(&[CredentialAccess], false, Tactic::CredentialAccess),
                step(&[LateralMovement], false, Tactic::LateralMovement),
            ],
        ),
        chain(
            "credential-privilege-escalation",
            0.8,
            vec![
                step(&[CredentialAccess], false, Tactic::CredentialAccess),
                step(&[PrivilegeEscalation], false, Tactic::PrivilegeEscalation),
            ],
        ),
        chain(
            "ingress-execute",
            0.7,
            vec![
                step(&[Execution, Egress], true, Tactic::CommandAndControl),
                step(&[Execution], false, Tactic::Execution),
            ],
        ),
        chain(
            "execute-persist",
            0.7,
            vec![
                step(&[Execution], false, Tactic::Execution),
                step(&[Persistence], false, Tactic::Persistence),
            ],
        ),
        chain(
            "evade-then-act",
            0.8,
            vec![
                step(&[DefenseEvasion], false, Tactic::DefenseEvasion),
                step(&[Impact, Egress, Execution, DefenseEvasion], false, Tactic::Impact),
            ],
        ),
        chain(
            "discover-escalate",
            0.7,
            vec![
                step(&[Discovery], false, Tactic::Discovery),
                step(&[PrivilegeEscalation, Governance], false, Tactic::PrivilegeEscalation),
            ],
        ),
        // One step: reading credentials (a key file, a secret store, a secret in the
        // environment) in a session of an agent that never did while learning. Its
        // other findings measure a first look at a file by how often the agent meets
        // new files, which for a coding agent is all day; a first credential is not
        // one more file.
        chain("credential-access", 0.6, vec![step(&[CredentialAccess], false, Tactic::CredentialAccess)]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names() {
        assert!(glob(b"secrets.*", b"secrets.read"));
        assert!(glob(b"*.ssh*", b"file:~/.ssh/id_rsa"));
        assert!(glob(b"*a*b*", b"xxaxxbxx"));
        assert!(!glob(b"secrets.*", b"xsecrets.read"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b""));
        assert!(glob(b"shell.rm", b"shell.rm"));
        assert!(!glob(b"shell.rm", b"shell.rmdir"));
    }

    #[test]
    fn default_rules_classify_the_product_vocabulary() {
        let t = Taxonomy::default();
        assert!(t.classify(Target::Intent, "secrets.read").has(Family::CredentialAccess));
        assert!(t.classify(Target::Intent, "http.post").has(Family::Egress));
        assert!(t.classify(Target::Intent, "policy.update").has(Family::Governance));
        assert!(t.classify(Target::Intent, "ticket.delete").has(Family::Impact));
        assert!(!t.classify(Target::Intent, "ticket.read").intersects(Families::dangerous()));
        assert!(t.classify(Target::Resource, "file:~/.ssh/id_rsa").has(Family::CredentialAccess));
        assert!(t.classify(Target::Class, "prod/data/restricted").has(Family::Sensitive));
        let control = t.classify(Target::Class, "prod/control/internal");
        assert!(control.has(Family::Control) && !control.has(Family::Sensitive));
        assert!(crate::detect::writes_only().has(Family::Control));
    }
}
