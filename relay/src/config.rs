//! Configuration: a TOML file (`--config`) whose every key is also a flag (`from_name` is
//! `--from-name`); a flag wins over the file, the file over the defaults. [`Config::resolve`]
//! checks the values and turns them into the typed [`Config`] the relay runs with.
use clap::{ArgAction, Parser};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The settings as given (flags or file keys); `None` = not given.
#[derive(Parser, Deserialize, Debug, Default, Clone)]
#[command(
    name = "journey-relay",
    version,
    about = "Sends journey's outbox (SMTP, an SMS/WhatsApp gateway, signed webhooks) and records delivery callbacks"
)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A TOML file with any of these settings (keys in snake_case); flags win over it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// PostgreSQL connection string of a role granted journey.grant_role(role, 'relay').
    #[arg(long)]
    pub database_url: Option<String>,
    /// SMTP server for email and admin_email: smtp://[user:password@]host[:port].
    #[arg(long)]
    pub smtp_url: Option<String>,
    /// SMTP user (instead of the URL's).
    #[arg(long)]
    pub smtp_user: Option<String>,
    /// SMTP password (instead of the URL's).
    #[arg(long)]
    pub smtp_password: Option<String>,
    /// Default e-mail sender, "Name <address>" or an address, for messages without one.
    #[arg(long)]
    pub from: Option<String>,
    /// SMS and WhatsApp gateway (Twilio Messages API form): http://[user:password@]host/path.
    #[arg(long)]
    pub sms_url: Option<String>,
    /// Gateway basic-auth user (Twilio: the account SID) instead of the URL's.
    #[arg(long)]
    pub sms_user: Option<String>,
    /// Gateway basic-auth password (Twilio: the auth token) instead of the URL's.
    #[arg(long)]
    pub sms_password: Option<String>,
    /// Default SMS sender (number or alphanumeric id) for messages without one.
    #[arg(long)]
    pub sms_from: Option<String>,
    /// WhatsApp sender number (default: --sms-from).
    #[arg(long)]
    pub whatsapp_from: Option<String>,
    /// Secret signing webhook-node calls (Standard Webhooks; "whsec_<base64>" or raw text).
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Address for status callbacks, /metrics and /healthz, e.g. 127.0.0.1:8025.
    #[arg(long)]
    pub listen: Option<String>,
    /// Public base URL of --listen: SMS sends ask the gateway for status callbacks there.
    #[arg(long)]
    pub callback_url: Option<String>,
    /// When set, callbacks must carry ?token=<this> in their URL.
    #[arg(long)]
    pub callback_token: Option<String>,
    /// Exit 0 once nothing is claimable and nothing is in flight.
    #[arg(long, action = ArgAction::SetTrue)]
    #[serde(default)]
    pub until_idle: bool,
    /// Channels to claim, comma-separated (default: those with a provider, webhook and task).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
    /// Most rows one claim takes (default 100).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Lease of claimed rows in seconds (default 300).
    #[arg(long)]
    pub lease: Option<f64>,
    /// Longest one send may take, in seconds (default 10).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Seconds between claims when there was nothing to claim (default 1).
    #[arg(long)]
    pub poll_interval: Option<f64>,
    /// Seconds between progress lines (default 10; 0 = none).
    #[arg(long)]
    pub progress_interval: Option<f64>,
    /// Concurrent SMTP sends (email, admin_email; default 4).
    #[arg(long)]
    pub email_concurrency: Option<u32>,
    /// Concurrent gateway sends (sms, whatsapp; default 8).
    #[arg(long)]
    pub sms_concurrency: Option<u32>,
    /// Concurrent webhook calls (default 8).
    #[arg(long)]
    pub webhook_concurrency: Option<u32>,
    /// SMTP sends per second (token bucket; 0 = unlimited, the default).
    #[arg(long)]
    pub email_rate: Option<f64>,
    /// Gateway sends per second (default 0 = unlimited); a 429 halves it for a while.
    #[arg(long)]
    pub sms_rate: Option<f64>,
    /// Webhook calls per second (default 0 = unlimited).
    #[arg(long)]
    pub webhook_rate: Option<f64>,
}

macro_rules! overlay {
    ($flags:ident, $file:ident, $($field:ident),*) => {
        Settings {
            config: $flags.config,
            until_idle: $flags.until_idle || $file.until_idle,
            $($field: $flags.$field.or($file.$field),)*
        }
    };
}

impl Settings {
    /// The flags over the file's keys.
    pub fn over(self, file: Settings) -> Settings {
        let flags = self;
        overlay!(
            flags,
            file,
            database_url,
            smtp_url,
            smtp_user,
            smtp_password,
            from,
            sms_url,
            sms_user,
            sms_password,
            sms_from,
            whatsapp_from,
            webhook_secret,
            listen,
            callback_url,
            callback_token,
            channels,
            batch_size,
            lease,
            timeout,
            poll_interval,
            progress_interval,
            email_concurrency,
            sms_concurrency,
            webhook_concurrency,
            email_rate,
            sms_rate,
            webhook_rate
        )
    }

    /// Reads a TOML file of settings.
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| format!("config: {e}"))
    }
}

/// A server to log in to: host, port and credentials (from the URL's userinfo or flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// The senders a provider class is limited to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub concurrency: usize,
    /// sends per second; 0 = unlimited
    pub rate: f64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub smtp: Option<Endpoint>,
    pub from: Option<String>,
    pub sms: Option<Endpoint>,
    pub sms_from: Option<String>,
    pub whatsapp_from: Option<String>,
    pub webhook_secret: Option<Vec<u8>>,
    pub listen: Option<String>,
    pub callback_url: Option<String>,
    pub callback_token: Option<String>,
    pub until_idle: bool,
    pub channels: Vec<String>,
    pub batch_size: usize,
    pub lease: Duration,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub progress_interval: Option<Duration>,
    pub email: Limits,
    pub sms_limits: Limits,
    pub webhook: Limits,
}

pub const CHANNELS: [&str; 6] = ["email", "admin_email", "sms", "whatsapp", "webhook", "task"];

fn seconds(
    name: &str,
    v: Option<f64>,
    default: f64,
    min: f64,
    max: f64,
) -> Result<Duration, String> {
    let v = v.unwrap_or(default);
    if !(min..=max).contains(&v) {
        return Err(format!(
            "{name} must be between {min} and {max} seconds, not {v}"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn limits(
    name: &str,
    concurrency: Option<u32>,
    default: u32,
    rate: Option<f64>,
) -> Result<Limits, String> {
    let concurrency = concurrency.unwrap_or(default);
    if !(1..=256).contains(&concurrency) {
        return Err(format!(
            "{name}_concurrency must be between 1 and 256, not {concurrency}"
        ));
    }
    let rate = rate.unwrap_or(0.0);
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(format!(
            "{name}_rate must be 0 (unlimited) or a positive number of sends per second"
        ));
    }
    Ok(Limits {
        concurrency: concurrency as usize,
        rate,
    })
}

/// Splits `scheme://[user[:password]@]host[:port][/path]`; `schemes` are the accepted ones
/// with their default ports.
pub fn endpoint(
    name: &str,
    url: &str,
    schemes: &[(&str, u16)],
    user: Option<String>,
    password: Option<String>,
) -> Result<Endpoint, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!(
            "{name} \"{url}\" has no scheme (e.g. {}://host)",
            schemes[0].0
        )
    })?;
    let default_port = schemes
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, p)| *p)
        .ok_or_else(|| {
            let names: Vec<_> = schemes.iter().map(|(s, _)| *s).collect();
            format!(
                "{name} scheme \"{scheme}\" is not supported (use {})",
                names.join(" or ")
            )
        })?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let path = &rest[authority.len()..];
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{name} port \"{p}\" is not a number"))?,
        ),
        _ => (hostport, default_port),
    };
    if host.is_empty() {
        return Err(format!("{name} \"{url}\" has no host"));
    }
    let (url_user, url_password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Some(percent_decode(a)), Some(percent_decode(b))),
            None => (Some(percent_decode(u)), None),
        },
        None => (None, None),
    };
    Ok(Endpoint {
        // the URL without its userinfo: credentials go in a header, never in logs
        url: format!("{scheme}://{hostport}{path}"),
        host: host.to_string(),
        port,
        user: user.or(url_user),
        password: password.or(url_password),
    })
}

/// Decodes %XX escapes and '+' (form encoding) in text.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A Standard Webhooks secret: `whsec_<base64>` is decoded, other text is used as it is.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("webhook_secret: whsec_ is followed by invalid base64 ({e})")),
        None if secret.is_empty() => Err("webhook_secret must not be empty".into()),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

impl Config {
    pub fn resolve(s: Settings) -> Result<Config, String> {
        let database_url = s
            .database_url
            .ok_or("database_url is required (--database-url or the config file)")?;
        let smtp = s
            .smtp_url
            .map(|u| {
                endpoint(
                    "smtp_url",
                    &u,
                    &[("smtp", 25)],
                    s.smtp_user,
                    s.smtp_password,
                )
            })
            .transpose()?;
        let sms = s
            .sms_url
            .map(|u| {
                endpoint(
                    "sms_url",
                    &u,
                    &[("http", 80), ("https", 443)],
                    s.sms_user,
                    s.sms_password,
                )
            })
            .transpose()?;
        if sms.as_ref().is_some_and(|e| e.url.starts_with("https:")) {
            return Err(
                "sms_url: this build has no TLS; use http:// (e.g. through a local TLS proxy)"
                    .into(),
            );
        }
        let channels = match s.channels {
            Some(list) => {
                for c in &list {
                    if !CHANNELS.contains(&c.as_str()) {
                        return Err(format!(
                            "unknown channel \"{c}\" (channels are {})",
                            CHANNELS.join(", ")
                        ));
                    }
                }
                list
            }
            None => CHANNELS
                .iter()
                .filter(|c| match **c {
                    "email" | "admin_email" => smtp.is_some(),
                    "sms" | "whatsapp" => sms.is_some(),
                    _ => true,
                })
                .map(|c| c.to_string())
                .collect(),
        };
        for c in &channels {
            match c.as_str() {
                "email" | "admin_email" if smtp.is_none() => {
                    return Err(format!("channel {c} needs smtp_url"))
                }
                "sms" | "whatsapp" if sms.is_none() => {
                    return Err(format!("channel {c} needs sms_url"))
                }
                _ => {}
            }
        }
        let batch_size = s.batch_size.unwrap_or(100);
        if !(1..=10000).contains(&batch_size) {
            return Err(format!(
                "batch_size must be between 1 and 10000, not {batch_size}"
            ));
        }
        let lease = seconds("lease", s.lease, 300.0, 1.0, 86400.0)?;
        let timeout = seconds("timeout", s.timeout, 10.0, 0.1, 3600.0)?;
        if lease < timeout * 2 + Duration::from_secs(1) {
            return Err(format!(
                "lease ({} s) must be at least twice timeout ({} s) plus 1 s: a send must end before its lease does",
                lease.as_secs_f64(),
                timeout.as_secs_f64()
            ));
        }
        let progress = seconds("progress_interval", s.progress_interval, 10.0, 0.0, 86400.0)?;
        Ok(Config {
            database_url,
            smtp,
            from: s.from,
            sms,
            sms_from: s.sms_from,
            whatsapp_from: s.whatsapp_from,
            webhook_secret: s.webhook_secret.as_deref().map(webhook_key).transpose()?,
            listen: s.listen,
            callback_url: s.callback_url.map(|u| u.trim_end_matches('/').to_string()),
            callback_token: s.callback_token,
            until_idle: s.until_idle,
            channels,
            batch_size: batch_size as usize,
            lease,
            timeout,
            poll_interval: seconds("poll_interval", s.poll_interval, 1.0, 0.01, 3600.0)?,
            progress_interval: (!progress.is_zero()).then_some(progress),
            email: limits("email", s.email_concurrency, 4, s.email_rate)?,
            sms_limits: limits("sms", s.sms_concurrency, 8, s.sms_rate)?,
            webhook: limits("webhook", s.webhook_concurrency, 8, s.webhook_rate)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Settings {
        Settings::parse_from(std::iter::once("journey-relay").chain(args.iter().copied()))
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file = Settings::from_toml(
            "database_url = \"host=/tmp\"\nbatch_size = 50\nsms_rate = 2.5\nuntil_idle = true\n\
             smtp_url = \"smtp://u:p%40ss@mail.example:2525\"\nfrom = \"ACME <hi@acme.test>\"",
        )
        .unwrap();
        let flags = parse(&[
            "--batch-size",
            "7",
            "--sms-url",
            "http://AC1:tok@127.0.0.1:9/msg",
        ]);
        let c = Config::resolve(flags.over(file)).unwrap();
        assert_eq!(c.database_url, "host=/tmp");
        assert_eq!(c.batch_size, 7, "the flag wins");
        assert_eq!(c.sms_limits.rate, 2.5, "the file's key");
        assert_eq!(c.sms_limits.concurrency, 8, "the default");
        assert!(c.until_idle);
        assert_eq!(c.lease, Duration::from_secs(300));
        let smtp = c.smtp.unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example", 2525));
        assert_eq!(smtp.user.as_deref(), Some("u"));
        assert_eq!(
            smtp.password.as_deref(),
            Some("p@ss"),
            "userinfo is percent-decoded"
        );
        let sms = c.sms.unwrap();
        assert_eq!(
            sms.url, "http://127.0.0.1:9/msg",
            "credentials leave the URL"
        );
        assert_eq!(sms.user.as_deref(), Some("AC1"));
        assert_eq!(
            c.channels,
            CHANNELS.to_vec(),
            "every channel has a provider"
        );
    }

    #[test]
    fn credential_flags_win_over_userinfo() {
        let s = parse(&[
            "--database-url",
            "x",
            "--sms-url",
            "http://a:b@h/p",
            "--sms-user",
            "c",
            "--sms-password",
            "d",
        ]);
        let sms = Config::resolve(s).unwrap().sms.unwrap();
        assert_eq!(
            (sms.user.as_deref(), sms.password.as_deref()),
            (Some("c"), Some("d"))
        );
        assert_eq!(sms.port, 80);
    }

    #[test]
    fn channels_default_to_configured_providers() {
        let c = Config::resolve(parse(&["--database-url", "x"])).unwrap();
        assert_eq!(c.channels, vec!["webhook", "task"]);
        let err =
            Config::resolve(parse(&["--database-url", "x", "--channels", "sms"])).unwrap_err();
        assert!(err.contains("sms needs sms_url"), "{err}");
        let err =
            Config::resolve(parse(&["--database-url", "x", "--channels", "fax"])).unwrap_err();
        assert!(err.contains("unknown channel \"fax\""), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let bad = |args: &[&str], needle: &str| {
            let mut all = vec!["--database-url", "x"];
            all.extend_from_slice(args);
            let err = Config::resolve(parse(&all)).unwrap_err();
            assert!(err.contains(needle), "{err} should mention {needle}");
        };
        bad(
            &["--lease", "5", "--timeout", "3"],
            "at least twice timeout",
        );
        bad(&["--batch-size", "0"], "batch_size");
        bad(&["--sms-url", "ftp://h"], "not supported");
        bad(&["--sms-url", "https://h"], "no TLS");
        bad(&["--smtp-url", "smtp://h:x"], "port \"x\"");
        bad(&["--webhook-secret", "whsec_***"], "invalid base64");
        bad(&["--sms-concurrency", "0"], "sms_concurrency");
        bad(&["--email-rate=-1"], "email_rate");
        assert!(Config::resolve(parse(&[]))
            .unwrap_err()
            .contains("database_url"));
        assert!(Settings::from_toml("nope = 1")
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn the_example_file_is_valid() {
        let file = Settings::from_toml(include_str!("../journey-relay.example.toml")).unwrap();
        let c = Config::resolve(Settings::default().over(file)).unwrap();
        assert_eq!(c.sms_limits.rate, 10.0);
        assert_eq!(c.progress_interval, Some(Duration::from_secs(60)));
        assert_eq!(
            c.webhook_secret.as_deref(),
            Some(&b"secret-signing-key-for-webhooks"[..])
        );
    }

    #[test]
    fn webhook_secrets() {
        assert_eq!(webhook_key("whsec_aGVsbG8=").unwrap(), b"hello");
        assert_eq!(webhook_key("plain").unwrap(), b"plain");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb+c%"), "a+b c%");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
