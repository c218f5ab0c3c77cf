//! Pages as a browser renders them: headless Debian Chromium's DOM and screenshots, and the
//! attributes of what it rendered.

use std::path::Path;
use std::process::{Command, Stdio};

/// Viewport of the screenshot.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 900;

/// Headless Chromium on `url` with a throwaway profile and no background networking; `what`
/// is `--dump-dom` or `--screenshot=FILE`. Killed after a minute at most.
pub fn chromium(profile: &Path, what: &str, url: &str) -> std::process::Output {
    Command::new("timeout")
        .args(["--kill-after=5", "60", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(what)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs (scripts/setup.sh installs Debian's chromium)")
}

/// The values of `attribute` on the elements that carry it, in document order.
pub fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// A screenshot's pixels, decoded.
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    /// RGB or RGBA, row after row.
    pixels: Vec<u8>,
    channels: usize,
}

impl Screenshot {
    /// Decodes the PNG Chromium wrote at `path`.
    pub fn open(path: &Path) -> Self {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("screenshot written"),
        ));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
        let frame = reader.next_frame(&mut pixels).expect("PNG decodes");
        pixels.truncate(frame.buffer_size());
        Screenshot {
            width: frame.width,
            height: frame.height,
            pixels,
            channels: frame.color_type.samples(),
        }
    }

    /// Pixels of exactly this colour.
    pub fn count(&self, rgb: [u8; 3]) -> usize {
        self.pixels
            .chunks_exact(self.channels)
            .filter(|p| p[..3] == rgb)
            .count()
    }
}
