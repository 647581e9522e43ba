//! The admin SQL dialect: statements about databases, users, groups, roles, privileges and
//! password settings, parsed by recursive descent over sqlparser's tokenizer. Catalog queries
//! (`SELECT …`) are recognised here and handed to the query engine as text.

mod ast;
pub mod creates;
mod cursor;
mod display;
mod parser;
pub mod postgres;

pub use ast::*;
pub use parser::parse_statements;

/// Whether a statement string holds any statement that changes anything — the catalog or a
/// live session (a syntax error is an error).
pub fn changes_catalog(sql: &str) -> Result<bool, crate::CatalogError> {
    Ok(parse_statements(sql)?.iter().any(Statement::changes_state))
}
