//! The URLs inside an SNS message are checked before anything is fetched from them: a
//! forged message must not make a master fetch a key from, or confirm a subscription on,
//! a host of the forger's choosing.

use regex_lite::Regex;
use url::Url;

use super::rejection::SnsRejection;

/// Which URL of the message is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlField {
    SigningCertUrl,
    SubscribeUrl,
}

impl UrlField {
    fn name(self) -> &'static str {
        match self {
            UrlField::SigningCertUrl => "SigningCertURL",
            UrlField::SubscribeUrl => "SubscribeURL",
        }
    }
}

/// `text` as a URL that is https, with no user info, whose host matches one of `hosts`
/// (anchored patterns), and for a certificate a path ending `.pem` with no query. A URL
/// that names a port other than 443 is matched as `host:port`, so the default patterns
/// (host names only) refuse every other port.
pub fn check_url(field: UrlField, text: &str, hosts: &[Regex]) -> Result<Url, SnsRejection> {
    let refuse = |reason: &str| SnsRejection::UrlRefused {
        field: field.name(),
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text).map_err(|err| refuse(&format!("not a URL ({err})")))?;
    if url.scheme() != "https" {
        return Err(refuse("not https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("carries user info"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host,
        Some(_) => return Err(refuse("an IP address, not an SNS host name")),
        None => return Err(refuse("no host")),
    };
    // `Url` drops the scheme's default port, so a port left here is another one.
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    if !hosts.iter().any(|pattern| pattern.is_match(&authority)) {
        return Err(refuse(&format!(
            "{authority} matches no pattern of phoenix.sns.cert_hosts"
        )));
    }
    if field == UrlField::SigningCertUrl && (!url.path().ends_with(".pem") || url.query().is_some())
    {
        return Err(refuse("not a .pem file"));
    }
    Ok(url)
}
