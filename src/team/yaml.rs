//! YAML from target repos (task front matter, `.llm-team.yml`) is untrusted: it is
//! parsed with serde-saphyr under a small budget (size, nodes, depth, aliases and their
//! replay), so a few hundred bytes of nested aliases cannot exhaust memory, and a bad
//! file is a problem reported for that file, never a failed scan.

use serde_json::Value;

/// The largest YAML text gaffer parses from a repo (front matter or config file).
pub const MAX_YAML_BYTES: usize = 64 * 1024;

/// Parses `text` into JSON-shaped data within the budget; `Err` says why not, in one line.
pub fn parse_bounded(text: &str) -> Result<Value, String> {
    if text.len() > MAX_YAML_BYTES {
        return Err(format!(
            "{} bytes of YAML is more than the {MAX_YAML_BYTES} gaffer reads",
            text.len()
        ));
    }
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(serde_saphyr::Budget {
        max_reader_input_bytes: Some(MAX_YAML_BYTES),
        max_events: 20_000,
        max_aliases: 64,
        max_anchors: 64,
        max_depth: 32,
        max_documents: 1,
        max_nodes: 10_000,
        max_total_scalar_bytes: MAX_YAML_BYTES,
        max_merge_keys: 16,
        ..serde_saphyr::Budget::default()
    });
    options.alias_limits = serde_saphyr::options::AliasLimits {
        max_total_replayed_events: 2_000,
        max_replay_stack_depth: 8,
        max_alias_expansions_per_anchor: 32,
    };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        e.to_string()
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid YAML")
            .chars()
            .take(300)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_bombs_and_huge_or_deep_documents_are_refused() {
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
        assert!(bomb.len() < 600);
        assert!(parse_bounded(bomb).is_err());
        let deep = format!("{}x{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_bounded(&deep).is_err());
        let huge = format!("a: \"{}\"\n", "x".repeat(MAX_YAML_BYTES));
        assert!(parse_bounded(&huge).unwrap_err().contains("more than"));
        let ok =
            parse_bounded("id: T-0001\nacceptance: [a, b]\nbase: &b {x: 1}\nmore: *b\n").unwrap();
        assert_eq!(ok["more"]["x"], 1);
    }
}
