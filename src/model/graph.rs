//! Graph checks of a parsed definition: edges to missing nodes, nodes unreachable from
//! `start`, cycles an enrollment could go round without time passing; and the flow order
//! (breadth-first from `start`) stats and diagrams list nodes in.
use super::flow::{Edge, FlowDef, Problem};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

impl FlowDef {
    /// Edges to missing nodes, unreachable nodes, cycles without a delay.
    pub(super) fn graph_problems(&self, raw: Option<&Map<String, Value>>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let exists = |id: &str| raw.is_some_and(|m| m.contains_key(id));
        for node in self.nodes.values() {
            for e in node.edges() {
                if !exists(&e.to) {
                    problems.push(Problem {
                        node: node.id.clone(),
                        problem: format!("next points to missing node \"{}\"", e.to),
                    });
                }
            }
        }
        if self.nodes.contains_key(&self.start) {
            let reached: HashSet<&str> = self.order().into_iter().collect();
            for id in self.nodes.keys() {
                if !reached.contains(id.as_str()) {
                    problems.push(Problem {
                        node: id.clone(),
                        problem: "unreachable from start".into(),
                    });
                }
            }
        }
        problems.extend(self.instant_cycles());
        problems
    }

    /// Nodes on a cycle an enrollment could go round without any time passing (every path
    /// round it lacks a positive delay): such a flow would send or loop on every run. An
    /// iterative depth-first search over the instant edges (no recursion: a definition may
    /// hold many nodes); one problem per cycle, on the node that closes it.
    fn instant_cycles(&self) -> Vec<Problem> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            OnPath,
            Done,
        }
        let mut problems = Vec::new();
        let mut mark: HashMap<&str, Mark> = HashMap::new();
        for root in self.nodes.keys() {
            if mark.contains_key(root.as_str()) {
                continue;
            }
            // (node, its instant edges, the next edge to follow)
            let mut stack: Vec<(&str, Vec<&Edge>, usize)> = Vec::new();
            mark.insert(root, Mark::OnPath);
            stack.push((root, self.instant_edges_of(root), 0));
            while let Some(top) = stack.last_mut() {
                let (id, edge) = (top.0, top.1.get(top.2).copied());
                top.2 += 1;
                let Some(edge) = edge else {
                    mark.insert(id, Mark::Done);
                    stack.pop();
                    continue;
                };
                let to = edge.to.as_str();
                match mark.get(to) {
                    Some(Mark::OnPath) => problems.push(Problem {
                        node: to.to_string(),
                        problem: "is on a cycle with no delay (add a positive \"delay\" to an edge or a wait on the cycle)".into(),
                    }),
                    Some(Mark::Done) => {}
                    None if self.nodes.contains_key(to) => {
                        mark.insert(to, Mark::OnPath);
                        let out = self.instant_edges_of(to);
                        stack.push((to, out, 0));
                    }
                    None => {}
                }
            }
        }
        problems
    }

    fn instant_edges_of(&self, id: &str) -> Vec<&Edge> {
        self.nodes
            .get(id)
            .map(|n| n.instant_edges())
            .unwrap_or_default()
    }

    /// Node ids in breadth-first order from start (flow order for stats and diagrams).
    pub fn order(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut queue = VecDeque::from([self.start.as_str()]);
        while let Some(id) = queue.pop_front() {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            if !seen.insert(id) {
                continue;
            }
            out.push(id);
            for e in node.edges() {
                queue.push_back(e.to.as_str());
            }
        }
        out
    }
}

#[cfg(test)]
mod unit {
    use crate::model::FlowDef;
    use serde_json::{json, Value};

    fn problems(def: Value) -> Vec<String> {
        FlowDef::parse(&def)
            .1
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect()
    }

    #[test]
    fn cycle_without_delay() {
        let p = problems(json!({
            "triggers": [{"type": "manual"}], "start": "a",
            "nodes": {"a": {"type": "goal", "next": "b"}, "b": {"type": "goal", "next": "a"}}
        }));
        assert!(p.iter().any(|x| x.contains("cycle with no delay")), "{p:?}");
        let ok = problems(json!({
            "triggers": [{"type": "manual"}], "start": "a",
            "nodes": {"a": {"type": "goal", "next": "b"}, "b": {"type": "goal", "next": {"to": "a", "delay": "1 day"}}}
        }));
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn order_is_breadth_first_from_start() {
        let (def, _) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}], "start": "a",
            "nodes": {"a": {"type": "condition", "if": {"in_group": "g"}, "then": "c", "else": "b"},
                      "b": {"type": "goal", "next": "d"}, "c": {"type": "goal", "next": "d"},
                      "d": {"type": "exit"}, "z": {"type": "exit"}}
        }));
        assert_eq!(def.order(), ["a", "c", "b", "d"]);
    }
}
