//! Graph checks of a parsed definition: edges to missing nodes, nodes unreachable from
//! `start`, cycles an enrollment could go round without time passing; and the flow order
//! (breadth-first from `start`) stats and diagrams list nodes in.
use super::flow::{Edge, FlowDef, NodeKind, Problem};
use super::suggest;
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
        problems.extend(self.forks_in_loops());
        problems.extend(self.check_messages(&exists));
        problems
    }

    /// A check's `message` must name a send node of its channel (send_sms for check_sms,
    /// send_email for check_email) that can run before it: reachable from start, the check
    /// reachable from it. Otherwise the check could only ever take `no`. (A name that is a
    /// node of the definition that did not parse has its own problem.)
    fn check_messages(&self, exists: &dyn Fn(&str) -> bool) -> Vec<Problem> {
        let from_start: HashSet<&str> = self.order().into_iter().collect();
        let mut problems = Vec::new();
        for check in self.nodes.values() {
            let NodeKind::Check { message, .. } = &check.kind else {
                continue;
            };
            let sender = match check.type_name() {
                "check_sms" => "send_sms",
                _ => "send_email",
            };
            let senders: Vec<&str> = self
                .nodes
                .values()
                .filter(|n| n.type_name() == sender)
                .map(|n| n.id.as_str())
                .collect();
            let choose = || match senders.is_empty() {
                true => format!(" (the flow has no {sender} node)"),
                false => suggest::hint(message, &senders, &format!("its {sender} nodes:")),
            };
            let problem = match self.nodes.get(message) {
                _ if message.is_empty() => continue,
                None if exists(message) => continue,
                None => format!("is not a node of the flow{}", choose()),
                Some(m) if m.type_name() != sender => format!(
                    "is a {} node: a {} waits for the message of a {sender} node{}",
                    m.type_name(),
                    check.type_name(),
                    choose()
                ),
                Some(_) if !self.nodes.contains_key(&self.start) => continue,
                Some(m) if from_start.contains(m.id.as_str()) && self.reaches(m, &check.id) => {
                    continue
                }
                Some(_) => format!(
                    "cannot run before this check: the check must be reachable from \"{message}\", \
                     and \"{message}\" from start (move the check after the send)"
                ),
            };
            problems.push(Problem {
                node: check.id.clone(),
                problem: format!("field \"message\": \"{message}\" {problem}"),
            });
        }
        problems
    }

    /// Whether an enrollment at `from` can reach the node `to` (breadth-first, no recursion).
    fn reaches(&self, from: &super::flow::Node, to: &str) -> bool {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&str> = from.edges().iter().map(|e| e.to.as_str()).collect();
        while let Some(id) = queue.pop_front() {
            if id == to {
                return true;
            }
            if !seen.insert(id) {
                continue;
            }
            if let Some(n) = self.nodes.get(id) {
                queue.extend(n.edges().iter().map(|e| e.to.as_str()));
            }
        }
        false
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

    /// Forks their own branches can reach again: each pass round such a loop would start every
    /// branch again beside the ones still running, so the branches (and the steps of each run)
    /// would grow without bound. (A branch reaching a fork goes on along its first edge and
    /// starts the others.)
    fn forks_in_loops(&self) -> Vec<Problem> {
        self.nodes
            .values()
            .filter(|n| matches!(n.kind, NodeKind::Fork { .. }) && self.reaches(n, &n.id))
            .map(|n| Problem {
                node: n.id.clone(),
                problem: "can be reached again from its own branches: every pass would start its branches once more beside those still running (move the fork out of the loop, or end the loop before it)".into(),
            })
            .collect()
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
    fn a_check_names_a_send_node_of_its_channel_that_runs_before_it() {
        let flow = |check: Value| {
            problems(json!({
                "triggers": [{"type": "manual"}], "start": "sms",
                "nodes": {"sms": {"type": "send_sms", "text": "Hi", "next": "mail"},
                          "mail": {"type": "send_email", "subject": "s", "body": "b", "next": "c"},
                          "c": check,
                          "late": {"type": "send_sms", "text": "Bye", "next": {"to": "c", "delay": "1 day"}},
                          "end": {"type": "exit"}}
            }))
            .into_iter()
            .filter(|p| p.starts_with("c: field"))
            .collect::<Vec<_>>()
        };
        let sms = |message: &str| json!({"type": "check_sms", "message": message, "yes": "end", "no": "late"});
        assert_eq!(flow(sms("sms")), Vec::<String>::new());
        assert_eq!(
            flow(json!({"type": "check_email", "message": "mail", "yes": "end"})),
            Vec::<String>::new()
        );
        assert_eq!(
            flow(sms("smss")),
            ["c: field \"message\": \"smss\" is not a node of the flow (did you mean \"sms\"?)"]
        );
        assert_eq!(
            flow(sms("welcome")),
            ["c: field \"message\": \"welcome\" is not a node of the flow (its send_sms nodes: late, sms)"]
        );
        assert_eq!(
            flow(sms("mail")),
            ["c: field \"message\": \"mail\" is a send_email node: a check_sms waits for the message of a send_sms node (its send_sms nodes: late, sms)"]
        );
        assert_eq!(
            flow(json!({"type": "check_email", "message": "sms", "yes": "end"})),
            ["c: field \"message\": \"sms\" is a send_sms node: a check_email waits for the message of a send_email node (its send_email nodes: mail)"]
        );
        // "late" runs only after the check (and "late" is reachable: from the check's no)
        assert_eq!(
            flow(sms("late")),
            Vec::<String>::new(),
            "late reaches c again (a loop): it can run before the check's second visit"
        );
        let p = problems(json!({
            "triggers": [{"type": "manual"}], "start": "c",
            "nodes": {"c": {"type": "check_sms", "message": "s", "yes": "s"},
                      "s": {"type": "send_sms", "text": "Hi"}}
        }));
        assert_eq!(
            p,
            [
                "c: field \"message\": \"s\" cannot run before this check: the check must be \
              reachable from \"s\", and \"s\" from start (move the check after the send)"
            ]
        );
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
