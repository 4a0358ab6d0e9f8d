//! One adversarial trainer. A [`GanTask`] supplies the networks and its D and G losses, an [`Objective`] the
//! loss functions; the [`Trainer`] owns the loop, optimisers, checkpoint/resume, sample grids, CSV log, plots,
//! progress bar and the NaN stop.

pub mod animegan;
pub mod animegan_losses;
pub mod compare;
pub mod cyclegan;
pub mod dcgan;
pub mod diffaugment;
pub mod distill;
pub mod interrupt;
pub mod log;
pub mod monitor;
pub mod objective;
pub mod optimizer;
pub mod stop;
pub mod superpixel;
pub mod task;
pub mod trainer;
pub mod upscale;

pub use crate::io::checkpoint::Checkpoint;
pub use crate::nn::adam::{Adam, AdamParams};
pub use dcgan::{DcganTask, GanRecipe};
pub use diffaugment::DiffAugment;
pub use monitor::Monitor;
pub use objective::{Bce, Lsgan, Objective, ObjectiveSpec, Targets, Wgan};
pub use optimizer::{LrSchedule, OptimizerKind};
pub use task::{GanTask, LabelPolicy, StepContext, StepStats};
pub use trainer::{TrainConfig, TrainOptions, TrainSummary, Trainer};
