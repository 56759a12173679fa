//! Broker server URLs, parsed once for every broker crate's `Config::from_url`:
//! `scheme://[user[:password]@]host[:port][,host[:port]…][/path][?key=value&…]`.
//!
//! Errors are [`Error::Config`] naming the bad part (scheme, host, port, option, value);
//! neither they nor `Debug` ever show the password.
//!
//! ```
//! use ruststream::broker::url::BrokerUrl;
//! let mut url = BrokerUrl::parse("amqp://app:s%40cret@rabbit:5673/orders?prefetch=8", &["amqp"])?;
//! assert_eq!((url.user.as_deref(), url.password()), (Some("app"), Some("s@cret")));
//! assert_eq!((url.hosts[0].host.as_str(), url.hosts[0].port), ("rabbit", Some(5673)));
//! assert_eq!(url.path, "orders");
//! assert_eq!(url.option::<u16>("prefetch")?, Some(8));
//! url.finish()?; // every option was taken
//! assert_eq!(url.redacted(), "amqp://app:***@rabbit:5673/orders?prefetch=8");
//! let e = BrokerUrl::parse("amqp://app:s3cret@rabbit:http/", &["amqp"]).unwrap_err();
//! assert!(e.to_string().contains("port `http`") && !e.to_string().contains("s3cret"));
//! # Ok::<(), ruststream::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// One `host[:port]` of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or address (IPv6 in brackets, as written).
    pub host: String,
    /// Port, when the URL gives one.
    pub port: Option<u16>,
}

/// A parsed broker URL. See the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Scheme, lower-case (`amqp`, `nats`, `redis`, `mqtt`, …).
    pub scheme: String,
    /// User name (percent-decoded).
    pub user: Option<String>,
    password: Option<String>,
    /// Hosts (at least one; several when the URL lists them separated by `,`).
    pub hosts: Vec<HostPort>,
    /// The path without its leading `/`, as written (not decoded).
    pub path: String,
    /// Query options not taken yet, in order (percent-decoded).
    pub query: Vec<(String, String)>,
    raw: String,
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerUrl")
            .field("url", &self.redacted())
            .finish()
    }
}

/// Decode `%XX` escapes (invalid ones stay as written).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with the password of its user info replaced by `***` (a URL that does not parse is
/// returned with everything between `://` and `@` replaced).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl BrokerUrl {
    /// Parse `url`, whose scheme must be one of `schemes` (compared case-insensitively).
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad part: no `://`, another scheme, an empty host, a port
    /// that is not a number from 1 to 65535, an empty user name.
    pub fn parse(url: &str, schemes: &[&str]) -> Result<Self> {
        let fail = |what: String| Error::Config(format!("broker URL `{}`: {what}", redact(url)));
        let Some((scheme, rest)) = url.split_once("://") else {
            let expected = schemes.first().copied().unwrap_or("scheme");
            return Err(fail(format!("expected `{expected}://host[:port]`")));
        };
        let scheme = scheme.to_ascii_lowercase();
        if !schemes.iter().any(|s| s.eq_ignore_ascii_case(&scheme)) {
            return Err(fail(format!(
                "scheme `{scheme}` is not {}",
                schemes
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        let rest = rest.split('#').next().unwrap_or(rest);
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, password) = match u.split_once(':') {
                    Some((user, password)) => (user, Some(percent_decode(password))),
                    None => (u, None),
                };
                if user.is_empty() && password.is_none() {
                    return Err(fail("empty user name".to_owned()));
                }
                ((!user.is_empty()).then(|| percent_decode(user)), password)
            }
        };
        let mut parsed_hosts = Vec::new();
        for host_port in hosts.split(',') {
            let (host, port) = match host_port.strip_prefix('[') {
                Some(v6) => {
                    let (host, after) = v6
                        .split_once(']')
                        .ok_or_else(|| fail("host: `[` without `]`".to_owned()))?;
                    let port = match after {
                        "" => None,
                        p => Some(
                            p.strip_prefix(':')
                                .ok_or_else(|| fail(format!("host: unexpected `{p}` after `]`")))?,
                        ),
                    };
                    (format!("[{host}]"), port)
                }
                None => match host_port.rsplit_once(':') {
                    Some((h, p)) => (h.to_owned(), Some(p)),
                    None => (host_port.to_owned(), None),
                },
            };
            if host.is_empty() || host == "[]" || host.contains([' ', '@']) {
                return Err(fail("no host".to_owned()));
            }
            let port =
                match port {
                    None => None,
                    Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        fail(format!("port `{p}` is not a number from 1 to 65535"))
                    })?),
                };
            parsed_hosts.push(HostPort { host, port });
        }
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Ok(BrokerUrl {
            scheme,
            user,
            password,
            hosts: parsed_hosts,
            path: path.to_owned(),
            query,
            raw: url.to_owned(),
        })
    }

    /// The password (percent-decoded).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The URL as given, with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }

    /// The URL as given (with the password: do not log it).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// A configuration error about this URL naming `what` (without the password).
    pub fn error(&self, what: impl fmt::Display) -> Error {
        let mut text = format!("broker URL `{}`: {what}", self.redacted());
        if let Some(p) = self.password.as_deref().filter(|p| !p.is_empty()) {
            text = text.replace(p, "***");
        }
        Error::Config(text)
    }

    /// The first host's port, or `default`.
    pub fn port_or(&self, default: u16) -> u16 {
        self.hosts.first().and_then(|h| h.port).unwrap_or(default)
    }

    /// Take the raw value of option `key` (the last one when repeated).
    pub fn take(&mut self, key: &str) -> Option<String> {
        let mut value = None;
        self.query.retain(|(k, v)| {
            if k == key {
                value = Some(v.clone());
                false
            } else {
                true
            }
        });
        value
    }

    /// Take option `key` parsed as `T` (`true`/`false`, `yes`/`no`, `1`/`0` for booleans).
    ///
    /// # Errors
    /// [`Error::Config`] naming the option and the value when it does not parse.
    pub fn option<T: FromStr>(&mut self, key: &str) -> Result<Option<T>> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let normalised = match value.as_str() {
            "yes" | "on" => "true",
            "no" | "off" => "false",
            v => v,
        };
        let parsed = normalised.parse::<T>().ok().or_else(|| {
            // `1`/`0` for booleans.
            match normalised {
                "1" => "true".parse().ok(),
                "0" => "false".parse().ok(),
                _ => None,
            }
        });
        match parsed {
            Some(v) => Ok(Some(v)),
            None => Err(self.error(format_args!(
                "option `{key}`: `{value}` is not a valid {}",
                type_word::<T>()
            ))),
        }
    }

    /// Take option `key` as a duration in seconds (fractions allowed).
    ///
    /// # Errors
    /// [`Error::Config`] when it is not a positive number.
    pub fn seconds(&mut self, key: &str) -> Result<Option<std::time::Duration>> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        match value.parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() => Ok(Some(std::time::Duration::from_secs_f64(s))),
            _ => Err(self.error(format_args!(
                "option `{key}`: `{value}` is not a positive number of seconds"
            ))),
        }
    }

    /// Fail when options are left that nobody took, naming them and the `known` ones.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first unknown option.
    pub fn finish_known(&self, known: &[&str]) -> Result<()> {
        match self.query.first() {
            None => Ok(()),
            Some((k, _)) => Err(self.error(format_args!(
                "unknown option `{k}` (known: {})",
                known.join(", ")
            ))),
        }
    }

    /// [`finish_known`](Self::finish_known) without a list of known options.
    ///
    /// # Errors
    /// As [`finish_known`](Self::finish_known).
    pub fn finish(&self) -> Result<()> {
        match self.query.first() {
            None => Ok(()),
            Some((k, _)) => Err(self.error(format_args!("unknown option `{k}`"))),
        }
    }
}

/// A server of an AsyncAPI document, as generated code lists it in its `SERVERS` table:
/// name, protocol, host and pathname (possibly with `{variables}`), and each variable's
/// default. [`url`](Self::url) renders the URL a broker crate's `Config::from_url` reads.
///
/// ```
/// use ruststream::broker::url::ServerSpec;
/// const SERVERS: &[ServerSpec] = &[ServerSpec::new(
///     "production", "mqtt", "broker.example.com:{port}", "", &[("port", "1883")],
/// )];
/// assert_eq!(SERVERS[0].url(&[])?, "mqtt://broker.example.com:1883");
/// assert_eq!(SERVERS[0].url(&[("port", "8883")])?, "mqtt://broker.example.com:8883");
/// assert!(ServerSpec::find(SERVERS, "staging").is_err());
/// # Ok::<(), ruststream::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server's key under `servers`.
    pub name: &'static str,
    /// Protocol (`amqp`, `mqtt`, `nats`, `redis`, `kafka`, …).
    pub protocol: &'static str,
    /// Host and port, possibly with `{variables}`.
    pub host: &'static str,
    /// Path (empty when the document has none), possibly with `{variables}`.
    pub pathname: &'static str,
    /// `(variable, default)` of each variable (an empty default when it has none).
    pub variables: &'static [(&'static str, &'static str)],
}

impl ServerSpec {
    /// A server (for generated code).
    pub const fn new(
        name: &'static str,
        protocol: &'static str,
        host: &'static str,
        pathname: &'static str,
        variables: &'static [(&'static str, &'static str)],
    ) -> Self {
        ServerSpec {
            name,
            protocol,
            host,
            pathname,
            variables,
        }
    }

    /// The server named `name` in `servers`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the servers there are.
    pub fn find<'a>(servers: &'a [ServerSpec], name: &str) -> Result<&'a ServerSpec> {
        servers.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
            Error::Config(if names.is_empty() {
                format!("server `{name}`: the document lists no servers")
            } else {
                format!(
                    "server `{name}` is not in the document (it lists: {})",
                    names.join(", ")
                )
            })
        })
    }

    /// The URL scheme of the protocol (`secure-mqtt` → `mqtts`, others as they are).
    pub fn scheme(&self) -> &'static str {
        match self.protocol {
            "secure-mqtt" => "mqtts",
            p => p,
        }
    }

    /// `scheme://host[/pathname]` with every variable replaced by its value in `values`, else
    /// its default.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable when one has neither a value nor a default, or
    /// `values` names a variable the server does not have.
    pub fn url(&self, values: &[(&str, &str)]) -> Result<String> {
        if let Some((name, _)) = values
            .iter()
            .find(|(n, _)| !self.variables.iter().any(|(v, _)| v == n))
        {
            return Err(Error::Config(format!(
                "server `{}` has no variable `{name}`",
                self.name
            )));
        }
        let mut out = format!("{}://{}", self.scheme(), self.host);
        if !self.pathname.is_empty() && self.pathname != "/" {
            if !self.pathname.starts_with('/') {
                out.push('/');
            }
            out.push_str(self.pathname);
        }
        for (name, default) in self.variables {
            let value = values
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(*default, |(_, v)| *v);
            if value.is_empty() && out.contains(&format!("{{{name}}}")) {
                return Err(Error::Config(format!(
                    "server `{}`: variable `{name}` has no default; give it a value",
                    self.name
                )));
            }
            out = out.replace(&format!("{{{name}}}"), value);
        }
        if let Some(start) = out.find('{') {
            let rest = &out[start + 1..];
            let name = rest.split('}').next().unwrap_or(rest);
            return Err(Error::Config(format!(
                "server `{}`: variable `{name}` is used but not declared",
                self.name
            )));
        }
        Ok(out)
    }
}

fn type_word<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name {
        "bool" => "boolean (true or false)",
        "u8" | "u16" | "u32" | "u64" | "usize" => "non-negative whole number in range",
        "char" => "single character",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_part() {
        let u = BrokerUrl::parse(
            "NATS://tok@a:4222,[::1]:4223,b/x%2fy?name=svc&flag",
            &["nats"],
        )
        .unwrap();
        assert_eq!(u.scheme, "nats");
        assert_eq!((u.user.as_deref(), u.password()), (Some("tok"), None));
        assert_eq!(
            u.hosts,
            [
                HostPort {
                    host: "a".into(),
                    port: Some(4222)
                },
                HostPort {
                    host: "[::1]".into(),
                    port: Some(4223)
                },
                HostPort {
                    host: "b".into(),
                    port: None
                },
            ]
        );
        assert_eq!(u.path, "x%2fy");
        assert_eq!(
            u.query,
            [("name".into(), "svc".into()), ("flag".into(), "".into())]
        );
        let u = BrokerUrl::parse("redis://:pw@h", &["redis"]).unwrap();
        assert_eq!((u.user.as_deref(), u.password()), (None, Some("pw")));
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn options_parse_or_name_the_bad_one() {
        let mut u = BrokerUrl::parse(
            "mqtt://u:hunter2@h?qos=1&clean=no&t=0.5&bad=x&n=-1",
            &["mqtt"],
        )
        .unwrap();
        assert_eq!(u.option::<u8>("qos").unwrap(), Some(1));
        assert_eq!(u.option::<bool>("clean").unwrap(), Some(false));
        assert_eq!(
            u.seconds("t").unwrap(),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(u.option::<u8>("absent").unwrap(), None);
        let e = u.option::<u16>("n").unwrap_err().to_string();
        assert!(e.contains("option `n`") && !e.contains("hunter2"), "{e}");
        let e = u.finish_known(&["qos"]).unwrap_err().to_string();
        assert!(
            e.contains("unknown option `bad`") && e.contains("known: qos"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_part_and_hide_the_password() {
        for (url, part) in [
            ("h:1", "expected `amqp://"),
            ("http://u:hunter2@h", "scheme `http`"),
            ("amqp://u:hunter2@", "no host"),
            ("amqp://u:hunter2@h:0", "port `0`"),
            ("amqp://u:hunter2@h:x", "port `x`"),
            ("amqp://u:hunter2@[::1", "`[` without `]`"),
            ("amqp://@h", "empty user"),
        ] {
            let e = BrokerUrl::parse(url, &["amqp"]).unwrap_err().to_string();
            assert!(e.contains(part), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
        let u = BrokerUrl::parse("amqp://u:hunter2@h", &["amqp"]).unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        assert!(
            !u.error("hunter2 in the text")
                .to_string()
                .contains("hunter2")
        );
    }

    #[test]
    fn server_urls_from_the_document() {
        let s = ServerSpec::new(
            "p",
            "amqp",
            "{host}:5672",
            "/{vhost}",
            &[("host", "rabbit"), ("vhost", "")],
        );
        assert_eq!(
            s.url(&[("vhost", "orders")]).unwrap(),
            "amqp://rabbit:5672/orders"
        );
        let e = s.url(&[]).unwrap_err().to_string();
        assert!(e.contains("`vhost` has no default"), "{e}");
        let e = s.url(&[("colour", "red")]).unwrap_err().to_string();
        assert!(e.contains("no variable `colour`"), "{e}");
        let undeclared = ServerSpec::new("u", "nats", "{where}:4222", "", &[]);
        assert!(
            undeclared
                .url(&[])
                .unwrap_err()
                .to_string()
                .contains("`where`")
        );
        let secure = ServerSpec::new("s", "secure-mqtt", "h:8883", "/", &[]);
        assert_eq!(secure.url(&[]).unwrap(), "mqtts://h:8883");
        let e = ServerSpec::find(&[s, secure], "x").unwrap_err().to_string();
        assert!(e.contains("lists: p, s"), "{e}");
    }
}
