//! Dependencies between the crate's modules point one way: among the children of any module
//! (the crate's top-level modules, the parts of `gpu`, ...), none uses a sibling that uses it
//! back, directly or through others. Read from the source: every `crate::…` and `super::…` path
//! outside comments counts as a use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a source file: `src/gpu/plan/forward.rs` → `["gpu", "plan", "forward"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module paths `code` (one line, comments removed) names, resolved from module `me`.
fn paths_used(line: &str, me: &[String], is_dir_module: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let words: Vec<&str> = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("crate::") || w.starts_with("super::"))
        .collect();
    for w in words {
        let segs: Vec<&str> = w.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<String> = if segs[0] == "crate" {
            Vec::new()
        } else {
            // `super` of a file module is its parent; of a `mod.rs` module, the parent's parent.
            let mut b = me.to_vec();
            if !is_dir_module || !b.is_empty() {
                b.pop();
            }
            b
        };
        for s in &segs[1..] {
            if *s == "super" {
                base.pop();
            } else {
                base.push(s.to_string());
            }
        }
        out.push(base);
    }
    out
}

/// Finds a cycle in `graph`, if any, as the list of nodes along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// For every parent module, the use edges between its children: `parent → {child → {child}}`.
fn sibling_graphs() -> BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let me = module_of(&src, &file);
        let is_dir_module = matches!(
            file.file_stem().and_then(|s| s.to_str()),
            Some("mod" | "lib")
        );
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let code = line.split("//").next().unwrap_or("");
            for used in paths_used(code, &me, is_dir_module) {
                // The first level where the two paths part: siblings under a common parent.
                let common = me.iter().zip(&used).take_while(|(a, b)| a == b).count();
                if common < me.len() && common < used.len() {
                    graphs
                        .entry(me[..common].to_vec())
                        .or_default()
                        .entry(me[common].clone())
                        .or_default()
                        .insert(used[common].clone());
                }
            }
        }
    }
    graphs
}

#[test]
fn no_two_sibling_modules_depend_on_each_other_directly_or_indirectly() {
    let graphs = sibling_graphs();
    assert!(
        graphs.contains_key(&Vec::new()),
        "no uses between top-level modules found"
    );
    for (parent, graph) in &graphs {
        if let Some(cycle) = find_cycle(graph) {
            panic!(
                "modules under `crate::{}` form a cycle: {}",
                parent.join("::"),
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_through_three_modules() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [
        ("cpu", "real"),
        ("real", "activations"),
        ("activations", "cpu"),
        ("gpu", "cpu"),
    ] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    let cycle = find_cycle(&g).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
}
