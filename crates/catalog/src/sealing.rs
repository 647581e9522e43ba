//! Sealing of secrets at rest (SSO client secrets, refresh tokens): AES-256-GCM with a key the
//! server keeps in its data directory, a fresh random nonce per value, and the record's context
//! bound as associated data so a sealed value cannot be moved to another record.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::error::CatalogError;

/// Seals and opens secrets with one key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub const KEY_LEN: usize = 32;

    pub fn new(key: &[u8; Self::KEY_LEN]) -> Result<Self, CatalogError> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| CatalogError::internal("the sealing key is unusable"))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
        })
    }

    /// A fresh random key.
    pub fn generate_key() -> [u8; Self::KEY_LEN] {
        rand::random()
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, context: &str, secret: &str) -> Result<Vec<u8>, CatalogError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buf = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CatalogError::internal("sealing failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<String, CatalogError> {
        let fail = || CatalogError::internal("a sealed secret could not be opened (wrong key?)");
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| fail())?;
        String::from_utf8(plain.to_vec()).map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("integration:7", "top secret").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"top secret"));
        assert_eq!(sealer.open("integration:7", &sealed).unwrap(), "top secret");
        assert!(sealer.open("integration:8", &sealed).is_err());
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(sealer.open("integration:7", &bad).is_err());
        let other = Sealer::new(&Sealer::generate_key()).unwrap();
        assert!(other.open("integration:7", &sealed).is_err());
        assert_ne!(
            sealer.seal("c", "x").unwrap(),
            sealer.seal("c", "x").unwrap()
        );
    }
}
