//! The gateway's identity: one ed25519 key in `gateway.key` (mode 0600) that is at once
//! its libp2p identity (peer id) and the key that signs its witness receipts.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use libp2p::PeerId;
use libp2p::identity::Keypair;
use slope_proto::WitnessId;

use crate::error::Error;

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "gateway.key";

/// The gateway's key.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh key from the OS random generator.
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// A key from a 32-byte seed (tests, benches).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads the key file: 64 hex characters (the seed) and an optional newline.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |message: &str| Error::Key {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| bad("not hexadecimal"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("expected 32 bytes (64 hex characters)"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "gateway key is readable by others; chmod 600 it");
                }
            }
        }
        Ok(Self::from_seed(seed))
    }

    /// Writes the key file with mode 0600; refuses to overwrite an existing one.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        let text = format!("{}\n", hex::encode(self.signing.to_bytes()));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(path, e))
    }

    /// The receipt-signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The witness id that receipts carry.
    pub fn witness_id(&self) -> WitnessId {
        slope_proto::crypto::witness_id(self.signing.verifying_key().as_bytes())
    }

    /// The same key as a libp2p keypair.
    pub fn keypair(&self) -> Keypair {
        // The seed is always a valid ed25519 secret key, so this cannot fail.
        Keypair::ed25519_from_bytes(self.signing.to_bytes())
            .unwrap_or_else(|_| unreachable!("32-byte ed25519 seed"))
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair().public().to_peer_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let id = Identity::generate();
        id.save(&path).unwrap();
        assert!(id.save(&path).is_err(), "never overwrites");
        let back = Identity::load(&path).unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(back.witness_id(), id.witness_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, "zz").unwrap();
        assert!(matches!(Identity::load(&path), Err(Error::Key { .. })));
    }
}
