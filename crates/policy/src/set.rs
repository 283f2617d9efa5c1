//! The compiled policy set: parsed and validated once, then asked many times.

use std::collections::HashMap;

use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compile::{self, PolicySource};
use crate::decision::{Decision, Evaluation, Verdict};
use crate::error::PolicyError;
use crate::evaluate::{self, CompiledPolicy};
use crate::index::{Filing, SliceIndex};
use crate::intent::{ActionIndex, Catalogue};
use crate::native::{self, Compiler, Facts, Kinds};
use crate::prepare::{Reads, Vocabulary};
use crate::reference::{Reference, TypeNames};
use crate::request::Request;
use crate::schema;

/// A compiled, strictly validated and sliced policy set. Immutable; share it behind
/// an `Arc` and swap the `Arc` when policy changes.
#[derive(Debug)]
pub struct PolicySet {
    // INVARIANT: the hash of exactly the intents and sources this set was compiled from.
    hash: String,
    catalogue: Catalogue,
    vocabulary: Vocabulary,
    // INVARIANT: sorted by id; `by_id` and the slice index hold positions in it.
    policies: Vec<CompiledPolicy>,
    by_id: HashMap<String, u32>,
    index: SliceIndex,
    reference: Reference,
}

/// What the hash covers, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    intents: Vec<&'a str>,
    policies: Vec<(&'a str, &'a str)>,
}

/// `sha256:<hex>` over the canonical JSON of the sorted, de-duplicated intents and the
/// `(id, text)` sources sorted by id.
fn hash(intents: &[String], sources: &[PolicySource]) -> String {
    let mut canonical = Canonical {
        intents: intents.iter().map(String::as_str).collect(),
        policies: sources.iter().map(|source| (source.id.as_str(), source.text.as_str())).collect(),
    };
    canonical.intents.sort_unstable();
    canonical.intents.dedup();
    canonical.policies.sort_unstable();
    // Serializing strings and arrays cannot fail.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
}

impl PolicySet {
    /// Compiles `sources` against the schema generated from `intents`.
    ///
    /// Every source is parsed and the whole set strictly validated; all problems are
    /// returned together in [`PolicyError::Invalid`], each naming its policy.
    pub fn compile(intents: &[String], sources: &[PolicySource]) -> Result<Self, PolicyError> {
        let catalogue = Catalogue::new(intents)?;
        let schema = schema::schema(&catalogue)?;
        let types = TypeNames::new()?;
        let kinds = Kinds::new()?;
        let mut parsed =
            compile::parse(sources).map_err(|diagnostics| PolicyError::Invalid { diagnostics })?;
        compile::validate(&schema, &parsed).map_err(|diagnostics| PolicyError::Invalid { diagnostics })?;
        parsed.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
        let filings: Vec<Filing> =
            parsed.iter().map(|parsed| Filing::new(&parsed.policy, &catalogue, &types)).collect();
        let index = SliceIndex::new(&filings);
        let reference = Reference::new(schema, types, &parsed)?;
        let compiler = Compiler { kinds: &kinds, catalogue: &catalogue };
        let policies: Vec<CompiledPolicy> = parsed
            .into_iter()
            .zip(&filings)
            .map(|(parsed, filing)| CompiledPolicy::new(parsed, filing.scope_implied, &compiler))
            .collect();
        let by_id =
            policies.iter().zip(0..).map(|(policy, position)| (policy.meta.id.clone(), position)).collect();
        let cedar_conditions = || policies.iter().filter_map(CompiledPolicy::cedar_condition);
        let named = cedar_conditions()
            .flat_map(|condition| native::action_literals(condition, &kinds, &catalogue))
            .collect();
        let vocabulary = Vocabulary::new(&catalogue, kinds, Reads::of(cedar_conditions()), named)?;
        Ok(Self { hash: hash(intents, sources), catalogue, vocabulary, policies, by_id, index, reference })
    }

    /// `sha256:<hex>` of the intents and sources this set was compiled from.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Number of policies, shadow policies included.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether the set holds no policy (every request is then denied).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// How many policies have a condition outside the subset Warden evaluates itself
    /// (see the crate documentation), so that a request reaching one of them is
    /// prepared for, and evaluated by, Cedar's evaluator: slower, same decisions.
    pub fn cedar_evaluated_len(&self) -> usize {
        self.policies.iter().filter(|policy| policy.cedar_condition().is_some()).count()
    }

    /// Every action the schema knows: the catalogue and its ancestors, sorted.
    pub fn intents(&self) -> &[String] {
        self.catalogue.names()
    }

    /// Ids of every policy, sorted.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|policy| policy.meta.id.as_str())
    }

    /// How many policies [`PolicySet::decide`] evaluates for `request`: the size of
    /// its slice (0 for an unknown intent).
    pub fn slice_len(&self, request: &Request) -> usize {
        let mut len = 0;
        if let Some(action) = self.catalogue.index(&request.intent) {
            self.index.for_each_slice(request, action, |slice| len += slice.len());
        }
        len
    }

    /// Decides a request, evaluating only the slice of the set that can apply.
    /// Never fails: a bad request, an unknown intent or an evaluation error is a
    /// `deny`.
    pub fn decide(&self, request: &Request) -> Decision {
        let mut evaluation = Evaluation::default();
        let (verdict, shadow) = match request.check().and_then(|()| self.action(&request.intent)) {
            Err(reason) => (Verdict::refused(reason), Vec::new()),
            Ok(action) => match self.evaluate(request, action, &mut evaluation) {
                Err(reason) => (Verdict::refused(reason), Vec::new()),
                Ok(()) => evaluation.decide(&request.intent),
            },
        };
        self.decision(verdict, shadow)
    }

    /// Evaluates the slice of `request`: natively where it can, then, if some policy
    /// needs Cedar, builds the Cedar request once and evaluates those.
    fn evaluate<'a>(
        &'a self,
        request: &'a Request,
        action: ActionIndex,
        evaluation: &mut Evaluation<'a>,
    ) -> Result<(), String> {
        let facts = Facts { request, action, catalogue: &self.catalogue };
        let mut for_cedar: Vec<&CompiledPolicy> = Vec::new();
        self.index.for_each_slice(request, action, |slice| {
            for policy in slice.iter().filter_map(|&position| self.policies.get(position as usize)) {
                if evaluate::evaluate_native(policy, &facts, evaluation) {
                    for_cedar.push(policy);
                }
            }
        });
        if for_cedar.is_empty() {
            return Ok(());
        }
        let prepared = self.vocabulary.prepare(request, action, &self.catalogue)?;
        let evaluator = Evaluator::new(prepared.request, &prepared.entities, Extensions::all_available());
        evaluate::evaluate_cedar(&evaluator, for_cedar, evaluation);
        Ok(())
    }

    /// Decides a request the way plain Cedar would: through the public API, with the
    /// entities and request checked against the schema, evaluating every policy of
    /// the set. The reference [`PolicySet::decide`] is tested against; slow.
    pub fn decide_unsliced(&self, request: &Request) -> Decision {
        let mut evaluation = Evaluation::default();
        let find = |id: &str| self.by_id.get(id).and_then(|&position| self.policies.get(position as usize));
        let evaluated = request.check().and_then(|()| {
            self.action(&request.intent)?;
            self.reference.evaluate(request, find, &mut evaluation)
        });
        let (verdict, shadow) = match evaluated {
            Err(reason) => (Verdict::refused(reason), Vec::new()),
            Ok(()) => evaluation.decide(&request.intent),
        };
        self.decision(verdict, shadow)
    }

    fn action(&self, intent: &str) -> Result<ActionIndex, String> {
        self.catalogue
            .index(intent)
            .ok_or_else(|| format!("intent `{intent}` is not in the intent catalogue"))
    }

    fn decision(&self, verdict: Verdict, shadow: Vec<crate::ShadowOutcome>) -> Decision {
        Decision {
            tier: verdict.tier,
            policy_hash: self.hash.clone(),
            determining: verdict.determining,
            reasons: verdict.reasons,
            shadow,
        }
    }
}
