//! Executors as MCP tools: their description and input schema from the
//! manifest, their hints from what the host grants (and so enforces), and
//! invocations' answers as tool results, tool errors or protocol errors.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Tool, ToolAnnotations};
use rmcp::ErrorData;
use serde_json::{json, Value};

use crate::invocations::{Answer, InvocationError, InvocationResponse};

/// The host's own tool: confirm a proposal (not an executor: executor names
/// have no underscore, so it cannot collide with one).
pub const CONFIRM_PROPOSAL: &str = "confirm_proposal";

/// The `_meta` key of a call's Idempotency-Key.
pub const META_IDEMPOTENCY_KEY: &str = "io.bookhost/idempotency-key";
/// The `_meta` key that makes a call a proposal (`true`).
pub const META_PROPOSE: &str = "io.bookhost/propose";

/// What the host can promise about a tool, from the capabilities it grants
/// the executor's active version (which it enforces on every call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guarantees {
    /// No insert, update or delete is granted: the tool cannot write.
    pub read_only: bool,
    /// Update or delete is granted: the tool may change or remove rows.
    pub destructive: bool,
}

impl Guarantees {
    pub fn of(granted: &[String]) -> Self {
        let may = |operation: &str| granted.iter().any(|g| g.starts_with(operation));
        Self {
            read_only: !(may("insert:") || may("update:") || may("delete:")),
            destructive: may("update:") || may("delete:"),
        }
    }

    fn annotations(self, title: &str) -> ToolAnnotations {
        let mut annotations = ToolAnnotations::with_title(title)
            .read_only(self.read_only)
            .destructive(self.destructive)
            // Executors reach nothing outside the host's transaction.
            .open_world(false);
        if self.read_only {
            // Nothing written: calling it again changes nothing.
            annotations = annotations.idempotent(true);
        }
        annotations
    }
}

/// `create-booking` → `Create booking`.
pub fn title(name: &str) -> String {
    let words = name.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One active executor (`{name, description, input_schema, granted}` as
/// `db::reads::tools` lists them) as a tool.
pub fn executor_tool(active: &Value) -> Option<Tool> {
    let name = active["name"].as_str()?.to_owned();
    let description = active["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let schema: JsonObject = active["input_schema"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let granted: Vec<String> = serde_json::from_value(active["granted"].clone()).ok()?;
    let title = title(&name);
    let annotations = Guarantees::of(&granted).annotations(&title);
    Some(
        Tool::new(name, description, Arc::new(schema))
            .with_title(title)
            .with_annotations(annotations),
    )
}

/// The host's `confirm_proposal` tool.
pub fn confirm_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {"proposal_id": {"type": "string", "format": "uuid",
            "description": "The id of a proposal (a call made with _meta {\"io.bookhost/propose\": true})."}},
        "required": ["proposal_id"],
        "additionalProperties": false,
    });
    let schema = schema.as_object().cloned().unwrap_or_default();
    let title = "Confirm proposal";
    // Whatever the proposed executor may write, confirming writes it.
    let annotations = ToolAnnotations::with_title(title)
        .read_only(false)
        .destructive(true)
        .idempotent(true)
        .open_world(false);
    Tool::new(
        CONFIRM_PROPOSAL,
        "Commit a proposal made earlier by calling a tool with _meta {\"io.bookhost/propose\": \
         true}: the same tool, input and clock run again for real, and commit only if they \
         write exactly the proposed rows. If anything changed meanwhile nothing is written and \
         the answer (an error with \"changed\": true) is the fresh preview, with a new \
         proposal_id when it can still be done. Confirming twice commits once.",
        Arc::new(schema),
    )
    .with_title(title)
    .with_annotations(annotations)
}

/// JSON for `structuredContent`, which must be an object.
fn object(value: Value) -> Value {
    match value {
        Value::Object(_) => value,
        other => json!({ "result": other }),
    }
}

fn result(structured: Value, is_error: bool, meta: MetaObject) -> CallToolResult {
    let structured = object(structured);
    let mut result = CallToolResult::default();
    result.content = vec![ContentBlock::text(structured.to_string())];
    result.structured_content = Some(structured);
    result.is_error = Some(is_error);
    result.meta = Some(meta);
    result
}

/// A completed answer as a tool result: the executor's JSON (its result, or
/// for a proposal the preview, the writes and the proposal), or a tool error
/// with its error body, which the model can read and act on.
pub fn answered(answer: &Answer) -> Result<CallToolResult, ErrorData> {
    let response: InvocationResponse = answer
        .response()
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let mut meta = MetaObject::new();
    meta.insert(
        "io.bookhost/invocation-id".into(),
        json!(response.invocation_id),
    );
    meta.insert("io.bookhost/version".into(), json!(response.version));
    meta.insert("io.bookhost/attempts".into(), json!(response.attempts));
    if answer.replayed {
        meta.insert("io.bookhost/replayed".into(), json!(true));
    }
    if let Some(confirmed) = response.confirmed {
        meta.insert("io.bookhost/confirmed".into(), json!(confirmed));
    }
    let preview = response.proposal.is_some() || response.changed || response.dry_run;
    let outcome = response.result.clone().or(response.error.clone());
    let structured = if preview {
        let mut body = json!({ "writes": response.writes });
        match (&response.result, &response.error) {
            (Some(result), _) => body["preview"] = result.clone(),
            (None, Some(error)) => body["error"] = error.clone(),
            (None, None) => {}
        }
        if let Some(proposal) = &response.proposal {
            body["proposal"] = json!(proposal);
        }
        if response.changed {
            body["changed"] = json!(true);
        }
        body
    } else {
        outcome.unwrap_or(Value::Null)
    };
    Ok(result(structured, !answer.succeeded(), meta))
}

/// An invocation that did not complete: the caller's mistakes are protocol
/// errors (nothing ran); what the model can react to is a tool error saying
/// whether a retry can help.
pub fn failed(error: InvocationError) -> Result<CallToolResult, ErrorData> {
    let detail = error.to_string();
    let tool_error = |code: &str, retryable: bool, extra: Value| {
        let mut body = json!({ "error": code, "detail": detail, "retryable": retryable });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        Ok(result(body, true, MetaObject::new()))
    };
    match error {
        InvocationError::UnknownExecutor(name) => Err(ErrorData::invalid_params(
            format!("Unknown tool: {name}"),
            None,
        )),
        InvocationError::InvalidInput { errors, .. } => {
            let errors: Vec<Value> = errors
                .into_iter()
                .map(|(path, message)| json!({"path": path, "message": message}))
                .collect();
            Err(ErrorData::invalid_params(
                detail,
                Some(json!({ "errors": errors })),
            ))
        }
        InvocationError::MalformedInput(_)
        | InvocationError::InputTooLarge { .. }
        | InvocationError::KeyReused => Err(ErrorData::invalid_params(detail, None)),
        InvocationError::TenantBusy(_) => tool_error("tenant_busy", true, Value::Null),
        InvocationError::KeyInProgress => {
            tool_error("idempotency_key_in_progress", true, Value::Null)
        }
        InvocationError::Failed {
            failure,
            invocation_id,
            ..
        } => tool_error(
            &failure.slug().replace('-', "_"),
            failure.retryable(),
            json!({ "invocation_id": invocation_id }),
        ),
        InvocationError::ProposalNotFound(_) => {
            tool_error("proposal_not_found", false, Value::Null)
        }
        InvocationError::ProposalExpired { .. } => {
            tool_error("proposal_expired", false, Value::Null)
        }
        InvocationError::Unavailable(_) => tool_error("database_unavailable", true, Value::Null),
        InvocationError::Internal(error) => {
            tracing::error!("an MCP tool call failed: {error:#}");
            Err(ErrorData::internal_error(
                "the host failed; retry later",
                None,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_follow_the_grant() {
        let of =
            |caps: &[&str]| Guarantees::of(&caps.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        assert_eq!(
            of(&["query:services", "lock"]),
            Guarantees {
                read_only: true,
                destructive: false
            }
        );
        // find-slots: asking the host's availability writes nothing.
        assert_eq!(
            of(&["availability"]),
            Guarantees {
                read_only: true,
                destructive: false
            }
        );
        assert_eq!(
            of(&["query:bookings", "insert:bookings"]),
            Guarantees {
                read_only: false,
                destructive: false
            }
        );
        assert_eq!(
            of(&["delete:services"]),
            Guarantees {
                read_only: false,
                destructive: true
            }
        );
        assert_eq!(
            of(&[]),
            Guarantees {
                read_only: true,
                destructive: false
            }
        );
    }

    #[test]
    fn titles_read_like_words() {
        assert_eq!(title("create-booking"), "Create booking");
        assert_eq!(title("x"), "X");
    }
}
