//! Fused inference kernels for the camera's networks on the CPU (AnimeGANv2, the instance-norm style networks,
//! the Magenta graphs). Written first for the AnimeGANv2 generator, where a real-time filter spends its time
//! (profile of the width-8 generator at 160×120: ~50% in the barrier waits of Candle's parallel element-wise
//! ops, 24% layer norm, 14% depthwise conv, 10% LeakyReLU). Each replaces a chain of Candle ops (about ten
//! full-tensor passes for GroupNorm(1) + affine + LeakyReLU, nine shifted multiply-adds for a depthwise 3×3)
//! by one or two passes over the data, parallel over channels (`fused_speed` below: 1.4-1.9x and 1.8-2.4x on
//! a quiet machine, 40x and 3.5-6x at load 10, where Candle's per-op barriers wait on busy cores). Inference only: they build no autograd graph,
//! so training keeps the differentiable compositions in `layer_norm` and `depthwise`. Other devices and dtypes
//! fall back to those compositions.

use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A `len`-value output written plane by plane in parallel by `write(i, plane_i)`, which writes every value of
/// its plane: no zero-filling pass first, as `vec![0.0; len]` makes (with the conv outputs, ~5 % of animegan-256's
/// time, BENCHMARKS.md).
fn write_planes(len: usize, plane: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(plane.max(1)).enumerate().for_each(|(i, p)| write(i, p));
    // SAFETY: `write` initialised every value of every plane.
    unsafe { out.set_len(len) };
    out
}

/// `(Σ f(v), Σ f(v)²)` over `values` in f64, in eight independent lanes so that the additions pipeline and
/// vectorise (one running sum is bound by the latency of each add: the layer norms' statistics were ~3.5 % of
/// animegan-256 that way).
#[inline]
fn sums_f64(values: &[f32], f: impl Fn(f64) -> f64) -> (f64, f64) {
    let (mut s, mut q) = ([0f64; 8], [0f64; 8]);
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            let v = f(c[i] as f64);
            s[i] += v;
            q[i] += v * v;
        }
    }
    for (i, &v) in rest.iter().enumerate() {
        let v = f(v as f64);
        s[i] += v;
        q[i] += v * v;
    }
    (s.iter().sum(), q.iter().sum())
}

/// Runs `f` on the data of f32 CPU tensors (borrowed through `kernels::contiguous`, made contiguous first if
/// needed); `None` when any is on another device or of another dtype (the caller then uses Candle's ops).
pub(crate) fn with_cpu_f32<R>(ts: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> Result<R>) -> Result<Option<R>> {
    if ts.iter().any(|t| !matches!(t.device(), Device::Cpu) || t.dtype() != DType::F32) {
        return Ok(None);
    }
    let owned = ts.iter().map(|t| t.contiguous()).collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .map(|(s, l)| match &**s {
            candle_core::Storage::Cpu(cpu) => super::kernels::contiguous::<f32>("fused kernel", cpu, l),
            _ => candle_core::bail!("fused kernel: expected CPU storage"),
        })
        .collect::<Result<Vec<_>>>()?;
    f(&slices).map(Some)
}

/// `leaky_relu(layer_norm2d(x) · weight[c] + bias[c], slope)` with the per-sample statistics over C·H·W
/// (biased variance), for `[N, C, H, W]`.
pub fn layer_norm_affine_lrelu(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64, slope: Option<f64>) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let fused = with_cpu_f32(&[x, weight, bias], |d| layer_norm_cpu(d[0], d[1], d[2], (c, h, w), eps, slope))?;
    let Some(out) = fused else {
        let y =
            super::layer_norm::layer_norm2d(x, eps)?.broadcast_mul(&weight.reshape((1, c, 1, 1))?)?.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
        return match slope {
            Some(s) => super::kernels::activation::leaky_relu(&y, s),
            None => Ok(y),
        };
    };
    Tensor::from_vec(out, (n, c, h, w), x.device())
}

fn layer_norm_cpu(xs: &[f32], ws: &[f32], bs: &[f32], (c, h, w): (usize, usize, usize), eps: f64, slope: Option<f64>) -> Result<Vec<f32>> {
    let plane = h * w;
    let per_sample = c * plane;
    let mut out = Vec::with_capacity(xs.len());
    for (sample, dst) in xs.chunks(per_sample).zip(out.spare_capacity_mut().chunks_mut(per_sample)) {
        // Statistics in f64, per channel in parallel, then combined.
        let (sum, sq): (f64, f64) = sample.par_chunks(plane).map(|p| sums_f64(p, |v| v)).reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        let count = per_sample as f64;
        let mean = sum / count;
        let var = (sq / count - mean * mean).max(0.0);
        let inv = 1.0 / (var + eps).sqrt();
        dst.par_chunks_mut(plane).zip(sample.par_chunks(plane)).enumerate().for_each(|(ch, (d, s))| {
            let scale = (ws[ch] as f64 * inv) as f32;
            let shift = (bs[ch] as f64 - mean * ws[ch] as f64 * inv) as f32;
            match slope {
                Some(sl) => {
                    let sl = sl as f32;
                    for (o, &v) in d.iter_mut().zip(s) {
                        let y = v * scale + shift;
                        o.write(if y >= 0.0 { y } else { y * sl });
                    }
                }
                None => {
                    for (o, &v) in d.iter_mut().zip(s) {
                        o.write(v * scale + shift);
                    }
                }
            }
        });
    }
    // SAFETY: every sample's every plane was written above.
    unsafe { out.set_len(xs.len()) };
    Ok(out)
}

/// Depthwise 3×3 convolution, stride 1, with reflection padding 1 built in (`ReflectionPad2d(1)` then
/// `Conv2d(c, c, 3, groups=c)`), plus an optional bias: `[N, C, H, W]` -> same shape.
pub fn depthwise3x3_reflect(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let fused = if h >= 2 && w >= 2 { with_cpu_f32(&inputs, |d| Ok(depthwise_cpu(d[0], d[1], d.get(2).copied(), (c, h, w))))? } else { None };
    let Some(out) = fused else {
        let padded = super::reflection_pad2d(x, 1, 1, 1, 1)?;
        let dw = super::depthwise::DepthwiseConv2d { weight: weight.clone(), bias: bias.cloned() };
        return dw.forward(&padded);
    };
    Tensor::from_vec(out, (n, c, h, w), x.device())
}

fn depthwise_cpu(xs: &[f32], ws: &[f32], bs: Option<&[f32]>, (c, h, w): (usize, usize, usize)) -> Vec<f32> {
    let plane = h * w;
    // Reflect-101 index for -1 and n.
    let rf = |i: isize, n: usize| -> usize {
        if i < 0 {
            1
        } else if i as usize >= n {
            n - 2
        } else {
            i as usize
        }
    };
    write_planes(xs.len(), plane, |nc, dst| {
        let ch = nc % c;
        let src = &xs[nc * plane..(nc + 1) * plane];
        let k = &ws[ch * 9..ch * 9 + 9];
        let b = bs.map_or(0.0, |b| b[ch]);
        for y in 0..h {
            let rows = [rf(y as isize - 1, h), y, rf(y as isize + 1, h)];
            let interior = |x: usize| -> f32 {
                let mut acc = b;
                for (ky, &r) in rows.iter().enumerate() {
                    let row = &src[r * w..r * w + w];
                    acc += k[ky * 3] * row[x - 1] + k[ky * 3 + 1] * row[x] + k[ky * 3 + 2] * row[x + 1];
                }
                acc
            };
            let edge = |x: usize| -> f32 {
                let cols = [rf(x as isize - 1, w), x, rf(x as isize + 1, w)];
                let mut acc = b;
                for (ky, &r) in rows.iter().enumerate() {
                    for (kx, &cx) in cols.iter().enumerate() {
                        acc += k[ky * 3 + kx] * src[r * w + cx];
                    }
                }
                acc
            };
            let d = &mut dst[y * w..y * w + w];
            d[0].write(edge(0));
            for (x, o) in d.iter_mut().enumerate().take(w - 1).skip(1) {
                o.write(interior(x));
            }
            d[w - 1].write(edge(w - 1));
        }
    })
}

/// Nearest-neighbour 2× upsampling of an f32 CPU `[N, C, H, W]`, each value written to its 2×2 block; `None`
/// for other devices or dtypes.
pub fn upsample2_planes(x: &Tensor) -> Result<Option<Tensor>> {
    let (b, c, h, w) = x.dims4()?;
    let out = with_cpu_f32(&[x], |xs| {
        Ok(write_planes(b * c * 4 * h * w, 4 * h * w, |i, o| {
            let plane = &xs[0][i * h * w..][..h * w];
            for (rows, src) in o.chunks_mut(4 * w).zip(plane.chunks(w)) {
                let (top, bottom) = rows.split_at_mut(2 * w);
                for ((t, bt), &v) in top.chunks_mut(2).zip(bottom.chunks_mut(2)).zip(src) {
                    for d in t.iter_mut().chain(bt) {
                        d.write(v);
                    }
                }
            }
        }))
    })?;
    out.map(|o| Tensor::from_vec(o, (b, c, 2 * h, 2 * w), x.device())).transpose()
}

/// What follows a normalisation in [`instance_norm_affine_act`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormActivation {
    None,
    Relu,
    Sigmoid,
}

impl NormActivation {
    /// The activation on the differentiable path (tracked tensors, other devices).
    pub fn apply(self, y: Tensor) -> Result<Tensor> {
        match self {
            NormActivation::None => Ok(y),
            NormActivation::Relu => super::kernels::activation::relu(&y),
            NormActivation::Sigmoid => candle_nn::ops::sigmoid(&y),
        }
    }
}

/// `act(instance_norm(x) · gamma[c] + beta[c])` for `[N, C, H, W]` (biased variance per plane, statistics in
/// f64), in two passes per plane; `None` for other devices or dtypes (the caller composes Candle's ops).
pub fn instance_norm_affine_act(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, act: NormActivation) -> Result<Option<Tensor>> {
    let (b, c, h, w) = x.dims4()?;
    if gamma.elem_count() != c || beta.elem_count() != c {
        candle_core::bail!("instance norm: {c} channels, but gamma has {} and beta {} values", gamma.elem_count(), beta.elem_count());
    }
    let out = with_cpu_f32(&[x, gamma, beta], |s| {
        let (xs, g, be) = (s[0], s[1], s[2]);
        let n = h * w;
        Ok(write_planes(b * c * n, n, |i, o| {
            let plane = &xs[i * n..][..n];
            let ch = i % c;
            let mean = sums_f64(plane, |v| v).0 / n as f64;
            let var = sums_f64(plane, |v| v - mean).1 / n as f64;
            let gain = g[ch] as f64 / (var + eps).sqrt();
            let (scale, shift) = (gain as f32, (be[ch] as f64 - mean * gain) as f32);
            for (o, &v) in o.iter_mut().zip(plane) {
                let y = v * scale + shift;
                o.write(match act {
                    NormActivation::None => y,
                    NormActivation::Relu => y.max(0.0),
                    NormActivation::Sigmoid => 1.0 / (1.0 + (-y).exp()),
                });
            }
        }))
    })?;
    out.map(|o| Tensor::from_vec(o, (b, c, h, w), x.device())).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;

    use crate::nn::gradcheck::max_diff;

    #[test]
    fn layer_norm_matches_the_composition() -> Result<()> {
        for (shape, slope) in [([2, 3, 5, 7], Some(0.2)), ([1, 4, 1, 9], None), ([1, 1, 3, 3], Some(0.0))] {
            let x = (seeded(&shape, 1)?.to_dtype(DType::F32)? * 3.0)?;
            let wt = seeded(&[shape[1]], 2)?.to_dtype(DType::F32)?;
            let bs = seeded(&[shape[1]], 3)?.to_dtype(DType::F32)?;
            let c = shape[1];
            let want = crate::nn::layer_norm::layer_norm2d(&x, 1e-5)?
                .broadcast_mul(&wt.reshape((1, c, 1, 1))?)?
                .broadcast_add(&bs.reshape((1, c, 1, 1))?)?;
            let want = match slope {
                Some(s) => candle_nn::ops::leaky_relu(&want, s)?,
                None => want,
            };
            let got = layer_norm_affine_lrelu(&x, &wt, &bs, 1e-5, slope)?;
            assert!(max_diff(&got, &want) < 1e-5, "{shape:?}: {}", max_diff(&got, &want));
        }
        Ok(())
    }

    #[test]
    fn depthwise_matches_pad_then_conv() -> Result<()> {
        for shape in [[1, 3, 5, 6], [2, 2, 2, 9], [1, 1, 7, 2]] {
            let x = seeded(&shape, 4)?.to_dtype(DType::F32)?;
            let wt = seeded(&[shape[1], 1, 3, 3], 5)?.to_dtype(DType::F32)?;
            let bs = seeded(&[shape[1]], 6)?.to_dtype(DType::F32)?;
            for bias in [Some(&bs), None] {
                let padded = crate::nn::reflection_pad2d(&x, 1, 1, 1, 1)?;
                let want = crate::nn::depthwise::DepthwiseConv2d { weight: wt.clone(), bias: bias.cloned() }.forward(&padded)?;
                let got = depthwise3x3_reflect(&x, &wt, bias)?;
                assert!(max_diff(&got, &want) < 1e-5, "{shape:?}: {}", max_diff(&got, &want));
            }
        }
        Ok(())
    }
}

/// `cargo test --release -p ganime fused_speed -- --ignored --nocapture`: the fused kernels against the Candle
/// compositions they replace, interleaved so that machine load hits both alike.
#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn fused_speed() -> Result<()> {
        let x = (Tensor::randn(0f32, 1.0, (1, 32, 120, 160), &Device::Cpu)? * 1.0)?;
        let wt = Tensor::ones(32, DType::F32, &Device::Cpu)?;
        let bs = Tensor::zeros(32, DType::F32, &Device::Cpu)?;
        let k = Tensor::randn(0f32, 1.0, (32, 1, 3, 3), &Device::Cpu)?;
        let time = |f: &dyn Fn() -> Result<Tensor>| -> Result<f64> {
            let mut best = f64::MAX;
            for _ in 0..20 {
                let t = Instant::now();
                f()?;
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok(best)
        };
        let composed_norm = || -> Result<Tensor> {
            let y = crate::nn::layer_norm::layer_norm2d(&x, 1e-5)?
                .broadcast_mul(&wt.reshape((1, 32, 1, 1))?)?
                .broadcast_add(&bs.reshape((1, 32, 1, 1))?)?;
            candle_nn::ops::leaky_relu(&y, 0.2)
        };
        let composed_dw = || -> Result<Tensor> {
            crate::nn::depthwise::DepthwiseConv2d { weight: k.clone(), bias: Some(bs.clone()) }.forward(&crate::nn::reflection_pad2d(&x, 1, 1, 1, 1)?)
        };
        for _ in 0..2 {
            let (a, b) = (time(&composed_norm)?, time(&|| layer_norm_affine_lrelu(&x, &wt, &bs, 1e-5, Some(0.2)))?);
            let (c, d) = (time(&composed_dw)?, time(&|| depthwise3x3_reflect(&x, &k, Some(&bs)))?);
            eprintln!("[1,32,120,160] best of 20: layer norm+affine+lrelu {a:.2} ms -> fused {b:.2} ms; reflect pad + depthwise 3x3 {c:.2} ms -> fused {d:.2} ms");
        }
        Ok(())
    }
}
