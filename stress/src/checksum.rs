//! Checksums of object payloads: a splitmix64-style mix folded over the id and the
//! non-reference words, so that a freed-and-poisoned or overwritten object fails its check.

/// The splitmix64 finaliser: a bijective 64-bit mix.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A running checksum over an object's id and payload words.
#[derive(Debug, Clone, Copy)]
pub struct Checksum(u64);

impl Checksum {
    /// Starts a checksum for the object `id`.
    #[inline]
    pub fn new(id: u64) -> Checksum {
        Checksum(mix(id ^ 0x7461_6e64_656d_0001))
    }

    /// Folds one payload word in.
    #[inline]
    pub fn word(self, w: u64) -> Checksum {
        Checksum(mix(self.0.rotate_left(23) ^ w))
    }

    /// Folds a byte slice in, eight bytes at a time (the tail is zero-padded).
    pub fn bytes(mut self, b: &[u8]) -> Checksum {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self = self.word(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut tail = [0u8; 8];
            tail[..rest.len()].copy_from_slice(rest);
            self = self.word(u64::from_le_bytes(tail));
        }
        self
    }

    /// The final value.
    #[inline]
    pub fn value(self) -> u64 {
        // Never 0 or the poison word, so zeroed or poisoned memory cannot pass by accident.
        let v = mix(self.0);
        if v == 0 || v == tandem::heap::POISON {
            1
        } else {
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_depends_on_id_and_every_word() {
        let a = Checksum::new(1).word(2).word(3).value();
        assert_ne!(a, Checksum::new(2).word(2).word(3).value());
        assert_ne!(a, Checksum::new(1).word(3).word(2).value());
        assert_ne!(a, Checksum::new(1).word(2).value());
    }

    #[test]
    fn byte_tails_are_folded() {
        let a = Checksum::new(7).bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).value();
        let b = Checksum::new(7)
            .bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 10])
            .value();
        assert_ne!(a, b);
    }
}
