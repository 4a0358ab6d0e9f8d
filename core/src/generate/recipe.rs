//! One character's recipe: a seed and what was done to its latent (a step toward another seed, a variation,
//! attribute moves). Sheet cells record theirs, `ganime generate --recipe` and the editors' `generate_character`
//! read it back, and all compute the latent here, so a recipe names the same character everywhere.
//!
//! Text form (`Display`/`FromStr`), the fields in this order, all but `seed` optional:
//! `seed=3 toward=5@0.25 variation=2@0.75 set=hair=blonde:+1.5 set=eyes=red:-1 guide=hair=pink:12`.
//! `set` moves along a TL-GAN axis (`attributes.rs`), `guide` takes steps guided by the attribute classifier
//! (`guide.rs`; the built-in classifier).

use super::attributes::{classifier_from, parse_move, AttributeAxes};
use super::guide::{guided_path, parse_guide};
use super::latent::slerp;
use super::upscale::Upscaling;
use super::{latents, prior_latents, Generator, Prior};
use crate::io::image::tensor_to_images;
use crate::models::attribute_classifier::AttributeClassifier;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    pub seed: u64,
    /// Spherical interpolation from `seed`'s latent toward `(other seed, t)`, t in [0, 1].
    pub toward: Option<(u64, f64)>,
    /// Variation `(index, strength)`: the latent plus `strength` × noise row `index` of the seed's noise stream.
    pub variation: Option<(usize, f64)>,
    /// Moves along attribute axes (`hair=blonde`, amount), each with the other attributes locked.
    pub moves: Vec<(String, f64)>,
    /// Classifier-guided moves (`hair=blonde`, steps), applied after `moves`, one after the other: each holds
    /// the attributes as the previous left them.
    pub guides: Vec<(String, usize)>,
}

impl Recipe {
    pub fn seed(seed: u64) -> Recipe {
        Recipe { seed, toward: None, variation: None, moves: Vec::new(), guides: Vec::new() }
    }

    /// The latent `[1, dim]` for `g`. Moves need `axes` fit for the generator, guided moves the attribute
    /// classifier (`None`: the built-in one).
    pub fn latent_for(
        &self,
        g: &dyn Generator,
        axes: Option<&AttributeAxes>,
        classifier: Option<&AttributeClassifier>,
        device: &Device,
    ) -> Result<Tensor> {
        let mut z = Recipe { guides: Vec::new(), ..self.clone() }.latent(g.prior(), g.latent_dim(), axes, device)?;
        if self.guides.is_empty() {
            return Ok(z);
        }
        let builtin;
        let clf = match classifier {
            Some(c) => c,
            None => {
                builtin = classifier_from(None, device)?;
                &builtin
            }
        };
        for (axis, steps) in &self.guides {
            if let Some(last) = guided_path(g, clf, &z, axis, *steps).with_context(|| format!("recipe `{self}`"))?.pop() {
                z = last;
            }
        }
        Ok(z)
    }

    /// The latent `[1, dim]` of a recipe without guided moves (those need the generator: [`Self::latent_for`]).
    /// Moves need `axes` fit for the generator.
    pub fn latent(&self, prior: Prior, dim: usize, axes: Option<&AttributeAxes>, device: &Device) -> Result<Tensor> {
        if !self.guides.is_empty() {
            anyhow::bail!("recipe `{self}` has guided moves: its latent needs the generator and classifier");
        }
        let mut z = seed_latent(prior, self.seed, dim, device)?;
        if let Some((to, t)) = self.toward {
            z = slerp(&z, &seed_latent(prior, to, dim, device)?, t)?;
        }
        if let Some((index, strength)) = self.variation {
            // Noise from a stream derived from the seed, distinct from any seed's own latent; row `index` of it is
            // the same however many variations are drawn.
            let noise = latents(variation_stream(self.seed), index + 1, dim, device)?.get(index)?;
            z = noise.affine(strength, 0.0)?.broadcast_add(&z)?;
        }
        let z = z.unsqueeze(0)?;
        if self.moves.is_empty() {
            return Ok(z);
        }
        let axes = axes.with_context(|| format!("recipe `{self}` moves attributes, but this generator has no attribute axes"))?;
        axes.apply(&z, &self.moves, None)
    }

    /// Whether the recipe moves along attribute axes (and so needs them).
    pub fn needs_axes(&self) -> bool {
        !self.moves.is_empty()
    }
}

/// A seed's latent, drawn from the generator's prior (what `generate --seed S --count 1` draws).
fn seed_latent(prior: Prior, seed: u64, dim: usize, device: &Device) -> Result<Tensor> {
    Ok(prior_latents(prior, seed, 1, dim, device)?.get(0)?)
}

fn variation_stream(seed: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5a5a
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{}` of an f64 is its shortest exact form: parsing the text gives the same numbers back.
        write!(f, "seed={}", self.seed)?;
        if let Some((to, t)) = self.toward {
            write!(f, " toward={to}@{t}")?;
        }
        if let Some((index, strength)) = self.variation {
            write!(f, " variation={index}@{strength}")?;
        }
        for (axis, amount) in &self.moves {
            write!(f, " set={axis}:{amount:+}")?;
        }
        for (axis, steps) in &self.guides {
            write!(f, " guide={axis}:{steps}")?;
        }
        Ok(())
    }
}

impl FromStr for Recipe {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Recipe> {
        let mut recipe: Option<Recipe> = None;
        let bad = |why: String| anyhow::anyhow!("recipe `{text}`: {why} (expected e.g. `seed=3 variation=2@0.75 set=hair=blonde:+1.5`)");
        for token in text.split_whitespace() {
            let (key, value) = token.split_once('=').ok_or_else(|| bad(format!("`{token}` is not KEY=VALUE")))?;
            let number = |v: &str, what: &str| -> Result<f64> {
                let x: f64 = v.parse().map_err(|_| bad(format!("{what} `{v}` is not a number")))?;
                if !x.is_finite() {
                    return Err(bad(format!("{what} must be finite, not {v}")));
                }
                Ok(x)
            };
            if key == "seed" {
                if recipe.is_some() {
                    return Err(bad("seed given twice".into()));
                }
                recipe = Some(Recipe::seed(value.parse().map_err(|_| bad(format!("seed `{value}` is not a whole number >= 0")))?));
                continue;
            }
            let r = recipe.as_mut().ok_or_else(|| bad("it must start with seed=N".into()))?;
            match key {
                "toward" => {
                    let (to, t) = value.split_once('@').ok_or_else(|| bad(format!("toward `{value}` is not SEED@T")))?;
                    let to = to.parse().map_err(|_| bad(format!("toward seed `{to}` is not a whole number >= 0")))?;
                    let t = number(t, "toward t")?;
                    if !(0.0..=1.0).contains(&t) {
                        return Err(bad(format!("toward t {t} is outside [0, 1]")));
                    }
                    r.toward = Some((to, t));
                }
                "variation" => {
                    let (index, strength) = value.split_once('@').ok_or_else(|| bad(format!("variation `{value}` is not INDEX@STRENGTH")))?;
                    let index: usize = index.parse().map_err(|_| bad(format!("variation index `{index}` is not a whole number >= 0")))?;
                    if index >= MAX_VARIATION {
                        return Err(bad(format!("variation index {index} is over {}", MAX_VARIATION - 1)));
                    }
                    let strength = number(strength, "variation strength")?;
                    if strength < 0.0 {
                        return Err(bad(format!("variation strength {strength} is negative")));
                    }
                    r.variation = Some((index, strength));
                }
                "set" => r.moves.push(parse_move(value).map_err(|e| bad(format!("{e:#}")))?),
                "guide" => {
                    let (axis, steps) = parse_guide(value).map_err(|e| bad(format!("guide {e:#}")))?;
                    let steps = steps.ok_or_else(|| bad(format!("guide `{value}` is not ATTRIBUTE=VALUE:STEPS (e.g. hair=blonde:12)")))?;
                    r.guides.push((axis, steps));
                }
                other => return Err(bad(format!("unknown field `{other}` (known: seed, toward, variation, set, guide)"))),
            }
        }
        recipe.ok_or_else(|| bad("it has no seed=N".into()))
    }
}

/// One character from `recipe`, resized to `size` (width, height) as sheet cells are ([`Upscaling::best`];
/// `None`: the generator's own size). Moves need `axes` fit for `g`.
pub fn character(
    g: &dyn Generator,
    recipe: &Recipe,
    axes: Option<&AttributeAxes>,
    classifier: Option<&AttributeClassifier>,
    size: Option<(u32, u32)>,
    device: &Device,
) -> Result<RgbImage> {
    let z = recipe.latent_for(g, axes, classifier, device)?;
    let image = tensor_to_images(&g.generate(&z)?)?.into_iter().next().context("the generator returned no image")?;
    Ok(match size {
        Some((w, h)) if (w, h) != image.dimensions() => {
            crate::io::limits::check_rgb("the character size", 1, w as u64, h as u64)?;
            Upscaling::best().resize(&image, w, h)?
        }
        _ => image,
    })
}

/// Variation indices draw that many latents first: a page holds far fewer.
const MAX_VARIATION: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_bad_text_names_the_field() {
        for text in [
            "seed=3",
            "seed=3 toward=5@0.25 variation=2@0.75 set=hair=blonde:+1.5 set=eyes=red:-1",
            "seed=0 toward=1@0.3333333333333333",
            "seed=2 guide=hair=pink:12 guide=eyes=red:0",
        ] {
            assert_eq!(text.parse::<Recipe>().unwrap().to_string(), text);
        }
        let r: Recipe = "seed=7  set=hair=blonde:2".parse().unwrap();
        assert_eq!(r.moves, [("hair=blonde".to_string(), 2.0)]);
        for (text, why) in [
            ("", "no seed"),
            ("variation=1@0.5", "start with seed"),
            ("seed=-1", "seed `-1`"),
            ("seed=1 seed=2", "twice"),
            ("seed=1 toward=2@1.5", "outside [0, 1]"),
            ("seed=1 variation=x@1", "index `x`"),
            ("seed=1 variation=1@-1", "negative"),
            ("seed=1 variation=1@NaN", "finite"),
            ("seed=1 set=hair", "ATTRIBUTE=VALUE:AMOUNT"),
            ("seed=1 colour=red", "unknown field `colour`"),
            ("seed=1 guide=hair=pink", "ATTRIBUTE=VALUE:STEPS"),
            ("seed=1 guide=hair=pink:-3", "not a whole number of steps"),
            ("seed=1 guide=hair=pink:100000", "at most 256 steps"),
            ("seed=1 guide=pink:3", "not ATTRIBUTE=VALUE"),
            ("seed=1 wild", "not KEY=VALUE"),
        ] {
            let err = text.parse::<Recipe>().unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn latents_follow_the_recipe() -> Result<()> {
        let dev = Device::Cpu;
        let plain = Recipe::seed(4).latent(Prior::Normal, 8, None, &dev)?;
        assert_eq!(plain.to_vec2::<f32>()?, latents(4, 1, 8, &dev)?.to_vec2::<f32>()?);
        let at_start: Recipe = "seed=4 toward=9@0".parse()?;
        let diff = (at_start.latent(Prior::Normal, 8, None, &dev)? - &plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6);
        let v0 = "seed=4 variation=0@0.5".parse::<Recipe>()?.latent(Prior::Normal, 8, None, &dev)?;
        let v1 = "seed=4 variation=1@0.5".parse::<Recipe>()?.latent(Prior::Normal, 8, None, &dev)?;
        assert_ne!(v0.to_vec2::<f32>()?, v1.to_vec2::<f32>()?);
        let err = "seed=4 set=hair=blonde:+1".parse::<Recipe>()?.latent(Prior::Normal, 8, None, &dev).unwrap_err().to_string();
        assert!(err.contains("no attribute axes"), "{err}");
        Ok(())
    }
}
