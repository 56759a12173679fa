//! `nats-pipeline`: the generated service on ruststream-nats against bare async-nats.

use crate::opts::Opts;
use crate::{BenchResult, Line};

/// `nats-pipeline`.
pub fn nats_pipeline(_opts: &Opts) -> BenchResult<Line> {
    Ok(Line::skipped(
        "nats-pipeline",
        "ruststream-nats is not a workspace member yet",
    ))
}
