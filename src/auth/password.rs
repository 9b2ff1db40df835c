//! Argon2id password hashes in PHC string form.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// How expensive a new hash is. Verification reads the cost from the stored hash itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over that memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashCost {
    /// argon2's recommended defaults: 19 MiB, 2 passes, 1 lane (about 17 ms in release here).
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// A hashing failure: bad cost settings, or a stored hash that is not a PHC string.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes new passwords at a configured cost.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl PasswordHasher {
    /// A hasher for `cost`; fails when argon2 refuses the parameters.
    pub fn new(cost: HashCost) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        Ok(Self { params })
    }

    /// A salted Argon2id PHC string for `password`.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| HashError(e.to_string()))
    }
}

/// Whether `password` matches the PHC string `stored`; a malformed hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_salted_argon2id_phc_strings_that_verify() {
        let hasher = cheap();
        let first = hasher.hash("correct horse").unwrap();
        let second = hasher.hash("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify(&first, "correct horse"));
        assert!(!verify(&first, "correct horsE"));
        assert!(!verify("not a hash", "correct horse"));
    }

    #[test]
    fn absurd_costs_are_refused() {
        let refused = PasswordHasher::new(HashCost {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1,
        });
        assert!(refused.is_err());
    }
}
