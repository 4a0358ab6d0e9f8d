//! Conv2d and ConvTranspose2d layers (PyTorch keys `weight`, `bias`; PyTorch layouts).
//!
//! On the CPU (f32/f64) both run on the project's kernels. Why by hand: Candle's CPU `conv_transpose2d` forward
//! is a direct loop (~15 GFLOP/s here) and conv2d's backward goes through it.
//! - Inference convs, training convs with many positions per image and transposed convs: tiled GEMM kernels,
//!   forward and backward (`kernels::conv2d`, `kernels::conv2d_backward`), no whole-batch patch matrix.
//! - Training convs with few positions per image (DCGAN's inner layers) and everything under second-order
//!   gradients (WGAN-GP): one large GEMM plus a patch gather/scatter (`im2col` / `col2im`, the custom ops of
//!   `kernels::patches`, each other's tracked adjoint, so they differentiate twice).
//!
//! On other devices the layers call Candle's own convolutions.

use super::kernels::{
    self,
    conv2d::Padding,
    patches::{col2im, im2col, Patches},
};
use candle_core::{DType, Result, Tensor};
use candle_nn::{Init, VarBuilder};

fn weight_init(init: Option<Init>) -> Init {
    // The DCGAN papers' N(0, 0.02) unless a model asks otherwise.
    init.unwrap_or(Init::Randn { mean: 0.0, stdev: 0.02 })
}

pub(crate) fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        None => Ok(y),
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
    }
}

/// `nn.Conv2d(c_in, c_out, k, stride, padding, bias)` with zero padding. Weight `[c_out, c_in, k, k]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, padding: usize, bias: bool, init: Option<Init>, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((c_out, c_in, k, k), "weight", weight_init(init))?;
        let bias = if bias { Some(vb.get_with_hints(c_out, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, stride, padding })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(y) = conv2d_inference(x, &self.weight, self.bias.as_ref(), self.stride, Padding::Zero(self.padding))? {
            return Ok(y);
        }
        add_bias(conv2d_no_bias(x, &self.weight, self.stride, self.padding)?, self.bias.as_ref())
    }

    /// `ReflectionPad2d((left, right, top, bottom))` then this conv (whose own padding is then normally 0). At
    /// inference on the CPU the padding is folded into the kernel's patch gather (no padded copy).
    pub fn forward_reflect(&self, x: &Tensor, pads: (usize, usize, usize, usize)) -> Result<Tensor> {
        if self.padding == 0 {
            return conv2d_reflect(x, &self.weight, self.bias.as_ref(), self.stride, pads);
        }
        self.forward(&super::reflection_pad2d(x, pads.0, pads.1, pads.2, pads.3)?)
    }
}

/// Nothing to differentiate (f32, CPU): the kernel with the padding folded into its gather and the bias added
/// per output tile (no separate broadcast pass). `None` otherwise.
fn conv2d_inference(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: Padding) -> Result<Option<Tensor>> {
    if x.track_op() || weight.track_op() || bias.is_some_and(|b| b.track_op()) {
        return Ok(None);
    }
    kernels::conv2d::conv2d_inference(x, weight, bias, stride, padding)
}

/// `ReflectionPad2d((left, right, top, bottom))` then `F.conv2d(·, weight, bias, stride)` without padding of its
/// own. At inference on the CPU the padding is folded into the kernel's patch gather (no padded copy is made).
pub fn conv2d_reflect(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    (left, right, top, bottom): (usize, usize, usize, usize),
) -> Result<Tensor> {
    if let Some(y) = conv2d_inference(x, weight, bias, stride, Padding::Reflect { left, right, top, bottom })? {
        return Ok(y);
    }
    add_bias(conv2d_no_bias(&super::reflection_pad2d(x, left, right, top, bottom)?, weight, stride, 0)?, bias)
}

/// `F.conv2d(x, weight, stride, padding)` without bias, on the project's CPU kernels for f32/f64 CPU tensors
/// and Candle's op elsewhere.
pub fn conv2d_no_bias(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (c_out, c_in, k, _) = weight.dims4()?;
    let y = if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
        let (_, c, _, _) = x.dims4()?;
        if c != c_in {
            candle_core::bail!("conv2d: input has {c} channels, the weight [{c_out}, {c_in}, {k}, {k}] expects {c_in}");
        }
        let (_, _, h, w) = x.dims4()?;
        let (ho, wo) = Patches { c: c_in, h, w, k, stride, pad: padding }.out_hw();
        if (x.track_op() || weight.track_op()) && !tiled_kernels_pay(ho * wo) {
            conv2d_whole_batch(x, weight, stride, padding)?
        } else {
            kernels::conv2d::conv2d(x, weight, stride, padding)?
        }
    } else {
        x.conv2d(weight, padding, stride, 1, 1)?
    };
    Ok(y)
}

thread_local! {
    /// Forces one of the two training paths (`bench_training_paths`); None: [`tiled_kernels_pay`] decides.
    static TILED_TRAINING: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether a training conv, or any transposed conv, whose GEMM has `positions` output positions per image (a
/// transposed conv: its input positions) runs on the tiled kernels (`kernels::conv2d`,
/// `kernels::conv2d_backward`) rather than the whole-batch patch matrix. Measured per layer
/// (`bench_training_paths`, forward + backward, BENCHMARKS.md): the tiled kernels win 1.0–3.7× on the batch-1
/// layers (VGG at 32²–256², CycleGAN) and 2.0–2.1× on DCGAN's 1,024-position layers, 1.2× at 256, and lose
/// (0.16–0.85×) at 1–64 positions per image, where the whole batch makes one large GEMM and the per-image GEMMs
/// are thin. Second-order gradients need the tracked ops.
fn tiled_kernels_pay(positions: usize) -> bool {
    !kernels::second_order_gradients() && TILED_TRAINING.with(|t| t.get()).unwrap_or(positions >= 256)
}

/// Training conv as one whole-batch patch matrix and one matmul, whose autograd is two large matmuls and
/// differentiates again (the patch ops are each other's tracked adjoints): the path for layers with few positions
/// per image and for second-order gradients.
fn conv2d_whole_batch(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (c_out, c_in, k, _) = weight.dims4()?;
    let (b, _, h, w) = x.dims4()?;
    let p = Patches { c: c_in, h, w, k, stride, pad: padding };
    let (ho, wo) = p.out_hw();
    let cols = im2col(x, k, stride, padding)?.reshape((b * ho * wo, p.row_len()))?;
    let y = cols.matmul(&weight.reshape((c_out, p.row_len()))?.t()?)?;
    y.reshape((b, ho, wo, c_out))?.permute((0, 3, 1, 2))?.contiguous()
}

/// `nn.ConvTranspose2d(c_in, c_out, k, stride, padding, output_padding, bias)`. Weight `[c_in, c_out, k, k]`.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
    pub output_padding: usize,
}

impl ConvTranspose2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
        bias: bool,
        init: Option<Init>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((c_in, c_out, k, k), "weight", weight_init(init))?;
        let bias = if bias { Some(vb.get_with_hints(c_out, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, stride, padding, output_padding })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        add_bias(conv_transpose2d_no_bias(x, &self.weight, self.stride, self.padding, self.output_padding)?, self.bias.as_ref())
    }
}

/// `F.conv_transpose2d(x, weight, stride, padding, output_padding)` without bias (weight `[c_in, c_out, k, k]`):
/// on the CPU one GEMM and a col2im scatter (Candle's CPU op is a direct loop), Candle's op elsewhere.
pub fn conv_transpose2d_no_bias(x: &Tensor, weight: &Tensor, stride: usize, padding: usize, output_padding: usize) -> Result<Tensor> {
    let (c_in, c_out, k, _) = weight.dims4()?;
    let (b, _, h, w) = x.dims4()?;
    let big = |n: usize| (n - 1) * stride + k + output_padding - 2 * padding;
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && tiled_kernels_pay(h * w) {
        kernels::conv2d_backward::conv_transpose2d(x, weight, stride, padding, output_padding)
    } else if x.device().is_cpu() {
        let rows = x.permute((0, 2, 3, 1))?.contiguous()?.reshape((b * h * w, c_in))?;
        let cols = rows.matmul(&weight.reshape((c_in, c_out * k * k))?)?.reshape((b, h * w, c_out * k * k))?;
        col2im(&cols, c_out, big(h), big(w), k, stride, padding)
    } else {
        x.conv_transpose2d(weight, padding, output_padding, stride, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use crate::nn::gradcheck::max_diff;

    fn conv(c_in: usize, c_out: usize, k: usize, s: usize, p: usize) -> Result<Conv2d> {
        let vm = VarMap::new();
        Conv2d::new(c_in, c_out, k, s, p, true, Some(Init::Randn { mean: 0., stdev: 0.5 }), VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu))
    }

    fn convt(c_in: usize, c_out: usize, k: usize, s: usize, p: usize, op: usize) -> Result<ConvTranspose2d> {
        let vm = VarMap::new();
        ConvTranspose2d::new(
            c_in,
            c_out,
            k,
            s,
            p,
            op,
            true,
            Some(Init::Randn { mean: 0., stdev: 0.5 }),
            VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu),
        )
    }

    #[test]
    fn conv2d_matches_candle() -> Result<()> {
        for &(k, s, p, h, w) in &[(4, 2, 1, 8, 8), (3, 1, 1, 5, 7), (5, 2, 2, 7, 6), (1, 1, 0, 3, 3)] {
            let c = conv(3, 4, k, s, p)?;
            let x = seeded(&[2, 3, h, w], 1)?;
            let reference = x.conv2d(&c.weight, p, s, 1, 1)?.broadcast_add(&c.bias.as_ref().unwrap().reshape((1, 4, 1, 1))?)?;
            assert!(max_diff(&c.forward(&x)?, &reference) < 1e-12);
        }
        Ok(())
    }

    #[test]
    fn conv_transpose2d_matches_candle() -> Result<()> {
        for &(k, s, p, op, h, w) in &[(4, 2, 1, 0, 4, 4), (4, 1, 0, 0, 1, 1), (3, 2, 1, 1, 3, 5), (5, 2, 2, 1, 4, 4)] {
            let c = convt(3, 2, k, s, p, op)?;
            let x = seeded(&[2, 3, h, w], 2)?;
            let reference = x.conv_transpose2d(&c.weight, p, op, s, 1)?.broadcast_add(&c.bias.as_ref().unwrap().reshape((1, 2, 1, 1))?)?;
            assert!(max_diff(&c.forward(&x)?, &reference) < 1e-12);
        }
        Ok(())
    }

    #[test]
    fn training_layers_with_many_positions_match_candle_autograd() -> Result<()> {
        // 20×20 and 16×16 inputs: at least 256 positions per image, so the tiled gradient kernels run.
        assert!(tiled_kernels_pay(400) && tiled_kernels_pay(256) && !tiled_kernels_pay(255));
        let c = conv(3, 4, 3, 1, 1)?;
        let t = convt(3, 2, 4, 2, 1, 0)?;
        for (i, transposed) in [false, true].into_iter().enumerate() {
            let x = candle_core::Var::from_tensor(&seeded(&[2, 3, if transposed { 16 } else { 20 }, 20], 10 + i as u64)?)?;
            let (ours, theirs, w) = if transposed {
                (
                    t.forward(&x)?,
                    x.conv_transpose2d(&t.weight, 1, 0, 2, 1)?.broadcast_add(&t.bias.as_ref().unwrap().reshape((1, 2, 1, 1))?)?,
                    &t.weight,
                )
            } else {
                (c.forward(&x)?, x.conv2d(&c.weight, 1, 1, 1, 1)?.broadcast_add(&c.bias.as_ref().unwrap().reshape((1, 4, 1, 1))?)?, &c.weight)
            };
            assert!(max_diff(&ours, &theirs) < 1e-12);
            let r = seeded(ours.dims(), 3)?;
            let g1 = (ours * &r)?.sum_all()?.backward()?;
            let g2 = (theirs * &r)?.sum_all()?.backward()?;
            for v in [x.as_tensor(), w] {
                assert!(max_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-10, "transposed {transposed}");
            }
        }
        Ok(())
    }

    /// Training step of one layer (forward, backward to input and weight) through the whole-batch patch matrix
    /// and through the tiled kernels, on the layer shapes of the training workloads.
    /// `cargo test --release -p ganime nn::conv::tests::bench_training_paths -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_training_paths() -> Result<()> {
        crate::tune_allocator();
        // (name, transposed, batch, c_in, c_out, h, w, k, stride, pad)
        let layers = [
            ("dcgan D1", false, 64, 3, 64, 64, 64, 4, 2, 1),
            ("dcgan D2", false, 64, 64, 128, 32, 32, 4, 2, 1),
            ("dcgan D3", false, 64, 128, 256, 16, 16, 4, 2, 1),
            ("dcgan D4", false, 64, 256, 512, 8, 8, 4, 2, 1),
            ("dcgan D5", false, 64, 512, 1, 4, 4, 4, 1, 0),
            ("dcgan G1", true, 64, 100, 512, 1, 1, 4, 1, 0),
            ("dcgan G2", true, 64, 512, 256, 4, 4, 4, 2, 1),
            ("dcgan G3", true, 64, 256, 128, 8, 8, 4, 2, 1),
            ("dcgan G4", true, 64, 128, 64, 16, 16, 4, 2, 1),
            ("dcgan G5", true, 64, 64, 3, 32, 32, 4, 2, 1),
            ("vgg 64 @256", false, 1, 64, 64, 256, 256, 3, 1, 1),
            ("vgg 256 @64", false, 1, 256, 256, 64, 64, 3, 1, 1),
            ("vgg 512 @32", false, 1, 512, 512, 32, 32, 3, 1, 1),
            ("cyclegan in 7x7", false, 1, 3, 64, 134, 134, 7, 1, 0),
            ("cyclegan res 3x3", false, 1, 256, 256, 34, 34, 3, 1, 0),
            ("cyclegan out 7x7", false, 1, 64, 3, 134, 134, 7, 1, 0),
            ("cyclegan up", true, 1, 256, 128, 32, 32, 3, 2, 1),
        ];
        for (name, transposed, b, ci, co, h, w, k, s, p) in layers {
            let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1., (b, ci, h, w), &Device::Cpu)?)?;
            let wshape = if transposed { (ci, co, k, k) } else { (co, ci, k, k) };
            let wt = candle_core::Var::from_tensor(&Tensor::randn(0f32, 0.1, wshape, &Device::Cpu)?)?;
            let mut times = Vec::new();
            for tiled in [false, true] {
                TILED_TRAINING.with(|t| t.set(Some(tiled)));
                let step = || -> Result<()> {
                    let y = if transposed { conv_transpose2d_no_bias(&x, &wt, s, p, s - 1)? } else { conv2d_no_bias(&x, &wt, s, p)? };
                    let g = y.sqr()?.sum_all()?.backward()?;
                    g.get(&x).unwrap();
                    Ok(())
                };
                step()?;
                let t = std::time::Instant::now();
                for _ in 0..5 {
                    step()?;
                }
                times.push(t.elapsed().as_secs_f64() / 5.0 * 1e3);
            }
            TILED_TRAINING.with(|t| t.set(None));
            println!("{name:18} whole-batch {:8.2} ms  tiled {:8.2} ms  ({:.2}x)", times[0], times[1], times[0] / times[1]);
        }
        Ok(())
    }

    #[test]
    fn conv_gradients_input_and_weight() -> Result<()> {
        let c = conv(2, 3, 3, 2, 1)?;
        check_gradient(&[2, 2, 5, 6], |x| c.forward(x))?;
        let x = seeded(&[2, 2, 5, 6], 4)?;
        check_gradient(&[3, 2, 3, 3], |w| Conv2d { weight: w.clone(), bias: None, stride: 2, padding: 1 }.forward(&x))?;
        let t = convt(2, 3, 4, 2, 1, 0)?;
        check_gradient(&[2, 2, 3, 3], |x| t.forward(x))?;
        let x = seeded(&[2, 2, 3, 3], 5)?;
        check_gradient(&[2, 3, 3, 3], |w| ConvTranspose2d { weight: w.clone(), bias: None, stride: 2, padding: 1, output_padding: 1 }.forward(&x))
    }
}
