//! CEL as Flux evaluates it: `spec.healthCheckExprs` on the objects of a kind, and
//! `spec.dependsOn[].readyExpr` over the dependency (`dep`) and the Kustomization (`self`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value as CelValue};
use serde_json::Value;
use sluice_api::kustomize::CustomHealthCheck;

use crate::objects::split_api_version;

/// The standard CEL environment (macros, optional syntax), shared by every expression.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// An expression that does not parse, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} '{source_text}' is not a valid CEL expression: {reason}; fix the expression")]
pub struct InvalidExpression {
    field: String,
    source_text: String,
    reason: String,
}

/// An expression that could not be evaluated to a bool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} '{source_text}' {problem}")]
pub struct EvaluationError {
    field: String,
    source_text: String,
    problem: String,
}

/// A compiled boolean expression and the field it came from.
pub struct Expression {
    field: String,
    source_text: String,
    program: Program,
}

impl Expression {
    /// Compiles `source` of spec field `field` (named in errors).
    pub fn compile(field: String, source: &str) -> Result<Self, InvalidExpression> {
        match ENV.compile(source) {
            Ok(program) => Ok(Self {
                field,
                source_text: source.to_owned(),
                program,
            }),
            Err(errors) => Err(InvalidExpression {
                field,
                source_text: source.to_owned(),
                reason: errors.to_string().trim().replace('\n', " "),
            }),
        }
    }

    /// Evaluates with `variables` bound; anything but a bool is an error.
    pub fn evaluate(&self, variables: &[(&str, &Value)]) -> Result<bool, EvaluationError> {
        let mut context = Context::with_env(ENV.clone());
        for (name, value) in variables {
            context.add_variable_from_value(*name, to_cel(value));
        }
        let error = |problem: String| EvaluationError {
            field: self.field.clone(),
            source_text: self.source_text.clone(),
            problem,
        };
        match self.program.execute(&context) {
            Ok(CelValue::Bool(result)) => Ok(result),
            Ok(other) => Err(error(format!("returned {other:?}, not a bool"))),
            Err(failure) => Err(error(format!("failed: {failure}"))),
        }
    }
}

/// JSON as CEL sees Kubernetes objects: integers as `int`, maps keyed by string.
fn to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(flag) => CelValue::Bool(*flag),
        Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(int), _) => CelValue::Int(int),
            (None, Some(uint)) => CelValue::UInt(uint),
            _ => CelValue::Float(number.as_f64().unwrap_or_default()),
        },
        Value::String(text) => CelValue::String(Arc::new(text.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => {
            let map: HashMap<Key, CelValue> = fields
                .iter()
                .map(|(key, value)| (Key::from(key.as_str()), to_cel(value)))
                .collect();
            CelValue::Map(Map { map: Arc::new(map) })
        }
    }
}

/// The health `healthCheckExprs` give an object, in kstatus's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Current,
    InProgress(String),
    Failed(String),
}

/// The expressions of one `healthCheckExprs` entry, for one group and kind.
struct HealthRule {
    group: String,
    kind: Option<String>,
    in_progress: Option<Expression>,
    failed: Option<Expression>,
    current: Expression,
}

/// The compiled `spec.healthCheckExprs`: the health of the kinds they name.
#[derive(Default)]
pub struct HealthRules(Vec<HealthRule>);

impl HealthRules {
    /// Compiles every entry; the first invalid expression is the error.
    pub fn compile(checks: &[CustomHealthCheck]) -> Result<Self, InvalidExpression> {
        let mut rules = Vec::with_capacity(checks.len());
        for (index, check) in checks.iter().enumerate() {
            let field = |name: &str| format!("spec.healthCheckExprs[{index}].{name}");
            let optional = |name: &str, source: &Option<String>| {
                source
                    .as_deref()
                    .map(|source| Expression::compile(field(name), source))
                    .transpose()
            };
            rules.push(HealthRule {
                group: split_api_version(&check.api_version).0.to_owned(),
                kind: check.kind.clone(),
                in_progress: optional("inProgress", &check.in_progress)?,
                failed: optional("failed", &check.failed)?,
                current: Expression::compile(field("current"), &check.current)?,
            });
        }
        Ok(Self(rules))
    }

    /// Whether an expression decides the health of objects of `api_version` and `kind`.
    pub fn covers(&self, api_version: &str, kind: &str) -> bool {
        self.rule(api_version, kind).is_some()
    }

    fn rule(&self, api_version: &str, kind: &str) -> Option<&HealthRule> {
        let group = split_api_version(api_version).0;
        self.0.iter().find(|rule| {
            rule.group == group && rule.kind.as_deref().is_none_or(|wanted| wanted == kind)
        })
    }

    /// The health of a live object whose kind an entry covers: InProgress while it is being
    /// deleted or its status is for an older generation, then the first of `inProgress`,
    /// `failed`, `current` that is true; none true (or an evaluation error) is InProgress.
    pub fn assess(&self, object: &Value) -> Option<Verdict> {
        let rule = self.rule(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        )?;
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            return Some(Verdict::InProgress(
                "resource scheduled for deletion".to_owned(),
            ));
        }
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64);
        let observed = object
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        if let (Some(generation), Some(observed)) = (generation, observed)
            && observed != generation
        {
            return Some(Verdict::InProgress(format!(
                "observed generation {observed} is not generation {generation}"
            )));
        }
        let variables: Vec<(&str, &Value)> = object
            .as_object()
            .map(|fields| fields.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        let verdicts = [
            (rule.in_progress.as_ref(), "inProgress"),
            (rule.failed.as_ref(), "failed"),
            (Some(&rule.current), "current"),
        ];
        for (expression, name) in verdicts {
            let Some(expression) = expression else {
                continue;
            };
            match expression.evaluate(&variables) {
                Ok(false) => {}
                Ok(true) => {
                    let because = format!("healthCheckExprs {name} expression is true");
                    return Some(match name {
                        "current" => Verdict::Current,
                        "failed" => Verdict::Failed(because),
                        _ => Verdict::InProgress(because),
                    });
                }
                Err(error) => return Some(Verdict::InProgress(error.to_string())),
            }
        }
        Some(Verdict::InProgress(
            "no healthCheckExprs expression is true yet".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> HealthRules {
        let check: CustomHealthCheck = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "inProgress": "status.phase == 'Provisioning'",
            "failed": "status.conditions.exists(c, c.type == 'Ready' && c.status == 'False' && c.reason == 'Broken')",
            "current": "status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"
        }))
        .unwrap();
        HealthRules::compile(&[check]).unwrap()
    }

    fn widget(status: Value) -> Value {
        json!({"apiVersion": "example.com/v2", "kind": "Widget",
               "metadata": {"name": "w", "generation": 2}, "status": status})
    }

    #[test]
    fn expressions_decide_in_flux_order() {
        let rules = rules();
        let ready = json!({"type": "Ready", "status": "True"});
        assert_eq!(
            rules.assess(&widget(json!({"phase": "Running", "conditions": [ready]}))),
            Some(Verdict::Current)
        );
        assert!(matches!(
            rules.assess(&widget(
                json!({"phase": "Provisioning", "conditions": [ready]})
            )),
            Some(Verdict::InProgress(_))
        ));
        let broken = json!({"type": "Ready", "status": "False", "reason": "Broken"});
        assert!(matches!(
            rules.assess(&widget(json!({"phase": "Running", "conditions": [broken]}))),
            Some(Verdict::Failed(_))
        ));
        assert!(matches!(
            rules.assess(&widget(
                json!({"phase": "Running", "conditions": [ready], "observedGeneration": 1})
            )),
            Some(Verdict::InProgress(_))
        ));
        let other = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {}});
        assert_eq!(rules.assess(&other), None);
    }

    #[test]
    fn a_missing_field_waits_with_the_expression_named() {
        let object = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}});
        let Some(Verdict::InProgress(message)) = rules().assess(&object) else {
            panic!("expected InProgress");
        };
        assert!(
            message.starts_with("spec.healthCheckExprs[0].inProgress 'status.phase"),
            "{message}"
        );
    }

    #[test]
    fn optional_field_access_guards_missing_conditions() {
        let check: CustomHealthCheck = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "current": "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')"
        }))
        .unwrap();
        let rules = HealthRules::compile(&[check]).unwrap();
        assert_eq!(
            rules.assess(&widget(json!({}))),
            Some(Verdict::InProgress(
                "no healthCheckExprs expression is true yet".into()
            ))
        );
        let ready = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        assert_eq!(rules.assess(&widget(ready)), Some(Verdict::Current));
    }

    #[test]
    fn an_invalid_expression_names_its_field() {
        let check: CustomHealthCheck = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "current": "status.(("
        }))
        .unwrap();
        let error = HealthRules::compile(&[check]).err().unwrap().to_string();
        assert!(
            error.starts_with(
                "spec.healthCheckExprs[0].current 'status.((' is not a valid CEL expression"
            ),
            "{error}"
        );
    }

    #[test]
    fn ready_expressions_see_dep_and_self() {
        let expression = Expression::compile(
            "spec.dependsOn[0].readyExpr".into(),
            "dep.metadata.labels['v'] == self.metadata.labels['v'] && dep.metadata.generation == 3",
        )
        .unwrap();
        let dep = json!({"metadata": {"labels": {"v": "1"}, "generation": 3}});
        let own = json!({"metadata": {"labels": {"v": "1"}}});
        assert_eq!(
            expression.evaluate(&[("dep", &dep), ("self", &own)]),
            Ok(true)
        );
        let newer = json!({"metadata": {"labels": {"v": "2"}}});
        assert_eq!(
            expression.evaluate(&[("dep", &dep), ("self", &newer)]),
            Ok(false)
        );
    }
}
