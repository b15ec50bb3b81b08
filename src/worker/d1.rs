//! The D1 executor: runs the SQL store's statements ([`SqlStore`]) on the D1 binding. A batch
//! is one `batch()` call, which D1 runs as one transaction.

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::domain::store::sql::{Executor, Outcome, Param, SqlStore, Statement};
use crate::primitives::error::Error;

/// The store on a D1 binding.
pub type D1Store = SqlStore<D1>;

/// Wraps the binding in the store.
pub fn store(db: D1Database) -> D1Store {
    SqlStore::new(D1 { db })
}

/// An [`Executor`] on a D1 binding.
pub struct D1 {
    db: D1Database,
}

impl D1 {
    fn prepare(&self, statement: &Statement<'_>) -> Result<D1PreparedStatement, Error> {
        let params: Vec<JsValue> = statement.params.iter().map(js_value).collect();
        self.db
            .prepare(&*statement.sql)
            .bind(&params)
            .map_err(db_err)
    }
}

fn js_value(param: &Param<'_>) -> JsValue {
    match param {
        Param::Null => JsValue::NULL,
        // D1 numbers are JS doubles; Unix milliseconds and counters stay far below 2^53.
        Param::Int(n) => JsValue::from_f64(*n as f64),
        Param::Text(s) => JsValue::from_str(s),
    }
}

fn db_err(err: worker::Error) -> Error {
    Error::Internal(format!("D1: {err}"))
}

fn outcome(result: D1Result) -> Outcome<D1Result> {
    let changes = result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0) as u64;
    Outcome {
        changes,
        rows: result,
    }
}

impl Executor for D1 {
    type Rows = D1Result;

    async fn one(&self, statement: Statement<'_>) -> Result<Outcome<D1Result>, Error> {
        let result = self.prepare(&statement)?.all().await.map_err(db_err)?;
        Ok(outcome(result))
    }

    async fn batch(&self, statements: Vec<Statement<'_>>) -> Result<Vec<Outcome<D1Result>>, Error> {
        let prepared = statements
            .iter()
            .map(|s| self.prepare(s))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self.db.batch(prepared).await.map_err(db_err)?;
        Ok(results.into_iter().map(outcome).collect())
    }

    fn rows<T: DeserializeOwned>(rows: D1Result) -> Result<Vec<T>, Error> {
        rows.results::<T>().map_err(db_err)
    }
}
