//! The repository's shape, checked: host modules import one way only (no
//! module reaches one that reaches it back; layers `api → runtime →
//! capabilities → db`, `cli → service`), no non-test file over 600 lines,
//! every file opens with its `//!` role, and README's layout matches the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !matches!(name.as_str(), "target" | "components" | "node_modules") {
                pending.push(path);
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `host/src/a/b.rs` and `host/src/a/b/mod.rs` are module `a::b`; lib.rs is the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// What one module file says about names: the modules it declares, the
/// names it re-exports (`pub use`), and every path it imports or names.
#[derive(Default)]
struct ModuleFacts {
    children: BTreeSet<String>,
    reexports: BTreeMap<String, Vec<String>>,
    named: Vec<Vec<String>>,
}

/// Flatten a use tree into full paths (with the name each binds).
fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            if name != "self" {
                path.push(name.clone());
            }
            let bound = path.last().cloned().unwrap_or(name);
            out.push((path, bound));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            out.push((path, r.rename.to_string()));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), "*".into())),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix, out);
            }
        }
    }
}

struct Collector<'a> {
    facts: &'a mut ModuleFacts,
    depth: usize,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_none() {
            self.facts.children.insert(item.ident.to_string());
        }
        // Inline modules (tests) are not part of the module graph.
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        flatten(&item.tree, &mut Vec::new(), &mut paths);
        // `pub use` (and `pub(crate) use`, ...) re-exports; a private `use`
        // (at any depth: inside functions too) is an import.
        let reexport = self.depth == 0 && !matches!(item.vis, syn::Visibility::Inherited);
        for (path, bound) in paths {
            if reexport {
                self.facts.reexports.insert(bound, path);
            } else {
                self.facts.named.push(path);
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.segments.len() > 1 {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.facts.named.push(segments);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.depth += 1;
        syn::visit::visit_item_fn(self, item);
        self.depth -= 1;
    }
}

/// The host's module graph: for each module, the modules it imports from.
struct ModuleGraph {
    facts: BTreeMap<Vec<String>, ModuleFacts>,
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl ModuleGraph {
    fn of(src: &Path) -> Self {
        let mut facts = BTreeMap::new();
        for file in rust_files(src) {
            if file.file_name().is_some_and(|n| n == "main.rs") {
                continue; // the binary: a crate of its own
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let parsed =
                syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let mut module = ModuleFacts::default();
            Collector {
                facts: &mut module,
                depth: 0,
            }
            .visit_file(&parsed);
            facts.insert(module_of(src, &file), module);
        }
        let mut graph = Self {
            facts,
            edges: BTreeMap::new(),
        };
        let modules: Vec<Vec<String>> = graph.facts.keys().cloned().collect();
        for module in modules {
            let mut targets = BTreeSet::new();
            for path in &graph.facts[&module].named {
                if let Some(target) = graph.resolve(&module, path, 0) {
                    if target != module {
                        targets.insert(target);
                    }
                }
            }
            graph.edges.insert(module, targets);
        }
        graph
    }

    /// The module defining what `path` (as written in `module`) names, if
    /// it is in this crate; re-exports are followed to their source.
    fn resolve(&self, module: &[String], path: &[String], depth: usize) -> Option<Vec<String>> {
        assert!(depth < 32, "re-exports loop at {module:?} {path:?}");
        let (mut at, rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
            Some("crate") => (Vec::new(), &path[1..]),
            Some("self") => (module.to_vec(), &path[1..]),
            Some("super") => {
                let mut at = module.to_vec();
                let mut rest = path;
                while rest.first().map(String::as_str) == Some("super") {
                    at.pop();
                    rest = &rest[1..];
                }
                (at, rest)
            }
            Some(first) if self.facts.get(module)?.children.contains(first) => {
                (module.to_vec(), path)
            }
            _ => return None,
        };
        let mut rest = rest;
        while let Some(next) = rest.first() {
            let mut child = at.clone();
            child.push(next.clone());
            if self.facts.contains_key(&child) {
                at = child;
                rest = &rest[1..];
                continue;
            }
            // An item of `at`: defined there, or re-exported from elsewhere.
            if let Some(source) = self.facts[&at].reexports.get(next) {
                let mut source = source.clone();
                source.extend(rest[1..].iter().cloned());
                return self.resolve(&at, &source, depth + 1).or(Some(at));
            }
            return Some(at);
        }
        Some(at)
    }

    /// Groups of modules that reach each other (Tarjan's strongly connected
    /// components of more than one module).
    fn cycles(&self) -> Vec<Vec<String>> {
        struct Tarjan<'g> {
            graph: &'g ModuleGraph,
            index: BTreeMap<&'g Vec<String>, usize>,
            low: BTreeMap<&'g Vec<String>, usize>,
            stack: Vec<&'g Vec<String>>,
            on_stack: BTreeSet<&'g Vec<String>>,
            found: Vec<Vec<String>>,
        }
        impl<'g> Tarjan<'g> {
            fn visit(&mut self, node: &'g Vec<String>) {
                let n = self.index.len();
                self.index.insert(node, n);
                self.low.insert(node, n);
                self.stack.push(node);
                self.on_stack.insert(node);
                for next in &self.graph.edges[node] {
                    if !self.index.contains_key(next) {
                        self.visit(next);
                        let low = self.low[node].min(self.low[next]);
                        self.low.insert(node, low);
                    } else if self.on_stack.contains(next) {
                        let low = self.low[node].min(self.index[next]);
                        self.low.insert(node, low);
                    }
                }
                if self.low[node] == self.index[node] {
                    let mut component = Vec::new();
                    while let Some(member) = self.stack.pop() {
                        self.on_stack.remove(member);
                        component.push(member.join("::"));
                        if member == node {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort();
                        self.found.push(component);
                    }
                }
            }
        }
        let mut tarjan = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for node in self.edges.keys() {
            if !tarjan.index.contains_key(node) {
                tarjan.visit(node);
            }
        }
        tarjan.found
    }
}

/// The layers of the host, lowest first: a module may import from its own
/// layer's modules and from lower layers only.
const LAYERS: &[&[&str]] = &[
    &["domain", "bindings", "schedule"],
    &["db"],
    &["capabilities"],
    &["runtime"],
    &["invocations"],
    &["mcp"],
    &["api"],
    &["service", "authoring"],
    &["cli"],
];

fn layer(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top.as_str()))
}

#[test]
fn host_modules_import_one_way() {
    let graph = ModuleGraph::of(&root().join("host/src"));
    assert!(
        graph.edges.len() > 20,
        "found too few modules to be the host"
    );
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "modules that import each other (directly or through others): {cycles:#?}"
    );
    let mut upward = Vec::new();
    for (from, targets) in &graph.edges {
        for to in targets {
            if let (Some(a), Some(b)) = (layer(from), layer(to)) {
                if a < b {
                    upward.push(format!("{} -> {}", from.join("::"), to.join("::")));
                }
            }
        }
        if !from.is_empty() {
            assert!(layer(from).is_some(), "{from:?} is in no layer of LAYERS");
        }
    }
    assert!(upward.is_empty(), "imports against the layers: {upward:#?}");
}

#[test]
fn the_checker_sees_a_loop_and_an_upward_import() {
    let dir = std::env::temp_dir().join(format!("bookhost-layout-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let write = |path: &str, text: &str| std::fs::write(dir.join(path), text).unwrap();
    write(
        "lib.rs",
        "//! root\npub mod db;\npub mod runtime;\npub use runtime::Host;\n",
    );
    write("db/mod.rs", "//! db\nmod sql;\npub use sql::Statement;\n");
    write("db/sql.rs", "//! sql\npub struct Statement(crate::Host);\n");
    write(
        "runtime.rs",
        "//! runtime\nuse crate::db::Statement;\npub struct Host;\n",
    );
    let graph = ModuleGraph::of(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    // db::sql names crate::Host, re-exported from runtime, which imports
    // db::Statement, re-exported from db::sql: one loop, one upward import.
    assert_eq!(graph.cycles(), vec![vec!["db::sql", "runtime"]]);
    assert!(
        graph.edges[&vec!["db".to_owned(), "sql".to_owned()]].contains(&vec!["runtime".to_owned()])
    );
}

/// Source files that are not tests: the host, the executors and their
/// tools, the test support library and the benchmarks.
fn non_test_sources() -> Vec<PathBuf> {
    let root = root();
    let mut files = rust_files(&root.join("host"));
    files.extend(rust_files(&root.join("plugins")));
    files.extend(rust_files(&root.join("tests/support")));
    files.extend(rust_files(&root.join("tests/bench")));
    files.push(root.join("tests/build.rs"));
    files
}

#[test]
fn no_source_file_is_over_600_lines_and_each_says_its_role() {
    let root = root();
    let mut all = non_test_sources();
    all.extend(rust_files(&root.join("tests/integration")));
    for file in &all {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with("//! "),
            "{} does not open with a `//!` line saying its role",
            file.display()
        );
    }
    let long: Vec<String> = non_test_sources()
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > 600).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "non-test files over 600 lines: {long:#?}");
}

/// The fenced block under README's `## Layout` heading.
fn readme_layout() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Layout\n")
        .nth(1)
        .expect("README has a `## Layout` section");
    section
        .split("```")
        .nth(1)
        .expect("the layout section holds a fenced block")
        .to_owned()
}

#[test]
fn the_readme_layout_matches_the_tree() {
    let layout = readme_layout();
    let root = root();
    // Every entry it names exists: top-level names, and `src/...` under host/.
    let mut named = BTreeSet::new();
    for line in layout.lines() {
        // An entry is a path (`wit/`, `src/db/`, `Cargo.toml`); other lines
        // continue the description above them.
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let is_path = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
            && (name.ends_with('/') || name.contains('.'));
        if !is_path {
            continue;
        }
        let path = if line.starts_with(' ') {
            root.join("host").join(name)
        } else {
            root.join(name)
        };
        assert!(
            path.exists(),
            "README's layout names {name}, which does not exist"
        );
        named.insert(path.canonicalize().unwrap());
    }
    // Every top-level folder and every module of host/src is in it.
    let src = root.join("host/src");
    let mut expected: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    for top in [
        "Cargo.toml",
        "wit",
        "host",
        "plugins",
        "migrations",
        "tests",
        "docs",
    ] {
        expected.push(root.join(top));
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|p| !named.contains(&p.canonicalize().unwrap()))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "README's layout does not mention {missing:?}"
    );
}
