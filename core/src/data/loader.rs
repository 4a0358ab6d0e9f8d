//! Background batch loader: a worker thread decodes and shuffles ahead of the training loop, with an order
//! that depends only on (seed, epoch) so that resumed training sees exactly the same batches.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use anyhow::{anyhow, bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{flip_horizontal, Dataset, ImageSpec};

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub seed: u64,
    /// Random horizontal flip, decided per (seed, epoch, position).
    pub flip: bool,
    /// Batches decoded ahead and queued (at least 1 is used).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self { batch_size: 64, seed: 0, flip: false, prefetch: 4 }
    }
}

/// A batch: `data` is [n, channels, size, size] row-major f32 in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub data: Vec<f32>,
    pub n: usize,
    pub epoch: usize,
    /// Batch index within the epoch.
    pub index: usize,
    pub batches_per_epoch: usize,
}

impl Batch {
    pub fn to_tensor(&self, spec: &ImageSpec, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.data, (self.n, spec.channels, spec.size, spec.size), device)
    }
}

/// Infinite stream of batches over epochs, produced by a background thread into a bounded channel.
pub struct Loader {
    rx: Option<Receiver<Result<Batch>>>,
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    skipped: Arc<AtomicUsize>,
    batches_per_epoch: usize,
}

impl Loader {
    /// Starts producing at (start_epoch, start_batch), which yields exactly the batches a run from (0, 0)
    /// would have produced there (a `start_batch` past the epoch end carries into later epochs).
    pub fn start(dataset: Arc<dyn Dataset>, spec: ImageSpec, cfg: LoaderConfig, start_epoch: usize, start_batch: usize) -> Result<Self> {
        spec.validate()?;
        ensure!(cfg.batch_size > 0, "batch size must be positive");
        let len = dataset.len();
        if len < cfg.batch_size {
            bail!("dataset has {len} images, fewer than the batch size {}", cfg.batch_size);
        }
        let batches_per_epoch = len / cfg.batch_size;
        let epoch = start_epoch + start_batch / batches_per_epoch;
        let batch = start_batch % batches_per_epoch;

        let (tx, rx) = sync_channel(cfg.prefetch.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let skipped = Arc::new(AtomicUsize::new(0));
        let producer =
            Producer { dataset, spec, cfg, batches_per_epoch, bad: Mutex::new(HashSet::new()), skipped: skipped.clone(), stop: stop.clone() };
        let worker = thread::Builder::new()
            .name("ganime-loader".into())
            .spawn(move || producer.run(&tx, epoch, batch))
            .context("cannot start the data loader thread")?;
        Ok(Self { rx: Some(rx), worker: Some(worker), stop, skipped, batches_per_epoch })
    }

    /// The next batch; blocks until the worker has it. An error if loading failed or the worker died.
    pub fn next_batch(&mut self) -> Result<Batch> {
        let rx = self.rx.as_ref().context("data loader is stopped")?;
        match rx.recv() {
            Ok(batch) => batch,
            Err(_) => Err(self.worker_failure()),
        }
    }

    /// Corrupt/unreadable files skipped so far (counted by the worker, which runs ahead of `next_batch`).
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    /// Why the worker is gone: its panic message if it panicked.
    fn worker_failure(&mut self) -> anyhow::Error {
        match self.worker.take().map(JoinHandle::join) {
            Some(Err(panic)) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                anyhow!("data loader thread panicked: {msg}")
            }
            _ => anyhow!("data loader thread has stopped"),
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_batch())
    }
}

impl Drop for Loader {
    /// Closing the channel makes the worker's next send fail; the stop flag spares it the next batch.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// RNG streams derived from (seed, epoch), one per purpose so that they do not interact.
const ORDER_STREAM: u64 = 0;
const FLIP_STREAM: u64 = 1;

fn epoch_rng(seed: u64, epoch: usize, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// Sample order and flips of one epoch.
struct EpochPlan {
    order: Vec<usize>,
    /// Empty when flipping is off.
    flips: Vec<bool>,
}

impl EpochPlan {
    fn new(len: usize, cfg: &LoaderConfig, epoch: usize) -> Self {
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut epoch_rng(cfg.seed, epoch, ORDER_STREAM));
        let flips = if cfg.flip {
            let mut rng = epoch_rng(cfg.seed, epoch, FLIP_STREAM);
            (0..len).map(|_| rng.random()).collect()
        } else {
            Vec::new()
        };
        Self { order, flips }
    }
}

/// State owned by the worker thread.
struct Producer {
    dataset: Arc<dyn Dataset>,
    spec: ImageSpec,
    cfg: LoaderConfig,
    batches_per_epoch: usize,
    /// Dataset indices known to fail, so they are reported once and not decoded again.
    bad: Mutex<HashSet<usize>>,
    skipped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Producer {
    /// Sends batches until the receiver is gone, the loader is dropped, or a batch fails.
    fn run(&self, tx: &SyncSender<Result<Batch>>, mut epoch: usize, mut index: usize) {
        loop {
            let plan = EpochPlan::new(self.dataset.len(), &self.cfg, epoch);
            while index < self.batches_per_epoch {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                let batch = self.batch(&plan, epoch, index);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
                index += 1;
            }
            index = 0;
            epoch += 1;
        }
    }

    /// Decodes the samples of one batch in parallel.
    fn batch(&self, plan: &EpochPlan, epoch: usize, index: usize) -> Result<Batch> {
        let n = self.cfg.batch_size;
        let sample_len = self.spec.sample_len();
        let mut data = vec![0f32; n * sample_len];
        data.par_chunks_mut(sample_len).enumerate().try_for_each(|(k, slot)| {
            let position = index * n + k;
            let sample = self.sample_at(&plan.order, position)?;
            ensure!(sample.len() == sample_len, "{} returned {} values for one sample, expected {sample_len}", self.dataset.describe(), sample.len());
            slot.copy_from_slice(&sample);
            if plan.flips.get(position) == Some(&true) {
                flip_horizontal(slot, &self.spec);
            }
            Ok(())
        })?;
        Ok(Batch { data, n, epoch, index, batches_per_epoch: self.batches_per_epoch })
    }

    /// The sample for `position` of the epoch order; a file that fails is replaced by the next one in the
    /// order that loads. Corruption is deterministic, so the replacement is too.
    fn sample_at(&self, order: &[usize], position: usize) -> Result<Vec<f32>> {
        let len = order.len();
        for step in 0..len {
            let index = order[(position + step) % len];
            if self.bad.lock().unwrap().contains(&index) {
                continue;
            }
            match self.dataset.load(index, &self.spec) {
                Ok(sample) => return Ok(sample),
                Err(err) => self.mark_bad(index, &err),
            }
        }
        bail!("no sample of {} could be loaded", self.dataset.describe())
    }

    fn mark_bad(&self, index: usize, err: &anyhow::Error) {
        if self.bad.lock().unwrap().insert(index) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            eprintln!("warning: skipping unreadable sample: {err:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::data::{Fit, ImageFolder};
    use std::path::Path;

    /// Sample `i` is `[10i, 10i+1, 10i+2, 10i+3]` (a 2x2 gray image), so ids and flips can be read back.
    struct Numbers {
        len: usize,
        bad: HashSet<usize>,
        panic_on: Option<usize>,
    }

    impl Numbers {
        fn new(len: usize) -> Self {
            Self { len, bad: HashSet::new(), panic_on: None }
        }
    }

    impl Dataset for Numbers {
        fn len(&self) -> usize {
            self.len
        }
        fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>> {
            assert_ne!(Some(index), self.panic_on, "boom at {index}");
            ensure!(!self.bad.contains(&index), "sample {index} is corrupt");
            Ok((0..spec.sample_len()).map(|j| (index * 10 + j) as f32).collect())
        }
        fn describe(&self) -> String {
            format!("numbers ({} samples)", self.len)
        }
        fn name(&self, _index: usize) -> Option<String> {
            None
        }
    }

    const TINY: ImageSpec = ImageSpec { size: 2, channels: 1, fit: Fit::Pad };

    fn cfg(batch_size: usize, seed: u64) -> LoaderConfig {
        LoaderConfig { batch_size, seed, flip: true, prefetch: 2 }
    }

    fn take(ds: Numbers, cfg: LoaderConfig, start: (usize, usize), count: usize) -> Vec<Batch> {
        let mut loader = Loader::start(Arc::new(ds), TINY, cfg, start.0, start.1).unwrap();
        (0..count).map(|_| loader.next_batch().unwrap()).collect()
    }

    /// (sample id, flipped) of each sample in a batch.
    fn decode(batch: &Batch) -> Vec<(usize, bool)> {
        batch.data.chunks(4).map(|s| (s[0] as usize / 10, s[0] as usize % 10 == 1)).collect()
    }

    #[test]
    fn resume_matches_uninterrupted_run() {
        let full = take(Numbers::new(50), cfg(8, 7), (0, 0), 12);
        assert_eq!(full[0].batches_per_epoch, 6);
        assert_eq!((full[6].epoch, full[6].index), (1, 0));
        let resumed = take(Numbers::new(50), cfg(8, 7), (1, 2), 4);
        assert_eq!(resumed, full[8..12]);
        let carried = take(Numbers::new(50), cfg(8, 7), (0, 8), 1);
        assert_eq!(carried[0], full[8]);

        // Each epoch is a permutation: 48 distinct samples, roughly half flipped.
        let epoch0: Vec<_> = full[..6].iter().flat_map(decode).collect();
        let ids: HashSet<_> = epoch0.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids.len(), 48);
        let flipped = epoch0.iter().filter(|&&(_, f)| f).count();
        assert!((10..=38).contains(&flipped), "{flipped} flipped");
        assert_ne!(full[0].data, full[6].data, "epochs are reshuffled");
    }

    #[test]
    fn seeds_change_the_order() {
        let a = take(Numbers::new(50), cfg(8, 1), (0, 0), 1);
        let b = take(Numbers::new(50), cfg(8, 2), (0, 0), 1);
        assert_ne!(decode(&a[0]), decode(&b[0]));
        let no_flip = LoaderConfig { flip: false, ..cfg(8, 1) };
        let c = take(Numbers::new(50), no_flip, (0, 0), 1);
        assert!(decode(&c[0]).iter().all(|&(_, f)| !f));
        let ids = |b: &Batch| decode(b).into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(ids(&a[0]), ids(&c[0]), "flip does not change the order");
    }

    #[test]
    fn corrupt_samples_are_replaced_deterministically() {
        let bad: HashSet<usize> = [3, 4, 17, 40].into();
        let numbers = || Numbers { bad: bad.clone(), ..Numbers::new(50) };
        let mut loader = Loader::start(Arc::new(numbers()), TINY, cfg(8, 3), 0, 0).unwrap();
        let full: Vec<_> = (0..12).map(|_| loader.next_batch().unwrap()).collect();
        assert_eq!(loader.skipped(), 4);
        assert!(full.iter().flat_map(decode).all(|(id, _)| !bad.contains(&id)));
        let resumed = take(numbers(), cfg(8, 3), (1, 3), 3);
        assert_eq!(resumed, full[9..12]);
    }

    #[test]
    fn all_corrupt_is_an_error() {
        let ds = Numbers { bad: (0..10).collect(), ..Numbers::new(10) };
        let mut loader = Loader::start(Arc::new(ds), TINY, cfg(4, 0), 0, 0).unwrap();
        let err = loader.next_batch().unwrap_err().to_string();
        assert!(err.contains("no sample of numbers"), "{err}");
        assert!(loader.next_batch().is_err());
        assert_eq!(loader.skipped(), 10);
    }

    #[test]
    fn worker_panic_is_reported() {
        let ds = Numbers { panic_on: Some(5), ..Numbers::new(6) };
        let mut loader = Loader::start(Arc::new(ds), TINY, cfg(6, 0), 0, 0).unwrap();
        let err = loader.next_batch().unwrap_err().to_string();
        assert!(err.contains("panicked") && err.contains("boom at 5"), "{err}");
    }

    #[test]
    fn too_small_dataset_and_clean_drop() {
        let err = Loader::start(Arc::new(Numbers::new(5)), TINY, cfg(8, 0), 0, 0).err().unwrap();
        assert_eq!(err.to_string(), "dataset has 5 images, fewer than the batch size 8");
        // Dropping with a full queue and a blocked worker must return promptly.
        let mut loader = Loader::start(Arc::new(Numbers::new(100)), TINY, cfg(4, 0), 0, 0).unwrap();
        loader.next_batch().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(loader);
    }

    fn write_png(path: &Path, shade: u8) {
        let img = image::RgbImage::from_pixel(12, 8, image::Rgb([shade, 0, 255 - shade]));
        img.save_with_format(path, image::ImageFormat::Png).unwrap();
    }

    #[test]
    fn corrupt_jpeg_in_folder_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5u8 {
            write_png(&dir.path().join(format!("{i}.png")), i * 50);
        }
        let junk: Vec<u8> = (0..500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(dir.path().join("x.jpg"), junk).unwrap();
        let folder = Arc::new(ImageFolder::open(dir.path()).unwrap());
        assert_eq!(folder.len(), 6);
        let spec = ImageSpec { size: 8, channels: 3, fit: Fit::CenterCrop };
        let mut loader = Loader::start(folder, spec, cfg(2, 0), 0, 0).unwrap();
        for _ in 0..6 {
            let batch = loader.next_batch().unwrap();
            assert_eq!(batch.data.len(), 2 * 3 * 64);
            assert!(batch.data.iter().all(|v| (-1.0..=1.0).contains(v)));
        }
        assert_eq!(loader.skipped(), 1);
    }

    #[test]
    fn anime_faces_batches() {
        let Some(faces) = shared_path("data/anime-faces") else { return };
        let dir = tempfile::tempdir().unwrap();
        let source = ImageFolder::open(&faces).unwrap();
        for path in &source.paths()[..64] {
            std::fs::copy(path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        let dataset = Arc::new(ImageFolder::open(dir.path()).unwrap());
        let spec = ImageSpec { size: 64, channels: 3, fit: Fit::CenterCrop };
        let mut loader = Loader::start(dataset, spec, cfg(16, 42), 0, 0).unwrap();
        assert_eq!(loader.batches_per_epoch(), 4);
        for step in 0..5 {
            let batch = loader.next_batch().unwrap();
            assert_eq!((batch.epoch, batch.index), (step / 4, step % 4));
            let t = batch.to_tensor(&spec, &Device::Cpu).unwrap();
            assert_eq!(t.dims(), [16, 3, 64, 64]);
            let (min, max) = batch.data.iter().fold((1f32, -1f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(min >= -1.0 && max <= 1.0 && max - min > 1.0, "range {min}..{max}");
        }
        assert_eq!(loader.skipped(), 0);
    }
}
