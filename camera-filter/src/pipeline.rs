//! Capture -> filter -> (caller's) display/sink, one thread per stage, joined by one-item [`Slot`]s: in live
//! mode the newest frame wins at each hand-over, so a slow filter never builds a queue and the latency stays one
//! capture plus one filter time.

use crate::slot::{Slot, SlotMode, Taken};
use crate::source::Source;
use anyhow::{anyhow, Context, Result};
use ganime::filter::apply_with_strength;
use ganime::filters::ConfiguredFilter;
use image::imageops::{resize, FilterType};
use image::RgbImage;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Captured {
    pub frame: Arc<RgbImage>,
    /// When the frame was ready (decoded), for the capture-to-display latency.
    pub at: Instant,
}

pub struct Processed {
    pub input: Arc<RgbImage>,
    pub output: RgbImage,
    pub filter: String,
    pub strength: f32,
    pub captured_at: Instant,
    /// Time spent in the filter (resize, network, blend).
    pub model: Duration,
}

/// What the window's keys change while the pipeline runs.
pub struct Controls {
    pub filter: AtomicUsize,
    strengths: Mutex<Vec<f32>>,
    pub quit: AtomicBool,
    names: Vec<String>,
}

impl Controls {
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn current(&self) -> usize {
        self.filter.load(Ordering::Relaxed)
    }
    /// Moves to the next (`step` = 1) or previous (`step` = -1) filter, wrapping around.
    pub fn switch(&self, step: isize) {
        let n = self.names.len() as isize;
        let i = (self.current() as isize + step).rem_euclid(n);
        self.filter.store(i as usize, Ordering::Relaxed);
    }
    pub fn strength(&self, i: usize) -> f32 {
        self.strengths.lock().unwrap_or_else(|e| e.into_inner())[i]
    }
    /// Changes the current filter's strength by `delta`, kept in [0, 1]; returns the new value.
    pub fn nudge_strength(&self, delta: f32) -> f32 {
        let i = self.current();
        let mut s = self.strengths.lock().unwrap_or_else(|e| e.into_inner());
        s[i] = ((s[i] + delta) * 100.0).round().clamp(0.0, 100.0) / 100.0;
        s[i]
    }
    pub fn quit(&self) {
        self.quit.store(true, Ordering::Relaxed);
    }
    pub fn quitting(&self) -> bool {
        self.quit.load(Ordering::Relaxed)
    }
}

pub struct PipelineConfig {
    /// Live: file sources are paced at their frame rate and stale frames are dropped. Offline: every frame
    /// goes through, as fast as the filter allows.
    pub live: bool,
    /// Play finite sources again when they end.
    pub looping: bool,
    /// Resize frames to this size after capture.
    pub resize: Option<(u32, u32)>,
    /// Stop capturing after this many frames (offline mode; live mode counts at the sink).
    pub max_frames: Option<u64>,
}

pub struct Pipeline {
    pub controls: Arc<Controls>,
    pub output: Arc<Slot<Processed>>,
    input: Arc<Slot<Captured>>,
    filter_thread: Option<JoinHandle<()>>,
    error: Arc<Mutex<Option<anyhow::Error>>>,
    pub source: String,
    pub fps: f64,
}

type SourceFactory = Box<dyn FnOnce() -> Result<Box<dyn Source>> + Send>;

impl Pipeline {
    /// Starts the capture and filter threads. The source is opened on the capture thread (camera handles need
    /// not be `Send`); an error opening it is returned here.
    pub fn start(open_source: SourceFactory, filters: Vec<ConfiguredFilter>, config: PipelineConfig) -> Result<Self> {
        let mode = if config.live { SlotMode::NewestWins } else { SlotMode::Lossless };
        let input = Arc::new(Slot::new(mode));
        let output = Arc::new(Slot::new(mode));
        let controls = Arc::new(Controls {
            filter: AtomicUsize::new(0),
            strengths: Mutex::new(filters.iter().map(|f| f.strength).collect()),
            quit: AtomicBool::new(false),
            names: filters.iter().map(|f| f.filter.name()).collect(),
        });
        let error = Arc::new(Mutex::new(None));
        let (opened_tx, opened_rx) = mpsc::channel();
        {
            let (input, controls, error) = (input.clone(), controls.clone(), error.clone());
            // Not joined: a blocking read (stdin, a camera) may outlive the pipeline; the process exit ends it.
            std::thread::Builder::new().name("capture".into()).spawn(move || {
                let mut source = match open_source() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        input.close();
                        return;
                    }
                };
                let _ = opened_tx.send(Ok((source.describe(), source.fps())));
                if let Err(e) = capture_loop(source.as_mut(), &input, &controls, &config) {
                    set_error(&error, e);
                    // Live: stop now. Offline: closing the input lets the frames already captured through the
                    // filter to the outputs; the run then ends with the error.
                    if config.live {
                        controls.quit();
                    }
                }
                input.close();
            })?;
        }
        let (source, fps) = opened_rx.recv().context("the capture thread died while opening the source")??;
        let filter_thread = {
            let (input, output, controls, error) = (input.clone(), output.clone(), controls.clone(), error.clone());
            std::thread::Builder::new().name("filter".into()).spawn(move || {
                if let Err(e) = filter_loop(&filters, &input, &output, &controls) {
                    set_error(&error, e);
                    controls.quit();
                }
                output.close();
                input.close();
            })?
        };
        Ok(Pipeline { controls, output, input, filter_thread: Some(filter_thread), error, source, fps })
    }

    /// Frames dropped as stale: (between capture and filter, between filter and display).
    pub fn dropped(&self) -> (u64, u64) {
        (self.input.dropped(), self.output.dropped())
    }

    /// Stops the threads; the error that stopped the pipeline, if one did.
    pub fn finish(mut self) -> Result<()> {
        self.controls.quit();
        self.input.close();
        self.output.close();
        if let Some(t) = self.filter_thread.take() {
            t.join().map_err(|_| anyhow!("the filter thread panicked"))?;
        }
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn set_error(slot: &Mutex<Option<anyhow::Error>>, e: anyhow::Error) {
    slot.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
}

fn capture_loop(source: &mut dyn Source, input: &Slot<Captured>, controls: &Controls, config: &PipelineConfig) -> Result<()> {
    let period = Duration::from_secs_f64(1.0 / source.fps().clamp(0.1, 1000.0));
    let mut next_tick = Instant::now();
    let (mut captured, mut since_restart) = (0u64, 0u64);
    while !controls.quitting() && (config.live || config.max_frames.is_none_or(|m| captured < m)) {
        let frame = match source.next_frame()? {
            Some(f) => f,
            // Loop only a source that gave frames since the last restart (an empty one would spin).
            None if config.looping && since_restart > 0 && source.restart()? => {
                since_restart = 0;
                continue;
            }
            None => break,
        };
        let frame = match config.resize {
            Some((w, h)) if frame.dimensions() != (w, h) => resize(&frame, w, h, FilterType::Triangle),
            _ => frame,
        };
        if config.live && !source.paced_by_device() {
            let now = Instant::now();
            if next_tick > now {
                std::thread::sleep(next_tick - now);
            }
            // After a stall, do not rush to catch up: live means "now".
            next_tick = next_tick.max(now - period) + period;
        }
        captured += 1;
        since_restart += 1;
        if !input.put(Captured { frame: Arc::new(frame), at: Instant::now() }) {
            break;
        }
    }
    Ok(())
}

fn filter_loop(filters: &[ConfiguredFilter], input: &Slot<Captured>, output: &Slot<Processed>, controls: &Controls) -> Result<()> {
    while let Taken::Item(c) = input.take(None) {
        let i = controls.current();
        let (filter, strength) = (filters[i].filter.as_ref(), controls.strength(i));
        let t = Instant::now();
        let out = apply_with_strength(filter, &c.frame, strength).with_context(|| format!("filter '{}'", filter.name()))?;
        let processed = Processed { input: c.frame, output: out, filter: filter.name(), strength, captured_at: c.at, model: t.elapsed() };
        if !output.put(processed) {
            break;
        }
    }
    Ok(())
}

/// Median and 95th percentile (nearest rank) of durations, in milliseconds.
pub fn percentiles_ms(samples: &[Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    (rank(0.5), rank(0.95))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::InMemory;
    use ganime::filter::Filter;
    use image::Rgb;

    /// Takes `delay` per frame and inverts it.
    struct Slow(Duration);
    impl Filter for Slow {
        fn name(&self) -> String {
            "slow".into()
        }
        fn apply(&self, f: &RgbImage) -> Result<RgbImage> {
            std::thread::sleep(self.0);
            let mut o = f.clone();
            o.iter_mut().for_each(|p| *p = 255 - *p);
            Ok(o)
        }
    }

    fn frames(n: u8) -> Vec<RgbImage> {
        (0..n).map(|i| RgbImage::from_pixel(8, 6, Rgb([i, 0, 0]))).collect()
    }

    fn start(n: u8, delay_ms: u64, live: bool) -> Pipeline {
        let source: SourceFactory = Box::new(move || Ok(Box::new(InMemory::new(frames(n), 200.0)) as Box<dyn Source>));
        let filters = vec![ConfiguredFilter { filter: Box::new(Slow(Duration::from_millis(delay_ms))), strength: 1.0 }];
        Pipeline::start(source, filters, PipelineConfig { live, looping: false, resize: None, max_frames: None }).unwrap()
    }

    fn drain(p: &Pipeline) -> Vec<Processed> {
        drain_timed(p).into_iter().map(|(x, _)| x).collect()
    }

    /// Outputs with the time each one arrived.
    fn drain_timed(p: &Pipeline) -> Vec<(Processed, Instant)> {
        let mut out = Vec::new();
        while let Taken::Item(x) = p.output.take(None) {
            out.push((x, Instant::now()));
        }
        out
    }

    #[test]
    fn offline_passes_every_frame_in_order() {
        let p = start(20, 1, false);
        let out = drain(&p);
        let seen: Vec<u8> = out.iter().map(|x| 255 - x.output.get_pixel(0, 0)[0]).collect();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(p.dropped(), (0, 0));
        p.finish().unwrap();
    }

    #[test]
    fn live_drops_stale_frames_and_keeps_latency_bounded() {
        // Frames arrive every 5 ms, the filter takes 40 ms: most frames must be dropped, none queued.
        let p = start(60, 40, true);
        let out = drain_timed(&p);
        let (dropped_in, _) = p.dropped();
        assert!(out.len() < 20 && dropped_in > 30, "{} out, {dropped_in} dropped", out.len());
        // Frames come out in order, and no output waited for more than about one filter time after capture.
        let seen: Vec<u8> = out.iter().map(|(x, _)| 255 - x.output.get_pixel(0, 0)[0]).collect();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        for (x, arrived) in &out {
            let waited = (*arrived - x.captured_at).saturating_sub(x.model);
            assert!(waited < Duration::from_millis(100), "frame waited {waited:?}");
        }
        p.finish().unwrap();
    }

    /// Gives `good` frames, then fails (a truncated last frame, an unreadable file).
    struct FailsAfter(InMemory, usize);
    impl Source for FailsAfter {
        fn next_frame(&mut self) -> Result<Option<RgbImage>> {
            if self.1 == 0 {
                anyhow::bail!("frame 4 is truncated");
            }
            self.1 -= 1;
            self.0.next_frame()
        }
        fn fps(&self) -> f64 {
            self.0.fps()
        }
        fn restart(&mut self) -> Result<bool> {
            Ok(false)
        }
        fn describe(&self) -> String {
            "failing source".into()
        }
    }

    /// Offline, a source that fails still delivers every good frame before it, and the run ends with the error.
    #[test]
    fn offline_keeps_the_good_frames_before_a_source_error() {
        let source: SourceFactory = Box::new(|| Ok(Box::new(FailsAfter(InMemory::new(frames(10), 200.0), 3)) as Box<dyn Source>));
        let filters = vec![ConfiguredFilter { filter: Box::new(Slow(Duration::from_millis(20))), strength: 1.0 }];
        let p = Pipeline::start(source, filters, PipelineConfig { live: false, looping: false, resize: None, max_frames: None }).unwrap();
        let seen: Vec<u8> = drain(&p).iter().map(|x| 255 - x.output.get_pixel(0, 0)[0]).collect();
        assert_eq!(seen, vec![0, 1, 2]);
        // The display/sink loop runs until the output closes unless told to quit: it must not be told.
        assert!(!p.controls.quitting());
        let err = p.finish().unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn controls_switch_and_clamp() {
        let p = start(1, 0, false);
        let c = p.controls.clone();
        c.switch(-1);
        assert_eq!(c.current(), 0);
        assert_eq!(c.nudge_strength(0.3), 1.0);
        assert_eq!(c.nudge_strength(-0.25), 0.75);
        drain(&p);
        p.finish().unwrap();
    }

    #[test]
    fn percentiles() {
        let d: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentiles_ms(&d), (50.0, 95.0));
    }
}
