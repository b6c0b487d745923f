//! journey-relay: sends journey's outbox (sql/relay.sql's protocol) through SMTP, an SMS and
//! WhatsApp gateway (Twilio Messages API form) and signed webhooks, and records delivery
//! callbacks. README "Sending messages" is its manual.
mod bucket;
mod callbacks;
mod config;
mod db;
mod email;
mod http;
mod metrics;
mod outcome;
mod pool;
mod relay;
mod sign;

use clap::Parser;
use config::{Config, Settings};
use metrics::Metrics;
use pool::{Pool, Provider};
use relay::{capacity, Class, Relay};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};

fn settings() -> Result<Config, String> {
    let flags = Settings::parse();
    let file = match &flags.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("config {}: {e}", path.display()))?;
            Settings::from_toml(&text)?
        }
        None => Settings::default(),
    };
    Config::resolve(flags.over(file))
}

/// The provider classes of the configured channels, each with its pool.
fn classes(c: &Config, done: &mpsc::Sender<pool::Done>, metrics: &Arc<Metrics>) -> Vec<Class> {
    let want = |chs: &[&'static str]| -> Vec<&'static str> {
        chs.iter()
            .copied()
            .filter(|ch| c.channels.iter().any(|x| x == ch))
            .collect()
    };
    let mut out = vec![];
    let mut add = |name: &'static str,
                   chs: Vec<&'static str>,
                   limits: config::Limits,
                   provider: Option<Provider>| {
        if chs.is_empty() {
            return;
        }
        let cap = capacity(
            c.batch_size,
            limits.concurrency,
            limits.rate,
            c.lease,
            c.timeout,
        );
        let pool = provider.map(|p| {
            Pool::start(
                name,
                p,
                limits.concurrency,
                limits.rate,
                c.timeout,
                done.clone(),
                metrics.clone(),
            )
        });
        out.push(Class::new(name, chs, pool, cap));
    };
    if let Some(smtp) = &c.smtp {
        let p = Provider::Smtp(email::Smtp::new(smtp, c.from.clone(), c.timeout));
        add("email", want(&["email", "admin_email"]), c.email, Some(p));
    }
    if let Some(sms) = &c.sms {
        let p = Provider::Gateway(http::Gateway {
            agent: http::agent(c.timeout, c.sms_limits.concurrency),
            endpoint: sms.clone(),
            sms_from: c.sms_from.clone(),
            whatsapp_from: c.whatsapp_from.clone(),
            status_callback: c.callback_url.as_ref().map(|u| {
                let token = c
                    .callback_token
                    .as_ref()
                    .map_or(String::new(), |t| format!("?token={t}"));
                format!("{u}/callbacks/twilio{token}")
            }),
        });
        add("sms", want(&["sms", "whatsapp"]), c.sms_limits, Some(p));
    }
    let hook = Provider::Webhook(http::Webhook {
        agent: http::agent(c.timeout, c.webhook.concurrency),
        key: c.webhook_secret.clone(),
    });
    add("webhook", want(&["webhook"]), c.webhook, Some(hook));
    // tasks are marked at once: a whole batch at a time
    let tasks = config::Limits {
        concurrency: c.batch_size,
        rate: 0.0,
    };
    add("task", want(&["task"]), tasks, None);
    out
}

fn main() -> ExitCode {
    let config = match settings() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("journey-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let db = match db::connect(&config.database_url) {
        Ok(db) => db,
        Err(e) => {
            eprintln!(
                "journey-relay: cannot connect to the database: {}",
                db::describe(&e)
            );
            return ExitCode::from(1);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).expect("signal handlers install");
    }
    let metrics = Arc::new(Metrics::default());
    if let Err(e) = callbacks::serve(config.clone(), metrics.clone()) {
        eprintln!("journey-relay: {e}");
        return ExitCode::from(1);
    }
    if config.webhook_secret.is_none() && config.channels.iter().any(|c| c == "webhook") {
        eprintln!("journey-relay: no --webhook-secret: webhook calls go unsigned");
    }
    let (tx, rx) = mpsc::channel();
    let classes = classes(&config, &tx, &metrics);
    drop(tx);
    for c in &classes {
        eprintln!(
            "journey-relay: {}: {} (at most {} held at once)",
            c.name,
            c.channels.join(", "),
            c.capacity
        );
    }
    eprintln!(
        "journey-relay: claiming {} (batch {}, lease {} s){}",
        config.channels.join(", "),
        config.batch_size,
        config.lease.as_secs_f64(),
        config.listen.as_ref().map_or(String::new(), |l| format!(
            "; callbacks, /metrics and /healthz on {l}"
        ))
    );
    let fatal = Relay {
        config,
        db,
        classes,
        done: rx,
        metrics,
        stop,
        fatal: None,
    }
    .run();
    match fatal {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("journey-relay: {e}");
            ExitCode::from(1)
        }
    }
}
