//! Builds the statements executors ask for, with sea-query: identifiers only
//! from the catalog, values only as bound parameters, the tenant always injected.

use sea_query::{Alias, Expr, Order, PostgresQueryBuilder, Query, SimpleExpr, Value as SqlValue};
use sea_query_binder::{SqlxBinder, SqlxValues};
use sqlx::postgres::PgRow;
use sqlx::Row as _;

use super::catalog::{self, Column, ColumnType, Table, TENANT_COLUMN};
use crate::bindings::{CallError, Condition, Field, Operator, OrderBy, Row, Value};
use crate::TenantId;

/// A statement ready to send: SQL text with `$n` placeholders and its values.
pub type Statement = (String, SqlxValues);

/// Resolve a table name given by an executor.
pub fn resolve_table(name: &str) -> Result<&'static Table, CallError> {
    catalog::table(name).ok_or_else(|| {
        let known: Vec<_> = catalog::TABLES.iter().map(|t| t.name).collect();
        CallError::NotFound(format!("no table {name:?}; tables: {}", known.join(", ")))
    })
}

/// Resolve a column name given by an executor. The tenant column is refused:
/// only the host names it.
pub fn resolve_column(table: &Table, name: &str) -> Result<&'static Column, CallError> {
    if name == TENANT_COLUMN {
        return Err(CallError::Forbidden(format!(
            "column {TENANT_COLUMN} is managed by the host; executors cannot name it"
        )));
    }
    table.column(name).ok_or_else(|| {
        let known: Vec<_> = table.column_names().collect();
        CallError::Invalid(format!(
            "table {} has no column {name:?}; columns: {}",
            table.name,
            known.join(", ")
        ))
    })
}

fn ident(name: &'static str) -> Alias {
    Alias::new(name)
}

fn tenant_filter(tenant: TenantId) -> SimpleExpr {
    Expr::col(ident(TENANT_COLUMN)).eq(tenant.0)
}

fn variant_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Timestamp(_) => "timestamp",
        Value::Json(_) => "json",
        Value::Uuid(_) => "uuid",
    }
}

fn typed_null(ty: ColumnType) -> SqlValue {
    match ty {
        ColumnType::Uuid => SqlValue::Uuid(None),
        ColumnType::Text => SqlValue::String(None),
        ColumnType::Integer => SqlValue::BigInt(None),
        ColumnType::Float => SqlValue::Double(None),
        ColumnType::Boolean => SqlValue::Bool(None),
        ColumnType::Timestamp => SqlValue::ChronoDateTimeUtc(None),
        ColumnType::Json => SqlValue::Json(None),
    }
}

/// Convert a guest value for `column`, checking that its variant fits the column.
pub fn to_sql_value(column: &Column, value: &Value) -> Result<SqlValue, CallError> {
    let mismatch = || {
        CallError::Invalid(format!(
            "column {} holds {:?} values, not {}",
            column.name,
            column.ty,
            variant_name(value)
        ))
    };
    Ok(match (column.ty, value) {
        (ty, Value::Null) => {
            if !column.nullable {
                return Err(CallError::Invalid(format!(
                    "column {} cannot be null",
                    column.name
                )));
            }
            typed_null(ty)
        }
        (ColumnType::Uuid, Value::Uuid(text)) => {
            let id = uuid::Uuid::parse_str(text).map_err(|e| {
                CallError::Invalid(format!(
                    "column {}: {text:?} is not a UUID: {e}",
                    column.name
                ))
            })?;
            SqlValue::Uuid(Some(Box::new(id)))
        }
        (ColumnType::Text, Value::Text(text)) => {
            refuse_nul(column, text.contains('\0'))?;
            SqlValue::String(Some(Box::new(text.clone())))
        }
        (ColumnType::Integer, Value::Integer(i)) => SqlValue::BigInt(Some(*i)),
        (ColumnType::Float, Value::Float(f)) => SqlValue::Double(Some(*f)),
        (ColumnType::Float, Value::Integer(i)) => SqlValue::Double(Some(*i as f64)),
        (ColumnType::Boolean, Value::Boolean(b)) => SqlValue::Bool(Some(*b)),
        (ColumnType::Timestamp, Value::Timestamp(micros)) => {
            let at = chrono::DateTime::from_timestamp_micros(*micros)
                .filter(|_| *micros >= EARLIEST_TIMESTAMP_MICROS)
                .ok_or_else(|| {
                    CallError::Invalid(format!(
                        "column {}: timestamp {micros} is out of range (4713 BC to 262143 AD)",
                        column.name
                    ))
                })?;
            SqlValue::ChronoDateTimeUtc(Some(Box::new(at)))
        }
        (ColumnType::Json, Value::Json(text)) => {
            let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                CallError::Invalid(format!("column {}: invalid JSON: {e}", column.name))
            })?;
            refuse_nul(column, json_has_nul(&json))?;
            SqlValue::Json(Some(Box::new(json)))
        }
        _ => return Err(mismatch()),
    })
}

/// The earliest instant PostgreSQL's `timestamptz` holds (4713-11-24 BC,
/// Julian day 0), in microseconds since 1970. chrono bounds the other end
/// (262143 AD), well inside PostgreSQL's.
const EARLIEST_TIMESTAMP_MICROS: i64 = -210_866_803_200_000_000;

/// PostgreSQL stores neither NUL in text nor `\u0000` in `jsonb`. Refused here
/// rather than by the server, because a query is not wrapped in a savepoint:
/// a server-side refusal would abort the whole transaction, not just the call.
fn refuse_nul(column: &Column, has_nul: bool) -> Result<(), CallError> {
    if has_nul {
        return Err(CallError::Invalid(format!(
            "column {}: values cannot contain the NUL character (\\u0000)",
            column.name
        )));
    }
    Ok(())
}

fn json_has_nul(json: &serde_json::Value) -> bool {
    match json {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value)),
        _ => false,
    }
}

fn condition_expr(table: &Table, condition: &Condition) -> Result<SimpleExpr, CallError> {
    let column = resolve_column(table, &condition.column)?;
    let col = Expr::col(ident(column.name));
    let value = |v: &Value| {
        if matches!(v, Value::Null) {
            return Err(CallError::Invalid(format!(
                "condition on {}: compare with null using is-null or is-not-null",
                column.name
            )));
        }
        to_sql_value(column, v)
    };
    Ok(match &condition.op {
        Operator::Eq(v) => col.eq(value(v)?),
        Operator::Ne(v) => col.ne(value(v)?),
        Operator::Lt(v) => col.lt(value(v)?),
        Operator::Le(v) => col.lte(value(v)?),
        Operator::Gt(v) => col.gt(value(v)?),
        Operator::Ge(v) => col.gte(value(v)?),
        Operator::In(values) if values.is_empty() => Expr::cust("FALSE"),
        Operator::In(values) => {
            let values = values.iter().map(value).collect::<Result<Vec<_>, _>>()?;
            col.is_in(values)
        }
        Operator::IsNull => col.is_null(),
        Operator::IsNotNull => col.is_not_null(),
    })
}

/// The tenant predicate (when `scope` names a tenant; `None` only in the
/// test-only setting that leaves isolation to row-level security) and the
/// executor's conditions.
fn filters(
    table: &Table,
    scope: Option<TenantId>,
    conditions: &[Condition],
) -> Result<Vec<SimpleExpr>, CallError> {
    let mut exprs: Vec<SimpleExpr> = scope.into_iter().map(tenant_filter).collect();
    for condition in conditions {
        exprs.push(condition_expr(table, condition)?);
    }
    Ok(exprs)
}

/// Resolve the fields an executor wants to write, refusing generated columns
/// and duplicates.
pub fn writes(
    table: &Table,
    fields: &[Field],
) -> Result<Vec<(&'static Column, SqlValue)>, CallError> {
    let mut out: Vec<(&'static Column, SqlValue)> = Vec::with_capacity(fields.len());
    for field in fields {
        let column = resolve_column(table, &field.column)?;
        if !column.writable {
            return Err(CallError::Forbidden(format!(
                "column {}.{} is generated by the database and cannot be written",
                table.name, column.name
            )));
        }
        if out.iter().any(|(c, _)| c.name == column.name) {
            return Err(CallError::Invalid(format!(
                "column {} is given twice",
                column.name
            )));
        }
        out.push((column, to_sql_value(column, &field.value)?));
    }
    Ok(out)
}

/// `SELECT <exposed columns> FROM table WHERE tenant AND conditions ORDER BY .. LIMIT ..`
pub fn select(
    table: &'static Table,
    scope: Option<TenantId>,
    conditions: &[Condition],
    order: &[OrderBy],
    limit: u64,
) -> Result<Statement, CallError> {
    let mut query = Query::select();
    query
        .columns(table.column_names().map(ident))
        .from(ident(table.name));
    for expr in filters(table, scope, conditions)? {
        query.and_where(expr);
    }
    for term in order {
        let column = resolve_column(table, &term.column)?;
        query.order_by(
            ident(column.name),
            if term.descending {
                Order::Desc
            } else {
                Order::Asc
            },
        );
    }
    query.limit(limit);
    Ok(query.build_sqlx(PostgresQueryBuilder))
}

/// `SELECT DISTINCT <key columns> ...` of the rows an update would touch,
/// so the host can queue on their exclusion keys before writing.
pub fn select_exclusion_keys(
    table: &'static Table,
    key_columns: &'static [&'static str],
    scope: Option<TenantId>,
    conditions: &[Condition],
) -> Result<Statement, CallError> {
    let mut query = Query::select();
    query.distinct().from(ident(table.name));
    for column in key_columns {
        query.column(ident(column));
    }
    for expr in filters(table, scope, conditions)? {
        query.and_where(expr);
    }
    Ok(query.build_sqlx(PostgresQueryBuilder))
}

/// `INSERT INTO table (tenant_id, ..) VALUES (..) RETURNING <exposed columns>`
pub fn insert(
    table: &'static Table,
    tenant: TenantId,
    values: Vec<(&'static Column, SqlValue)>,
) -> Result<Statement, CallError> {
    let mut query = Query::insert();
    query.into_table(ident(table.name)).columns(
        std::iter::once(TENANT_COLUMN)
            .chain(values.iter().map(|(c, _)| c.name))
            .map(ident),
    );
    let row = std::iter::once(SimpleExpr::from(tenant.0))
        .chain(values.into_iter().map(|(_, v)| SimpleExpr::Value(v)));
    query
        .values(row)
        .map_err(|e| CallError::Invalid(format!("insert into {}: {e}", table.name)))?;
    query.returning(Query::returning().columns(table.column_names().map(ident)));
    Ok(query.build_sqlx(PostgresQueryBuilder))
}

/// `UPDATE table SET .. WHERE tenant AND conditions` (`RETURNING` the
/// exposed columns when `returning`, for dry runs).
pub fn update(
    table: &'static Table,
    scope: Option<TenantId>,
    conditions: &[Condition],
    changes: Vec<(&'static Column, SqlValue)>,
    returning: bool,
) -> Result<Statement, CallError> {
    if changes.is_empty() {
        return Err(CallError::Invalid(
            "update needs at least one change".into(),
        ));
    }
    let mut query = Query::update();
    query.table(ident(table.name)).values(
        changes
            .into_iter()
            .map(|(c, v)| (ident(c.name), SimpleExpr::Value(v))),
    );
    for expr in filters(table, scope, conditions)? {
        query.and_where(expr);
    }
    if returning {
        query.returning(Query::returning().columns(table.column_names().map(ident)));
    }
    Ok(query.build_sqlx(PostgresQueryBuilder))
}

/// `DELETE FROM table WHERE tenant AND conditions` (conditions required).
pub fn delete(
    table: &'static Table,
    scope: Option<TenantId>,
    conditions: &[Condition],
    returning: bool,
) -> Result<Statement, CallError> {
    if conditions.is_empty() {
        return Err(CallError::Invalid(
            "delete needs at least one condition; deleting a whole table is not allowed".into(),
        ));
    }
    let mut query = Query::delete();
    query.from_table(ident(table.name));
    for expr in filters(table, scope, conditions)? {
        query.and_where(expr);
    }
    if returning {
        query.returning(Query::returning().columns(table.column_names().map(ident)));
    }
    Ok(query.build_sqlx(PostgresQueryBuilder))
}

/// Decode a row selected or returned with `table`'s exposed columns.
pub fn decode_row(table: &Table, row: &PgRow) -> Result<Row, sqlx::Error> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = match column.ty {
                ColumnType::Uuid => row
                    .try_get::<Option<uuid::Uuid>, _>(i)?
                    .map(|u| Value::Uuid(u.to_string())),
                ColumnType::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
                ColumnType::Integer => row.try_get::<Option<i64>, _>(i)?.map(Value::Integer),
                ColumnType::Float => row.try_get::<Option<f64>, _>(i)?.map(Value::Float),
                ColumnType::Boolean => row.try_get::<Option<bool>, _>(i)?.map(Value::Boolean),
                ColumnType::Timestamp => row
                    .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i)?
                    .map(|t| Value::Timestamp(t.timestamp_micros())),
                ColumnType::Json => row
                    .try_get::<Option<serde_json::Value>, _>(i)?
                    .map(|j| Value::Json(j.to_string())),
            };
            Ok(Field {
                column: column.name.to_owned(),
                value: value.unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// A row as a JSON object (timestamps as RFC 3339, JSON columns inlined),
/// for reports and read endpoints.
pub fn row_to_json(row: &[Field]) -> serde_json::Value {
    row.iter()
        .map(|field| (field.column.clone(), value_to_json(&field.value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::Text(t) | Value::Uuid(t) => Json::String(t.clone()),
        Value::Timestamp(micros) => chrono::DateTime::from_timestamp_micros(*micros)
            .map(|t| Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .unwrap_or(Json::Null),
        Value::Json(text) => serde_json::from_str(text).unwrap_or(Json::Null),
    }
}
