//! YUV4MPEG2 (`.y4m`) streams: what `ffmpeg -f yuv4mpegpipe` reads and writes, so frames can be piped between
//! ganime and ffmpeg (and from there into a v4l2loopback virtual camera).
//!
//! Written by hand because the format is a text header plus raw planes; the crates that parse it stop at the
//! planes, and the YUV <-> RGB conversion (BT.601, studio range unless the header says `XCOLORRANGE=FULL`)
//! is the part that matters here. Reads 4:2:0 (`C420jpeg`, `C420paldv`, `C420mpeg2`, `C420`, the default),
//! 4:2:2, 4:4:4 and `Cmono`, all 8-bit; writes 4:2:0 (`C420jpeg`).

use anyhow::{bail, Context, Result};
use image::RgbImage;
use rayon::prelude::*;
use std::io::{BufRead, Read, Write};

/// Chroma layout of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    /// 4:2:0, chroma planes of `ceil(w/2) x ceil(h/2)` (siting variants are read alike).
    C420,
    /// 4:2:2, chroma planes of `ceil(w/2) x h`.
    C422,
    /// 4:4:4, full-size chroma planes.
    C444,
    /// Luma only.
    Mono,
}

impl Chroma {
    fn parse(tag: &str) -> Result<Self> {
        Ok(match tag {
            "420jpeg" | "420paldv" | "420mpeg2" | "420" => Chroma::C420,
            "422" => Chroma::C422,
            "444" => Chroma::C444,
            "mono" => Chroma::Mono,
            other => bail!("unsupported Y4M colour space 'C{other}' (8-bit 420jpeg, 420paldv, 420mpeg2, 420, 422, 444 and mono are supported)"),
        })
    }

    /// Chroma plane size for a `w x h` frame (0 x 0 for mono).
    fn plane(self, w: usize, h: usize) -> (usize, usize) {
        match self {
            Chroma::C420 => (w.div_ceil(2), h.div_ceil(2)),
            Chroma::C422 => (w.div_ceil(2), h),
            Chroma::C444 => (w, h),
            Chroma::Mono => (0, 0),
        }
    }
}

/// The stream header fields ganime uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Y4mHeader {
    pub width: u32,
    pub height: u32,
    /// Frame rate as a fraction (numerator, denominator).
    pub fps: (u32, u32),
    pub chroma: Chroma,
    /// Full-range (0..255) YUV instead of studio range (Y 16..235, UV 16..240).
    pub full_range: bool,
}

impl Y4mHeader {
    pub fn fps_f64(&self) -> f64 {
        self.fps.0 as f64 / self.fps.1.max(1) as f64
    }

    fn parse(line: &str) -> Result<Self> {
        let mut fields = line.split_ascii_whitespace();
        if fields.next() != Some("YUV4MPEG2") {
            bail!("not a YUV4MPEG2 stream (the header must start with 'YUV4MPEG2', got '{}')", line.chars().take(40).collect::<String>());
        }
        let (mut width, mut height, mut fps, mut chroma, mut full_range) = (None, None, (30, 1), Chroma::C420, false);
        for field in fields {
            // The first character is the tag (any character: a non-ASCII one is skipped like other unknown tags).
            let mut chars = field.chars();
            let tag = chars.next().map(String::from).unwrap_or_default();
            let value = chars.as_str();
            match tag.as_str() {
                "W" => width = Some(value.parse::<u32>().with_context(|| format!("bad Y4M width '{field}'"))?),
                "H" => height = Some(value.parse::<u32>().with_context(|| format!("bad Y4M height '{field}'"))?),
                "F" => fps = parse_ratio(value).with_context(|| format!("bad Y4M frame rate '{field}'"))?,
                "C" => chroma = Chroma::parse(value)?,
                "X" if value == "COLORRANGE=FULL" => full_range = true,
                // Interlacing, aspect ratio and other extensions do not change how the planes are read.
                _ => {}
            }
        }
        let (Some(width), Some(height)) = (width, height) else { bail!("Y4M header '{line}' lacks W or H") };
        if width == 0 || height == 0 || width > 16384 || height > 16384 {
            bail!("Y4M frame size {width}x{height} is out of range");
        }
        Ok(Y4mHeader { width, height, fps, chroma, full_range })
    }
}

fn parse_ratio(s: &str) -> Result<(u32, u32)> {
    let (n, d) = s.split_once(':').context("expected N:D")?;
    let (n, d) = (n.parse()?, d.parse()?);
    if n == 0 || d == 0 {
        bail!("zero in a frame rate");
    }
    Ok((n, d))
}

/// Reads frames from a YUV4MPEG2 stream as RGB images.
pub struct Y4mReader<R: BufRead> {
    input: R,
    header: Y4mHeader,
    /// Raw planes of one frame, reused.
    planes: Vec<u8>,
    frames_read: u64,
}

impl<R: BufRead> Y4mReader<R> {
    /// Reads and checks the stream header.
    pub fn new(mut input: R) -> Result<Self> {
        let line = read_line(&mut input)?.context("empty Y4M stream (no header)")?;
        let header = Y4mHeader::parse(&line)?;
        let (w, h) = (header.width as usize, header.height as usize);
        let (cw, ch) = header.chroma.plane(w, h);
        Ok(Y4mReader { input, planes: vec![0; w * h + 2 * cw * ch], header, frames_read: 0 })
    }

    pub fn header(&self) -> &Y4mHeader {
        &self.header
    }

    /// The next frame, `None` at the end of the stream. A stream cut inside a frame is an error.
    pub fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let Some(line) = read_line(&mut self.input)? else { return Ok(None) };
        if !line.starts_with("FRAME") {
            bail!("Y4M frame {} does not start with 'FRAME' (got '{}')", self.frames_read + 1, line.chars().take(40).collect::<String>());
        }
        self.input
            .read_exact(&mut self.planes)
            .with_context(|| format!("Y4M stream ends inside frame {} ({} bytes expected)", self.frames_read + 1, self.planes.len()))?;
        self.frames_read += 1;
        Ok(Some(yuv_to_rgb(&self.header, &self.planes)))
    }
}

/// One header line without its `\n`; `None` at a clean end of stream.
fn read_line(input: &mut impl BufRead) -> Result<Option<String>> {
    let mut line = Vec::new();
    // Headers are short; a missing newline within 4 KiB means this is not a Y4M stream.
    let n = input.take(4096).read_until(b'\n', &mut line).context("reading the Y4M stream")?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        bail!("Y4M header line is unterminated or too long");
    }
    line.pop();
    Ok(Some(String::from_utf8(line).context("Y4M header line is not text")?))
}

/// BT.601 coefficients; studio range unless `full`.
fn yuv_to_rgb(h: &Y4mHeader, planes: &[u8]) -> RgbImage {
    let (w, hgt) = (h.width as usize, h.height as usize);
    let (cw, ch) = h.chroma.plane(w, hgt);
    let (y_plane, rest) = planes.split_at(w * hgt);
    let (u_plane, v_plane) = rest.split_at(cw * ch);
    let (sy, sc) = if h.full_range { (1.0, 1.0) } else { (255.0 / 219.0, 255.0 / 224.0) };
    let y0 = if h.full_range { 0.0 } else { 16.0 };
    let mut out = vec![0u8; w * hgt * 3];
    out.par_chunks_mut(w * 3).enumerate().for_each(|(row, px)| {
        let crow = match h.chroma {
            Chroma::C420 => row / 2,
            _ => row,
        };
        for x in 0..w {
            let yv = (y_plane[row * w + x] as f32 - y0) * sy;
            let (u, v) = match h.chroma {
                Chroma::Mono => (0.0, 0.0),
                Chroma::C444 => (u_plane[crow * cw + x] as f32 - 128.0, v_plane[crow * cw + x] as f32 - 128.0),
                _ => (u_plane[crow * cw + x / 2] as f32 - 128.0, v_plane[crow * cw + x / 2] as f32 - 128.0),
            };
            let (u, v) = (u * sc, v * sc);
            let rgb = [yv + 1.402 * v, yv - 0.344_136 * u - 0.714_136 * v, yv + 1.772 * u];
            for k in 0..3 {
                px[x * 3 + k] = rgb[k].round().clamp(0.0, 255.0) as u8;
            }
        }
    });
    RgbImage::from_raw(w as u32, hgt as u32, out).expect("buffer has the frame's size")
}

/// Writes RGB frames as a 4:2:0 (`C420jpeg`, studio range, BT.601) YUV4MPEG2 stream.
pub struct Y4mWriter<W: Write> {
    output: W,
    width: u32,
    height: u32,
    planes: Vec<u8>,
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header. Odd sizes are allowed (chroma planes round up).
    pub fn new(mut output: W, width: u32, height: u32, fps: (u32, u32)) -> std::io::Result<Self> {
        writeln!(output, "YUV4MPEG2 W{width} H{height} F{}:{} Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=LIMITED", fps.0, fps.1)?;
        Ok(Y4mWriter { output, width, height, planes: Vec::new() })
    }

    /// Appends one frame; it must have the stream's size. I/O errors (a closed pipe: `BrokenPipe`) come back
    /// as `std::io::Error` so that callers can tell them apart.
    pub fn write_frame(&mut self, frame: &RgbImage) -> std::io::Result<()> {
        if frame.dimensions() != (self.width, self.height) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a {:?} frame in a {}x{} Y4M stream", frame.dimensions(), self.width, self.height),
            ));
        }
        rgb_to_yuv420(frame, &mut self.planes);
        self.output.write_all(b"FRAME\n")?;
        self.output.write_all(&self.planes)?;
        self.output.flush()
    }

    /// Frame size of the stream.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn into_inner(self) -> W {
        self.output
    }
}

/// RGB -> studio-range BT.601 Y, and U, V averaged over each 2x2 block (edge blocks over what exists).
fn rgb_to_yuv420(frame: &RgbImage, planes: &mut Vec<u8>) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = Chroma::C420.plane(w, h);
    planes.resize(w * h + 2 * cw * ch, 0);
    let (y_plane, rest) = planes.split_at_mut(w * h);
    let (u_plane, v_plane) = rest.split_at_mut(cw * ch);
    let src = frame.as_raw();
    let pixel = |x: usize, y: usize| {
        let p = &src[(y * w + x) * 3..][..3];
        (p[0] as f32, p[1] as f32, p[2] as f32)
    };
    y_plane.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, out) in row.iter_mut().enumerate() {
            let (r, g, b) = pixel(x, y);
            *out = (16.0 + (0.299 * r + 0.587 * g + 0.114 * b) * 219.0 / 255.0).round() as u8;
        }
    });
    u_plane.par_chunks_mut(cw).zip(v_plane.par_chunks_mut(cw)).enumerate().for_each(|(cy, (urow, vrow))| {
        for cx in 0..cw {
            let (mut r, mut g, mut b, mut n) = (0.0, 0.0, 0.0, 0.0);
            for y in 2 * cy..(2 * cy + 2).min(h) {
                for x in 2 * cx..(2 * cx + 2).min(w) {
                    let p = pixel(x, y);
                    (r, g, b, n) = (r + p.0, g + p.1, b + p.2, n + 1.0);
                }
            }
            let (r, g, b) = (r / n, g / n, b / n);
            let u = (-0.168_736 * r - 0.331_264 * g + 0.5 * b) * 224.0 / 255.0 + 128.0;
            let v = (0.5 * r - 0.418_688 * g - 0.081_312 * b) * 224.0 / 255.0 + 128.0;
            urow[cx] = u.round().clamp(0.0, 255.0) as u8;
            vrow[cx] = v.round().clamp(0.0, 255.0) as u8;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn smooth_frame(w: u32, h: u32, t: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7 + t) as u8, (y * 5) as u8, 200 - (x + y) as u8]))
    }

    #[test]
    fn round_trip_keeps_size_count_and_colours() -> Result<()> {
        // Odd size: chroma planes round up.
        let frames: Vec<_> = (0..3).map(|t| smooth_frame(13, 9, t * 10)).collect();
        let mut w = Y4mWriter::new(Vec::new(), 13, 9, (25, 1))?;
        for f in &frames {
            w.write_frame(f)?;
        }
        let bytes = w.into_inner();
        let mut r = Y4mReader::new(&bytes[..])?;
        assert_eq!(r.header().fps, (25, 1));
        assert_eq!((r.header().width, r.header().height, r.header().chroma), (13, 9, Chroma::C420));
        let mut n = 0;
        while let Some(f) = r.next_frame()? {
            assert_eq!(f.dimensions(), (13, 9));
            // Chroma subsampling of a smooth image and 8-bit rounding cost a few levels at most.
            let max = f.iter().zip(frames[n].iter()).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
            assert!(max <= 6, "frame {n}: max error {max}");
            n += 1;
        }
        assert_eq!(n, 3);
        Ok(())
    }

    #[test]
    fn reads_full_range_444_and_mono() -> Result<()> {
        // A 2x1 full-range 4:4:4 frame: white and pure red.
        let mut s = b"YUV4MPEG2 W2 H1 F30000:1001 C444 XCOLORRANGE=FULL\nFRAME\n".to_vec();
        s.extend([255, 76]); // Y
        s.extend([128, 85]); // U
        s.extend([128, 255]); // V
        let mut r = Y4mReader::new(&s[..])?;
        let f = r.next_frame()?.unwrap();
        assert_eq!(f.get_pixel(0, 0), &Rgb([255, 255, 255]));
        let red = f.get_pixel(1, 0);
        assert!(red[0] > 250 && red[1] < 5 && red[2] < 5, "{red:?}");
        assert!(r.next_frame()?.is_none());

        let s = b"YUV4MPEG2 W1 H1 Cmono\nFRAME\n\x10".to_vec();
        assert_eq!(Y4mReader::new(&s[..])?.next_frame()?.unwrap().get_pixel(0, 0), &Rgb([0, 0, 0]));
        Ok(())
    }

    #[test]
    fn bad_streams_are_clear_errors() {
        let err = |s: &[u8]| -> String {
            match Y4mReader::new(s).and_then(|mut r| r.next_frame().map(|_| ())) {
                Ok(()) => panic!("accepted"),
                Err(e) => format!("{e:#}"),
            }
        };
        assert!(err(b"").contains("empty"));
        assert!(err(b"RIFF....\n").contains("not a YUV4MPEG2"));
        assert!(err(b"YUV4MPEG2 W4\n").contains("lacks W or H"));
        assert!(err(b"YUV4MPEG2 W4 H4 C420p10\n").contains("C420p10"));
        assert!(err(b"YUV4MPEG2 W4 H4\nFRAME\n\x01\x02").contains("ends inside frame 1"));
        assert!(err(b"YUV4MPEG2 W2 H2\nFRAMX\n").contains("does not start with 'FRAME'"));
        // A non-ASCII tag (a multi-byte first character) is an unknown tag, not a panic.
        let header = Y4mHeader::parse("YUV4MPEG2 W2 H2 \u{e9}t\u{e9} \u{1F600}").unwrap();
        assert_eq!((header.width, header.height), (2, 2));
        assert!(err("YUV4MPEG2 W\u{e9} H2\n".as_bytes()).contains("bad Y4M width"));
        let mut w = Y4mWriter::new(Vec::new(), 4, 4, (30, 1)).unwrap();
        assert!(w.write_frame(&RgbImage::new(2, 2)).is_err());
    }
}
