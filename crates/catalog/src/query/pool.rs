//! The bounded pool catalog queries run on: a few query engines, each with its own copy of the
//! catalog, used on tokio's blocking threads so that a slow query never holds an async worker
//! (and with it sign-ins and other clients).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::error::{sqlstate, CatalogError};
use crate::model::CatalogState;
use crate::sessions::{Session, SessionsView};
use crate::value::{QueryResult, Value};

use super::limits::QUERY_TIME_LIMIT;
use super::QueryEngine;

/// How many catalog queries run at once; more wait for a free engine. Two slow queries still
/// leave engines for everybody else.
pub const QUERY_ENGINES: usize = 4;

/// How long a query may run on an async worker before it is sent to the blocking pool
/// instead (and run there again from the start).
pub const SMALL_QUERY_BUDGET: Duration = Duration::from_micros(200);

/// One catalog query and the catalog it runs over.
pub struct QueryJob {
    pub sql: String,
    pub params: Vec<Value>,
    pub session: Session,
    pub state: Arc<CatalogState>,
    /// The catalog generation `state` is at (read before `state`).
    pub catalog_generation: u64,
    /// The live sessions (`sys.sessions`), listed only by a query that reads them.
    pub sessions: SessionsView,
    /// The authentication events (`sys.authentication_events`).
    pub events: Option<Arc<crate::events::EventLog>>,
}

/// The engines, created when first needed, and the permits that bound how many run.
pub struct QueryPool {
    idle: Arc<Mutex<Vec<QueryEngine>>>,
    permits: Arc<Semaphore>,
    wait_limit: Duration,
    time_limit: Duration,
}

impl Default for QueryPool {
    fn default() -> Self {
        Self::new(QUERY_ENGINES, QUERY_TIME_LIMIT)
    }
}

impl QueryPool {
    /// A pool of `engines` engines whose queries may run for `time_limit`.
    pub fn new(engines: usize, time_limit: Duration) -> Self {
        Self {
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(engines.max(1))),
            wait_limit: QUERY_TIME_LIMIT,
            time_limit,
        }
    }

    /// Runs a query on a free engine, off the async workers. Waits (asynchronously) up to the
    /// query time limit for one. The permit travels with the blocking work, so a caller that
    /// goes away does not free a slot whose query is still running.
    pub async fn run(&self, job: QueryJob) -> Result<QueryResult, CatalogError> {
        // A small query (`SELECT 1`, `SELECT version()`: no sys table, done within a fraction
        // of a millisecond) is answered here, on a free engine, without the round trip to a
        // blocking thread; the rest, and one that turns out bigger, go to the blocking pool.
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            let popped = self.idle.lock().pop();
            if let Some(mut engine) = popped {
                let answer = engine.run_small(&job, SMALL_QUERY_BUDGET);
                self.idle.lock().push(engine);
                drop(permit);
                if let Some(answer) = answer {
                    return answer;
                }
            }
        }
        let permit = tokio::time::timeout(self.wait_limit, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                CatalogError::new(
                    sqlstate::QUERY_CANCELED,
                    "canceling statement: every catalog query engine stayed busy; try again",
                )
            })?
            .map_err(|_| CatalogError::internal("the catalog query pool is closed"))?;
        let idle = self.idle.clone();
        let time_limit = self.time_limit;
        let work = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let popped = idle.lock().pop();
            let mut engine = match popped {
                Some(engine) => engine,
                None => QueryEngine::with_time_limit(time_limit)?,
            };
            let result = engine.run(&job);
            idle.lock().push(engine);
            result
        });
        work.await.map_err(|e| {
            tracing::error!(error = %e, "a catalog query engine failed");
            CatalogError::internal("the catalog query engine failed")
        })?
    }
}
