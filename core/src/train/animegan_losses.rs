//! The loss terms of AnimeGAN / AnimeGANv2 (Chen et al. 2019; TachibanaYoshino/AnimeGANv2 `tools/ops.py`),
//! on images in [-1, 1]:
//! - content: L1 between VGG features of the photo and of its stylisation;
//! - style: L1 between Gram matrices of VGG features of *grayscale* anime and *grayscale* stylisation (texture
//!   without colour), each Gram divided by the feature map's size H·W·C as in the reference;
//! - colour: in YUV (TF's `rgb_to_yuv` of the [0, 1] image), L1 on Y, Huber (δ 1) on U and V;
//! - total variation: half the mean squared difference of vertical and horizontal neighbours (the reference's
//!   `l2_loss(dh)/size(dh) + l2_loss(dw)/size(dw)`, TF's `l2_loss` being ½·sum of squares);
//! - LSGAN adversarial terms, D's weighted over real anime, generated, grayscale anime and edge-smoothed anime.

use candle_core::{Result, Tensor};

/// ITU-R BT.601 luma weights of TF's `rgb_to_grayscale`.
pub const GRAY: [f64; 3] = [0.2989, 0.5870, 0.1140];

/// TF's `rgb_to_yuv` kernel, rows = Y, U, V.
pub const YUV: [[f64; 3]; 3] = [[0.299, 0.587, 0.114], [-0.14714119, -0.28886916, 0.43601035], [0.61497538, -0.51496512, -0.10001026]];

/// Per-pixel linear map of the 3 channels of `[B, 3, H, W]` by `m` (rows = output channels).
fn mix_channels(x: &Tensor, m: &[[f64; 3]]) -> Result<Tensor> {
    let c = [x.narrow(1, 0, 1)?, x.narrow(1, 1, 1)?, x.narrow(1, 2, 1)?];
    let rows = m.iter().map(|w| ((&c[0] * w[0])? + (&c[1] * w[1])?)? + (&c[2] * w[2])?).collect::<Result<Vec<_>>>()?;
    Tensor::cat(&rows, 1)
}

/// Grayscale of `[B, 3, H, W]` in [-1, 1], repeated to 3 channels (what VGG and D are shown).
pub fn grayscale3(x: &Tensor) -> Result<Tensor> {
    let g = mix_channels(x, &[GRAY])?;
    Tensor::cat(&[&g, &g, &g], 1)
}

/// `[B, 3, H, W]` in [-1, 1] -> YUV of the [0, 1] image.
pub fn rgb_to_yuv(x: &Tensor) -> Result<Tensor> {
    mix_channels(&((x + 1.0)? * 0.5)?, &YUV)
}

/// `F^T F / (H·W·C)` per sample: `[B, C, H, W]` -> `[B, C, C]`.
pub fn gram_normalised(f: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = f.dims4()?;
    let flat = f.reshape((b, c, h * w))?;
    flat.matmul(&flat.t()?)? / (c * h * w) as f64
}

pub fn l1(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a - b)?.abs()?.mean_all()
}

/// Huber loss with δ = 1, mean over elements (`tf.losses.huber_loss` defaults).
pub fn huber(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = (a - b)?.abs()?;
    let quadratic = d.clamp(0.0, 1.0)?;
    let linear = (&d - &quadratic)?;
    ((quadratic.sqr()? * 0.5)? + linear)?.mean_all()
}

/// Colour loss between photo and stylisation (both in [-1, 1]).
pub fn color_loss(photo: &Tensor, generated: &Tensor) -> Result<Tensor> {
    let (p, g) = (rgb_to_yuv(photo)?, rgb_to_yuv(generated)?);
    let ch = |t: &Tensor, i: usize| t.narrow(1, i, 1);
    (l1(&ch(&p, 0)?, &ch(&g, 0)?)? + huber(&ch(&p, 1)?, &ch(&g, 1)?)?)? + huber(&ch(&p, 2)?, &ch(&g, 2)?)?
}

/// L1 between the U and V channels of the stylisation and of the photo times `gain` (both in [-1, 1]): the
/// chroma pull the colour loss's Huber terms lack near 0; a gain above 1 asks for the photo's colours more
/// saturated (an anime palette).
pub fn chroma_l1(photo: &Tensor, generated: &Tensor, gain: f64) -> Result<Tensor> {
    let (p, g) = (rgb_to_yuv(photo)?.narrow(1, 1, 2)?, rgb_to_yuv(generated)?.narrow(1, 1, 2)?);
    let p = if gain == 1.0 { p } else { (p * gain)? };
    l1(&p, &g)
}

/// ½·mean squared vertical plus ½·mean squared horizontal neighbour difference.
pub fn total_variation_mean(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let dh = (x.narrow(2, 1, h - 1)? - x.narrow(2, 0, h - 1)?)?;
    let dw = (x.narrow(3, 1, w - 1)? - x.narrow(3, 0, w - 1)?)?;
    (dh.sqr()?.mean_all()? + dw.sqr()?.mean_all()?)? * 0.5
}

/// `mean((x - target)^2)`.
pub fn lsgan(x: &Tensor, target: f64) -> Result<Tensor> {
    (x - target)?.sqr()?.mean_all()
}

/// The style of `a` against `b`: L1 between the Grams of `[B, C, H, W]` feature maps (b broadcast if its
/// batch is 1).
pub fn gram_l1(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ga, gb) = (gram_normalised(a)?, gram_normalised(b)?);
    ga.broadcast_sub(&gb)?.abs()?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    fn scalar(x: Tensor) -> f64 {
        x.to_dtype(candle_core::DType::F64).unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn yuv_and_gray_by_hand() -> Result<()> {
        // One pixel, RGB in [-1, 1] = (1, -1, 0) -> [0, 1] = (1, 0, 0.5).
        let x = t(&[1.0, -1.0, 0.0], &[1, 3, 1, 1]);
        let yuv = rgb_to_yuv(&x)?.flatten_all()?.to_vec1::<f32>()?;
        let want = [0.299 + 0.114 * 0.5, -0.14714119 + 0.43601035 * 0.5, 0.61497538 - 0.10001026 * 0.5];
        for (g, w) in yuv.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-6, "{yuv:?} vs {want:?}");
        }
        let gray = grayscale3(&x)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(gray.len(), 3);
        for g in gray {
            assert!((g as f64 - (0.2989 - 0.5870)).abs() < 1e-6);
        }
        Ok(())
    }

    #[test]
    fn gram_of_grayscale_by_hand() -> Result<()> {
        // Features [1, 2, 1, 2]: channel rows (1, 2) and (3, 4); F F^T = [[5, 11], [11, 25]] / (2·1·2).
        let f = t(&[1.0, 2.0, 3.0, 4.0], &[1, 2, 1, 2]);
        let g = gram_normalised(&f)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(g, vec![1.25, 2.75, 2.75, 6.25]);
        // Against zeros: mean |G| = (1.25 + 2.75 + 2.75 + 6.25) / 4.
        let l = scalar(gram_l1(&f, &f.zeros_like()?)?);
        assert!((l - 3.25).abs() < 1e-6);
        // A gray picture's three channels are equal, so its Gram is rank one: every entry the same.
        let gray = grayscale3(&t(&[0.5, -0.2, 0.1, 0.9, 0.3, -0.4], &[1, 3, 1, 2]))?;
        let gg = gram_normalised(&gray)?.flatten_all()?.to_vec1::<f32>()?;
        assert!(gg.iter().all(|v| (v - gg[0]).abs() < 1e-6), "{gg:?}");
        Ok(())
    }

    #[test]
    fn huber_color_tv_lsgan_by_hand() -> Result<()> {
        let a = t(&[0.0, 0.0, 0.0, 0.0], &[1, 1, 2, 2]);
        let b = t(&[0.5, -2.0, 1.0, 0.0], &[1, 1, 2, 2]);
        // 0.5·0.25, 2 - 0.5, 0.5·1, 0 -> mean of (0.125, 1.5, 0.5, 0).
        assert!((scalar(huber(&a, &b)?) - 2.125 / 4.0).abs() < 1e-6);
        // TV of [[0.5, -2], [1, 0]]: dh = (0.5, 2), dw = (-2.5, -1): mean squares 2.125 and 3.625, each
        // halved (TF's l2_loss is ½·sum of squares).
        assert!((scalar(total_variation_mean(&b)?) - (2.125 + 3.625) / 2.0).abs() < 1e-5);
        assert!((scalar(lsgan(&b, 1.0)?) - (0.25 + 9.0 + 0.0 + 1.0) / 4.0).abs() < 1e-6);
        // Colour loss of an image against itself is 0; a pure luminance shift costs only the Y term.
        let x = t(&[0.1, 0.2, -0.3, 0.4, 0.0, 0.6], &[1, 3, 1, 2]);
        assert!(scalar(color_loss(&x, &x)?).abs() < 1e-7);
        let shifted = (&x + 0.2)?;
        // Y of a +0.2 shift in [-1, 1] is +0.1 in [0, 1]; U and V rows sum to 0.
        assert!((scalar(color_loss(&x, &shifted)?) - 0.1).abs() < 1e-5);
        // Chroma: a luminance shift costs nothing; pure red against black in [-1, 1] costs the mean of
        // |U| = 0.14714119 and |V| = 0.61497538 of (1, 0, 0).
        assert!(scalar(chroma_l1(&x, &shifted, 1.0)?).abs() < 1e-6);
        let (black, red) = (t(&[-1.0, -1.0, -1.0], &[1, 3, 1, 1]), t(&[1.0, -1.0, -1.0], &[1, 3, 1, 1]));
        assert!((scalar(chroma_l1(&black, &red, 1.0)?) - (0.14714119 + 0.61497538) / 2.0).abs() < 1e-6);
        // With a gain, red is the target of red at half the gain's chroma: |U|, |V| of red times (gain - 1).
        assert!((scalar(chroma_l1(&red, &red, 1.5)?) - 0.5 * (0.14714119 + 0.61497538) / 2.0).abs() < 1e-6);
        Ok(())
    }
}
