//! Statements over the simple and extended query protocols, run by the catalog for the
//! connection's session.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::{ClientInfo, Type};
use pgwire::error::PgWireResult;
use portcullis_catalog::{Column, ColumnType, QueryResult, Session, StatementResult, Value};

use super::errors::{fatal_with, session_ended, statement_error};
use super::PgConnection;

impl PgConnection {
    /// The signed-in session as it is now, or FATAL 57P01 saying why it ended.
    fn live_session(&self) -> PgWireResult<Arc<Session>> {
        let Some(session) = self.session() else {
            return Err(fatal_with("08P01", "not signed in".into()));
        };
        self.shared
            .auth
            .catalog()
            .live_session(&session.id)
            .map_err(|reason| session_ended(&self.end_reason().unwrap_or(reason)))
    }

    /// Why the session ended, if the registry told this connection.
    pub(super) fn end_reason(&self) -> Option<portcullis_catalog::EndReason> {
        match &*self.phase.lock() {
            super::Phase::SignedIn { ended: Some(w), .. } => w.borrow().clone(),
            _ => None,
        }
    }
}

fn field_type(kind: ColumnType) -> Type {
    match kind {
        ColumnType::Int => Type::INT8,
        ColumnType::Text => Type::TEXT,
    }
}

fn fields(columns: &[Column], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            FieldInfo::new(
                c.name.clone(),
                None,
                None,
                field_type(c.kind),
                format.format_for(i),
            )
        })
        .collect()
}

fn rows_response(result: QueryResult, format: &Format) -> PgWireResult<Response> {
    let schema = Arc::new(fields(&result.columns, format));
    let mut encoder = DataRowEncoder::new(schema.clone());
    let mut rows = Vec::with_capacity(result.rows.len());
    for row in result.rows {
        for (value, column) in row.iter().zip(&result.columns) {
            match (value, column.kind) {
                (Value::Int(i), ColumnType::Int) => encoder.encode_field(i)?,
                (Value::Null, ColumnType::Int) => encoder.encode_field(&None::<i64>)?,
                (other, _) => encoder.encode_field(&other.to_text())?,
            }
        }
        rows.push(Ok(encoder.take_row()));
    }
    Ok(Response::Query(QueryResponse::new(
        schema,
        stream::iter(rows),
    )))
}

fn to_response(result: StatementResult, format: &Format) -> PgWireResult<Response> {
    match result {
        StatementResult::Rows(rows) => rows_response(rows, format),
        StatementResult::Command(tag @ "BEGIN") => Ok(Response::TransactionStart(Tag::new(tag))),
        StatementResult::Command(tag @ ("COMMIT" | "ROLLBACK")) => {
            Ok(Response::TransactionEnd(Tag::new(tag)))
        }
        StatementResult::Command(tag) => Ok(Response::Execution(Tag::new(tag))),
    }
}

#[async_trait]
impl SimpleQueryHandler for PgConnection {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.live_session()?;
        let results = self
            .shared
            .auth
            .catalog()
            .execute(&session, query, &[])
            .await
            .map_err(statement_error)?;
        if results.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        results
            .into_iter()
            .map(|r| to_response(r, &Format::UnifiedText))
            .collect()
    }
}

/// Reads the bound parameters as catalog values.
fn parameters(portal: &Portal<String>) -> PgWireResult<Vec<Value>> {
    (0..portal.parameter_len())
        .map(|i| {
            let ty = portal
                .statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or(Type::UNKNOWN);
            Ok(match ty {
                Type::INT2 => portal
                    .parameter::<i16>(i, &ty)?
                    .map(|v| Value::Int(v.into())),
                Type::INT4 => portal
                    .parameter::<i32>(i, &ty)?
                    .map(|v| Value::Int(v.into())),
                Type::INT8 => portal.parameter::<i64>(i, &ty)?.map(Value::Int),
                Type::BOOL => portal.parameter::<bool>(i, &ty)?.map(Value::Bool),
                Type::FLOAT4 => portal
                    .parameter::<f32>(i, &ty)?
                    .map(|v| Value::Float(v.into())),
                Type::FLOAT8 => portal.parameter::<f64>(i, &ty)?.map(Value::Float),
                _ => portal.parameter::<String>(i, &Type::TEXT)?.map(Value::Text),
            }
            .unwrap_or(Value::Null))
        })
        .collect()
}

#[async_trait]
impl ExtendedQueryHandler for PgConnection {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.shared.parser.clone()
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.live_session()?;
        let params = parameters(portal)?;
        let results = self
            .shared
            .auth
            .catalog()
            .execute(&session, &portal.statement.statement, &params)
            .await
            .map_err(statement_error)?;
        match results.into_iter().last() {
            Some(result) => to_response(result, &portal.result_column_format),
            None => Ok(Response::EmptyQuery),
        }
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        stmt: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.live_session()?;
        let (columns, count) = self
            .shared
            .auth
            .catalog()
            .describe(&stmt.statement)
            .map_err(statement_error)?;
        let mut types: Vec<Type> = stmt
            .parameter_types
            .iter()
            .map(|t| t.clone().unwrap_or(Type::TEXT))
            .collect();
        types.resize(count.max(types.len()), Type::TEXT);
        Ok(DescribeStatementResponse::new(
            types,
            fields(&columns, &Format::UnifiedBinary),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.live_session()?;
        let (columns, _) = self
            .shared
            .auth
            .catalog()
            .describe(&portal.statement.statement)
            .map_err(statement_error)?;
        Ok(DescribePortalResponse::new(fields(
            &columns,
            &portal.result_column_format,
        )))
    }
}
