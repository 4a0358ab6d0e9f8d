//! Bounds on the pictures one command assembles in memory, so that a typo (`--count 100000000`,
//! `--scale 1000`, `--cell 100000`) is answered with the number instead of running out of memory. The limit
//! is 4 GiB of 8-bit RGB by default; `GANIME_MAX_IMAGE_BYTES` changes it. Network filters keep one pass under
//! `GANIME_MAX_NETWORK_BYTES` by tiling.

use anyhow::{bail, Result};

pub fn max_image_bytes() -> u64 {
    std::env::var("GANIME_MAX_IMAGE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(4 << 30)
}

/// The most memory one pass of a network filter may use (4 GiB by default; `GANIME_MAX_NETWORK_BYTES` changes
/// it): a frame whose estimate is larger is stylised in overlapping tiles (`filters::network`).
pub fn max_network_bytes() -> u64 {
    std::env::var("GANIME_MAX_NETWORK_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(4 << 30)
}

/// Refuses `count` RGB pictures of `width × height` held at once (`what` names the options that set them).
pub fn check_rgb(what: &str, count: u64, width: u64, height: u64) -> Result<()> {
    check_rgb_with_limit(what, count, width, height, max_image_bytes())
}

fn check_rgb_with_limit(what: &str, count: u64, width: u64, height: u64, limit: u64) -> Result<()> {
    let bytes = (count as u128) * (width as u128) * (height as u128) * 3;
    if bytes > limit as u128 {
        bail!(
            "{what}: {count} picture(s) of {width}x{height} need {:.1} GiB in memory, more than the {:.1} GiB limit \
             (smaller values, --out-dir where there is one, or GANIME_MAX_IMAGE_BYTES to raise the limit)",
            bytes as f64 / (1u64 << 30) as f64,
            limit as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_with_the_numbers() {
        assert!(check_rgb_with_limit("--count", 64, 64, 64, 1 << 20).is_ok());
        let err = check_rgb_with_limit("--count/--scale", 100_000_000, 64_000, 64_000, 4 << 30).unwrap_err().to_string();
        assert!(err.contains("--count/--scale") && err.contains("100000000 picture(s) of 64000x64000") && err.contains("GiB"), "{err}");
    }
}
