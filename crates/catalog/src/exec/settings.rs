//! `ALTER { SYSTEM | DATABASE d | GROUP g } { SET | RESET } password_…`.

use portcullis_store::*;

use super::{database, group, Actor};
use crate::error::CatalogError;
use crate::model::CatalogState;
use crate::privileges::{Action, Privilege};
use crate::settings::SecuritySetting;
use crate::sql::SettingScope;

pub fn set(
    actor: &Actor,
    state: &CatalogState,
    scope: &SettingScope,
    setting: SecuritySetting,
    value: Option<i64>,
) -> Result<Vec<Change>, CatalogError> {
    let (scope_ref, object, describe) = match scope {
        SettingScope::System => (ScopeRef::System, ObjectRef::System, "the system".to_owned()),
        SettingScope::Database(name) => {
            let db = database(state, name)?;
            (
                ScopeRef::Database(db.id),
                ObjectRef::Database(db.id),
                format!("database \"{name}\""),
            )
        }
        SettingScope::Group(name) => {
            let g = group(state, name, actor.current_database())?;
            (
                ScopeRef::Group(g.id),
                ObjectRef::Group(g.id),
                format!("group \"{name}\""),
            )
        }
    };
    actor.require(state, Privilege::new(Action::Sysauth), object, || describe)?;
    Ok(match value {
        Some(value) => {
            let (low, high) = setting.valid_range();
            if !(low..=high).contains(&value) {
                return Err(CatalogError::invalid(format!(
                    "{} must be between {low} and {high}",
                    setting.name()
                )));
            }
            vec![Change::PutSetting(SettingRecord {
                scope: scope_ref,
                name: setting.name().into(),
                value,
            })]
        }
        None => vec![Change::RemoveSetting {
            scope: scope_ref,
            name: setting.name().into(),
        }],
    })
}
