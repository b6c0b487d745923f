//! The flow definition (README "SQL API", docs/ARCHITECTURE.md): parsed leniently so validation can list every problem,
//! then used as typed values by the engine.
use super::interval::Interval;
use super::predicate;
use chrono::{NaiveTime, Weekday};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// One row of `journey.validate_flow`: the node (or `(flow)`, `trigger[i]`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub node: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    GroupJoined {
        group: String,
    },
    FormSubmitted {
        form: String,
    },
    Event {
        event: String,
        condition: Option<Value>,
    },
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reentry {
    Never,
    Always,
    After(Interval),
}

/// Where to go after a node, and when.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edge {
    pub to: String,
    pub delay: Option<Interval>,
    pub at: Option<NaiveTime>,
    pub days: Option<Vec<Weekday>>,
}

impl Edge {
    /// Whether following this edge always takes time (used by cycle detection).
    pub fn waits(&self) -> bool {
        self.delay.is_some_and(|d| !d.is_zero())
    }

    pub fn is_immediate(&self) -> bool {
        self.delay.is_none_or(|d| d.is_zero()) && self.at.is_none() && self.days.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    SendSms {
        text: String,
        sender: Option<String>,
        unsubscribe: bool,
        ignore_quiet_hours: bool,
    },
    SendEmail {
        template: Option<String>,
        subject: Option<String>,
        body: Option<String>,
        from_name: Option<String>,
        from: Option<String>,
        to: Option<String>,
    },
    Wait {
        delay: Option<Interval>,
        at: Option<NaiveTime>,
        days: Option<Vec<Weekday>>,
    },
    Goal {
        name: String,
    },
    Exit,
    SendWhatsapp {
        text: String,
    },
    NotifyAdmin {
        to: Option<String>,
        subject: Option<String>,
        text: String,
    },
    CreateTask {
        assignee: Option<String>,
        title: String,
        due: Option<Interval>,
    },
    Webhook {
        url: String,
        method: String,
        body: Option<String>,
    },
    UpdateContact {
        add_groups: Vec<String>,
        remove_groups: Vec<String>,
        set: Map<String, Value>,
    },
    Condition {
        predicate: Value,
        then: Option<Edge>,
        otherwise: Option<Edge>,
    },
    Split {
        branches: Vec<(f64, Edge)>,
    },
    /// check_sms / check_email: `yes` once the message reaches one of `statuses`.
    Check {
        channel: &'static str,
        message: String,
        statuses: Vec<&'static str>,
        wait: Interval,
        yes: Option<Edge>,
        no: Option<Edge>,
    },
    WaitEvent {
        event: String,
        timeout: Interval,
        yes: Option<Edge>,
        no: Option<Edge>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub next: Option<Edge>,
    pub stage: Option<String>,
}

impl Node {
    pub fn type_name(&self) -> &str {
        match &self.kind {
            NodeKind::SendSms { .. } => "send_sms",
            NodeKind::SendEmail { .. } => "send_email",
            NodeKind::Wait { .. } => "wait",
            NodeKind::Goal { .. } => "goal",
            NodeKind::Exit => "exit",
            NodeKind::SendWhatsapp { .. } => "send_whatsapp",
            NodeKind::NotifyAdmin { .. } => "notify_admin",
            NodeKind::CreateTask { .. } => "create_task",
            NodeKind::Webhook { .. } => "webhook",
            NodeKind::UpdateContact { .. } => "update_contact",
            NodeKind::Condition { .. } => "condition",
            NodeKind::Split { .. } => "split",
            NodeKind::Check { channel: "sms", .. } => "check_sms",
            NodeKind::Check { .. } => "check_email",
            NodeKind::WaitEvent { .. } => "wait_event",
        }
    }

    /// Every edge leaving the node, with its label ("" for next, then, else, yes, no, n%).
    pub fn labelled_edges(&self) -> Vec<(String, &Edge)> {
        let mut out: Vec<(String, &Edge)> = self.next.iter().map(|e| (String::new(), e)).collect();
        match &self.kind {
            NodeKind::Condition {
                then, otherwise, ..
            } => {
                out.extend(then.iter().map(|e| ("then".to_string(), e)));
                out.extend(otherwise.iter().map(|e| ("else".to_string(), e)));
            }
            NodeKind::Split { branches } => {
                out.extend(branches.iter().map(|(p, e)| (format!("{p}%"), e)));
            }
            NodeKind::Check { yes, no, .. } | NodeKind::WaitEvent { yes, no, .. } => {
                out.extend(yes.iter().map(|e| ("yes".to_string(), e)));
                out.extend(no.iter().map(|e| ("no".to_string(), e)));
            }
            _ => {}
        }
        out
    }

    /// Every edge leaving the node.
    pub fn edges(&self) -> Vec<&Edge> {
        self.labelled_edges().into_iter().map(|(_, e)| e).collect()
    }

    /// The edges an enrollment may follow without any time passing: none after a wait with a
    /// positive delay; every edge without a positive delay of its own, except a wait_event's
    /// `no` (taken only once its positive timeout has passed). A check's `yes` and `no` can
    /// both be instant (the message may already be delivered, or was never sent).
    pub fn instant_edges(&self) -> Vec<&Edge> {
        match &self.kind {
            NodeKind::Wait { delay: Some(d), .. } if !d.is_zero() => Vec::new(),
            NodeKind::WaitEvent { .. } => self
                .labelled_edges()
                .into_iter()
                .filter(|(label, e)| label != "no" && !e.waits())
                .map(|(_, e)| e)
                .collect(),
            _ => self.edges().into_iter().filter(|e| !e.waits()).collect(),
        }
    }

    /// Liquid sources of the node, with the field they come from.
    pub fn templates(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        match &self.kind {
            NodeKind::SendSms { text, sender, .. } => {
                out.push(("text", text.as_str()));
                if let Some(s) = sender {
                    out.push(("sender", s.as_str()));
                }
            }
            NodeKind::SendEmail {
                subject,
                body,
                to,
                from,
                from_name,
                ..
            } => {
                for (field, v) in [
                    ("subject", subject),
                    ("body", body),
                    ("to", to),
                    ("from", from),
                    ("from_name", from_name),
                ] {
                    if let Some(v) = v {
                        out.push((field, v.as_str()));
                    }
                }
            }
            NodeKind::SendWhatsapp { text } => out.push(("text", text.as_str())),
            NodeKind::NotifyAdmin { to, subject, text } => {
                out.push(("text", text.as_str()));
                for (field, v) in [("to", to), ("subject", subject)] {
                    if let Some(v) = v {
                        out.push((field, v.as_str()));
                    }
                }
            }
            NodeKind::CreateTask {
                assignee, title, ..
            } => {
                out.push(("title", title.as_str()));
                if let Some(a) = assignee {
                    out.push(("assignee", a.as_str()));
                }
            }
            NodeKind::Webhook { url, body, .. } => {
                out.push(("url", url.as_str()));
                if let Some(b) = body {
                    out.push(("body", b.as_str()));
                }
            }
            _ => {}
        }
        out
    }
}

/// A parsed definition. `refs` are the names it uses that must exist in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDef {
    pub triggers: Vec<Trigger>,
    pub reentry: Reentry,
    pub start: String,
    pub nodes: BTreeMap<String, Node>,
    pub refs: Vec<Reference>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub node: String,
    pub kind: &'static str,
    pub name: String,
}

pub const NODE_TYPES: &[&str] = &[
    "send_sms",
    "send_email",
    "send_whatsapp",
    "update_contact",
    "notify_admin",
    "create_task",
    "webhook",
    "wait",
    "condition",
    "split",
    "check_sms",
    "check_email",
    "wait_event",
    "goal",
    "exit",
];

const FLOW: &str = "(flow)";

/// Contact columns flows may set (besides attributes.<key>).
pub const CONTACT_FIELDS: &[&str] = &[
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "time_zone",
    "email_opt_out",
    "sms_opt_out",
];

/// Most nodes a definition may have.
pub const MAX_NODES: usize = 1000;
/// Most triggers a definition may have.
pub const MAX_TRIGGERS: usize = 100;
/// Deepest nesting of JSON arrays and objects in a definition.
pub const MAX_DEPTH: usize = 32;

/// Errors that make a definition unusable even as a draft (the wrong shape, or too large to
/// check and run safely).
pub fn check_shape(def: &Value) -> Result<(), String> {
    let obj = def
        .as_object()
        .ok_or("the definition must be a JSON object")?;
    let depth = super::json::depth(def);
    if depth > MAX_DEPTH {
        return Err(format!(
            "it is nested {depth} levels deep, more than {MAX_DEPTH}"
        ));
    }
    if let Some(n) = obj.get("nodes").and_then(Value::as_object) {
        if n.len() > MAX_NODES {
            return Err(format!("it has {} nodes, more than {MAX_NODES}", n.len()));
        }
    }
    if let Some(t) = obj.get("triggers").and_then(Value::as_array) {
        if t.len() > MAX_TRIGGERS {
            return Err(format!(
                "it has {} triggers, more than {MAX_TRIGGERS}",
                t.len()
            ));
        }
    }
    if let Some(t) = obj.get("triggers") {
        if !t.is_array() {
            return Err("\"triggers\" must be an array".into());
        }
    }
    if let Some(n) = obj.get("nodes") {
        let nodes = n
            .as_object()
            .ok_or("\"nodes\" must be an object of node id -> node")?;
        for (id, node) in nodes {
            if !node.is_object() {
                return Err(format!("node \"{id}\" must be an object"));
            }
        }
    }
    if let Some(s) = obj.get("start") {
        if !s.is_string() {
            return Err("\"start\" must be a node id (a string)".into());
        }
    }
    Ok(())
}

struct Ctx {
    problems: Vec<Problem>,
    refs: Vec<Reference>,
    node: String,
}

impl Ctx {
    fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(Problem {
            node: self.node.clone(),
            problem: text.into(),
        });
    }

    fn reference(&mut self, kind: &'static str, name: &str) {
        self.refs.push(Reference {
            node: self.node.clone(),
            kind,
            name: name.to_string(),
        });
    }

    fn string(&mut self, obj: &Map<String, Value>, field: &str, required: bool) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(format!("missing required field \"{field}\""));
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() && required => {
                self.problem(format!("field \"{field}\" must not be empty"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(format!("field \"{field}\" must be a string, not {other}"));
                None
            }
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, field: &str) -> bool {
        match obj.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(format!(
                    "field \"{field}\" must be true or false, not {other}"
                ));
                false
            }
        }
    }

    fn interval(&mut self, obj: &Map<String, Value>, field: &str) -> Option<Interval> {
        let text = self.string(obj, field, false)?;
        match Interval::parse(&text) {
            Ok(iv) => Some(iv),
            Err(e) => {
                self.problem(format!("field \"{field}\": {e}"));
                None
            }
        }
    }

    /// An interval that must be longer than zero (a wait, a check's wait, a timeout): a zero
    /// one would let an enrollment loop or re-send without time passing.
    fn positive_interval(&mut self, obj: &Map<String, Value>, field: &str) -> Option<Interval> {
        let iv = self.interval(obj, field)?;
        if iv.is_zero() {
            self.problem(format!(
                "field \"{field}\" must be longer than zero (e.g. \"1 hour\")"
            ));
        }
        Some(iv)
    }

    fn time(&mut self, obj: &Map<String, Value>, field: &str) -> Option<NaiveTime> {
        let text = self.string(obj, field, false)?;
        match parse_time(&text) {
            Some(t) => Some(t),
            None => {
                self.problem(format!(
                    "field \"{field}\": \"{text}\" is not a time of day (HH:MM, 00:00 to 23:59)"
                ));
                None
            }
        }
    }

    fn days(&mut self, obj: &Map<String, Value>, field: &str) -> Option<Vec<Weekday>> {
        let v = obj.get(field)?;
        match parse_days(v) {
            Ok(days) => Some(days),
            Err(e) => {
                self.problem(format!("field \"{field}\": {e}"));
                None
            }
        }
    }

    fn edge(&mut self, v: Option<&Value>, field: &str) -> Option<Edge> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(to)) => Some(Edge {
                to: to.clone(),
                ..Edge::default()
            }),
            Some(Value::Object(o)) => {
                let to = self.string(o, "to", true)?;
                for key in o.keys() {
                    if !["to", "delay", "at", "days"].contains(&key.as_str()) {
                        self.problem(format!(
                            "field \"{field}\" has unknown key \"{key}\" (use to, delay, at, days)"
                        ));
                    }
                }
                Some(Edge {
                    to,
                    delay: self.interval(o, "delay"),
                    at: self.time(o, "at"),
                    days: self.days(o, "days"),
                })
            }
            Some(other) => {
                self.problem(format!("field \"{field}\" must be a node id or {{\"to\", \"delay\", \"at\", \"days\"}}, not {other}"));
                None
            }
        }
    }
}

pub fn parse_time(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

pub fn parse_days(v: &Value) -> Result<Vec<Weekday>, String> {
    use Weekday::*;
    match v {
        Value::String(s) if s == "weekdays" => Ok(vec![Mon, Tue, Wed, Thu, Fri]),
        Value::String(s) if s == "weekend" => Ok(vec![Sat, Sun]),
        Value::String(s) if s == "all" || s == "every day" => {
            Ok(vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun])
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|d| {
                let name = d.as_str().unwrap_or("").to_ascii_lowercase();
                match name.as_str() {
                    "mon" | "monday" => Ok(Mon),
                    "tue" | "tues" | "tuesday" => Ok(Tue),
                    "wed" | "wednesday" => Ok(Wed),
                    "thu" | "thur" | "thurs" | "thursday" => Ok(Thu),
                    "fri" | "friday" => Ok(Fri),
                    "sat" | "saturday" => Ok(Sat),
                    "sun" | "sunday" => Ok(Sun),
                    _ => Err(format!(
                        "{d} is not a day name (mon, tue, wed, thu, fri, sat, sun, or in full)"
                    )),
                }
            })
            .collect(),
        other => Err(format!(
            "{other} is not \"weekdays\", \"weekend\" or a non-empty list of day names"
        )),
    }
}

impl FlowDef {
    /// Parses a definition, listing every problem. The result is usable only when no problem
    /// was found; callers must `check_shape` first.
    pub fn parse(def: &Value) -> (FlowDef, Vec<Problem>) {
        let empty = Map::new();
        let obj = def.as_object().unwrap_or(&empty);
        let mut cx = Ctx {
            problems: Vec::new(),
            refs: Vec::new(),
            node: FLOW.into(),
        };

        let triggers = parse_triggers(obj.get("triggers"), &mut cx);

        cx.node = FLOW.into();
        let reentry = match obj.get("reentry") {
            None | Some(Value::Null) => Reentry::Never,
            Some(Value::String(s)) if s == "never" => Reentry::Never,
            Some(Value::String(s)) if s == "always" => Reentry::Always,
            Some(Value::Object(o)) if o.contains_key("after") => cx
                .interval(o, "after")
                .map(Reentry::After)
                .unwrap_or(Reentry::Never),
            Some(other) => {
                cx.problem(format!("\"reentry\" must be \"never\", \"always\" or {{\"after\": interval}}, not {other}"));
                Reentry::Never
            }
        };

        let mut nodes = BTreeMap::new();
        match obj.get("nodes").and_then(Value::as_object) {
            Some(map) if !map.is_empty() => {
                for (id, v) in map {
                    cx.node = id.clone();
                    if let Some(node) = parse_node(id, v.as_object().unwrap_or(&empty), &mut cx) {
                        nodes.insert(id.clone(), node);
                    }
                }
            }
            _ => {
                cx.node = FLOW.into();
                cx.problem("the flow has no nodes");
            }
        }

        cx.node = FLOW.into();
        let start = match obj.get("start").and_then(Value::as_str) {
            None => {
                cx.problem("missing \"start\" (the id of the first node)");
                String::new()
            }
            Some(s)
                if !obj
                    .get("nodes")
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.contains_key(s)) =>
            {
                cx.problem(format!("\"start\" names unknown node \"{s}\""));
                s.to_string()
            }
            Some(s) => s.to_string(),
        };

        let flow = FlowDef {
            triggers,
            reentry,
            start,
            nodes,
            refs: cx.refs,
        };
        let mut problems = cx.problems;
        problems.extend(flow.graph_problems(obj.get("nodes").and_then(Value::as_object)));
        (flow, problems)
    }

    /// Edges to missing nodes, unreachable nodes, cycles without a delay.
    fn graph_problems(&self, raw: Option<&Map<String, Value>>) -> Vec<Problem> {
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

fn parse_triggers(v: Option<&Value>, cx: &mut Ctx) -> Vec<Trigger> {
    let mut out = Vec::new();
    let items = match v.and_then(Value::as_array) {
        Some(items) if !items.is_empty() => items,
        _ => {
            cx.node = FLOW.into();
            cx.problem(
                "the flow has no trigger (add {\"type\": \"manual\"} for journey.enroll only)",
            );
            return out;
        }
    };
    let empty = Map::new();
    for (i, t) in items.iter().enumerate() {
        cx.node = format!("trigger[{i}]");
        let Some(o) = t.as_object() else {
            cx.problem(format!("a trigger must be an object, not {t}"));
            continue;
        };
        let kind = cx.string(o, "type", true).unwrap_or_default();
        let o = if o.is_empty() { &empty } else { o };
        match kind.as_str() {
            "group_joined" => {
                if let Some(group) = cx.string(o, "group", true) {
                    cx.reference("group", &group);
                    out.push(Trigger::GroupJoined { group });
                }
            }
            "form_submitted" => {
                if let Some(form) = cx.string(o, "form", true) {
                    cx.reference("form", &form);
                    out.push(Trigger::FormSubmitted { form });
                }
            }
            "event" => {
                let condition = o.get("where").filter(|w| !w.is_null()).cloned();
                if let Some(w) = &condition {
                    let (mut problems, mut groups) = (Vec::new(), Vec::new());
                    predicate::check(w, &mut problems, &mut groups);
                    problems.into_iter().for_each(|p| cx.problem(format!("where: {p}")));
                    groups.iter().for_each(|g| cx.reference("group", g));
                }
                if let Some(event) = cx.string(o, "event", true) {
                    cx.reference("event type", &event);
                    out.push(Trigger::Event { event, condition });
                }
            }
            "manual" => out.push(Trigger::Manual),
            "date" | "record" => cx.problem(format!("trigger type \"{kind}\" is not yet supported")),
            "" => {}
            other => cx.problem(format!(
                "unknown trigger type \"{other}\" (use group_joined, form_submitted, event or manual)"
            )),
        }
    }
    out
}

fn parse_node(id: &str, o: &Map<String, Value>, cx: &mut Ctx) -> Option<Node> {
    let kind_name = cx.string(o, "type", true)?;
    let stage = cx.string(o, "stage", false);
    let next = cx.edge(o.get("next"), "next");
    let kind = match kind_name.as_str() {
        "send_sms" => NodeKind::SendSms {
            text: cx.string(o, "text", true).unwrap_or_default(),
            sender: cx.string(o, "sender", false),
            unsubscribe: cx.boolean(o, "unsubscribe"),
            ignore_quiet_hours: cx.boolean(o, "ignore_quiet_hours"),
        },
        "send_email" => {
            let template = cx.string(o, "template", false);
            let subject = cx.string(o, "subject", false);
            let body = cx.string(o, "body", false);
            match (&template, &subject, &body) {
                (Some(t), _, _) => cx.reference("template", t),
                (None, Some(_), Some(_)) => {}
                (None, None, _) => {
                    cx.problem("missing required field \"template\" (or \"subject\" and \"body\")")
                }
                (None, _, None) => cx.problem("missing required field \"body\" (or \"template\")"),
            }
            NodeKind::SendEmail {
                template,
                subject,
                body,
                from_name: cx.string(o, "from_name", false),
                from: cx.string(o, "from", false),
                to: cx.string(o, "to", false),
            }
        }
        "wait" => {
            let delay = cx.positive_interval(o, "delay");
            let at = cx.time(o, "at");
            let days = cx.days(o, "days");
            if delay.is_none() && at.is_none() && days.is_none() && !o.contains_key("delay") {
                cx.problem("a wait needs \"delay\", \"at\" or \"days\"");
            }
            NodeKind::Wait { delay, at, days }
        }
        "goal" => NodeKind::Goal {
            name: cx
                .string(o, "name", false)
                .unwrap_or_else(|| id.to_string()),
        },
        "exit" => NodeKind::Exit,
        "send_whatsapp" => NodeKind::SendWhatsapp {
            text: cx.string(o, "text", true).unwrap_or_default(),
        },
        "notify_admin" => NodeKind::NotifyAdmin {
            to: cx.string(o, "to", false),
            subject: cx.string(o, "subject", false),
            text: cx.string(o, "text", true).unwrap_or_default(),
        },
        "create_task" => NodeKind::CreateTask {
            assignee: cx.string(o, "assignee", false),
            title: cx.string(o, "title", true).unwrap_or_default(),
            due: cx.interval(o, "due"),
        },
        "webhook" => {
            let url = cx.string(o, "url", true).unwrap_or_default();
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                cx.problem(format!("field \"url\": \"{url}\" is not an http(s) URL"));
            }
            let method = cx
                .string(o, "method", false)
                .unwrap_or_else(|| "POST".into())
                .to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                cx.problem(format!(
                    "field \"method\": \"{method}\" is not GET, POST, PUT, PATCH or DELETE"
                ));
            }
            let body = match o.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(b)) => Some(b.clone()),
                Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
                Some(other) => {
                    cx.problem(format!(
                        "field \"body\" must be JSON text or a JSON object, not {other}"
                    ));
                    None
                }
            };
            NodeKind::Webhook { url, method, body }
        }
        "update_contact" => {
            let groups = |cx: &mut Ctx, field: &str| -> Vec<String> {
                match o.get(field) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                        let names: Vec<String> = items
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect();
                        names.iter().for_each(|g| cx.reference("group", g));
                        names
                    }
                    Some(other) => {
                        cx.problem(format!(
                            "field \"{field}\" must be a list of group names, not {other}"
                        ));
                        Vec::new()
                    }
                }
            };
            let add_groups = groups(cx, "add_groups");
            let remove_groups = groups(cx, "remove_groups");
            let set = match o.get("set") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => {
                    for key in m.keys() {
                        let attribute = key
                            .strip_prefix("attributes.")
                            .is_some_and(|k| !k.is_empty());
                        if !(CONTACT_FIELDS.contains(&key.as_str()) || attribute) {
                            cx.problem(format!(
                                "field \"set\": unknown contact field \"{key}\" (use {} or attributes.<key>)",
                                CONTACT_FIELDS.join(", ")
                            ));
                        }
                    }
                    m.clone()
                }
                Some(other) => {
                    cx.problem(format!(
                        "field \"set\" must be an object of contact field -> value, not {other}"
                    ));
                    Map::new()
                }
            };
            if add_groups.is_empty() && remove_groups.is_empty() && set.is_empty() {
                cx.problem("update_contact needs \"add_groups\", \"remove_groups\" or \"set\"");
            }
            NodeKind::UpdateContact {
                add_groups,
                remove_groups,
                set,
            }
        }
        "condition" => {
            let predicate = match o.get("if") {
                None | Some(Value::Null) => {
                    cx.problem("missing required field \"if\"");
                    Value::Null
                }
                Some(p) => {
                    let (mut problems, mut groups) = (Vec::new(), Vec::new());
                    predicate::check(p, &mut problems, &mut groups);
                    problems
                        .into_iter()
                        .for_each(|x| cx.problem(format!("if: {x}")));
                    groups.iter().for_each(|g| cx.reference("group", g));
                    p.clone()
                }
            };
            let then = cx.edge(o.get("then"), "then");
            let otherwise = cx.edge(o.get("else"), "else");
            if then.is_none() && otherwise.is_none() && next.is_none() {
                cx.problem("a condition needs \"then\" and/or \"else\"");
            }
            NodeKind::Condition {
                predicate,
                then,
                otherwise,
            }
        }
        "split" => {
            let mut branches = Vec::new();
            match o.get("branches").and_then(Value::as_array) {
                Some(items) if items.len() >= 2 => {
                    for (i, b) in items.iter().enumerate() {
                        let percent = b.get("percent").and_then(Value::as_f64);
                        if !percent.is_some_and(|p| (0.0..=100.0).contains(&p)) {
                            cx.problem(format!(
                                "branch {i}: \"percent\" must be a number from 0 to 100"
                            ));
                        }
                        match cx.edge(b.get("next"), &format!("branches[{i}].next")) {
                            Some(e) => branches.push((percent.unwrap_or(0.0), e)),
                            None => cx.problem(format!("branch {i}: missing \"next\"")),
                        }
                    }
                    let total: f64 = items
                        .iter()
                        .filter_map(|b| b.get("percent").and_then(Value::as_f64))
                        .sum();
                    if (total - 100.0).abs() > 1e-9 {
                        cx.problem(format!("split percentages sum to {total}, not 100"));
                    }
                }
                _ => cx.problem(
                    "missing required field \"branches\" (at least two {\"percent\", \"next\"})",
                ),
            }
            NodeKind::Split { branches }
        }
        "check_sms" | "check_email" => {
            let channel = if kind_name == "check_sms" {
                "sms"
            } else {
                "email"
            };
            let message = cx.string(o, "message", true).unwrap_or_default();
            let status = cx
                .string(o, "status", false)
                .unwrap_or_else(|| "delivered".into());
            let statuses = match (channel, status.as_str()) {
                (_, "delivered") => vec!["delivered", "opened", "clicked"],
                ("email", "opened") => vec!["opened", "clicked"],
                ("email", "clicked") => vec!["clicked"],
                _ => {
                    cx.problem(format!(
                        "field \"status\": \"{status}\" is not a status this check can wait for"
                    ));
                    vec![]
                }
            };
            let default_wait = if channel == "sms" { "2 hours" } else { "1 day" };
            let wait = cx
                .positive_interval(o, "wait")
                .unwrap_or_else(|| Interval::parse(default_wait).unwrap_or_default());
            let yes = cx.edge(o.get("yes"), "yes");
            let no = cx.edge(o.get("no"), "no");
            if yes.is_none() && no.is_none() {
                cx.problem("a check needs \"yes\" and/or \"no\"");
            }
            NodeKind::Check {
                channel,
                message,
                statuses,
                wait,
                yes,
                no,
            }
        }
        "wait_event" => {
            let event = cx.string(o, "event", true).unwrap_or_default();
            if !event.is_empty() {
                cx.reference("event type", &event);
            }
            let timeout = cx.positive_interval(o, "timeout");
            if timeout.is_none() && !o.contains_key("timeout") {
                cx.problem("missing required field \"timeout\"");
            }
            let yes = cx.edge(o.get("yes"), "yes");
            let no = cx.edge(o.get("no"), "no");
            if yes.is_none() && no.is_none() {
                cx.problem("a wait_event needs \"yes\" and/or \"no\"");
            }
            NodeKind::WaitEvent {
                event,
                timeout: timeout.unwrap_or_default(),
                yes,
                no,
            }
        }
        other => {
            cx.problem(format!(
                "unknown node type \"{other}\" (known: {})",
                NODE_TYPES.join(", ")
            ));
            return None;
        }
    };
    let node = Node {
        id: id.to_string(),
        kind,
        next,
        stage,
    };
    for (field, source) in node.templates() {
        if let Err(e) = crate::render::template::compile(source) {
            cx.problem(format!("field \"{field}\": Liquid syntax error: {e}"));
        }
    }
    Some(node)
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    fn problems(def: Value) -> Vec<String> {
        FlowDef::parse(&def)
            .1
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect()
    }

    #[test]
    fn complete_flow_has_no_problems() {
        let p = problems(json!({
            "triggers": [{"type": "group_joined", "group": "g"}],
            "start": "a",
            "nodes": {"a": {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": {"to": "b", "delay": "1 day"}},
                      "b": {"type": "goal", "name": "done"}}
        }));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn lists_every_problem() {
        let p = problems(json!({
            "triggers": [],
            "nodes": {"a": {"type": "send_sms", "next": "zz"},
                      "b": {"type": "teleport"},
                      "c": {"type": "send_sms", "text": "{% if %}", "next": {"to": "a", "delay": "soon", "at": "25:00", "days": ["funday"]}}}
        }));
        let all = p.join("\n");
        for needle in [
            "no trigger",
            "missing \"start\"",
            "missing required field \"text\"",
            "missing node \"zz\"",
            "unknown node type \"teleport\"",
            "Liquid syntax error",
            "not an interval",
            "not a time of day",
            "not a day name",
        ] {
            assert!(all.contains(needle), "expected {needle} in\n{all}");
        }
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
}
