//! Argon2id password hashes in PHC string form.

use std::sync::Mutex;

use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

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

    /// The cost of the hashes this makes.
    pub fn cost(&self) -> HashCost {
        HashCost {
            memory_kib: self.params.m_cost(),
            iterations: self.params.t_cost(),
            parallelism: self.params.p_cost(),
        }
    }

    /// A salted Argon2id PHC string for `password`.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| HashError(e.to_string()))
    }
}

/// Argon2 working memory (19 MiB a hash at the default cost) kept between verifications.
///
/// Each verification would otherwise allocate its own, on whichever blocking thread ran it; glibc
/// keeps freed memory in that thread's arena, so as threads came and went the service's RSS grew
/// in 19 MiB steps (seen in the soak benchmark when cached passwords expired and were verified
/// again). At most one buffer per concurrent verification is kept, and none before the first.
#[derive(Debug, Default)]
pub struct WorkingMemory {
    spare: Mutex<Vec<Vec<Block>>>,
}

impl WorkingMemory {
    /// A buffer of at least `blocks` blocks: a kept one if one is large enough.
    fn take(&self, blocks: usize) -> Vec<Block> {
        let kept = self
            .spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match kept {
            Some(buffer) if buffer.len() >= blocks => buffer,
            _ => vec![Block::new(); blocks],
        }
    }

    fn give_back(&self, buffer: Vec<Block>) {
        self.spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(buffer);
    }
}

/// Whether the PHC string `stored` is an Argon2id hash (of the current version) at `cost`; a
/// password verified against any other is re-hashed.
pub fn has_cost(stored: &str, cost: HashCost) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let same_kind = Algorithm::try_from(hash.algorithm.as_str()) == Ok(Algorithm::Argon2id)
        && hash.version.map_or(Version::default(), |v| {
            Version::try_from(v).unwrap_or(Version::V0x10)
        }) == Version::V0x13;
    same_kind
        && Params::try_from(&hash).is_ok_and(|params| {
            params.m_cost() == cost.memory_kib
                && params.t_cost() == cost.iterations
                && params.p_cost() == cost.parallelism
        })
}

/// Whether `password` matches the PHC string `stored`, computing in `memory`; a malformed hash
/// never matches. The comparison takes the same time wherever the outputs differ.
pub fn verify(memory: &WorkingMemory, stored: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    let mut buffer = memory.take(blocks);
    let mut computed = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt.as_ref(),
        &mut computed,
        &mut buffer[..blocks],
    );
    memory.give_back(buffer);
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| &computed == expected)
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
        let memory = WorkingMemory::default();
        assert!(verify(&memory, &first, "correct horse"));
        assert!(!verify(&memory, &first, "correct horsE"));
        assert!(!verify(&memory, "not a hash", "correct horse"));
    }

    #[test]
    fn verification_reuses_its_memory_across_costs_and_agrees_with_argon2() {
        use argon2::PasswordVerifier as _;

        let memory = WorkingMemory::default();
        let bigger = PasswordHasher::new(HashCost {
            memory_kib: 256,
            iterations: 2,
            parallelism: 2,
        })
        .unwrap();
        for hasher in [cheap(), bigger, cheap()] {
            let stored = hasher.hash("pässwörd").unwrap();
            let reference = Argon2::default().verify_password(
                b"p\xc3\xa4ssw\xc3\xb6rd",
                &PasswordHash::new(&stored).unwrap(),
            );
            assert!(reference.is_ok());
            assert!(verify(&memory, &stored, "pässwörd"));
            assert!(!verify(&memory, &stored, "passwörd"));
        }
        let kept = memory.spare.lock().unwrap();
        assert_eq!(kept.len(), 1, "one buffer, reused");
        assert!(kept[0].len() >= 256);
    }

    #[test]
    fn only_argon2id_hashes_at_the_given_cost_have_it() {
        let stored = cheap().hash("pw").unwrap();
        assert!(has_cost(&stored, cheap().cost()));
        let stronger = HashCost {
            memory_kib: 128,
            ..cheap().cost()
        };
        assert!(!has_cost(&stored, stronger));
        assert!(!has_cost("not a hash", cheap().cost()));
        let argon2i = stored.replacen("$argon2id$", "$argon2i$", 1);
        assert!(!has_cost(&argon2i, cheap().cost()));
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
