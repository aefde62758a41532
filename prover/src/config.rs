//! The TOML config file of defaults: `$OPML_CONFIG`, else `~/.config/opml/config.toml` (if it exists).
//!
//! ```toml
//! network = "http://127.0.0.1:4943"   # ic | local | URL
//! identity = "/home/me/.config/dfx/identity/default/identity.pem"
//! canister = "al2p5-5qaaa-aaaaa-aaqaa-cai"
//! ```
//!
//! Precedence: command-line flag, then environment variable (`OPML_NETWORK`, `OPML_IDENTITY`, `OPML_CANISTER`),
//! then this file, then the built-in default.

use std::path::PathBuf;

/// The file's keys; unknown keys are an error (a typo should not be silently ignored).
#[derive(serde::Deserialize, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub network: Option<String>,
    pub identity: Option<PathBuf>,
    pub canister: Option<String>,
}

/// Where the config file is looked for, and whether it must exist (`$OPML_CONFIG` set explicitly).
pub fn path() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os("OPML_CONFIG") {
        return Some((PathBuf::from(p), true));
    }
    let home = std::env::var_os("HOME")?;
    Some((PathBuf::from(home).join(".config/opml/config.toml"), false))
}

/// Parses a config file's text.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        match line {
            Some(l) => format!("line {l}: {}", e.message()),
            None => e.message().to_string(),
        }
    })
}

/// Reads the config file, if any.
pub fn load() -> Result<FileConfig, String> {
    let Some((path, required)) = path() else { return Ok(FileConfig::default()) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(format!("cannot read the config {}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("bad config {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_keys_and_refuses_others() {
        let c = parse("network = \"local\"\ncanister = \"aaaaa-aa\"\n").unwrap();
        assert_eq!(c.network.as_deref(), Some("local"));
        assert_eq!(c.canister.as_deref(), Some("aaaaa-aa"));
        assert_eq!(c.identity, None);
        assert!(parse("netwrk = \"local\"").unwrap_err().contains("unknown field"));
        assert!(parse("network = 3").is_err());
    }
}
