//! `size-limit/<n>`: the best output of a rule that fits in a number of bytes.

use crate::codec::{self, EncodeOptions, Limits, Picture};
use crate::Result;

/// Bisects the quality below `opts.quality` (whose output, `bytes`, is over `limit`) for the best
/// output that fits; if none fits, the smallest one tried. `opts.quality` is left at the one chosen.
pub(super) fn within(
    pic: &Picture,
    opts: &mut EncodeOptions,
    bytes: Vec<u8>,
    limit: u64,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let (mut lo, mut hi) = (1u8, opts.quality.saturating_sub(1));
    let mut fits: Option<(u8, Vec<u8>)> = None;
    let mut smallest = (opts.quality, bytes);
    while lo <= hi {
        let mid = lo + (hi - lo) / 2;
        opts.quality = mid;
        limits.check_deadline()?;
        let b = codec::encode(pic, opts)?;
        if b.len() as u64 <= limit {
            fits = Some((mid, b));
            lo = mid + 1;
        } else {
            if b.len() < smallest.1.len() {
                smallest = (mid, b);
            }
            hi = mid - 1;
        }
    }
    let (quality, bytes) = fits.unwrap_or(smallest);
    opts.quality = quality;
    Ok(bytes)
}
