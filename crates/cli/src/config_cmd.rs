//! `warden config check FILE`: load and validate a configuration exactly as
//! `warden serve` would, without starting anything.

use std::path::Path;

use warden_server::Config;
use warden_server::config::Overrides;

use crate::Failure;

/// Exit 0 with a one-line summary, or exit 2 naming every problem.
pub fn check(file: &Path) -> Result<(), Failure> {
    match Config::load(Some(file), &Overrides::default()) {
        Ok(config) => {
            let g = &config.gateway;
            let mcp = g.upstreams.iter().filter(|u| u.kind.is_mcp()).count();
            println!(
                "ok: {}: {} upstreams ({} HTTP, {mcp} MCP), {} routes, listen {}",
                file.display(),
                g.upstreams.len(),
                g.upstreams.len() - mcp,
                g.routes.len(),
                config.listen
            );
            Ok(())
        }
        Err(e) => Err(Failure::BadInput(format!(
            "{} problem(s) in the configuration:\n{}",
            e.problems.len(),
            e.problems.join("\n")
        ))),
    }
}
