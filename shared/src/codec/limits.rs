//! [`Limits`]: what one request may cost, checked from headers before pixels are allocated.

use super::Format;
use crate::{Code, Error, Result};
use std::time::{Duration, Instant};

/// Resource limits, checked from headers before pixels are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_input_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
    pub max_frames: u32,
    pub max_output_side: u32,
    /// Most pixels a step of a rule may produce, all frames together (at most `max_pixels`).
    pub max_output_pixels: u64,
    /// How many times the input's longer side a step may make the longer side; 0: no cap.
    pub max_upscale: u32,
    /// Threads one request's encoder may use (x265's pool, aom's `threads`); at least 1.
    pub encoder_threads: u32,
    /// When the request's work must stop; checked between steps, frames and encodes.
    pub deadline: Option<Deadline>,
    /// The memory one conversion may hold, in bytes (see [`Limits::check_memory`]); `None`: not planned.
    pub max_memory: Option<u64>,
}

/// What a conversion holds at its peak, in pixels, as planned from the headers before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Every decoded frame's pixels (the picture as the decoder leaves it).
    pub decoded: u64,
    /// The largest picture a step makes beside the one it reads.
    pub step: u64,
    /// The output's pixels, all frames, and its format (each encoder holds its own working copies).
    pub output: u64,
    pub format: Format,
}

/// Bytes a decoded pixel takes (RGBA, 8 bits a channel: the largest layout most inputs decode to).
const DECODED_BYTES: u64 = 4;
/// Besides the pixels: the binary, the libraries, the encoded input and output.
const BASE_BYTES: u64 = 64 << 20;

impl MemoryPlan {
    /// The peak, in bytes. The encoders' shares are measured (peak RSS of `mogr convert` on a 66.7 MP
    /// JPEG, less its decode: BENCHMARKS.md, "Memory of the largest inputs"), rounded up.
    pub fn bytes(&self) -> u64 {
        let per_output_pixel = match self.format {
            Format::Jpeg => 1,
            Format::Png | Format::Gif | Format::Heif => 2,
            Format::Bmp | Format::Tiff => 4,
            Format::Webp => 13,
            Format::Avif => 18,
        };
        BASE_BYTES + DECODED_BYTES * (self.decoded + self.step) + per_output_pixel * self.output
    }
}

/// The moment a request's work must stop, and the budget it was given (for the message). Encoders
/// cannot be interrupted, so work stops at the next step, frame or encode after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The error of a request that ran past its deadline: 503, nothing written.
    pub fn error(&self) -> Error {
        Error::new(
            Code::ServiceUnavailable,
            format!(
                "the work did not finish within the {:.1} s a request may take here, and was stopped \
                 before anything was written; ask for a smaller result or a faster format (a download's \
                 result can also be stored once with POST ?image_process)",
                self.budget.as_secs_f64()
            ),
        )
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 32 * 1024 * 1024,
            // COS's published input limits: 50,000 px a side, 250 MP (animations: in all)
            max_pixels: 250_000_000,
            max_side: 50_000,
            max_frames: 300,
            max_output_side: 9_999,
            max_output_pixels: 250_000_000,
            max_upscale: 0,
            encoder_threads: cores(),
            deadline: None,
            max_memory: None,
        }
    }
}

/// The machine's cores: the default number of encoder threads.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

impl Limits {
    /// Err once the deadline has passed.
    pub fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d.at => Err(d.error()),
            _ => Ok(()),
        }
    }

    /// The time left before the deadline (zero once it has passed); `None` without a deadline.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.at.saturating_duration_since(Instant::now()))
    }

    pub fn check_bytes(&self, n: usize) -> Result<()> {
        if n > self.max_input_bytes {
            return Err(Error::new(
                Code::EntityTooLarge,
                format!(
                    "the input is {n} bytes; the limit is {} bytes",
                    self.max_input_bytes
                ),
            ));
        }
        Ok(())
    }

    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!(
                "the image claims a size of {width}x{height}: it has no pixels"
            )));
        }
        if width > self.max_side || height > self.max_side {
            return Err(Error::invalid(format!(
                "the image is {width}x{height}; width and height may be at most {} px",
                self.max_side
            )));
        }
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(Error::invalid(format!(
                "the image is {width}x{height} = {pixels} pixels; the limit is {} pixels",
                self.max_pixels
            )));
        }
        Ok(())
    }

    /// Checks that an animation holds at most `max_frames` frames.
    pub fn check_frame_count(&self, frames: u32) -> Result<()> {
        if frames > self.max_frames {
            return Err(Error::invalid(format!(
                "the animation has more than {} frames, the limit",
                self.max_frames
            )));
        }
        Ok(())
    }

    /// Checks that `frames` frames of `width`×`height` stay within the frame and total-pixel limits.
    pub fn check_frames(&self, frames: u32, width: u32, height: u32) -> Result<()> {
        self.check_frame_count(frames)?;
        let total = frames as u64 * width as u64 * height as u64;
        if total > self.max_pixels {
            return Err(Error::invalid(format!(
                "the animation's {frames} frames of {width}x{height} hold {total} pixels; the limit is {}",
                self.max_pixels
            )));
        }
        Ok(())
    }

    /// Checks a conversion's planned peak against `max_memory`, before anything is decoded.
    pub fn check_memory(&self, plan: &MemoryPlan) -> Result<()> {
        let Some(max) = self.max_memory else {
            return Ok(());
        };
        let needed = plan.bytes();
        if needed > max {
            let mib = |b: u64| b.div_ceil(1 << 20);
            return Err(Error::invalid(format!(
                "this conversion ({} input pixels decoded, {} output pixels as {}) would hold about {} MiB; \
                 a conversion may hold {} MiB here: ask for a smaller output (thumbnail), or give the \
                 function more memory (MemorySize, MOGR_MEMORY_MB)",
                plan.decoded,
                plan.output,
                plan.format.name(),
                mib(needed),
                mib(max)
            )));
        }
        Ok(())
    }

    pub fn check_output(&self, width: u32, height: u32) -> Result<()> {
        if width > self.max_output_side || height > self.max_output_side {
            return Err(Error::invalid(format!(
                "the result would be {width}x{height}; output width and height may be at most {} px",
                self.max_output_side
            )));
        }
        Ok(())
    }

    /// The pixel limits in words, for errors raised where the exact cause is not known.
    pub fn describe(&self) -> String {
        format!(
            "at most {} px a side and {} pixels",
            self.max_side, self.max_pixels
        )
    }

    /// The same limits for the `image` crate's decoders.
    pub(crate) fn image_limits(&self) -> image::Limits {
        let mut l = image::Limits::default();
        l.max_image_width = Some(self.max_side);
        l.max_image_height = Some(self.max_side);
        l.max_alloc = Some(self.max_alloc());
        l
    }

    /// The most a decoder may allocate: 16-bit RGBA at the pixel limit, plus working space.
    pub(crate) fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_problem() {
        let l = Limits::default();
        assert!(l
            .check_dimensions(50_001, 10)
            .unwrap_err()
            .message
            .contains("50000"));
        l.check_dimensions(50_000, 5_000).unwrap();
        assert!(l
            .check_dimensions(20_000, 12_501)
            .unwrap_err()
            .message
            .contains("pixels"));
        assert!(l.check_frames(301, 10, 10).is_err());
        assert!(l.check_output(10_000, 5).is_err());
        assert_eq!(
            l.check_bytes(33 * 1024 * 1024).unwrap_err().code,
            Code::EntityTooLarge
        );
        let tight = Limits {
            max_side: 500,
            max_pixels: 1000,
            ..Limits::default()
        };
        assert_eq!(tight.describe(), "at most 500 px a side and 1000 pixels");
    }

    #[test]
    fn the_memory_plan_fits_cos_largest_input_in_the_default_function() {
        let thumb = MemoryPlan {
            decoded: 250_000_000,
            step: 2000 * 1334,
            output: 2000 * 1334,
            format: Format::Heif,
        };
        // 250 MP to a 2000-px thumbnail: about 1 GiB, which the template's 2048 MB holds
        let lambda = Limits {
            max_memory: Some((2048 - 192) << 20),
            ..Limits::default()
        };
        assert!(thumb.bytes() < 1100 << 20, "{}", thumb.bytes() >> 20);
        lambda.check_memory(&thumb).unwrap();
        // the same input written whole as AVIF needs about 5.5 GB: refused, saying what to change
        let whole = MemoryPlan {
            step: 0,
            output: 250_000_000,
            format: Format::Avif,
            ..thumb
        };
        let e = lambda.check_memory(&whole).unwrap_err();
        assert!(e.message.contains("about 5310 MiB"), "{e}");
        assert!(e.message.contains("MemorySize"), "{e}");
        assert!(e.is_client_error());
        // without a memory plan, nothing is refused for memory
        Limits::default().check_memory(&whole).unwrap();
    }
}
