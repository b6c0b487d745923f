//! The node types: one entry per `type` a definition may use, in the order the unknown-type
//! problem lists them. Parsing finds a node's parser here, and `Node::type_name`, the Liquid
//! checks of validation, the graph checks and `journey.flow_diagram` find what they need of a
//! parsed node through its entry. A new node type is one entry here, its `NodeKind` variant
//! (flow.rs) and its family's file under nodes/ (parser, checks, Liquid fields, branches); the
//! engine runs it in engine/nodes/ (docs/ARCHITECTURE.md, "Adding a node type").
use super::flow::{Edge, Node, NodeKind};
use super::nodes::{branch, check, contact, fork, goal, record, send, wait, Input};
use super::parse::Ctx;
use NodeKind::*;

/// One node type.
pub struct NodeType {
    /// Its `type` in a definition (and the type `flow_stats` lists).
    pub name: &'static str,
    /// How `journey.flow_diagram` shows the type.
    pub label: &'static str,
    /// Whether a node of this type writes a message (an outbox row).
    pub sends: bool,
    /// Reads and checks the node's own fields, listing every problem in the context.
    pub parse: fn(&Input, &mut Ctx) -> NodeKind,
    /// Whether a parsed node is of this type (what its parser makes).
    pub is: fn(&NodeKind) -> bool,
    /// Its Liquid sources, with the field each comes from.
    pub templates: fn(&NodeKind) -> Vec<(&'static str, &str)>,
    /// Its edges besides `next`, labelled (then, else, yes, no, n%).
    pub branches: fn(&NodeKind) -> Vec<(String, &Edge)>,
    /// The edges an enrollment may follow without any time passing.
    pub instant: fn(&Node) -> Vec<&Edge>,
    /// Its own fields (besides `type`, `next`, `stage`): any other key is a problem, with the
    /// nearest field as a hint. None: not checked.
    pub fields: Option<&'static [&'static str]>,
}

impl NodeType {
    /// A type that sends nothing, has no Liquid fields and no edge but `next`, any of them
    /// followed at once unless it has a positive delay; shown in diagrams by its name.
    const fn new(
        name: &'static str,
        parse: fn(&Input, &mut Ctx) -> NodeKind,
        is: fn(&NodeKind) -> bool,
    ) -> NodeType {
        NodeType {
            name,
            label: name,
            sends: false,
            parse,
            is,
            templates: no_templates,
            branches: no_branches,
            instant: edges_without_delay,
            fields: None,
        }
    }
}

/// Every node type.
pub static TYPES: &[NodeType] = &[
    NodeType {
        fields: Some(send::SMS_FIELDS),
        sends: true,
        templates: send::templates,
        ..NodeType::new("send_sms", send::sms, |k| matches!(k, SendSms { .. }))
    },
    NodeType {
        fields: Some(send::EMAIL_FIELDS),
        sends: true,
        templates: send::templates,
        ..NodeType::new("send_email", send::email, |k| matches!(k, SendEmail { .. }))
    },
    NodeType {
        fields: Some(send::WHATSAPP_FIELDS),
        sends: true,
        templates: send::templates,
        ..NodeType::new("send_whatsapp", send::whatsapp, |k| {
            matches!(k, SendWhatsapp { .. })
        })
    },
    NodeType {
        fields: Some(contact::FIELDS),
        ..NodeType::new("update_contact", contact::update, |k| {
            matches!(k, UpdateContact { .. })
        })
    },
    NodeType {
        fields: Some(send::ADMIN_FIELDS),
        sends: true,
        templates: send::templates,
        ..NodeType::new("notify_admin", send::notify_admin, |k| {
            matches!(k, NotifyAdmin { .. })
        })
    },
    NodeType {
        fields: Some(send::TASK_FIELDS),
        sends: true,
        templates: send::templates,
        ..NodeType::new("create_task", send::create_task, |k| {
            matches!(k, CreateTask { .. })
        })
    },
    NodeType {
        fields: Some(send::WEBHOOK_FIELDS),
        sends: true,
        templates: send::templates,
        ..NodeType::new("webhook", send::webhook, |k| matches!(k, Webhook { .. }))
    },
    NodeType {
        fields: Some(wait::FIELDS),
        instant: wait::instant_edges,
        ..NodeType::new("wait", wait::wait, |k| matches!(k, Wait { .. }))
    },
    NodeType {
        fields: Some(branch::CONDITION_FIELDS),
        branches: branch::branches,
        ..NodeType::new("condition", branch::condition, |k| {
            matches!(k, Condition { .. })
        })
    },
    NodeType {
        fields: Some(branch::SPLIT_FIELDS),
        branches: branch::branches,
        ..NodeType::new("split", branch::split, |k| matches!(k, Split { .. }))
    },
    NodeType {
        fields: Some(check::CHECK_FIELDS),
        branches: check::branches,
        ..NodeType::new("check_sms", check::check_sms, |k| {
            matches!(k, Check { channel: "sms", .. })
        })
    },
    NodeType {
        fields: Some(check::CHECK_FIELDS),
        branches: check::branches,
        ..NodeType::new("check_email", check::check_email, |k| {
            matches!(
                k,
                Check {
                    channel: "email",
                    ..
                }
            )
        })
    },
    NodeType {
        fields: Some(check::WAIT_EVENT_FIELDS),
        branches: check::branches,
        instant: check::wait_event_instant_edges,
        ..NodeType::new("wait_event", check::wait_event, |k| {
            matches!(k, WaitEvent { .. })
        })
    },
    NodeType {
        fields: Some(goal::GOAL_FIELDS),
        ..NodeType::new("goal", goal::goal, |k| matches!(k, Goal { .. }))
    },
    NodeType {
        fields: Some(goal::EXIT_FIELDS),
        ..NodeType::new("exit", goal::exit, |k| matches!(k, Exit))
    },
    NodeType {
        fields: Some(fork::FORK_FIELDS),
        branches: fork::branches,
        ..NodeType::new("fork", fork::fork, |k| matches!(k, Fork { .. }))
    },
    NodeType {
        fields: Some(record::UPDATE_FIELDS),
        templates: record::templates,
        ..NodeType::new("update_record", record::update, |k| {
            matches!(k, UpdateRecord { .. })
        })
    },
    NodeType {
        fields: Some(record::CREATE_FIELDS),
        templates: record::templates,
        ..NodeType::new("create_record", record::create, |k| {
            matches!(k, CreateRecord { .. })
        })
    },
];

/// The type named `name` in a definition.
pub fn get(name: &str) -> Option<&'static NodeType> {
    TYPES.iter().find(|t| t.name == name)
}

/// The type of a parsed node.
pub fn of(kind: &NodeKind) -> &'static NodeType {
    TYPES
        .iter()
        .find(|t| (t.is)(kind))
        .expect("every NodeKind is made by a registered parser")
}

/// Every type's name, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|t| t.name)
}

fn no_templates(_: &NodeKind) -> Vec<(&'static str, &str)> {
    Vec::new()
}

fn no_branches(_: &NodeKind) -> Vec<(String, &Edge)> {
    Vec::new()
}

/// Every edge of the node without a positive delay of its own.
pub fn edges_without_delay(node: &Node) -> Vec<&Edge> {
    node.edges().into_iter().filter(|e| !e.waits()).collect()
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::model::FlowDef;
    use serde_json::{json, Value};

    /// A node of each type with every required field (and a Liquid field where it has one).
    fn example(name: &str) -> Value {
        match name {
            "send_sms" | "send_whatsapp" => json!({"text": "Hi {{ contact.first_name }}"}),
            "send_email" => json!({"subject": "Hi", "body": "Hello {{ contact.first_name }}"}),
            "update_contact" => json!({"add_groups": ["g"]}),
            "notify_admin" => json!({"text": "{{ contact.email }} signed up"}),
            "create_task" => json!({"title": "Call {{ contact.first_name }}"}),
            "webhook" => json!({"url": "https://example.com/hook"}),
            "wait" => json!({"delay": "1 day"}),
            "condition" => json!({"if": {"in_group": "g"}, "then": "end"}),
            "split" => json!({"branches": [{"percent": 50, "next": "end"},
                                           {"percent": 50, "next": "end"}]}),
            "check_sms" | "check_email" => json!({"message": "m", "yes": "end"}),
            "wait_event" => json!({"event": "paid", "timeout": "1 day", "yes": "end"}),
            "goal" => json!({"name": "won"}),
            "exit" => json!({}),
            "fork" => json!({"next": ["end", {"to": "later", "delay": "1 day"}]}),
            "update_record" => json!({"set": {"status": "{{ contact.first_name }}"}}),
            "create_record" => json!({"table": "public.tasks", "values": {"title": "x"}}),
            other => panic!("no example of {other}: add one"),
        }
    }

    /// A flow whose node "a" is of type `name`, going on to "end".
    fn parse(name: &str) -> (FlowDef, Vec<String>) {
        let mut node = example(name);
        node["type"] = json!(name);
        if node.get("next").is_none() {
            node["next"] = json!("end");
        }
        let mut def = json!({
            "triggers": [{"type": "manual"}],
            "start": "a",
            "nodes": {"a": node, "end": {"type": "exit"}}
        });
        // a fork's second branch
        if name == "fork" {
            def["nodes"]["later"] = json!({"type": "exit"});
        }
        // a check waits for the message of a send node of its channel that runs before it
        if let Some(channel) = name.strip_prefix("check_") {
            def["start"] = json!("m");
            let mut send = example(&format!("send_{channel}"));
            send["type"] = json!(format!("send_{channel}"));
            send["next"] = json!("a");
            def["nodes"]["m"] = send;
        }
        let (def, problems) = FlowDef::parse(&def);
        let problems = problems
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect();
        (def, problems)
    }

    #[test]
    fn every_registered_type_parses_and_round_trips() {
        for t in TYPES {
            let (def, problems) = parse(t.name);
            assert_eq!(problems, Vec::<String>::new(), "{}", t.name);
            let node = &def.nodes["a"];
            assert_eq!(node.type_name(), t.name);
            assert!(std::ptr::eq(node.node_type(), t), "{}", t.name);
            assert!(std::ptr::eq(get(t.name).unwrap(), t), "{}", t.name);
            assert_eq!(node.sends(), t.sends, "{}", t.name);
        }
    }

    #[test]
    fn each_node_kind_belongs_to_one_type() {
        for t in TYPES {
            let (def, _) = parse(t.name);
            let kind = &def.nodes["a"].kind;
            let owners: Vec<&str> = TYPES
                .iter()
                .filter(|o| (o.is)(kind))
                .map(|o| o.name)
                .collect();
            assert_eq!(owners, [t.name]);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TYPES.len());
    }

    #[test]
    fn the_unknown_type_problem_lists_every_type() {
        let (_, problems) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}],
            "start": "a",
            "nodes": {"a": {"type": "teleport"}}
        }));
        let known: Vec<&str> = names().collect();
        let expected = format!(
            "unknown node type \"teleport\" (known: {})",
            known.join(", ")
        );
        assert!(
            problems
                .iter()
                .any(|p| p.node == "a" && p.problem == expected),
            "{problems:?}"
        );
        // the list as it always read (validate_flow's output is compared by the SQL tests)
        assert_eq!(
            known,
            [
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
                "fork",
                "update_record",
                "create_record",
            ]
        );
    }
}
