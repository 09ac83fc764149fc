//! The one Salt master key pair that every master of a cluster shares (docs/architecture.md,
//! invariant 5: one master key pair).
//!
//! Minions cache their master's public key and refuse a master whose key changed, so a
//! replacement master must hold the very key pair of the one it replaces. The pair lives in
//! Secrets Manager (`phoenix.master_key_secret`, encrypted with the stack's KMS key), as one
//! secret version with a fixed version id, [`KEY_VERSION_ID`].
//!
//! Created exactly once, even when ten masters boot together: every master offers its own
//! freshly generated pair under that version id. Secrets Manager never changes a version
//! once written: a `PutSecretValue` (or `CreateSecret`) whose `ClientRequestToken` names an
//! existing version with other contents fails with `ResourceExistsException`, and one with
//! the same contents is a no-op. So the first offer wins, every other fails, and every master,
//! winner included, then reads the version back and uses what is stored: what it generated
//! is only a candidate.

use std::io;
use std::path::Path;

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use serde::{Deserialize, Serialize};

use crate::aws::{AwsClients, AwsResultExt};
use crate::config::PhoenixConfig;
use crate::error::{Error, Result};
use crate::files::write_atomically;

/// Salt's file modes for the master's pair: the private key readable by its owner only.
const PRIVATE_KEY_MODE: u32 = 0o400;
const PUBLIC_KEY_MODE: u32 = 0o644;

/// The version id of the key pair in the secret. A deliberate key rotation is a new version
/// id (and every minion re-trusting the masters), never a rewrite of this one.
pub const KEY_VERSION_ID: &str = "phoenix-master-key-pair-v1-00000001";

/// What the secret version holds: Salt's `master.pem` and `master.pub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyPair {
    /// Always [`KEY_FORMAT`]: a reader refuses anything else rather than guess.
    pub format: String,
    #[serde(rename = "master.pem")]
    pub private_pem: String,
    #[serde(rename = "master.pub")]
    pub public_pem: String,
}

pub const KEY_FORMAT: &str = "phoenix-master-key-v1";

impl MasterKeyPair {
    pub fn new(private_pem: String, public_pem: String) -> Self {
        MasterKeyPair {
            format: KEY_FORMAT.to_owned(),
            private_pem,
            public_pem,
        }
    }

    fn check(&self) -> Result<()> {
        let refuse = |reason: &str| {
            Err(Error::Conflict(format!(
                "the master key pair in Secrets Manager {reason}; Phoenix will not install it"
            )))
        };
        if self.format != KEY_FORMAT {
            return refuse(&format!("has format {:?}, not {KEY_FORMAT:?}", self.format));
        }
        if !self.private_pem.contains("-----BEGIN") || !self.private_pem.contains("PRIVATE KEY") {
            return refuse("has no PEM private key in master.pem");
        }
        if !self.public_pem.contains("-----BEGIN PUBLIC KEY-----") {
            return refuse("has no PEM public key in master.pub");
        }
        Ok(())
    }
}

/// Whether this call's candidate became the cluster's key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOrigin {
    /// The cluster had no key pair; the candidate is it now.
    Created,
    /// The cluster already had one (or another master won the race): that one.
    Existing,
}

/// The cluster's key pair: the stored one, or `candidate` stored now if there is none.
pub async fn get_or_create(
    clients: &AwsClients,
    config: &PhoenixConfig,
    candidate: &MasterKeyPair,
) -> Result<(MasterKeyPair, KeyOrigin)> {
    candidate.check()?;
    if let Some(stored) = read(clients, config).await? {
        return Ok((stored, KeyOrigin::Existing));
    }
    let body = serde_json::to_string(candidate)
        .map_err(|err| Error::Internal(format!("serialising the master key pair: {err}")))?;
    let offered = clients
        .secretsmanager
        .put_secret_value()
        .secret_id(&config.master_key_secret)
        .client_request_token(KEY_VERSION_ID)
        .secret_string(&body)
        .send()
        .await
        .aws_context("secretsmanager", "PutSecretValue");
    match offered {
        Ok(_) => {}
        Err(err) if is_exists(&err) => {}
        Err(Error::NotFound { .. }) => create_secret(clients, config, &body).await?,
        Err(err) => return Err(err),
    }
    let stored = read(clients, config).await?.ok_or_else(|| {
        Error::Internal(format!(
            "the master key pair was written to {} but cannot be read back",
            config.master_key_secret
        ))
    })?;
    let origin = if stored == *candidate {
        KeyOrigin::Created
    } else {
        KeyOrigin::Existing
    };
    Ok((stored, origin))
}

/// The secret does not exist at all (no CloudFormation stack made it): create it, with the
/// pair as its first version, under the same version id, so a concurrent creator with
/// another pair fails the same way.
async fn create_secret(clients: &AwsClients, config: &PhoenixConfig, body: &str) -> Result<()> {
    let created = clients
        .secretsmanager
        .create_secret()
        .name(&config.master_key_secret)
        .description(format!(
            "Phoenix {}: the Salt master key pair shared by all masters",
            config.cluster
        ))
        .client_request_token(KEY_VERSION_ID)
        .secret_string(body)
        .send()
        .await
        .aws_context("secretsmanager", "CreateSecret");
    match created {
        Ok(_) => Ok(()),
        Err(err) if is_exists(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

/// The stored pair, `None` when there is none yet (no secret, or no version with the id).
pub async fn read(clients: &AwsClients, config: &PhoenixConfig) -> Result<Option<MasterKeyPair>> {
    let answer = clients
        .secretsmanager
        .get_secret_value()
        .secret_id(&config.master_key_secret)
        .version_id(KEY_VERSION_ID)
        .send()
        .await
        .aws_context("secretsmanager", "GetSecretValue");
    match answer {
        Ok(output) => parse(config, &output).map(Some),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

fn parse(config: &PhoenixConfig, output: &GetSecretValueOutput) -> Result<MasterKeyPair> {
    let text = output.secret_string().ok_or_else(|| {
        Error::Conflict(format!(
            "{} version {KEY_VERSION_ID} holds no text",
            config.master_key_secret
        ))
    })?;
    let pair: MasterKeyPair = serde_json::from_str(text).map_err(|err| {
        Error::Conflict(format!(
            "{} version {KEY_VERSION_ID} is not a Phoenix master key pair: {err}",
            config.master_key_secret
        ))
    })?;
    pair.check()?;
    Ok(pair)
}

/// What [`install`] did to a master's pki dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Installed {
    /// There was no key pair: the cluster's is there now.
    Installed,
    /// The cluster's pair was already there.
    Unchanged,
    /// Another pair was there and the operator asked for it to be replaced.
    Replaced,
}

/// Puts the cluster's pair into `pki_dir` as Salt's `master.pem` (0400) and `master.pub`
/// (0644), each replaced atomically. A different private key already there is an
/// [`Error::Conflict`] and stays untouched, unless `replace` (the operator's explicit ask):
/// a master that silently swapped keys would be refused by every minion that knew it.
pub fn install(pki_dir: &Path, pair: &MasterKeyPair, replace: bool) -> Result<Installed> {
    pair.check()?;
    let private_path = pki_dir.join("master.pem");
    let public_path = pki_dir.join("master.pub");
    let outcome = match read_if_there(&private_path)? {
        None => Installed::Installed,
        Some(text) if text == pair.private_pem => {
            if read_if_there(&public_path)?.as_deref() == Some(pair.public_pem.as_str()) {
                return Ok(Installed::Unchanged);
            }
            Installed::Installed
        }
        Some(_) if !replace => {
            return Err(Error::Conflict(format!(
                "{} holds another master key pair than the cluster's; Phoenix does not \
                 overwrite it: remove it, or pass --replace-local-key to install the \
                 cluster's (minions that trusted this master's old key will refuse it)",
                private_path.display()
            )))
        }
        Some(_) => Installed::Replaced,
    };
    write_atomically(&private_path, &pair.private_pem, PRIVATE_KEY_MODE)?;
    write_atomically(&public_path, &pair.public_pem, PUBLIC_KEY_MODE)?;
    Ok(outcome)
}

fn read_if_there(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn is_exists(err: &Error) -> bool {
    matches!(err, Error::Aws { code: Some(code), .. } if code == "ResourceExistsException")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_id_is_a_valid_client_request_token() {
        // Secrets Manager: 32 to 64 characters.
        assert!((32..=64).contains(&KEY_VERSION_ID.len()));
    }

    #[test]
    fn the_stored_form_names_salts_files_and_refuses_strangers() {
        let pair = MasterKeyPair::new(
            "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n".to_owned(),
            "-----BEGIN PUBLIC KEY-----\ny\n-----END PUBLIC KEY-----\n".to_owned(),
        );
        let json = serde_json::to_value(&pair).unwrap();
        assert!(json.get("master.pem").is_some() && json.get("master.pub").is_some());
        assert!(pair.check().is_ok());
        let mut other = pair.clone();
        other.format = "v0".to_owned();
        assert!(matches!(other.check(), Err(Error::Conflict(_))));
        let mut public_only = pair.clone();
        public_only.private_pem = pair.public_pem.clone();
        assert!(matches!(public_only.check(), Err(Error::Conflict(_))));
        assert!(serde_json::from_str::<MasterKeyPair>("{}").is_err());
    }

    fn pair(n: u32) -> MasterKeyPair {
        MasterKeyPair::new(
            format!("-----BEGIN RSA PRIVATE KEY-----\n{n}\n-----END RSA PRIVATE KEY-----\n"),
            format!("-----BEGIN PUBLIC KEY-----\n{n}\n-----END PUBLIC KEY-----\n"),
        )
    }

    #[cfg(unix)]
    #[test]
    fn install_writes_salts_files_with_salts_modes_and_never_swaps_a_key_silently() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::TempDir::new().unwrap();
        let pki = dir.path().join("pki").join("master");
        assert_eq!(
            install(&pki, &pair(1), false).unwrap(),
            Installed::Installed
        );
        let mode = |name: &str| {
            std::fs::metadata(pki.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("master.pem"), 0o400);
        assert_eq!(mode("master.pub"), 0o644);
        assert_eq!(
            install(&pki, &pair(1), false).unwrap(),
            Installed::Unchanged
        );

        let err = install(&pki, &pair(2), false).unwrap_err();
        assert!(matches!(err, Error::Conflict(ref m) if m.contains("--replace-local-key")));
        assert_eq!(
            std::fs::read_to_string(pki.join("master.pem")).unwrap(),
            pair(1).private_pem
        );
        assert_eq!(install(&pki, &pair(2), true).unwrap(), Installed::Replaced);
        assert_eq!(
            std::fs::read_to_string(pki.join("master.pub")).unwrap(),
            pair(2).public_pem
        );
    }
}
