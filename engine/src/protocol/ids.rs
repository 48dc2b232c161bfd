//! Flink-style ids: 16 random bytes printed as 32 lowercase hex characters
//! (docs/model/cluster.md#ids), drawn from the run's seeded RNG so that a replay prints the same
//! ids.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u128);

        impl $name {
            /// A fresh id from the simulation's seeded RNG.
            pub fn random() -> Self {
                $name(madsim::rand::random::<u128>())
            }

            /// The id as `Display` prints it: 32 lowercase hex digits, zero-padded.
            pub fn hex(&self) -> [u8; 32] {
                hex32(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(std::str::from_utf8(&self.hex()).expect("hex digits are ASCII"))
            }
        }
    };
}

/// `value` as 32 lowercase hex digits, zero-padded: what `{:032x}` prints, written by hand
/// because the formatter's padding path cost ~1,700 instructions per id (a callgrind profile),
/// and ids are printed in every checkpoint path and trace line that names a job.
fn hex32(value: u128) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((value >> (4 * (31 - i))) & 0xf) as usize];
    }
    out
}

hex_id!(
    /// Identifies one submitted job.
    JobId
);
hex_id!(
    /// Identifies one attempt to run one subtask.
    ExecutionAttemptId
);
hex_id!(
    /// Identifies one incarnation of a TaskManager (a restarted TaskManager gets a new one).
    ResourceId
);
hex_id!(
    /// Identifies one savepoint request of the REST API (`flink stop` polls it).
    TriggerId
);
hex_id!(
    /// Identifies one run of the JobManager's leadership, so stale messages can be told apart.
    JobMasterId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_32_zero_padded_lowercase_hex_digits() {
        for value in [0, 1, 0xabc, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210, 1 << 127] {
            assert_eq!(JobId(value).to_string(), format!("{value:032x}"));
        }
    }
}
